//! The `aws-sso` connector against moto's server, a real implementation of AWS's
//! sso-admin, identitystore, IAM and STS APIs: every observation is made in moto itself
//! (`ListAccountAssignments`, `ListGroupMemberships`). With moto checking signatures and
//! IAM policies, the requests are shown to be signed as AWS checks them (moto recomputes
//! each SigV4 signature with botocore) and the least policy of docs/connectors/aws-sso.md to
//! be enough.
//!
//! These tests need moto (`GATEHOUSE_MOTO_SERVER`): a bare `cargo test` lists them as
//! ignored; `.ci/run` installs moto and runs them with `--include-ignored`, where a missing
//! moto fails them.

mod moto;

use std::path::Path;
use std::sync::Arc;

use gatehouse::config::{Config, Env};
use gatehouse::connector::{
    Action, AwsEnv, AwsSsoConnector, Connector, ConnectorCall, ConnectorError, PersonRef,
};
use gatehouse::domain::ids::GrantId;
use serde_json::{Value, json};

use moto::{ACCOUNT, Moto, REGION, STORE};

/// The connector's table for moto: `extra` adds or overrides keys.
fn connector_toml(moto: &Moto, instance: &str, roles: &str, extra: &str) -> String {
    format!(
        r#"[[connectors]]
id = "aws-prod"
kind = "aws-sso"
region = "{REGION}"
instance_arn = "{instance}"
identity_store_id = "{STORE}"
account = "{ACCOUNT}"
user_name = "{{{{ email }}}}"
roles = {{ {roles} }}
endpoint_url = "{}"
timeout = "20s"
{extra}"#,
        moto.url
    )
}

/// The connector `text` configures (checked as `gatehouse check` would), reading
/// credentials through `env`.
fn connector(text: &str, env: AwsEnv) -> Arc<dyn Connector> {
    let config = Config::parse("gatehouse.toml", text, Path::new("/"), &Env::new())
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(AwsSsoConnector::with_env(&config.connectors[0], env).unwrap())
}

/// Static keys in the environment, and nothing else of the chain.
fn keys(id: &str, secret: &str) -> AwsEnv {
    AwsEnv::from_pairs([
        ("AWS_ACCESS_KEY_ID", id.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", secret.to_owned()),
    ])
}

fn any_keys() -> AwsEnv {
    keys("AKIAGATEHOUSETEST000", "secret")
}

fn call(action: Action, email: Option<&str>) -> ConnectorCall {
    ConnectorCall {
        action,
        grant: GrantId(1),
        person: PersonRef {
            id: email
                .and_then(|e| e.split('@').next())
                .unwrap_or("carol")
                .into(),
            email: email.map(str::to_owned),
            slack: None,
            discord: None,
            accounts: Default::default(),
        },
        resource: "aws-prod-account".into(),
        role: "admin".into(),
        expires_at: None,
        idempotency_key: format!("{action}:G-1"),
        undo: false,
    }
}

fn permanent(result: Result<gatehouse::connector::Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

/// The least policy of docs/connectors/aws-sso.md (its first ```json block), as moto can
/// evaluate it: moto matches actions but only `"Resource": "*"`, so the documented
/// resources are widened; what this shows is that the actions are enough.
fn documented_policy() -> Value {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/connectors/aws-sso.md"),
    )
    .unwrap();
    let block = page.split("```json\n").nth(1).expect("a ```json block");
    let mut policy: Value = serde_json::from_str(&block[..block.find("```").unwrap()]).unwrap();
    for statement in policy["Statement"].as_array_mut().unwrap() {
        statement["Resource"] = json!("*");
    }
    policy
}

/// `policy` without `action`.
fn without(policy: &Value, action: &str) -> Value {
    let mut policy = policy.clone();
    for statement in policy["Statement"].as_array_mut().unwrap() {
        statement["Action"]
            .as_array_mut()
            .unwrap()
            .retain(|a| a != action);
    }
    policy
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn granting_and_revoking_twice_each_leaves_moto_s_assignments_as_asked() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let admin = moto.permission_set(&instance, "Admin").await;
    let alice = moto.user("alice@example.com").await;
    let bob = moto.user("bob@example.com").await;
    // Bob holds the permission set already, given by someone else: it must stay.
    moto.sso(
        "CreateAccountAssignment",
        json!({ "InstanceArn": instance, "TargetId": ACCOUNT, "TargetType": "AWS_ACCOUNT", "PermissionSetArn": admin, "PrincipalType": "USER", "PrincipalId": bob }),
    )
    .await;
    let aws = connector(
        &connector_toml(&moto, &instance, &format!("admin = \"{admin}\""), ""),
        any_keys(),
    );
    let short = admin.rsplit('/').next().unwrap();

    let grant = call(Action::Grant, Some("alice@example.com"));
    let outcome = aws.grant(&grant).await.unwrap();
    assert_eq!(
        outcome.detail,
        format!(
            "assigned permission set {short} (role admin) to alice@example.com on account {ACCOUNT}"
        )
    );
    let again = aws.grant(&grant).await.expect("granting again succeeds");
    assert!(
        again.detail.ends_with("was already assigned"),
        "{}",
        again.detail
    );
    assert_eq!(
        sorted(moto.assigned(&instance, &admin).await),
        sorted(vec![alice.clone(), bob.clone()]),
        "alice once, bob untouched"
    );

    let revoke = call(Action::Revoke, Some("alice@example.com"));
    let outcome = aws.revoke(&revoke).await.unwrap();
    assert!(
        outcome.detail.starts_with("removed permission set"),
        "{}",
        outcome.detail
    );
    let again = aws.revoke(&revoke).await.expect("revoking again succeeds");
    assert!(
        again.detail.ends_with("was not assigned"),
        "{}",
        again.detail
    );
    assert_eq!(moto.assigned(&instance, &admin).await, [bob]);
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn an_unknown_user_or_a_person_without_the_value_is_a_permanent_failure_that_says_who() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let admin = moto.permission_set(&instance, "Admin").await;
    let aws = connector(
        &connector_toml(&moto, &instance, &format!("admin = \"{admin}\""), ""),
        any_keys(),
    );

    let message = permanent(
        aws.grant(&call(Action::Grant, Some("mallory@example.com")))
            .await,
    );
    assert!(
        message.contains(&format!(
            "Identity Store {STORE} has no user whose userName is `mallory@example.com`"
        )),
        "{message}"
    );
    assert!(
        message.contains("fix the connector's user_name template"),
        "{message}"
    );
    let message = permanent(
        aws.revoke(&call(Action::Revoke, Some("mallory@example.com")))
            .await,
    );
    assert!(message.contains("has no user whose userName"), "{message}");

    let message = permanent(aws.grant(&call(Action::Grant, None)).await);
    assert!(message.contains("cannot name carol"), "{message}");
    assert!(moto.assigned(&instance, &admin).await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn users_can_be_found_by_email_instead_of_user_name() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let admin = moto.permission_set(&instance, "Admin").await;
    // moto's users get their user name as email; "alice" as user name, the email differs.
    let alice = moto
        .identitystore(
            "CreateUser",
            json!({ "IdentityStoreId": STORE, "UserName": "alice", "DisplayName": "Alice",
                    "Name": { "GivenName": "Alice", "FamilyName": "Ng" },
                    "Emails": [{ "Value": "alice@example.com", "Primary": true }] }),
        )
        .await["UserId"]
        .as_str()
        .unwrap()
        .to_owned();
    let aws = connector(
        &connector_toml(
            &moto,
            &instance,
            &format!("admin = \"{admin}\""),
            "user_attribute = \"emails.value\"\n",
        ),
        any_keys(),
    );
    aws.grant(&call(Action::Grant, Some("alice@example.com")))
        .await
        .unwrap();
    assert_eq!(moto.assigned(&instance, &admin).await, [alice]);
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn in_group_mode_a_grant_adds_to_the_identity_store_group_and_a_revoke_removes() {
    let moto = Moto::start().await;
    let admins = moto.group("Admins").await;
    let alice = moto.user("alice@example.com").await;
    let text = format!(
        r#"[[connectors]]
id = "aws-groups"
kind = "aws-sso"
region = "{REGION}"
identity_store_id = "{STORE}"
assign = "group"
roles = {{ admin = "{admins}", ghost = "9a67a5c4-f0d1-7056-5a2a-b8a5e5a7e7d0" }}
endpoint_url = "{}"
"#,
        moto.url
    );
    let aws = connector(&text, any_keys());

    let grant = call(Action::Grant, Some("alice@example.com"));
    let outcome = aws.grant(&grant).await.unwrap();
    assert_eq!(
        outcome.detail,
        format!("added alice@example.com to Identity Store group {admins} (role admin)")
    );
    aws.grant(&grant).await.expect("granting again succeeds");
    assert_eq!(moto.members(&admins).await, [alice]);

    let revoke = call(Action::Revoke, Some("alice@example.com"));
    aws.revoke(&revoke).await.unwrap();
    let again = aws.revoke(&revoke).await.expect("revoking again succeeds");
    assert!(
        again.detail.ends_with("was not a member"),
        "{}",
        again.detail
    );
    assert!(moto.members(&admins).await.is_empty());

    let mut ghost = call(Action::Grant, Some("alice@example.com"));
    ghost.role = "ghost".into();
    let message = permanent(aws.grant(&ghost).await);
    assert!(
        message.contains(&format!(
            "Identity Store {STORE} has no group 9a67a5c4-f0d1-7056-5a2a-b8a5e5a7e7d0 (role ghost)"
        )),
        "{message}"
    );
    ghost.action = Action::Revoke;
    let message = permanent(aws.revoke(&ghost).await);
    assert!(
        message.contains("has no group"),
        "a typo must not pass for revoked: {message}"
    );
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn requests_are_signed_as_aws_checks_them_and_the_documented_policy_is_enough() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let admin = moto.permission_set(&instance, "Admin").await;
    let alice = moto.user("alice@example.com").await;
    moto.user("bob@example.com").await;
    let policy = documented_policy();
    let (id, secret) = moto.iam_user("gatehouse", &policy).await;
    let (half_id, half_secret) = moto
        .iam_user("half", &without(&policy, "sso:CreateAccountAssignment"))
        .await;
    let text = connector_toml(&moto, &instance, &format!("admin = \"{admin}\""), "");
    let aws = connector(&text, keys(&id, &secret));
    let refused = connector(&text, keys(&half_id, &half_secret));
    let forged = connector(&text, keys(&id, "not-the-secret"));

    moto.check_signatures(0).await;
    aws.grant(&call(Action::Grant, Some("alice@example.com")))
        .await
        .unwrap();
    let message = permanent(
        refused
            .grant(&call(Action::Grant, Some("bob@example.com")))
            .await,
    );
    assert!(
        message.contains("is not authorized to perform: sso:CreateAccountAssignment"),
        "{message}"
    );
    assert!(
        message.contains("allow sso:CreateAccountAssignment to Gatehouse's AWS principal"),
        "{message}"
    );
    let message = permanent(
        forged
            .grant(&call(Action::Grant, Some("bob@example.com")))
            .await,
    );
    assert!(message.contains("SignatureDoesNotMatch"), "{message}");
    moto.stop_checking_signatures().await;
    assert_eq!(moto.assigned(&instance, &admin).await, [alice]);

    moto.check_signatures(0).await;
    aws.revoke(&call(Action::Revoke, Some("alice@example.com")))
        .await
        .unwrap();
    moto.stop_checking_signatures().await;
    assert!(moto.assigned(&instance, &admin).await.is_empty());
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn a_web_identity_token_is_exchanged_at_sts_and_its_credentials_sign_the_calls() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let admin = moto.permission_set(&instance, "Admin").await;
    let alice = moto.user("alice@example.com").await;
    let role = moto
        .web_identity_role("gatehouse-web", &documented_policy())
        .await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(
        &token,
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJnYXRlaG91c2UifQ.c2ln",
    )
    .unwrap();
    let env = AwsEnv::from_pairs([
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        ("AWS_ROLE_ARN", role),
    ]);
    let aws = connector(
        &connector_toml(&moto, &instance, &format!("admin = \"{admin}\""), ""),
        env,
    );

    // The exchange itself is unsigned (the token is the proof): moto lets one request
    // through, every later one is checked against the assumed role's keys and policy.
    moto.check_signatures(1).await;
    aws.grant(&call(Action::Grant, Some("alice@example.com")))
        .await
        .unwrap();
    moto.stop_checking_signatures().await;
    assert_eq!(moto.assigned(&instance, &admin).await, [alice]);
}

/// moto as a contract target: alice is a user of the Identity Store, mallory is not.
struct IdentityCenter {
    moto: Moto,
    instance: String,
    permission_set: String,
}

impl crate::contract::Target for IdentityCenter {
    fn connector(&self) -> Arc<dyn Connector> {
        let roles = format!("{} = \"{}\"", crate::contract::ROLE, self.permission_set);
        connector(
            &connector_toml(&self.moto, &self.instance, &roles, ""),
            any_keys(),
        )
    }

    fn known(&self) -> PersonRef {
        call(Action::Grant, Some("alice@example.com")).person
    }

    fn stranger(&self) -> PersonRef {
        call(Action::Grant, Some("mallory@example.com")).person
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        let Some(email) = &person.email else {
            return false;
        };
        let found = self
            .moto
            .try_json(
                "identitystore",
                "AWSIdentityStore.GetUserId",
                json!({ "IdentityStoreId": STORE, "AlternateIdentifier": { "UniqueAttribute": {
                    "AttributePath": "UserName", "AttributeValue": email } } }),
            )
            .await;
        let Ok(user) = found else {
            return false;
        };
        let id = user["UserId"].as_str().unwrap().to_owned();
        self.moto
            .assigned(&self.instance, &self.permission_set)
            .await
            .contains(&id)
    }
}

#[tokio::test]
#[ignore = "needs moto (GATEHOUSE_MOTO_SERVER); .ci/run installs it"]
async fn the_aws_sso_connector_keeps_the_connector_contract() {
    let moto = Moto::start().await;
    let instance = moto.instance().await;
    let permission_set = moto.permission_set(&instance, "Member").await;
    moto.user("alice@example.com").await;
    crate::contract::check(&IdentityCenter {
        moto,
        instance,
        permission_set,
    })
    .await;
}
