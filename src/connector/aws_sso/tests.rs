//! The `aws-sso` connector's handling of what moto never answers — throttling, server
//! errors, refusals, assignments that stay in progress or fail, races, paging, expired
//! credentials — against a small AWS on 127.0.0.1:0 that answers in AWS's JSON 1.1 shapes.
//! The real flows run against moto in tests/it/aws_sso.rs.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use serde_json::{Value, json};

use super::*;
use crate::config::ConnectorKind;
use crate::connector::tests::{config, sample_call};

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-0123456789abcdef";
const ADMIN: &str = "arn:aws:sso:::permissionSet/ssoins-0123456789abcdef/ps-0123456789abcdef";
const STORE: &str = "d-1234567890";
const ALICE_ID: &str = "94482488-3041-7026-18f3-be45837cd0e4";

/// One scripted answer.
#[derive(Clone)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Value,
}

fn aws_error(status: u16, code: &str, message: &str) -> Reply {
    Reply {
        status,
        headers: Vec::new(),
        body: json!({ "__type": format!("com.amazonaws.swbexternalservice#{code}"), "message": message }),
    }
}

#[derive(Default)]
struct Aws {
    /// Operation and access key id of every request, in order.
    seen: Vec<(String, String)>,
    /// userName → user id.
    users: BTreeMap<String, String>,
    /// (permission set, user id) assigned on the account.
    assigned: BTreeSet<(String, String)>,
    /// Answers given before the default behaviour, per operation.
    scripted: BTreeMap<String, VecDeque<Reply>>,
    /// Statuses an assignment goes through (default: SUCCEEDED at once); the last repeats.
    statuses: Vec<&'static str>,
    status_at: usize,
    /// Access keys AWS calls expired.
    expired: BTreeSet<String>,
}

#[derive(Clone, Default)]
struct FakeAws(Arc<Mutex<Aws>>);

impl FakeAws {
    fn with<T>(&self, f: impl FnOnce(&mut Aws) -> T) -> T {
        f(&mut self.0.lock().unwrap())
    }

    fn script(&self, operation: &str, reply: Reply) {
        self.with(|aws| {
            aws.scripted
                .entry(operation.to_owned())
                .or_default()
                .push_back(reply)
        });
    }

    fn calls(&self, operation: &str) -> usize {
        self.with(|aws| aws.seen.iter().filter(|(op, _)| op == operation).count())
    }

    fn keys(&self) -> Vec<String> {
        self.with(|aws| aws.seen.iter().map(|(_, key)| key.clone()).collect())
    }
}

fn next_status(aws: &mut Aws) -> &'static str {
    let status = aws
        .statuses
        .get(aws.status_at)
        .or(aws.statuses.last())
        .copied()
        .unwrap_or("SUCCEEDED");
    aws.status_at += 1;
    status
}

async fn answer(
    AxumState(fake): AxumState<FakeAws>,
    headers: HeaderMap,
    body: Bytes,
) -> (AxumStatus, HeaderMap, String) {
    let operation = headers["x-amz-target"]
        .to_str()
        .unwrap()
        .rsplit('.')
        .next()
        .unwrap()
        .to_owned();
    let key = headers["authorization"]
        .to_str()
        .unwrap()
        .split("Credential=")
        .nth(1)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let request: Value = serde_json::from_slice(&body).unwrap();
    let reply = fake.with(|aws| {
        aws.seen.push((operation.clone(), key.clone()));
        if aws.expired.contains(&key) {
            return aws_error(400, "ExpiredTokenException", "The security token included in the request is expired");
        }
        if let Some(reply) = aws.scripted.get_mut(&operation).and_then(VecDeque::pop_front) {
            return reply;
        }
        let ok = |body| Reply { status: 200, headers: Vec::new(), body };
        match operation.as_str() {
            "GetUserId" => {
                let name = request["AlternateIdentifier"]["UniqueAttribute"]["AttributeValue"]
                    .as_str()
                    .unwrap();
                match aws.users.get(name) {
                    Some(id) => ok(json!({ "UserId": id, "IdentityStoreId": STORE })),
                    None => aws_error(400, "ResourceNotFoundException", "USER not found."),
                }
            }
            "ListAccountAssignments" => {
                let ps = request["PermissionSetArn"].as_str().unwrap();
                let list: Vec<Value> = aws
                    .assigned
                    .iter()
                    .filter(|(p, _)| p == ps)
                    .map(|(p, user)| json!({ "AccountId": "111111111111", "PermissionSetArn": p, "PrincipalType": "USER", "PrincipalId": user }))
                    .collect();
                ok(json!({ "AccountAssignments": list }))
            }
            "CreateAccountAssignment" | "DeleteAccountAssignment" => {
                let pair = (
                    request["PermissionSetArn"].as_str().unwrap().to_owned(),
                    request["PrincipalId"].as_str().unwrap().to_owned(),
                );
                let key = if operation.starts_with("Create") {
                    aws.assigned.insert(pair);
                    "AccountAssignmentCreationStatus"
                } else {
                    aws.assigned.remove(&pair);
                    "AccountAssignmentDeletionStatus"
                };
                let status = next_status(aws);
                ok(json!({ key: { "Status": status, "RequestId": "req-1", "FailureReason": "Received a 404 status error: Not supported account" } }))
            }
            "DescribeAccountAssignmentCreationStatus" | "DescribeAccountAssignmentDeletionStatus" => {
                assert_eq!(request["InstanceArn"], INSTANCE);
                let key = operation.trim_start_matches("Describe");
                let status = next_status(aws);
                ok(json!({ key: { "Status": status, "RequestId": "req-1", "FailureReason": "Received a 404 status error: Not supported account" } }))
            }
            other => aws_error(400, "UnknownOperationException", other),
        }
    });
    let mut answer_headers = HeaderMap::new();
    for (name, value) in reply.headers {
        answer_headers.insert(name, value.parse().unwrap());
    }
    (
        AxumStatus::from_u16(reply.status).unwrap(),
        answer_headers,
        reply.body.to_string(),
    )
}

/// A fake AWS with alice in its Identity Store, on a free local port.
async fn fake_aws() -> (String, FakeAws) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let fake = FakeAws::default();
    fake.with(|aws| {
        aws.users
            .insert("alice@example.com".to_owned(), ALICE_ID.to_owned())
    });
    let app = Router::new().fallback(answer).with_state(fake.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}/"), fake)
}

fn env_keys(key: &str) -> AwsEnv {
    AwsEnv::from_pairs([
        ("AWS_ACCESS_KEY_ID", key.to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
    ])
}

fn connector(url: &str, timeout_secs: u64, env: AwsEnv) -> AwsSsoConnector {
    let mut config = config("aws-prod", ConnectorKind::AwsSso);
    config.region = Some("eu-west-1".to_owned());
    config.instance_arn = Some(INSTANCE.to_owned());
    config.identity_store_id = Some(STORE.to_owned());
    config.account = Some("111111111111".to_owned());
    config.endpoint_url = Some(url.to_owned());
    config.roles.insert("admin".into(), ADMIN.to_owned());
    config.timeout = crate::domain::duration::Duration::from_secs(timeout_secs);
    AwsSsoConnector::with_env(&config, env).unwrap()
}

fn permanent(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

fn transient(result: Result<Outcome, ConnectorError>) -> String {
    match result {
        Err(ConnectorError::Transient(message)) => message,
        other => panic!("expected a transient failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_grant_looks_creates_and_follows_the_assignment_until_it_succeeds() {
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.statuses = vec!["IN_PROGRESS", "SUCCEEDED"]);
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));

    let outcome = aws.grant(&sample_call(Action::Grant)).await.unwrap();

    assert_eq!(
        outcome.detail,
        "assigned permission set ps-0123456789abcdef (role admin) to alice@example.com on account 111111111111"
    );
    let operations: Vec<String> =
        fake.with(|aws| aws.seen.iter().map(|(op, _)| op.clone()).collect());
    assert_eq!(
        operations,
        [
            "GetUserId",
            "ListAccountAssignments",
            "CreateAccountAssignment",
            "DescribeAccountAssignmentCreationStatus"
        ]
    );
    assert!(fake.keys().iter().all(|k| k == "AKIAGATEHOUSE"));
}

#[tokio::test]
async fn throttling_with_retry_after_is_transient_and_nothing_is_sent_again_before_then() {
    let (url, fake) = fake_aws().await;
    let mut throttled = aws_error(400, "ThrottlingException", "Rate exceeded");
    throttled.headers.push(("retry-after", "30".to_owned()));
    fake.script("GetUserId", throttled);
    let aws = connector(&url, 2, env_keys("AKIAGATEHOUSE"));

    let first = transient(aws.grant(&sample_call(Action::Grant)).await);
    assert!(
        first.contains("ThrottlingException: Rate exceeded"),
        "{first}"
    );
    assert!(first.contains("asked to wait 30s"), "{first}");

    let second = transient(aws.grant(&sample_call(Action::Grant)).await);
    assert!(second.contains("was not sent"), "{second}");
    assert_eq!(
        fake.calls("GetUserId"),
        1,
        "the pause AWS asked for is kept"
    );
}

#[tokio::test]
async fn server_errors_are_transient_and_access_denied_is_permanent_naming_the_iam_action() {
    let (url, fake) = fake_aws().await;
    fake.script(
        "ListAccountAssignments",
        aws_error(500, "InternalServerException", "try again"),
    );
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let message = transient(aws.grant(&sample_call(Action::Grant)).await);
    assert!(message.contains("InternalServerException"), "{message}");

    fake.script(
        "CreateAccountAssignment",
        aws_error(400, "AccessDeniedException", "User: arn:aws:iam::111111111111:role/gatehouse is not authorized to perform: sso:CreateAccountAssignment"),
    );
    let message = permanent(aws.grant(&sample_call(Action::Grant)).await);
    assert!(
        message.contains("allow sso:CreateAccountAssignment to Gatehouse's AWS principal"),
        "{message}"
    );
    assert!(message.starts_with("aws-sso `aws-prod`: "), "{message}");
}

#[tokio::test]
async fn an_assignment_still_in_progress_at_the_deadline_is_transient_and_the_retry_finds_it_done()
{
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.statuses = vec!["IN_PROGRESS"]);
    let aws = connector(&url, 3, env_keys("AKIAGATEHOUSE"));

    let message = transient(aws.grant(&sample_call(Action::Grant)).await);
    assert!(message.contains("was still in progress"), "{message}");
    assert!(message.contains("request req-1"), "{message}");

    let outcome = aws.grant(&sample_call(Action::Grant)).await.unwrap();
    assert!(
        outcome.detail.ends_with("was already assigned"),
        "{}",
        outcome.detail
    );
    assert_eq!(fake.calls("CreateAccountAssignment"), 1, "assigned once");
}

#[tokio::test]
async fn an_assignment_aws_fails_is_permanent_with_its_reason() {
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.statuses = vec!["FAILED"]);
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let message = permanent(aws.grant(&sample_call(Action::Grant)).await);
    assert!(
        message.contains("AWS failed the assignment of permission set ps-0123456789abcdef"),
        "{message}"
    );
    assert!(message.contains("Not supported account"), "{message}");
}

#[tokio::test]
async fn a_conflict_on_create_is_success_when_the_assignment_is_there_after_all() {
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.assigned.insert((ADMIN.to_owned(), ALICE_ID.to_owned())));
    fake.script(
        "ListAccountAssignments",
        Reply {
            status: 200,
            headers: Vec::new(),
            body: json!({ "AccountAssignments": [] }),
        },
    );
    fake.script(
        "CreateAccountAssignment",
        aws_error(
            409,
            "ConflictException",
            "An assignment for this principal is already in progress",
        ),
    );
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let outcome = aws.grant(&sample_call(Action::Grant)).await.unwrap();
    assert!(
        outcome.detail.ends_with("was already assigned"),
        "{}",
        outcome.detail
    );
}

#[tokio::test]
async fn an_assignment_on_a_later_page_of_the_list_is_found() {
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.assigned.insert((ADMIN.to_owned(), ALICE_ID.to_owned())));
    fake.script(
        "ListAccountAssignments",
        Reply {
            status: 200,
            headers: Vec::new(),
            body: json!({ "AccountAssignments": [{ "AccountId": "111111111111", "PermissionSetArn": ADMIN, "PrincipalType": "GROUP", "PrincipalId": ALICE_ID }], "NextToken": "page-2" }),
        },
    );
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let outcome = aws.grant(&sample_call(Action::Grant)).await.unwrap();
    assert!(
        outcome.detail.ends_with("was already assigned"),
        "{}",
        outcome.detail
    );
    assert_eq!(fake.calls("ListAccountAssignments"), 2);
    assert_eq!(fake.calls("CreateAccountAssignment"), 0);
}

#[tokio::test]
async fn an_unknown_permission_set_is_permanent_and_names_it() {
    let (url, fake) = fake_aws().await;
    fake.script(
        "ListAccountAssignments",
        aws_error(
            400,
            "ResourceNotFoundException",
            "Could not find PermissionSet with id ps-0123456789abcdef",
        ),
    );
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let message = permanent(aws.revoke(&sample_call(Action::Revoke)).await);
    assert!(
        message.contains(&format!("AWS does not know permission set {ADMIN}")),
        "{message}"
    );
    assert!(
        message.contains("fix the connector's roles table"),
        "{message}"
    );
}

#[tokio::test]
async fn a_role_missing_from_the_roles_table_is_permanent_and_sends_nothing() {
    let (url, fake) = fake_aws().await;
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let mut call = sample_call(Action::Grant);
    call.role = "owner".into();
    let message = permanent(aws.grant(&call).await);
    assert!(
        message
            .contains("role `owner` has no permission set; add it to this connector's roles table"),
        "{message}"
    );
    assert!(fake.keys().is_empty());
}

#[tokio::test]
async fn expired_credentials_are_transient_and_read_again_from_the_shared_file() {
    let (url, fake) = fake_aws().await;
    fake.with(|aws| aws.expired.insert("ASIAOLD".to_owned()));
    let home = tempfile::tempdir().unwrap();
    let file = home.path().join("credentials");
    let write = |key: &str| {
        std::fs::write(
            &file,
            format!("[default]\naws_access_key_id = {key}\naws_secret_access_key = s\naws_session_token = t\n"),
        )
        .unwrap()
    };
    write("ASIAOLD");
    let env = AwsEnv::from_pairs([
        ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string()),
        (
            "AWS_CONFIG_FILE",
            home.path().join("none").display().to_string(),
        ),
    ]);
    let aws = connector(&url, 10, env);

    let message = transient(aws.grant(&sample_call(Action::Grant)).await);
    assert!(message.contains("ExpiredTokenException"), "{message}");
    write("ASIANEW");
    aws.grant(&sample_call(Action::Grant)).await.unwrap();
    let keys = fake.keys();
    assert_eq!(keys.first().map(String::as_str), Some("ASIAOLD"));
    assert_eq!(keys.last().map(String::as_str), Some("ASIANEW"));
}

#[tokio::test]
async fn revoking_what_is_not_assigned_succeeds_without_a_change() {
    let (url, fake) = fake_aws().await;
    let aws = connector(&url, 10, env_keys("AKIAGATEHOUSE"));
    let outcome = aws.revoke(&sample_call(Action::Revoke)).await.unwrap();
    assert_eq!(
        outcome.detail,
        "permission set ps-0123456789abcdef (role admin) of alice@example.com on account 111111111111 was not assigned"
    );
    assert_eq!(fake.calls("DeleteAccountAssignment"), 0);
}

#[test]
fn error_codes_are_read_from_every_shape_aws_writes_them_in() {
    assert_eq!(
        error_code("com.amazonaws.swbexternalservice#ThrottlingException"),
        "ThrottlingException"
    );
    assert_eq!(
        error_code(
            "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/"
        ),
        "AccessDeniedException"
    );
    assert_eq!(error_code("ConflictException"), "ConflictException");
}

#[test]
fn identifiers_are_checked_against_the_shapes_aws_documents() {
    assert!(shapes::region("eu-central-2").is_ok());
    assert!(shapes::region("us-gov-west-1").is_ok());
    assert!(shapes::region("Europe").is_err());
    assert_eq!(
        shapes::instance_arn(INSTANCE).unwrap(),
        "ssoins-0123456789abcdef"
    );
    assert!(shapes::instance_arn("ssoins-0123456789abcdef").is_err());
    assert_eq!(
        shapes::permission_set_arn(ADMIN).unwrap(),
        "ssoins-0123456789abcdef"
    );
    assert!(shapes::permission_set_arn("AdministratorAccess").is_err());
    assert!(shapes::account("111111111111").is_ok());
    assert!(shapes::account("11111111111").is_err());
    assert!(shapes::identity_store_id(STORE).is_ok());
    assert!(shapes::identity_store_id("d-12345").is_err());
    assert!(shapes::group_id("9a67a5c4-f0d1-7056-5a2a-b8a5e5a7e7d0").is_ok());
    assert!(shapes::group_id("1234567890-9a67a5c4-f0d1-7056-5a2a-b8a5e5a7e7d0").is_ok());
    assert!(shapes::group_id("Admins").is_err());
    assert!(shapes::user_attribute("emails.value").is_ok());
    assert!(shapes::user_attribute("email").is_err());
}

#[test]
fn connectors_from_config_build_aws_sso_and_say_which_key_is_missing() {
    let mut complete = config("aws-prod", ConnectorKind::AwsSso);
    complete.region = Some("eu-west-1".to_owned());
    complete.instance_arn = Some(INSTANCE.to_owned());
    complete.identity_store_id = Some(STORE.to_owned());
    complete.account = Some("111111111111".to_owned());
    complete.roles.insert("admin".into(), ADMIN.to_owned());
    let built = crate::connector::Connectors::from_config(std::slice::from_ref(&complete)).unwrap();
    assert!(built.get(&"aws-prod".into()).is_some());

    let mut no_account = complete;
    no_account.account = None;
    let err = crate::connector::Connectors::from_config(&[no_account])
        .err()
        .unwrap();
    assert_eq!(
        err.to_string(),
        "connector `aws-prod` (aws-sso) has no account; add account = \"111111111111\""
    );
}
