//! moto's server (PyPI `moto[server]`), a real implementation of AWS's sso-admin,
//! identitystore, IAM and STS APIs, on a free loopback port for one test, stopped when
//! dropped. `GATEHOUSE_MOTO_SERVER` names its `moto_server` program; `.ci/run` installs it
//! into a venv outside the repository and sets it.
//!
//! The tests' own setup and observations go to moto unsigned but for an `Authorization`
//! header that only tells moto which service is meant; while moto checks signatures (see
//! [`Moto::check_signatures`]), they are let through by moto's count of free requests.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::real::{free_port, log_tail, stop};

pub const REGION: &str = "eu-west-1";
pub const STORE: &str = "d-1234567890";
pub const ACCOUNT: &str = "111111111111";

pub struct Moto {
    pub url: String,
    child: Child,
    log: tempfile::NamedTempFile,
    http: reqwest::Client,
}

impl Moto {
    /// A fresh moto, or a panic saying how to get one.
    pub async fn start() -> Moto {
        let program = std::env::var_os("GATEHOUSE_MOTO_SERVER").unwrap_or_else(|| {
            panic!(
                "GATEHOUSE_MOTO_SERVER is not set; these tests need moto's server: \
                 python3 -m venv /tmp/gatehouse-moto && \
                 /tmp/gatehouse-moto/bin/pip install 'moto[server]==5.2.6' && \
                 export GATEHOUSE_MOTO_SERVER=/tmp/gatehouse-moto/bin/moto_server \
                 (.ci/run does this)"
            )
        });
        gatehouse::app::install_tls_provider();
        let port = free_port();
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.to_string_lossy()));
        let mut moto = Moto {
            url: format!("http://127.0.0.1:{port}/"),
            child,
            log,
            http: reqwest::Client::new(),
        };
        moto.wait_ready().await;
        moto
    }

    async fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let answer = self
                .http
                .get(format!("{}moto-api/data.json", self.url))
                .send()
                .await;
            if answer.is_ok_and(|a| a.status().is_success()) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "moto_server exited with {status}:\n{}",
                    log_tail(self.log.path())
                );
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer within 60 s:\n{}",
                log_tail(self.log.path())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A JSON 1.1 call to `service` (its signing name: `sso`, `identitystore`), unsigned.
    pub async fn try_json(
        &self,
        service: &str,
        target: &str,
        body: Value,
    ) -> Result<Value, (u16, String)> {
        let answer = self
            .http
            .post(&self.url)
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-target", target)
            .header("authorization", routing(service))
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = answer.status().as_u16();
        let text = answer.text().await.unwrap();
        if status == 200 {
            Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
        } else {
            Err((status, text))
        }
    }

    pub async fn sso(&self, operation: &str, body: Value) -> Value {
        self.try_json("sso", &format!("SWBExternalService.{operation}"), body)
            .await
            .unwrap_or_else(|e| panic!("sso-admin {operation}: {e:?}"))
    }

    pub async fn identitystore(&self, operation: &str, body: Value) -> Value {
        self.try_json(
            "identitystore",
            &format!("AWSIdentityStore.{operation}"),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("identitystore {operation}: {e:?}"))
    }

    /// A query-protocol call (IAM, STS): the XML answer.
    pub async fn query(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(params)
            .finish();
        let answer = self
            .http
            .post(&self.url)
            .header(
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8",
            )
            .header("authorization", routing(service))
            .body(body)
            .send()
            .await
            .unwrap();
        let status = answer.status();
        let text = answer.text().await.unwrap();
        assert!(status.is_success(), "{service} {params:?}: {status} {text}");
        text
    }

    /// From now on moto checks every request's SigV4 signature against the IAM users' keys
    /// and its IAM policy, but for the first `free` requests.
    pub async fn check_signatures(&self, free: u32) {
        self.reset_auth(&free.to_string()).await;
    }

    /// Lets every request through again, for the test's own looks.
    pub async fn stop_checking_signatures(&self) {
        self.reset_auth("inf").await;
    }

    async fn reset_auth(&self, count: &str) {
        let answer = self
            .http
            .post(format!("{}moto-api/reset-auth", self.url))
            .body(count.to_owned())
            .send()
            .await
            .unwrap();
        assert!(answer.status().is_success());
    }

    /// moto's one IAM Identity Center instance in [`REGION`].
    pub async fn instance(&self) -> String {
        let instances = self.sso("ListInstances", json!({})).await;
        instances["Instances"][0]["InstanceArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn permission_set(&self, instance: &str, name: &str) -> String {
        let created = self
            .sso(
                "CreatePermissionSet",
                json!({ "InstanceArn": instance, "Name": name }),
            )
            .await;
        created["PermissionSet"]["PermissionSetArn"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A user of the Identity Store [`STORE`]; their user id.
    pub async fn user(&self, user_name: &str) -> String {
        let created = self
            .identitystore(
                "CreateUser",
                json!({
                    "IdentityStoreId": STORE,
                    "UserName": user_name,
                    "DisplayName": user_name,
                    "Name": { "GivenName": "Test", "FamilyName": "User" },
                    "Emails": [{ "Value": user_name, "Primary": true }],
                }),
            )
            .await;
        created["UserId"].as_str().unwrap().to_owned()
    }

    pub async fn group(&self, name: &str) -> String {
        let created = self
            .identitystore(
                "CreateGroup",
                json!({ "IdentityStoreId": STORE, "DisplayName": name }),
            )
            .await;
        created["GroupId"].as_str().unwrap().to_owned()
    }

    /// The principal ids holding `permission_set` on [`ACCOUNT`], as moto lists them.
    pub async fn assigned(&self, instance: &str, permission_set: &str) -> Vec<String> {
        let listed = self
            .sso(
                "ListAccountAssignments",
                json!({ "InstanceArn": instance, "AccountId": ACCOUNT, "PermissionSetArn": permission_set }),
            )
            .await;
        ids(&listed["AccountAssignments"], "PrincipalId")
    }

    /// The user ids in `group`, as moto lists them.
    pub async fn members(&self, group: &str) -> Vec<String> {
        let listed = self
            .identitystore(
                "ListGroupMemberships",
                json!({ "IdentityStoreId": STORE, "GroupId": group }),
            )
            .await;
        listed["GroupMemberships"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["MemberId"]["UserId"].as_str().unwrap().to_owned())
            .collect()
    }

    /// An IAM user with `policy` inline and an access key: (key id, secret).
    pub async fn iam_user(&self, name: &str, policy: &Value) -> (String, String) {
        self.query(
            "iam",
            &[
                ("Action", "CreateUser"),
                ("Version", "2010-05-08"),
                ("UserName", name),
            ],
        )
        .await;
        self.query(
            "iam",
            &[
                ("Action", "PutUserPolicy"),
                ("Version", "2010-05-08"),
                ("UserName", name),
                ("PolicyName", "gatehouse"),
                ("PolicyDocument", &policy.to_string()),
            ],
        )
        .await;
        let created = self
            .query(
                "iam",
                &[
                    ("Action", "CreateAccessKey"),
                    ("Version", "2010-05-08"),
                    ("UserName", name),
                ],
            )
            .await;
        (
            xml_text(&created, "AccessKeyId"),
            xml_text(&created, "SecretAccessKey"),
        )
    }

    /// An IAM role anyone may assume with a web identity, with `policy` inline; its ARN.
    pub async fn web_identity_role(&self, name: &str, policy: &Value) -> String {
        let trust = json!({
            "Version": "2012-10-17",
            "Statement": [{ "Effect": "Allow", "Principal": { "Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.example.com" }, "Action": "sts:AssumeRoleWithWebIdentity" }],
        });
        let created = self
            .query(
                "iam",
                &[
                    ("Action", "CreateRole"),
                    ("Version", "2010-05-08"),
                    ("RoleName", name),
                    ("AssumeRolePolicyDocument", &trust.to_string()),
                ],
            )
            .await;
        self.query(
            "iam",
            &[
                ("Action", "PutRolePolicy"),
                ("Version", "2010-05-08"),
                ("RoleName", name),
                ("PolicyName", "gatehouse"),
                ("PolicyDocument", &policy.to_string()),
            ],
        )
        .await;
        xml_text(&created, "Arn")
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        stop(&mut self.child, libc::SIGTERM);
    }
}

/// An `Authorization` header moto routes by (the service in its credential scope) and, while
/// it does not check signatures, accepts.
fn routing(service: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256 Credential=AKIAMOTOSETUP0000000/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0"
    )
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[key].as_str().unwrap().to_owned())
        .collect()
}

fn xml_text(xml: &str, tag: &str) -> String {
    let open = format!("<{tag}>");
    let start = xml
        .find(&open)
        .unwrap_or_else(|| panic!("no <{tag}> in {xml}"))
        + open.len();
    let end = start + xml[start..].find(&format!("</{tag}>")).unwrap();
    xml[start..end].to_owned()
}
