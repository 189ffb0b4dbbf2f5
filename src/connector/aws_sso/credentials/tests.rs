//! The credential chain, each link against files in a temporary HOME and endpoints on
//! 127.0.0.1:0 that answer as STS, the ECS agent and IMDSv2 do. No test lets the chain
//! reach the real metadata addresses: each sets an endpoint, or a link before them.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

use super::*;

/// One request the fake endpoints saw: method, path, the headers that matter, the body.
type Request = (String, String, String, String);

#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<Request>>>);

impl Seen {
    fn all(&self) -> Vec<Request> {
        self.0.lock().unwrap().clone()
    }
}

const STS_OK: &str = r#"<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleWithWebIdentityResult>
    <Credentials>
      <SessionToken>FQoGZXIvYXdzE&amp;token</SessionToken>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
      <AccessKeyId>ASIAWEBIDENTITY</AccessKeyId>
    </Credentials>
  </AssumeRoleWithWebIdentityResult>
</AssumeRoleWithWebIdentityResponse>"#;

const STS_DENIED: &str = r#"<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <Error><Type>Sender</Type><Code>AccessDenied</Code><Message>Not authorized to perform sts:AssumeRoleWithWebIdentity</Message></Error>
</ErrorResponse>"#;

async fn endpoint(
    State(seen): State<Seen>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let path = uri.path().to_owned();
    let token = header("x-aws-ec2-metadata-token");
    seen.0.lock().unwrap().push((
        method.to_string(),
        path.clone(),
        format!("{}{}", header("authorization"), token),
        body.clone(),
    ));
    let expiring = (SystemClock.now() + TimeDelta::minutes(1)).to_rfc3339();
    let json = |key: &str, expires: &str| {
        format!(
            r#"{{"Code":"Success","AccessKeyId":"{key}","SecretAccessKey":"s","Token":"t","Expiration":"{expires}"}}"#
        )
    };
    match (method.as_str(), path.as_str()) {
        ("POST", "/sts/")
            if body.contains("RoleArn=arn%3Aaws%3Aiam%3A%3A111111111111%3Arole%2Fdenied") =>
        {
            (StatusCode::FORBIDDEN, STS_DENIED.to_owned())
        }
        ("POST", "/sts/") => (StatusCode::OK, STS_OK.to_owned()),
        ("GET", "/ecs/creds") if header("authorization") == "ecs-token" => {
            (StatusCode::OK, json("ASIAECS", "2099-01-01T00:00:00Z"))
        }
        ("GET", "/ecs/creds") => (StatusCode::UNAUTHORIZED, "no token".to_owned()),
        ("PUT", "/latest/api/token")
            if header("x-aws-ec2-metadata-token-ttl-seconds") == "21600" =>
        {
            (StatusCode::OK, "imds-session".to_owned())
        }
        // IMDSv2 only: without the session token the instance refuses.
        ("GET", _) if token != "imds-session" => (StatusCode::UNAUTHORIZED, String::new()),
        ("GET", "/latest/meta-data/iam/security-credentials/") => {
            (StatusCode::OK, "gatehouse-role\n".to_owned())
        }
        ("GET", "/latest/meta-data/iam/security-credentials/gatehouse-role") => {
            (StatusCode::OK, json("ASIAIMDS", &expiring))
        }
        _ => (StatusCode::NOT_FOUND, String::new()),
    }
}

async fn fake() -> (String, Seen) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let seen = Seen::default();
    let app = Router::new().fallback(endpoint).with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{address}"), seen)
}

fn chain(base: &str, pairs: &[(&'static str, String)], profile: Option<&str>) -> CredentialChain {
    let mut pairs = pairs.to_vec();
    // A link of last resort that is never the real metadata address.
    if !pairs
        .iter()
        .any(|(n, _)| *n == "AWS_EC2_METADATA_SERVICE_ENDPOINT")
    {
        pairs.push(("AWS_EC2_METADATA_DISABLED", "true".to_owned()));
    }
    CredentialChain::new(
        AwsEnv::from_pairs(pairs),
        profile.map(str::to_owned),
        Sts {
            url: format!("{base}/sts/").parse().unwrap(),
            region: "eu-west-1".to_owned(),
        },
        http_api::client(&"aws-test".into()).unwrap(),
    )
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

fn home_with(files: &[(&str, &str)]) -> (tempfile::TempDir, Vec<(&'static str, String)>) {
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    for (name, text) in files {
        std::fs::write(home.path().join(".aws").join(name), text).unwrap();
    }
    let pairs = vec![("HOME", home.path().display().to_string())];
    (home, pairs)
}

fn permanent(result: Result<Credentials, ApiError>) -> String {
    match result {
        Err(ApiError::Permanent(message)) => message,
        other => panic!("expected a permanent failure, got {other:?}"),
    }
}

#[tokio::test]
async fn environment_keys_come_first_and_half_a_pair_is_an_error() {
    let (home, mut pairs) = home_with(&[(
        "credentials",
        "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = f\n",
    )]);
    pairs.push(("AWS_ACCESS_KEY_ID", "AKIAENV".to_owned()));
    pairs.push(("AWS_SECRET_ACCESS_KEY", "e".to_owned()));
    pairs.push(("AWS_SESSION_TOKEN", "session".to_owned()));
    let found = chain("http://127.0.0.1:9", &pairs, None)
        .get(soon())
        .await
        .unwrap();
    assert_eq!(found.access_key_id, "AKIAENV");
    assert_eq!(found.session_token.unwrap().expose(), "session");

    pairs.retain(|(n, _)| *n != "AWS_SECRET_ACCESS_KEY");
    let message = permanent(chain("http://127.0.0.1:9", &pairs, None).get(soon()).await);
    assert!(
        message.contains("only one of AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{message}"
    );
    drop(home);
}

#[tokio::test]
async fn the_default_profile_or_aws_profile_is_read_from_the_shared_files() {
    let (_home, mut pairs) = home_with(&[
        (
            "credentials",
            "# keys\n[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[ops]\naws_access_key_id=AKIAOPS\naws_secret_access_key=o\n",
        ),
        (
            "config",
            "[default]\nregion = eu-west-1\n[profile audit]\naws_access_key_id = AKIAAUDIT\naws_secret_access_key = a\ns3 =\n  max_concurrent_requests = 20\n[sso-session corp]\nsso_start_url = https://corp.awsapps.com/start\n",
        ),
    ]);
    let key = |pairs: &[(&'static str, String)], profile: Option<&str>| {
        let chain = chain("http://127.0.0.1:9", pairs, profile);
        async move { chain.get(soon()).await.unwrap().access_key_id }
    };
    assert_eq!(key(&pairs, None).await, "AKIADEFAULT");
    assert_eq!(key(&pairs, Some("audit")).await, "AKIAAUDIT");
    pairs.push(("AWS_PROFILE", "ops".to_owned()));
    assert_eq!(key(&pairs, None).await, "AKIAOPS");

    pairs.push(("AWS_PROFILE", "typo".to_owned()));
    let message = permanent(chain("http://127.0.0.1:9", &pairs, None).get(soon()).await);
    assert!(
        message.contains("AWS_PROFILE names profile `typo`, which is in neither"),
        "{message}"
    );
}

#[tokio::test]
async fn a_profile_gatehouse_cannot_use_says_which_setting_and_what_to_do() {
    let (_home, pairs) = home_with(&[(
        "config",
        "[profile corp]\nsso_session = corp\nsso_account_id = 111111111111\n",
    )]);
    let message = permanent(
        chain("http://127.0.0.1:9", &pairs, Some("corp"))
            .get(soon())
            .await,
    );
    assert!(
        message.contains("profile `corp` uses sso_session, which Gatehouse does not support"),
        "{message}"
    );
}

#[tokio::test]
async fn a_web_identity_token_is_exchanged_at_sts_for_temporary_credentials() {
    let (base, seen) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "eyJhbGciOiJSUzI1NiJ9.payload.sig\n").unwrap();
    let pairs = vec![
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::111111111111:role/gatehouse".to_owned(),
        ),
        ("AWS_ROLE_SESSION_NAME", "gatehouse-test".to_owned()),
    ];
    let found = chain(&base, &pairs, None).get(soon()).await.unwrap();
    assert_eq!(found.access_key_id, "ASIAWEBIDENTITY");
    assert_eq!(found.session_token.unwrap().expose(), "FQoGZXIvYXdzE&token");
    assert_eq!(
        found.expires.unwrap().to_rfc3339(),
        "2099-01-01T00:00:00+00:00"
    );
    let seen = seen.all();
    assert_eq!(seen.len(), 1);
    let (method, path, authorization, body) = &seen[0];
    assert_eq!((method.as_str(), path.as_str()), ("POST", "/sts/"));
    assert_eq!(
        authorization, "",
        "the token is the proof: nothing is signed"
    );
    let form: BTreeMap<String, String> = form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form["Action"], "AssumeRoleWithWebIdentity");
    assert_eq!(form["RoleArn"], "arn:aws:iam::111111111111:role/gatehouse");
    assert_eq!(form["RoleSessionName"], "gatehouse-test");
    assert_eq!(form["WebIdentityToken"], "eyJhbGciOiJSUzI1NiJ9.payload.sig");
}

#[tokio::test]
async fn a_role_sts_refuses_is_a_permanent_failure_that_names_it() {
    let (base, _seen) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "jwt").unwrap();
    let pairs = vec![
        ("AWS_WEB_IDENTITY_TOKEN_FILE", token.display().to_string()),
        (
            "AWS_ROLE_ARN",
            "arn:aws:iam::111111111111:role/denied".to_owned(),
        ),
    ];
    let message = permanent(chain(&base, &pairs, None).get(soon()).await);
    assert!(
        message.contains("answered AccessDenied: Not authorized"),
        "{message}"
    );
    assert!(
        message.contains("role arn:aws:iam::111111111111:role/denied exists and trusts"),
        "{message}"
    );
}

#[tokio::test]
async fn the_container_endpoint_is_asked_with_its_token_and_plain_http_elsewhere_is_refused() {
    let (base, _seen) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "ecs-token\n").unwrap();
    let pairs = vec![
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{base}/ecs/creds"),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.display().to_string(),
        ),
    ];
    let found = chain(&base, &pairs, None).get(soon()).await.unwrap();
    assert_eq!(found.access_key_id, "ASIAECS");

    let pairs = vec![(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "http://192.0.2.10/creds".to_owned(),
    )];
    let message = permanent(chain(&base, &pairs, None).get(soon()).await);
    assert!(message.contains("is plain http to 192.0.2.10"), "{message}");
}

#[tokio::test]
async fn instance_metadata_is_read_with_an_imdsv2_session_and_refreshed_before_expiry() {
    let (base, seen) = fake().await;
    let pairs = vec![("AWS_EC2_METADATA_SERVICE_ENDPOINT", base.clone())];
    let chain = chain(&base, &pairs, None);

    let found = chain.get(soon()).await.unwrap();
    assert_eq!(found.access_key_id, "ASIAIMDS");
    assert_eq!(
        found.source,
        "the EC2 instance profile role `gatehouse-role`"
    );
    let first: Vec<(String, String)> = seen.all().into_iter().map(|(m, p, _, _)| (m, p)).collect();
    assert_eq!(
        first,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            (
                "GET".to_owned(),
                "/latest/meta-data/iam/security-credentials/".to_owned()
            ),
            (
                "GET".to_owned(),
                "/latest/meta-data/iam/security-credentials/gatehouse-role".to_owned()
            ),
        ]
    );
    // They expire within the five minutes kept in hand: the next call asks again.
    chain.get(soon()).await.unwrap();
    assert_eq!(seen.all().len(), 6);
}

#[tokio::test]
async fn long_lived_credentials_are_kept_and_forgetting_them_reads_again() {
    let (base, seen) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "ecs-token").unwrap();
    let pairs = vec![
        (
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{base}/ecs/creds"),
        ),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            token.display().to_string(),
        ),
    ];
    let chain = chain(&base, &pairs, None);
    chain.get(soon()).await.unwrap();
    chain.get(soon()).await.unwrap();
    assert_eq!(seen.all().len(), 1, "valid until 2099: kept");
    chain.forget().await;
    chain.get(soon()).await.unwrap();
    assert_eq!(seen.all().len(), 2);
}

#[tokio::test]
async fn with_nothing_configured_and_metadata_disabled_the_error_lists_the_chain() {
    let message = permanent(chain("http://127.0.0.1:9", &[], None).get(soon()).await);
    assert!(
        message.starts_with("no AWS credentials: none in the environment"),
        "{message}"
    );
    assert!(
        message.contains("AWS_EC2_METADATA_DISABLED is true"),
        "{message}"
    );
}

#[test]
fn profiles_of_the_config_file_need_the_word_profile_but_default() {
    let parsed = parse_profiles(
        "[default]\na = 1\n[profile ops]\nb = 2\n[ops2]\nc = 3\n",
        true,
    );
    let names: Vec<&str> = parsed.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["default", "ops"]);
    let parsed = parse_profiles("[ops2]\nC = 3\n", false);
    assert_eq!(parsed[0].1["c"], "3");
}
