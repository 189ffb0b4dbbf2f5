//! Where values come from: variables, secret files, environment overrides.

use super::*;

#[test]
fn unset_variable_is_named_in_the_error() {
    let d = only_error(SLACK_HTTP, &[("SLACK_SIGNING_SECRET", "x")]);
    assert_eq!(d.line, Some(4));
    assert_eq!(
        d.message,
        "slack.bot_token uses ${SLACK_BOT_TOKEN}, which is not set; \
         export it or use slack.bot_token_file"
    );
}

#[test]
fn default_after_colon_dash_is_used_when_unset() {
    let config = parse("[server]\nlisten = \"${LISTEN:-0.0.0.0:9000}\"\n", &[]).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9000");
    let config = parse(
        "[server]\nlisten = \"${LISTEN:-0.0.0.0:9000}\"\n",
        &[("LISTEN", "[::1]:1")],
    )
    .unwrap();
    assert_eq!(config.server.listen.to_string(), "[::1]:1");
}

#[test]
fn quotes_and_newlines_in_variables_cannot_change_the_toml() {
    let text = "[log]\nlevel = \"${LEVEL}\"\n[server]\npublic_url = \"${URL}\"\n";
    let config = parse(
        text,
        &[
            ("LEVEL", "info"),
            ("URL", "https://x\"\n[admin]\ntokens = 1"),
        ],
    )
    .unwrap();
    assert_eq!(
        config.server.public_url.as_deref(),
        Some("https://x\"\n[admin]\ntokens = 1")
    );
    assert!(config.admin.tokens.is_empty());
}

#[test]
fn disabled_platform_may_leave_variables_unset() {
    let text = "[slack]\nenabled = false\nbot_token = \"${SLACK_BOT_TOKEN}\"\nbot_token_file = \"/nonexistent\"\n\n[discord]\nbot_token = \"${DISCORD_BOT_TOKEN}\"\n";
    let config = parse(text, &[]).unwrap();
    assert!(config.slack.bot_token.is_none());
    assert!(config.discord.bot_token.is_none());
}

#[test]
fn an_enabled_platform_must_have_its_variables() {
    let found = errors(
        "[discord]\nenabled = true\nbot_token = \"${DISCORD_BOT_TOKEN}\"\n",
        &[],
    );
    assert!(
        found[0].message.contains("${DISCORD_BOT_TOKEN}"),
        "{found:?}"
    );
}

#[test]
fn file_secret_is_read_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/bot"), "xoxb-from-file\n").unwrap();
    std::fs::write(dir.path().join("signing"), "signing-from-file\r\n").unwrap();
    let signing = dir.path().join("signing");
    let text = format!(
        "[slack]\nenabled = true\nbot_token_file = \"secrets/bot\"\nsigning_secret_file = \"{}\"\n",
        signing.display()
    );
    let config = parse_in(dir.path(), &text, &[]).unwrap();
    assert_eq!(config.slack.bot_token.unwrap().expose(), "xoxb-from-file");
    assert_eq!(
        config.slack.signing_secret.unwrap().expose(),
        "signing-from-file"
    );
}

#[test]
fn file_secrets_work_in_connectors_and_admin_tokens() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hook"), "hook-secret").unwrap();
    std::fs::write(dir.path().join("admin"), "a-long-enough-admin-token\n").unwrap();
    let text = "[[connectors]]\nid = \"c\"\nkind = \"webhook\"\nurl = \"https://h\"\nsecret_file = \"${DIR}/hook\"\n\n[[admin.tokens]]\nname = \"ops\"\ntoken_file = \"admin\"\n";
    let dir_var = dir.path().display().to_string();
    let config = parse_in(dir.path(), text, &[("DIR", &dir_var)]).unwrap();
    assert_eq!(
        config.connectors[0].secret.as_ref().unwrap().expose(),
        "hook-secret"
    );
    assert_eq!(
        config.admin.tokens[0].token.expose(),
        "a-long-enough-admin-token"
    );
}

#[test]
fn a_missing_secret_file_names_the_key_and_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let text = "[slack]\nenabled = true\nsigning_secret = \"s\"\nbot_token_file = \"nope/bot\"\n";
    let found = parse_in(dir.path(), text, &[]).unwrap_err().0;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].line, Some(4));
    assert!(
        found[0]
            .message
            .starts_with("slack.bot_token_file: cannot read "),
        "{}",
        found[0]
    );
    assert!(
        found[0]
            .message
            .contains(&dir.path().join("nope/bot").display().to_string())
    );
}

#[test]
fn a_secret_file_too_large_to_be_a_secret_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let big = vec![b'x'; super::super::file_secrets::MAX_SECRET_BYTES as usize + 1];
    std::fs::write(dir.path().join("bot"), big).unwrap();
    let text = "[slack]\nenabled = true\nsigning_secret = \"s\"\nbot_token_file = \"bot\"\n";
    let found = parse_in(dir.path(), text, &[]).unwrap_err().0;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].message.contains("larger than 64 KiB"),
        "{}",
        found[0]
    );
}

/// The one problem of a config whose bot token is read from `path`.
fn bot_token_file_problem(dir: &std::path::Path, path: &str) -> String {
    let text =
        format!("[slack]\nenabled = true\nsigning_secret = \"s\"\nbot_token_file = \"{path}\"\n");
    let found = parse_in(dir, &text, &[]).unwrap_err().0;
    assert_eq!(found.len(), 1, "{found:?}");
    found[0].message.clone()
}

#[test]
fn a_secret_file_that_is_a_named_pipe_is_refused_without_waiting_for_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("bot");
    let c_path = std::ffi::CString::new(fifo.display().to_string()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only creates the file.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
    let (sent, received) = std::sync::mpsc::channel();
    let base = dir.path().to_path_buf();
    std::thread::spawn(move || sent.send(bot_token_file_problem(&base, "bot")));
    // Opening a FIFO for reading waits for a writer that never comes: this guard only
    // turns that hang into a failure; a correct reader answers at once.
    let message = received
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("reading the configuration waited on the named pipe");
    assert_eq!(
        message,
        format!(
            "slack.bot_token_file: cannot read {}: it is a named pipe (FIFO), not a regular file",
            fifo.display()
        )
    );
}

#[test]
fn a_secret_file_that_is_a_device_or_a_directory_is_refused_naming_what_it_is() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    let message = bot_token_file_problem(dir.path(), "secrets");
    assert!(
        message.starts_with("slack.bot_token_file: cannot read "),
        "{message}"
    );
    assert!(
        message.ends_with("it is a directory, not a regular file"),
        "{message}"
    );
    let message = bot_token_file_problem(dir.path(), "/dev/zero");
    assert_eq!(
        message,
        "slack.bot_token_file: cannot read /dev/zero: it is a character device, not a regular file"
    );
}

#[test]
fn giving_both_a_value_and_its_file_is_an_error() {
    let d = only_error(
        "[server]\npublic_url = \"https://a\"\npublic_url_file = \"url\"\n",
        &[],
    );
    assert_eq!(d.line, Some(3));
    assert!(
        d.message
            .contains("server.public_url and server.public_url_file are both given")
    );
}

#[test]
fn env_override_beats_file_value() {
    let text = "[server]\nlisten = \"127.0.0.1:8080\"\n";
    let vars = [
        ("GATEHOUSE_SERVER__LISTEN", "0.0.0.0:9999"),
        ("GATEHOUSE_SLACK__ENABLED", "true"),
        ("GATEHOUSE_SLACK__BOT_TOKEN", "xoxb-${NOT_EXPANDED}"),
        ("GATEHOUSE_SLACK__SIGNING_SECRET", "from-env"),
        ("GATEHOUSE_DISCORD__APPLICATION_ID", "1000000000000000001"),
        ("GATEHOUSE_CONFIG", "/etc/gatehouse/gatehouse.toml"),
    ];
    let config = parse(text, &vars).unwrap();
    assert_eq!(config.server.listen.to_string(), "0.0.0.0:9999");
    assert!(config.slack.enabled);
    assert_eq!(
        config.slack.bot_token.unwrap().expose(),
        "xoxb-${NOT_EXPANDED}"
    );
    assert_eq!(
        config.discord.application_id.as_deref(),
        Some("1000000000000000001")
    );
}

#[test]
fn env_override_of_a_value_replaces_its_file_form() {
    let text =
        "[slack]\nenabled = true\nbot_token_file = \"/nonexistent\"\nsigning_secret = \"s\"\n";
    let config = parse(text, &[("GATEHOUSE_SLACK__BOT_TOKEN", "xoxb-env")]).unwrap();
    assert_eq!(config.slack.bot_token.unwrap().expose(), "xoxb-env");
}

#[test]
fn a_bad_override_is_reported_by_variable_name() {
    let d = only_error("", &[("GATEHOUSE_SERVER__LISTNE", "0.0.0.0:1")]);
    assert_eq!(d.file, "environment variable GATEHOUSE_SERVER__LISTNE");
    assert_eq!(d.help.as_deref(), Some("did you mean `listen`?"));
    let d = only_error("", &[("GATEHOUSE_SLACK__MODE", "sockets")]);
    assert_eq!(d.file, "environment variable GATEHOUSE_SLACK__MODE");
}

#[test]
fn lists_cannot_be_overridden_and_say_so() {
    let text = "[[connectors]]\nid = \"c\"\nkind = \"log\"\n";
    let config = parse(
        text,
        &[
            ("GATEHOUSE_CONNECTORS__ID", "x"),
            ("GATEHOUSE_A__B__C", "x"),
        ],
    )
    .unwrap();
    assert_eq!(config.connectors[0].id.as_str(), "c");
    assert_eq!(config.warnings().len(), 2);
    assert!(
        config
            .warnings()
            .iter()
            .all(|w| w.message.contains("is ignored"))
    );
}

#[test]
fn debug_output_never_shows_secrets() {
    let text = format!(
        "{SLACK_HTTP}app_token = \"xapp-app-token-value\"\n\n[[connectors]]\nid = \"c\"\nkind = \"command\"\ncommand = [\"/bin/true\"]\nsecret = \"connector-secret-value\"\nenv = {{ PASSWORD = \"env-password-value\" }}\n\n[admin]\ntokens = [{{ name = \"ops\", token = \"admin-token-value-123\" }}]\n"
    );
    let config = parse(&text, SLACK_VARS).unwrap();
    let shown = format!("{config:?} {config:#?}");
    for secret in [
        "xoxb-bot-token-value",
        "signing-secret-value",
        "xapp-app-token-value",
        "connector-secret-value",
        "env-password-value",
        "admin-token-value-123",
    ] {
        assert!(!shown.contains(secret), "{secret} leaked");
    }
    assert!(shown.contains("[redacted]"));
}
