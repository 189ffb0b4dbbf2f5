//! The command connector with real programs: /bin/sh scripts, echo, false, sleep.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration as StdDuration;

use super::*;
use crate::connector::tests::sample_call;

fn connector(command: &[&str], timeout: StdDuration) -> CommandConnector {
    connector_with_env(command, BTreeMap::new(), timeout)
}

fn connector_with_env(
    command: &[&str],
    env: BTreeMap<String, Secret>,
    timeout: StdDuration,
) -> CommandConnector {
    let command = command.iter().map(|s| (*s).to_owned()).collect();
    CommandConnector::new("script".into(), command, env, timeout).unwrap()
}

fn script(text: &str) -> Vec<&str> {
    vec!["/bin/sh", "-c", text, "sh"]
}

async fn grant(connector: &CommandConnector) -> Result<Outcome, ConnectorError> {
    connector.grant(&sample_call(Action::Grant)).await
}

const SECONDS: StdDuration = StdDuration::from_secs(10);

/// Whether the process is gone (or a zombie nobody reaps), waiting up to 2 s for it.
async fn is_gone(pid: &str) -> bool {
    for _ in 0..40 {
        match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            Err(_) => return true,
            Ok(stat) => {
                let state = stat.rsplit_once(')').map(|(_, rest)| rest.trim_start());
                if state.is_some_and(|s| s.starts_with('Z')) {
                    return true;
                }
            }
        }
        tokio::time::sleep(StdDuration::from_millis(50)).await;
    }
    false
}

fn read_pid(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_owned()
}

#[tokio::test]
async fn exit_zero_succeeds_with_the_trimmed_output() {
    let outcome = grant(&connector(&["/bin/echo", "  granted {person}  "], SECONDS)).await;
    assert_eq!(outcome.unwrap().detail, "granted alice");
}

#[tokio::test]
async fn silent_success_says_exit_zero() {
    let outcome = grant(&connector(&["/bin/true"], SECONDS)).await;
    assert_eq!(outcome.unwrap().detail, "exit 0");
}

#[tokio::test]
async fn placeholders_are_replaced_in_every_argument_and_unknown_braces_stay() {
    let mut command = script(r#"printf '%s\n' "$@""#);
    command.extend([
        "{action}",
        "{grant}",
        "{person}",
        "{email}",
        "{resource}",
        "--role={role}",
        "{expires_at}",
        "{idempotency_key}",
        "{unknown}",
        "{",
        "{{role}}",
    ]);
    let outcome = grant(&connector(&command, SECONDS)).await.unwrap();
    assert_eq!(
        outcome.detail.lines().collect::<Vec<_>>(),
        [
            "grant",
            "G-7",
            "alice",
            "alice@example.com",
            "prod-db",
            "--role=admin",
            "2027-01-01T10:00:00Z",
            "provision:G-7",
            "{unknown}",
            "{",
            "{admin}",
        ]
    );
}

#[tokio::test]
async fn the_environment_describes_the_call_and_carries_the_configured_secrets() {
    let env = BTreeMap::from([("PROVISIONER_TOKEN".to_owned(), Secret::new("tok-123"))]);
    let text = r#"printf '%s\n' "$GATEHOUSE_ACTION" "$GATEHOUSE_GRANT_ID" "$GATEHOUSE_PERSON_ID" \
        "$GATEHOUSE_PERSON_EMAIL" "$GATEHOUSE_PERSON_SLACK" "[$GATEHOUSE_PERSON_DISCORD]" \
        "$GATEHOUSE_RESOURCE" "$GATEHOUSE_ROLE" "$GATEHOUSE_EXPIRES_AT" \
        "$GATEHOUSE_IDEMPOTENCY_KEY" "$PROVISIONER_TOKEN""#;
    let connector = connector_with_env(&script(text), env, SECONDS);

    let outcome = connector
        .revoke(&sample_call(Action::Revoke))
        .await
        .unwrap();

    assert_eq!(
        outcome.detail.lines().collect::<Vec<_>>(),
        [
            "revoke",
            "G-7",
            "alice",
            "alice@example.com",
            "U01ALICE",
            "[]",
            "prod-db",
            "admin",
            "2027-01-01T10:00:00Z",
            "deprovision:G-7:12",
            "tok-123",
        ]
    );
}

#[tokio::test]
async fn gatehouse_own_environment_is_not_passed_on() {
    let outcome = grant(&connector(&script("env | cut -d= -f1"), SECONDS)).await;
    let allowed = [
        "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "PWD", "SHLVL", "_",
    ];
    for name in outcome.unwrap().detail.lines() {
        assert!(
            allowed.contains(&name) || name.starts_with("GATEHOUSE_"),
            "{name} reached the program"
        );
    }
}

#[tokio::test]
async fn exit_two_is_permanent_with_stderr_in_the_message() {
    let command = script("echo 'no such role: admin' >&2; exit 2");
    let err = grant(&connector(&command, SECONDS)).await.unwrap_err();
    let ConnectorError::Permanent(message) = err else {
        panic!("expected permanent, got {err:?}");
    };
    assert!(
        message.contains("exited with 2, which means do not retry"),
        "{message}"
    );
    assert!(message.contains("no such role: admin"), "{message}");
}

#[tokio::test]
async fn another_exit_status_is_transient() {
    let err = grant(&connector(&["/bin/false"], SECONDS))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("exited with 1"), "{err}");
}

#[tokio::test]
async fn death_by_a_signal_is_transient() {
    let err = grant(&connector(&script("kill -TERM $$"), SECONDS))
        .await
        .unwrap_err();
    assert!(err.is_transient(), "{err}");
    assert!(err.to_string().contains("killed by signal 15"), "{err}");
}

#[tokio::test]
async fn a_program_past_its_timeout_is_killed_with_everything_it_started() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("sleep.pid");
    let text = format!(
        "sleep 30 & echo $! > '{}'; echo provisioning >&2; wait",
        pidfile.display()
    );
    let connector = connector(&script(&text), StdDuration::from_secs(1));

    let err = grant(&connector).await.unwrap_err();

    assert!(err.is_transient(), "{err}");
    let message = err.to_string();
    assert!(
        message.contains("ran past the 1s timeout and was killed"),
        "{message}"
    );
    assert!(message.contains("stderr: provisioning"), "{message}");
    assert!(
        is_gone(&read_pid(&pidfile)).await,
        "the script's sleep survived"
    );
}

#[tokio::test]
async fn abandoning_a_call_kills_the_program() {
    let dir = tempfile::tempdir().unwrap();
    let pidfile = dir.path().join("script.pid");
    let text = format!("echo $$ > '{}'; exec sleep 30", pidfile.display());
    let connector = connector(&script(&text), SECONDS);

    let abandoned = tokio::time::timeout(StdDuration::from_secs(1), grant(&connector)).await;

    assert!(
        abandoned.is_err(),
        "the call should still have been running"
    );
    assert!(is_gone(&read_pid(&pidfile)).await, "the program survived");
}

#[tokio::test]
async fn a_program_that_does_not_exist_fails_permanently_naming_its_path() {
    let err = grant(&connector(&["/nonexistent/provision", "{person}"], SECONDS))
        .await
        .unwrap_err();
    assert!(!err.is_transient(), "{err}");
    assert!(
        err.to_string()
            .contains("cannot start `/nonexistent/provision`"),
        "{err}"
    );
}

#[tokio::test]
async fn long_output_is_cut_at_two_kilobytes() {
    let command = script("head -c 5000 /dev/zero | tr '\\0' x");
    let outcome = grant(&connector(&command, SECONDS)).await.unwrap();
    assert!(outcome.detail.ends_with("… [cut]"), "{}", outcome.detail);
    assert_eq!(outcome.detail.len(), 2048 + "… [cut]".len());
}
