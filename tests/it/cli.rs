//! The `gatehouse` binary: `check` on the examples and on a broken policy, and the client
//! commands against a running server.

use std::process::Output;

use crate::support::{Files, TOKEN, examples, spawn_app};

fn gatehouse(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .env_remove("GATEHOUSE_CONFIG")
        .env_remove("GATEHOUSE_TOKEN")
        .env_remove("GATEHOUSE_URL")
        .env_remove("GATEHOUSE_ADMIN_TOKEN")
        .env_remove("GATEHOUSE_AUDIT_KEY")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn check_passes_on_the_example_configuration() {
    let config = examples().join("gatehouse.toml");
    let out = gatehouse(&["--config", config.to_str().unwrap(), "check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("ok: 12 people, 8 resources, 5 workflows, 2 reviews"),
        "{stdout}"
    );
}

/// The example configuration with a PostgreSQL connector and an LDAP directory that nothing
/// serves: `check` must judge them without connecting.
fn with_unreachable_postgres_and_ldap(roles: &str) -> Files {
    let files = Files::copy_examples();
    std::fs::write(files.path("policy.toml"), crate::postgres::POLICY).unwrap();
    std::fs::write(files.path("directory.toml"), crate::postgres::DIRECTORY).unwrap();
    files.edit("gatehouse.toml", |text| {
        format!(
            "{text}\n[[connectors]]\nid = \"pg\"\nkind = \"postgres\"\nhost = \"db.invalid\"\nuser = \"gatehouse\"\n{roles}\n\n[directory]\nsource = \"ldap\"\nurl = \"ldaps://ldap.invalid\"\nbase_dn = \"ou=people,dc=example,dc=com\"\n"
        )
    });
    files
}

#[test]
fn check_judges_postgres_and_ldap_settings_without_connecting() {
    let files = with_unreachable_postgres_and_ldap("roles = { read = \"app_read\" }");
    let out = gatehouse(&["--config", files.config().to_str().unwrap(), "check"]);
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

#[test]
fn check_refuses_a_role_that_the_connectors_roles_table_does_not_name() {
    let files = with_unreachable_postgres_and_ldap("roles = { write = \"app_write\" }");
    let out = gatehouse(&["--config", files.config().to_str().unwrap(), "check"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(
            "policy.toml: error: resource `app-db` role `read` is provisioned by connector `pg`, whose roles table in gatehouse.toml does not name it"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("help: add read = "), "{stderr}");
}

#[test]
fn check_names_the_file_and_line_of_an_unknown_group() {
    let files = Files::copy_examples();
    files.edit("policy.toml", |text| {
        text.replace("\"group:security\"", "\"group:secuirty\"")
    });
    let out = gatehouse(&["--config", files.config().to_str().unwrap(), "check"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("secuirty"))
        .unwrap_or_else(|| panic!("{stderr}"));
    let (_, after) = line
        .split_once("policy.toml:")
        .unwrap_or_else(|| panic!("{line}"));
    let number: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert!(!number.is_empty(), "no line number in {line}");
}

#[test]
fn check_refuses_a_template_override_that_does_not_render() {
    let files = Files::copy_examples();
    std::fs::create_dir_all(files.path("templates/slack")).unwrap();
    std::fs::write(
        files.path("templates/slack/approval_card.j2"),
        "{\"text\": {{ request.id }}, \"blocks\": [",
    )
    .unwrap();
    files.edit("gatehouse.toml", |text| {
        text.replace(
            "directory = \"directory.toml\"",
            "directory = \"directory.toml\"\ntemplates = \"templates\"",
        )
    });
    let out = gatehouse(&["--config", files.config().to_str().unwrap(), "check"]);
    assert!(!out.status.success(), "{}", text(&out.stdout));
    let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
    assert!(all.contains("approval_card"), "{all}");
}

#[test]
fn explain_names_the_people_of_each_stage() {
    let config = examples().join("gatehouse.toml");
    let out = gatehouse(&[
        "--config",
        config.to_str().unwrap(),
        "explain",
        "--as",
        "alice",
        "--resource",
        "prod-db",
        "--role",
        "admin",
        "--duration",
        "2h",
        "--field",
        "ticket=INC-1",
    ]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("workflow: privileged"), "{stdout}");
    assert!(
        stdout.contains("Security review — 2 of sam (Sam Patel), sid (Sid Jones), sue (Sue Chen)"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_cli_asks_and_lists_through_the_admin_api() {
    let app = spawn_app().await;
    let config = app.files.config();
    let base = app.base.clone();
    let run = move |args: Vec<&'static str>| {
        let config = config.clone();
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec![
                "--config",
                config.to_str().unwrap(),
                "--url",
                &base,
                "--token",
                TOKEN,
            ];
            all.extend(args);
            gatehouse(&all)
        })
    };
    let out = run(vec![
        "request",
        "--as",
        "alice",
        "--resource",
        "prod-db",
        "--role",
        "admin",
        "--duration",
        "2h",
        "--reason",
        "INC-4211",
        "--field",
        "ticket=INC-4211",
    ])
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let line = text(&out.stdout);
    assert!(
        line.starts_with(
            "AR-1  pending  alice  prod-db/admin  2h  Manager approval — 0 of 1 approval"
        ),
        "{line}"
    );

    let out = run(vec!["approve", "AR-1", "--as", "dan"]).await.unwrap();
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).starts_with("error: you are not an approver"),
        "{}",
        text(&out.stderr)
    );

    let out = run(vec!["requests", "list", "--pending"]).await.unwrap();
    assert!(
        text(&out.stdout).starts_with("AR-1  pending"),
        "{}",
        text(&out.stdout)
    );

    let out = run(vec!["audit", "verify"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with("ok: the audit log is intact"),
        "{}",
        text(&out.stdout)
    );
    app.stop().await;
}

#[test]
fn a_client_command_says_when_no_server_is_running() {
    let files = Files::copy_examples();
    // Port 9 (discard) on loopback: nothing listens there in a test environment.
    let out = gatehouse(&[
        "--config",
        files.config().to_str().unwrap(),
        "--url",
        "http://127.0.0.1:9",
        "requests",
    ]);
    assert!(!out.status.success());
    assert_eq!(
        text(&out.stderr).trim(),
        "error: cannot reach Gatehouse at http://127.0.0.1:9: is `gatehouse serve` running?"
    );
}

/// The options of `args`' help, from its `Options:` section on: `(flag, description)`.
fn help(args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.push("--help");
    let out = gatehouse(&all);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The line of `help` that describes `flag`.
fn described<'a>(help: &'a str, flag: &str) -> &'a str {
    let line = help
        .lines()
        .find(|l| l.trim_start().starts_with(flag))
        .unwrap_or_else(|| panic!("no {flag} in:\n{help}"));
    let description = line.trim_start()[flag.len()..]
        .trim_start_matches(|c: char| c != ' ')
        .trim();
    assert!(
        !description.is_empty(),
        "{flag} has no description:\n{help}"
    );
    line
}

#[test]
fn every_option_of_request_says_what_it_is_and_the_default_duration_is_stated() {
    let request = help(&["request"]);
    for flag in [
        "--as",
        "--resource",
        "--role",
        "--duration",
        "--reason",
        "--field",
    ] {
        described(&request, flag);
    }
    let duration = described(&request, "--duration");
    assert!(
        duration.contains("[default: the longest the role allows"),
        "{duration}"
    );
    for (command, flags) in [
        (vec!["approve"], vec!["<REQUEST>", "--duration", "--role"]),
        (vec!["reject"], vec!["<REQUEST>", "--reason"]),
        (vec!["revoke"], vec!["<GRANT>", "--reason"]),
        (vec!["extend"], vec!["<GRANT>", "--duration", "--reason"]),
        (vec!["requests", "list"], vec!["--pending", "--limit"]),
        (vec!["requests", "show"], vec!["<REQUEST>"]),
        (vec!["grants", "list"], vec!["--live", "--limit"]),
        (vec!["grants", "show"], vec!["<GRANT>"]),
        (vec!["audit", "export"], vec!["--format", "--since"]),
        (
            vec!["explain"],
            vec!["--as", "--resource", "--role", "--duration"],
        ),
    ] {
        let help = help(&command);
        for flag in flags {
            described(&help, flag);
        }
    }
}

#[test]
fn global_options_have_their_own_heading_and_explain_offers_no_server_options() {
    let explain = help(&["explain"]);
    let (own, global) = explain
        .split_once("Global options:")
        .unwrap_or_else(|| panic!("{explain}"));
    assert!(
        global.contains("--config") && global.contains("--log-format"),
        "{explain}"
    );
    assert!(!own.contains("--config"), "{explain}");
    assert!(
        !explain.contains("--token") && !explain.contains("--url"),
        "{explain}"
    );

    let request = help(&["request"]);
    let (own, rest) = request.split_once("Server options:").unwrap();
    assert!(
        !own.contains("--token") && !own.contains("--config"),
        "{request}"
    );
    let (server, _) = rest.split_once("Global options:").unwrap();
    assert!(
        server.contains("--token") && server.contains("--url"),
        "{request}"
    );
    for command in [&["serve"][..], &["check"], &["restore"]] {
        let help = help(command);
        assert!(!help.contains("--token"), "{help}");
    }
}

#[test]
fn a_missing_config_file_is_said_once_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("gatehouse.toml");
    let out = gatehouse(&["--config", missing.to_str().unwrap(), "check"]);
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    assert!(
        stderr.starts_with(&format!(
            "error: cannot read gatehouse.toml at {}",
            missing.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn each_step_of_the_walkthrough_says_what_happens_next() {
    let app = spawn_app().await;
    let config = app.files.config();
    let base = app.base.clone();
    let run = move |args: Vec<&'static str>| {
        let config = config.clone();
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config", config.to_str().unwrap()];
            all.extend(args);
            // The server's address as the command's own option, and the token from the file.
            all.extend(["--url", &base]);
            let out = gatehouse(&all);
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout)
        })
    };
    let asked = run(vec![
        "request",
        "--as",
        "alice",
        "--resource",
        "prod-db",
        "--role",
        "read",
        "--duration",
        "2h",
        "--reason",
        "replica lag",
    ])
    .await
    .unwrap();
    assert!(
        asked.ends_with("AR-1 waits for Manager approval from bob.\n"),
        "{asked}"
    );
    let first = run(vec!["approve", "AR-1", "--as", "bob"]).await.unwrap();
    assert!(
        first.ends_with("AR-1 waits for Owner approval from one of carol, dora.\n"),
        "{first}"
    );
    // The last approval: the grant is provisioning or, when the log connector was quick,
    // already active. Either way the last line says what that means.
    let last = run(vec!["approve", "AR-1", "--as", "carol"]).await.unwrap();
    let next = last.lines().last().unwrap();
    let provisioning = "G-1 is being provisioned: the connector of prod-db is giving alice the \
         access; `gatehouse grants show G-1` shows when it is active.";
    let active = "G-1 is active: alice has prod-db/read until ";
    assert!(
        next == provisioning
            || (next.starts_with(active) && next.ends_with(", when it is taken back.")),
        "{last}"
    );
    app.stop().await;
}

/// Every command that acts on a running server, against a real one: each reads the
/// server's answer (the admin API's shared types) and prints it.
#[tokio::test]
async fn every_admin_api_command_reads_what_the_server_answers() {
    let app = spawn_app().await;
    let config = app.files.config();
    let base = app.base.clone();
    let run = move |args: Vec<&'static str>| {
        let config = config.clone();
        let base = base.clone();
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config", config.to_str().unwrap(), "--url", &base];
            all.extend(args);
            let out = gatehouse(&all);
            assert!(out.status.success(), "{all:?}: {}", text(&out.stderr));
            text(&out.stdout)
        })
    };
    let ask = |who: &'static str, resource: &'static str| {
        let args = vec![
            "request",
            "--as",
            who,
            "--resource",
            resource,
            "--role",
            "read",
            "--duration",
            "2h",
            "--reason",
            "replica lag",
        ];
        run(args)
    };
    ask("alice", "prod-db").await.unwrap();
    let rejected = run(vec!["reject", "AR-1", "--as", "bob", "--reason", "not now"]);
    assert!(rejected.await.unwrap().starts_with("AR-1  rejected"));
    ask("alice", "prod-db").await.unwrap();
    let cancelled = run(vec!["cancel", "AR-2", "--as", "alice"]).await.unwrap();
    assert!(cancelled.starts_with("AR-2  cancelled"), "{cancelled}");
    let shown = run(vec!["requests", "show", "AR-1"]).await.unwrap();
    assert!(shown.contains("not now"), "{shown}");

    ask("alice", "prod-db").await.unwrap();
    run(vec!["approve", "AR-3", "--as", "bob"]).await.unwrap();
    let granted = run(vec!["approve", "AR-3", "--as", "carol"]).await.unwrap();
    assert!(granted.contains("\nG-1  "), "{granted}");
    let listed = run(vec!["grants", "list", "--live"]).await.unwrap();
    assert!(listed.starts_with("G-1  "), "{listed}");
    let shown = run(vec!["grants", "show", "G-1"]).await.unwrap();
    assert!(shown.contains("G-1"), "{shown}");
    let extend = vec![
        "extend",
        "G-1",
        "--as",
        "alice",
        "--duration",
        "1h",
        "--reason",
        "more",
    ];
    let extended = run(extend).await.unwrap();
    assert!(extended.starts_with("AR-4  pending"), "{extended}");
    let ended = run(vec!["end", "G-1", "--as", "alice"]).await.unwrap();
    assert!(ended.starts_with("G-1  "), "{ended}");

    ask("dan", "staging-db").await.unwrap();
    run(vec!["approve", "AR-5", "--as", "bob"]).await.unwrap();
    run(vec!["approve", "AR-5", "--as", "carol"]).await.unwrap();
    let revoke = vec!["revoke", "G-2", "--as", "sue", "--reason", "audit finding"];
    let revoked = run(revoke).await.unwrap();
    assert!(revoked.starts_with("G-2  "), "{revoked}");

    let offboarded = run(vec!["offboard", "dan", "--as", "sue"]).await.unwrap();
    assert!(offboarded.starts_with("offboarded dan: "), "{offboarded}");
    let reloaded = run(vec!["reload"]).await.unwrap();
    assert!(reloaded.contains("reloaded: "), "{reloaded}");
    assert!(reloaded.contains(" people, "), "{reloaded}");
    app.stop().await;
}

#[tokio::test]
async fn audit_verify_and_export_ask_the_server_an_explicit_url_names_not_the_local_copy() {
    let app = spawn_app().await;
    // A request that waits for approvers: nothing else writes to the log meanwhile.
    let ask = serde_json::json!({"as": "alice", "resource": "prod-db", "role": "read", "duration": "2h", "reason": "replica lag"});
    let (status, body) = app.post("/api/v1/requests", ask).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{body}");
    let (_, verified) = app.get("/api/v1/audit/verify").await;
    let events = verified["events"].as_u64().unwrap();
    assert!(events > 0, "{verified}");

    // Another configuration whose data directory opens fine and holds nothing.
    let local = Files::copy_examples();
    let config = gatehouse::config::Config::load(&local.config()).unwrap();
    drop(gatehouse::app::open_store(&config).unwrap());
    let (config, base) = (local.config(), app.base.clone());
    let run = move |args: &'static [&'static str]| {
        let (config, base) = (config.clone(), base.clone());
        tokio::task::spawn_blocking(move || {
            let mut all = vec!["--config", config.to_str().unwrap(), "--url", &base];
            all.extend(args);
            gatehouse(&all)
        })
    };
    let out = run(&["audit", "verify"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).starts_with(&format!("ok: the audit log is intact ({events} events)")),
        "{}",
        text(&out.stdout)
    );
    let out = run(&["audit", "export", "--format", "jsonl"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count() as u64, events);
    app.stop().await;
}

#[test]
fn check_warns_when_the_audit_log_is_not_anchored_or_anchored_with_the_quick_starts_key() {
    let files = Files::copy_examples();
    let config = files.config();
    let check = || gatehouse(&["--config", config.to_str().unwrap(), "check"]);
    let line = std::fs::read_to_string(&config)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("key = \"${GATEHOUSE_AUDIT_KEY"))
        .unwrap()
        + 1;
    let out = check();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "gatehouse.toml:{line}: warning: audit.key is the quick start's default"
        )),
        "{stdout}"
    );

    files.edit("gatehouse.toml", |text| {
        let start = text.find("[audit]").unwrap();
        let end = start + text[start..].find("\n[scheduler]").unwrap();
        format!("{}{}", &text[..start], &text[end..])
    });
    let out = check();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("warning: no [audit] key"), "{stdout}");
    // The quick start's key went with the [audit] table: only "no key" is left to say.
    assert!(!stdout.contains("quick start's default"), "{stdout}");
}
