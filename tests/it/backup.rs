//! `gatehouse backup` and `restore` with the real binary: a running server backed up through
//! the admin API, restored into a fresh directory and started again with the same state; a
//! stopped one backed up offline; a tampered backup refused, saying where its chain breaks.

use std::path::Path;
use std::process::Output;

use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use gatehouse::domain::audit::AuditRecord;

use crate::support::{Files, TestApp, spawn_app, spawn_app_with};

fn gatehouse_now(config: &Path, listen: Option<&str>, args: &[&str]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    command
        .arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("GATEHOUSE_URL")
        .env_remove("GATEHOUSE_TOKEN");
    if let Some(listen) = listen {
        command.env("GATEHOUSE_SERVER__LISTEN", listen);
    }
    command.output().unwrap()
}

/// [`gatehouse_now`] off the runtime, so that a server on this runtime can answer it.
async fn gatehouse(config: &Path, listen: Option<&str>, args: &[&str]) -> Output {
    let config = config.to_owned();
    let listen = listen.map(str::to_owned);
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        gatehouse_now(&config, listen.as_deref(), &args)
    })
    .await
    .unwrap()
}

fn said(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Requests and grants as the admin API lists them, and the audit verification.
async fn state(app: &TestApp) -> (Value, Value, Value) {
    let (_, requests) = app.get("/api/v1/requests?limit=100").await;
    let (_, grants) = app.get("/api/v1/grants?limit=100").await;
    let (_, audit) = app.get("/api/v1/audit/verify").await;
    (requests, grants, audit)
}

async fn grant_becomes(app: &TestApp, id: &str, state: &str) {
    let what = format!("{id} {state}");
    crate::support::eventually(&what, || async {
        let (_, shown) = app.get(&format!("/api/v1/grants/{id}")).await;
        let now = &shown["grant"]["state"]["state"];
        (now == state).then_some(()).ok_or(format!("{id} is {now}"))
    })
    .await;
}

/// A server with a granted, a pending and a revoked request behind it.
async fn busy_server() -> TestApp {
    let app = spawn_app().await;
    let asks = [
        json!({"as": "dan", "resource": "grafana", "role": "editor", "duration": "30m", "reason": "dashboards"}),
        json!({"as": "alice", "resource": "prod-db", "role": "read", "duration": "2h", "reason": "replica lag"}),
        json!({"as": "erin", "resource": "grafana", "role": "editor", "duration": "1h", "reason": "alerts"}),
    ];
    for ask in asks {
        let (status, body) = app.post("/api/v1/requests", ask).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    grant_becomes(&app, "G-1", "active").await;
    grant_becomes(&app, "G-2", "active").await;
    let (status, body) = app
        .post(
            "/api/v1/grants/G-2/revoke",
            json!({"as": "sue", "reason": "done"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    grant_becomes(&app, "G-2", "revoked").await;
    app
}

#[tokio::test]
async fn a_running_server_is_backed_up_and_restored_into_a_fresh_directory_with_the_same_state() {
    let app = busy_server().await;
    let before = state(&app).await;
    let listen = app.base.trim_start_matches("http://").to_owned();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("gatehouse.backup.jsonl");
    let file_arg = file.to_str().unwrap().to_owned();

    // The data directory is held and the server asked for is not there: nothing is left
    // behind, not even the partial file.
    let out = gatehouse(
        &app.files.config(),
        Some("127.0.0.1:9"),
        &["backup", "--out", &file_arg],
    )
    .await;
    assert!(!out.status.success());
    assert!(said(&out).contains("cannot reach"), "{}", said(&out));
    let left: Vec<_> = std::fs::read_dir(backups.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");

    // The server holds the data directory, so the backup comes through the admin API.
    let out = gatehouse(
        &app.files.config(),
        Some(&listen),
        &["backup", "--out", &file_arg],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("from the running server"),
        "{}",
        said(&out)
    );
    assert!(
        said(&out).contains("3 requests, 2 grants"),
        "{}",
        said(&out)
    );
    let names: Vec<_> = std::fs::read_dir(backups.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["gatehouse.backup.jsonl"], "no partial file is left");

    // A restore into the directory of a running server is refused.
    let refused = gatehouse(
        &app.files.config(),
        None,
        &["restore", "--from", &file_arg, "--force"],
    )
    .await;
    assert!(!refused.status.success());
    assert!(
        said(&refused).contains("another Gatehouse running"),
        "{}",
        said(&refused)
    );
    app.stop().await;

    let restored = spawn_app_with(|files| {
        let out = gatehouse_now(&files.config(), None, &["restore", "--from", &file_arg]);
        assert!(out.status.success(), "{}", said(&out));
        assert!(
            said(&out).contains("restored 3 requests, 2 grants"),
            "{}",
            said(&out)
        );
    })
    .await;
    let after = state(&restored).await;
    assert_eq!(after.0, before.0, "the same requests");
    assert_eq!(after.1, before.1, "the same grants");
    assert_eq!(after.2, before.2, "the same audit log, intact");
    assert_eq!(after.2["ok"], true);

    // It goes on from there: the next request is AR-4.
    let ask = json!({"as": "dan", "resource": "grafana", "role": "viewer", "duration": "30m", "reason": "more"});
    let (status, body) = restored.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["request"]["id"], "AR-4");
    restored.stop().await;
}

#[tokio::test]
async fn a_stopped_data_directory_is_backed_up_offline_and_restore_needs_force_to_replace_one() {
    let app = busy_server().await;
    let files_dir = app.files.dir.path().to_owned();
    let config = app.files.config();
    let before = state(&app).await;
    // Keep the files: stop the server but not its temporary directory.
    let files = app.stop_keeping_files().await;
    let file = files_dir.join("offline.backup.jsonl");
    let file_arg = file.to_str().unwrap();
    // No server anywhere: a port nobody listens on.
    let out = gatehouse(&config, Some("127.0.0.1:9"), &["backup", "--out", file_arg]).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("from the data directory"),
        "{}",
        said(&out)
    );

    let out = gatehouse(&config, None, &["restore", "--from", file_arg]).await;
    assert!(!out.status.success());
    assert!(said(&out).contains("not empty"), "{}", said(&out));
    let out = gatehouse(&config, None, &["restore", "--from", file_arg, "--force"]).await;
    assert!(out.status.success(), "{}", said(&out));
    let kept_aside = std::fs::read_dir(&files_dir)
        .unwrap()
        .filter_map(Result::ok)
        .any(|e| {
            e.file_name()
                .to_string_lossy()
                .starts_with("data.before-restore-")
        });
    assert!(kept_aside, "the replaced data directory is kept");

    let again = crate::support::serve_files(files).await;
    assert_eq!(state(&again).await, before);
    again.stop().await;
}

/// `text` with one audit event's reason changed and the checksum made to match again, as
/// someone covering their tracks would.
fn tamper(text: &str) -> String {
    let mut lines = entry_lines(text);
    let audit = lines
        .iter()
        .position(|l| l.contains("\"tree\":\"audit\"") && l.contains("replica lag"))
        .expect("an audit line with alice's reason");
    lines[audit] = lines[audit].replace("replica lag", "routine check");
    with_checksum(lines)
}

/// The header and entry lines of a backup, without its end line.
fn entry_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let end = lines.pop().unwrap();
    assert!(end.starts_with("{\"end\""), "{end}");
    lines
}

/// `lines` with an end line whose count and checksum match them, as anyone can write one.
fn with_checksum(mut lines: Vec<String>) -> String {
    let mut hasher = Sha256::new();
    for line in &lines {
        hasher.update(line.as_bytes());
        hasher.update(b"\n");
    }
    let end =
        json!({"end": {"entries": lines.len() - 1, "sha256": hex::encode(hasher.finalize())}});
    lines.push(end.to_string());
    lines.join("\n") + "\n"
}

/// Rewrites the stored value of every entry of `tree` (its JSON, parsed) through `edit`;
/// how many entries `edit` changed.
fn edit_values(
    lines: &mut [String],
    tree: &str,
    mut edit: impl FnMut(&mut Value) -> bool,
) -> usize {
    let mut changed = 0;
    for line in lines.iter_mut() {
        let mut entry: Value = serde_json::from_str(line).unwrap();
        if entry["tree"] != tree {
            continue;
        }
        let mut value: Value = serde_json::from_str(entry["value"].as_str().unwrap()).unwrap();
        if edit(&mut value) {
            entry["value"] = Value::String(value.to_string());
            *line = entry.to_string();
            changed += 1;
        }
    }
    changed
}

/// `text` rewritten as someone who can write a backup but does not hold the audit key
/// would cover their tracks: alice's reason changed in her request and in its audit event,
/// every hash after that event rebuilt, the recorded head and the checksum made to match.
fn forge_consistently(text: &str) -> String {
    let mut lines = entry_lines(text);
    let reason = |value: &mut Value, key: &str| {
        let found = value[key] == "replica lag";
        if found {
            value[key] = json!("routine check");
        }
        found
    };
    assert_eq!(
        edit_values(&mut lines, "requests", |v| reason(
            &mut v["r"],
            "justification"
        )),
        1
    );
    let mut records: Vec<AuditRecord> = Vec::new();
    edit_values(&mut lines, "audit", |v| {
        records.push(serde_json::from_value(v.clone()).unwrap());
        false
    });
    records.sort_by_key(|r| r.seq);
    let first = records
        .iter()
        .position(|r| r.event.reason.as_deref() == Some("replica lag"))
        .unwrap();
    records[first].event.reason = Some("routine check".to_owned());
    let mut prev = records[first].prev_hash.clone();
    for record in &mut records[first..] {
        *record = AuditRecord::chain(record.seq, &prev, record.event.clone());
        prev = record.hash.clone();
    }
    edit_values(&mut lines, "audit", |v| {
        let seq = v["seq"].as_u64().unwrap();
        let forged = records.iter().find(|r| r.seq == seq).unwrap();
        *v = serde_json::to_value(forged).unwrap();
        true
    });
    let last = records.last().unwrap();
    let head = json!({"seq": last.seq, "hash": last.hash});
    let audit_head = hex::encode("audit_head");
    for line in &mut lines {
        if line.contains(&format!("\"key\":\"{audit_head}\"")) {
            let mut entry: Value = serde_json::from_str(line).unwrap();
            entry["value"] = Value::String(head.to_string());
            *line = entry.to_string();
        }
    }
    with_checksum(lines)
}

/// The head `audit verify` printed (`head: 12:9f86…`).
fn printed_head(out: &Output) -> String {
    said(out)
        .lines()
        .find_map(|l| l.strip_prefix("head: "))
        .unwrap_or_else(|| panic!("no head printed: {}", said(out)))
        .to_owned()
}

/// Takes a backup of the running `app` through the CLI into `name`; its text.
async fn backup_of(app: &TestApp, name: &str) -> (std::path::PathBuf, String) {
    let listen = app.base.trim_start_matches("http://").to_owned();
    let file = app.files.path(name);
    let out = gatehouse(
        &app.files.config(),
        Some(&listen),
        &["backup", "--out", file.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    (file, text)
}

#[tokio::test]
async fn a_backup_with_a_grants_end_moved_and_its_checksum_recomputed_is_refused_naming_both() {
    let app = busy_server().await;
    let (_, text) = backup_of(&app, "good.backup.jsonl").await;
    app.stop().await;
    let mut lines = entry_lines(&text);
    let moved = edit_values(&mut lines, "grants", |v| {
        let mine = v["r"]["id"] == "G-1";
        if mine {
            v["r"]["expires_at"] = json!("2099-01-01T00:00:00Z");
        }
        mine
    });
    assert_eq!(moved, 1);
    let fresh = Files::copy_examples();
    let edited = fresh.path("edited.backup.jsonl");
    std::fs::write(&edited, with_checksum(lines)).unwrap();
    let out = gatehouse(
        &fresh.config(),
        None,
        &["restore", "--from", edited.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    let said = said(&out);
    assert!(
        said.contains("records disagree with its audit log")
            && said.contains("G-1's expires_at is 2099-01-01T00:00:00Z, but its audit events say"),
        "{said}"
    );
    assert_eq!(
        said.matches("G-1's expires_at").count(),
        1,
        "said once: {said}"
    );
    assert!(!fresh.path("data").exists(), "nothing was restored");
}

#[tokio::test]
async fn a_consistently_forged_log_is_found_by_its_checkpoints_with_the_key_and_flagged_without() {
    let app = busy_server().await;
    let (_, text) = backup_of(&app, "good.backup.jsonl").await;
    app.stop().await;
    let forged = forge_consistently(&text);
    let fresh = Files::copy_examples();
    let file = fresh.path("forged.backup.jsonl");
    std::fs::write(&file, &forged).unwrap();
    let file = file.to_str().unwrap();

    // With the audit key, the restore finds the rewrite.
    let out = gatehouse(&fresh.config(), None, &["restore", "--from", file]).await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("does not match its checkpoint of audit key"),
        "{}",
        said(&out)
    );
    assert!(!fresh.path("data").exists(), "nothing was restored");

    // Without it, nothing can tell the forgery from the real log: it is restored, and
    // both the restore and `audit verify` say the log is not anchored.
    let keyed = std::fs::read_to_string(fresh.config()).unwrap();
    let start = keyed.find("[audit]").unwrap();
    let end = start
        + keyed[start..]
            .find(
                "
[scheduler]",
            )
            .unwrap();
    let unkeyed = format!("{}{}", &keyed[..start], &keyed[end..]);
    std::fs::write(fresh.config(), &unkeyed).unwrap();
    let out = gatehouse(&fresh.config(), None, &["restore", "--from", file]).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("not anchored: no [audit] key"),
        "{}",
        said(&out)
    );
    assert!(said(&out).contains("not checked"), "{}", said(&out));
    let out = gatehouse(&fresh.config(), None, &["audit", "verify"]).await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains("not anchored: no [audit] key"),
        "{}",
        said(&out)
    );

    // With the key configured again, `audit verify` refuses the same data directory.
    std::fs::write(fresh.config(), &keyed).unwrap();
    let out = gatehouse(&fresh.config(), None, &["audit", "verify"]).await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("does not match its checkpoint of audit key"),
        "{}",
        said(&out)
    );
}

#[tokio::test]
async fn a_published_head_catches_a_log_rolled_back_or_rewritten_even_with_the_key() {
    let app = busy_server().await;
    let listen = app.base.trim_start_matches("http://").to_owned();
    let (_, earlier) = backup_of(&app, "earlier.backup.jsonl").await;
    let ask = json!({"as": "dan", "resource": "grafana", "role": "viewer", "duration": "30m", "reason": "later"});
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let out = gatehouse(&app.files.config(), Some(&listen), &["audit", "verify"]).await;
    assert!(out.status.success(), "{}", said(&out));
    let head = printed_head(&out);
    let short = {
        let (seq, hash) = head.split_once(':').unwrap();
        format!("{seq}:{}", &hash[..16])
    };
    let out = gatehouse(
        &app.files.config(),
        Some(&listen),
        &["audit", "verify", "--head", &short],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    assert!(
        said(&out).contains(&format!("published head {short} is in the chain")),
        "{}",
        said(&out)
    );
    app.stop().await;

    // The earlier backup is a genuine, anchored log: only the later head shows it is not
    // the log as it stood.
    let fresh = Files::copy_examples();
    let file = fresh.path("earlier.backup.jsonl");
    std::fs::write(&file, &earlier).unwrap();
    let out = gatehouse(
        &fresh.config(),
        None,
        &["restore", "--from", file.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    let out = gatehouse(&fresh.config(), None, &["audit", "verify"]).await;
    assert!(out.status.success(), "{}", said(&out));
    let out = gatehouse(
        &fresh.config(),
        None,
        &["audit", "verify", "--head", &short],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("was published: events were removed"),
        "{}",
        said(&out)
    );

    // A head whose hash the log does not have at that event: rewritten.
    let (seq, _) = short.split_once(':').unwrap();
    let earlier_head = printed_head(&gatehouse(&fresh.config(), None, &["audit", "verify"]).await);
    let (earlier_seq, _) = earlier_head.split_once(':').unwrap();
    let wrong = format!("{earlier_seq}:{}", "0".repeat(16));
    let out = gatehouse(
        &fresh.config(),
        None,
        &["audit", "verify", "--head", &wrong],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains(&format!("audit event {earlier_seq} has hash")),
        "{}",
        said(&out)
    );
    assert!(seq.parse::<u64>().unwrap() > earlier_seq.parse::<u64>().unwrap());
    let out = gatehouse(
        &fresh.config(),
        None,
        &["audit", "verify", "--head", "12:abc"],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("at least 16 hex digits"),
        "{}",
        said(&out)
    );
}

#[tokio::test]
async fn a_tampered_backup_is_refused_saying_where_the_audit_chain_breaks() {
    let app = busy_server().await;
    let listen = app.base.trim_start_matches("http://").to_owned();
    let file = app.files.path("good.backup.jsonl");
    let out = gatehouse(
        &app.files.config(),
        Some(&listen),
        &["backup", "--out", file.to_str().unwrap()],
    )
    .await;
    assert!(out.status.success(), "{}", said(&out));
    let text = std::fs::read_to_string(&file).unwrap();
    let fresh = Files::copy_examples();

    let edited = fresh.path("edited.backup.jsonl");
    std::fs::write(&edited, text.replace("replica lag", "routine check")).unwrap();
    let out = gatehouse(
        &fresh.config(),
        None,
        &["restore", "--from", edited.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        said(&out).contains("checksum does not match"),
        "{}",
        said(&out)
    );

    let tampered = fresh.path("tampered.backup.jsonl");
    std::fs::write(&tampered, tamper(&text)).unwrap();
    let out = gatehouse(
        &fresh.config(),
        None,
        &["restore", "--from", tampered.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    let said = said(&out);
    assert!(said.contains("audit log does not verify"), "{said}");
    let edited_seq = said
        .split("audit event ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no event named: {said}"));
    assert!(said.contains("was edited"), "{said}");
    assert_eq!(said.matches("was edited").count(), 1, "said once: {said}");
    assert!(edited_seq.parse::<u64>().is_ok(), "{said}");
    assert!(!fresh.path("data").exists(), "nothing was restored");

    let truncated = fresh.path("truncated.backup.jsonl");
    let half: String = text.lines().take(10).map(|l| format!("{l}\n")).collect();
    std::fs::write(&truncated, half).unwrap();
    let out = gatehouse(
        &fresh.config(),
        None,
        &["restore", "--from", truncated.to_str().unwrap()],
    )
    .await;
    assert!(!out.status.success());
    assert!(
        self::said(&out).contains("incomplete"),
        "{}",
        self::said(&out)
    );
    app.stop().await;
}
