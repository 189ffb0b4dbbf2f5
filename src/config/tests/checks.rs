//! Checks that need several values together.

use super::*;
use crate::domain::diagnostic::Severity;

#[test]
fn a_listen_address_must_be_an_ip_and_port() {
    let d = only_error("[server]\nlisten = \"localhost:8080\"\n", &[]);
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("127.0.0.1:8080"), "{d}");
}

#[test]
fn slack_in_http_mode_needs_a_signing_secret_and_a_bot_token() {
    let found = errors("[slack]\nenabled = true\n", &[]);
    let messages: Vec<&str> = found.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "slack.bot_token is required when slack is enabled",
            "slack.signing_secret is required when slack is enabled in http mode"
        ]
    );
    assert_eq!(found[0].line, Some(1));
}

#[test]
fn slack_in_socket_mode_needs_an_app_token() {
    let text = "[slack]\nenabled = true\nmode = \"socket\"\nbot_token = \"xoxb-1\"\n";
    let d = only_error(text, &[]);
    assert_eq!(
        d.message,
        "slack.app_token is required when slack is enabled in socket mode"
    );
    let d = only_error("[slack]\nenabled = true\nmode = \"sockit\"\n", &[]);
    assert_eq!(
        (d.line, d.help.as_deref()),
        (Some(3), Some("did you mean `socket`?"))
    );
}

#[test]
fn discord_in_http_mode_needs_a_hex_public_key_and_an_application_id() {
    let text = "[discord]\nenabled = true\nmode = \"http\"\nbot_token = \"t\"\n";
    let found = errors(text, &[]);
    assert_eq!(found.len(), 2, "{found:?}");
    let text = "[discord]\nenabled = true\nmode = \"http\"\nbot_token = \"t\"\napplication_id = \"12\"\npublic_key = \"abc\"\n";
    let d = only_error(text, &[]);
    assert_eq!(d.line, Some(6));
    assert!(d.message.contains("not 64 hex digits"), "{d}");
}

#[test]
fn connectors_are_checked_for_what_their_kind_needs() {
    let text = "[[connectors]]\nid = \"a\"\nkind = \"webhook\"\n\n[[connectors]]\nid = \"a\"\nkind = \"command\"\ncommand = []\n\n[[connectors]]\nid = \"b\"\nkind = \"webhook\"\nurl = \"ftp://x\"\n";
    let found = errors(text, &[]);
    let summary: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (Some(1), "connector `a` is a webhook but has no url"),
            (Some(6), "connector id `a` is used twice (first at line 2)"),
            (Some(8), "connector `a` runs a command but names no program"),
            (
                Some(13),
                "connectors.2.url `ftp://x` is not an http or https URL"
            ),
        ]
    );
}

#[test]
fn an_unknown_connector_kind_is_an_error_with_a_suggestion() {
    let d = only_error("[[connectors]]\nid = \"a\"\nkind = \"webhok\"\n", &[]);
    assert_eq!(
        (d.line, d.help.as_deref()),
        (Some(3), Some("did you mean `webhook`?"))
    );
    let d = only_error("[[connectors]]\nid = \"a\"\nkind = \"oracle\"\n", &[]);
    assert!(
        d.message
            .contains("`webhook`, `command`, `log`, `postgres`, `ldap`"),
        "{d}"
    );
}

#[test]
fn admin_tokens_must_be_long_and_uniquely_named() {
    let text = "[admin]\ntokens = [\n  { name = \"ops\", token = \"short\" },\n  { name = \"ops\", token = \"0123456789abcdef\" },\n]\n";
    let found = errors(text, &[]);
    let summary: Vec<(Option<usize>, &str)> =
        found.iter().map(|d| (d.line, d.message.as_str())).collect();
    assert_eq!(
        summary,
        [
            (
                Some(3),
                "admin token `ops` is 5 characters long; at least 16 are needed"
            ),
            (Some(4), "admin token name `ops` is used twice"),
        ]
    );
}

#[test]
fn admin_api_on_a_public_address_is_a_warning() {
    let text = "[server]\nlisten = \"0.0.0.0:8080\"\n\n[[admin.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\nexpires = 2027-06-30T00:00:00Z\npowers = [\"read\"]\n";
    let config = parse(text, &[]).unwrap();
    let [warning] = config.warnings() else {
        panic!("one warning expected: {:?}", config.warnings());
    };
    assert_eq!(
        (warning.severity, warning.line),
        (Severity::Warning, Some(2))
    );
    assert!(
        warning
            .message
            .contains("the admin API is reachable from the network")
    );
    assert!(
        parse("[server]\nlisten = \"0.0.0.0:8080\"\n", &[])
            .unwrap()
            .warnings()
            .is_empty()
    );
}

/// `[[admin.tokens]]` named `name` with `extra` lines, and its warnings: (line, message).
fn token_warnings(extra: &str) -> Vec<(Option<usize>, String)> {
    let text = format!("[[admin.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef\"\n{extra}");
    let config = parse(&text, &[]).unwrap();
    config
        .warnings()
        .iter()
        .map(|w| {
            assert_eq!(w.severity, Severity::Warning, "{w}");
            (w.line, w.message.clone())
        })
        .collect()
}

#[test]
fn a_token_that_may_impersonate_is_warned_about_at_its_powers() {
    assert_eq!(
        token_warnings("powers = [\"read\", \"decide\", \"impersonate\"]\n"),
        [(
            Some(4),
            "admin token `ci` has the `impersonate` power: whoever holds it can act as anyone, \
             including as several approvers of one request"
                .to_owned()
        )]
    );
}

#[test]
fn a_token_without_powers_is_warned_about_with_the_powers_it_gets() {
    assert_eq!(
        token_warnings(""),
        [(
            Some(2),
            "admin token `ci` names no `powers`, so it may read, request, decide, admin, as its \
             operator"
                .to_owned()
        )]
    );
    assert_eq!(token_warnings("powers = [\"read\", \"admin\"]\n"), []);
}

#[test]
fn a_token_with_no_power_to_call_anything_is_warned_about() {
    let warnings = token_warnings("powers = []\n");
    assert_eq!(
        warnings,
        [(
            Some(4),
            "admin token `ci` has no power to call anything".to_owned()
        )]
    );
}

#[test]
fn an_unknown_power_is_refused_with_the_powers_there_are() {
    let d = only_error(
        "[[admin.tokens]]\nname = \"ci\"\ntoken = \"0123456789abcdef\"\npowers = [\"root\"]\n",
        &[],
    );
    assert_eq!(d.line, Some(4));
    assert!(
        d.message
            .contains("`read`, `request`, `decide`, `admin`, `impersonate`"),
        "{d}"
    );
}

#[test]
fn an_expiry_that_is_not_rfc3339_is_refused_at_its_line() {
    let d = only_error(
        "[[admin.tokens]]\nname = \"ops\"\ntoken = \"0123456789abcdef\"\nexpires = \"next tuesday\"\n",
        &[],
    );
    assert_eq!(d.line, Some(4));
    assert!(d.message.contains("2027-06-30T00:00:00Z"), "{d}");
}

#[test]
fn scheduler_and_log_are_read_and_checked() {
    let config = parse(
        "[scheduler]\nexpiry_warning = \"1h\"\n[log]\nformat = \"json\"\nlevel = \"warn\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.scheduler.expiry_warning, Duration::from_hours(1));
    let d = only_error("[log]\nlevel = \"info,=[\"\n", &[]);
    assert_eq!(d.line, Some(2));
    let d = only_error("[scheduler]\nexpiry_warning = \"15\"\n", &[]);
    assert!(d.message.contains("15m"), "{d}");
}

#[test]
fn the_digest_schedule_is_a_cron_line_that_fires_or_off() {
    let config = parse("", &[]).unwrap();
    assert!(
        config.scheduler.digest_schedule().is_some(),
        "daily by default"
    );
    let config = parse("[scheduler]\ndigest = \"off\"\n", &[]).unwrap();
    assert!(config.scheduler.digest_schedule().is_none());
    let d = only_error("[scheduler]\ndigest = \"daily\"\n", &[]);
    assert!(d.message.contains("is not a cron line"), "{d}");
    assert_eq!(d.line, Some(2));
    let d = only_error("[scheduler]\ndigest = \"0 0 9 30 2 *\"\n", &[]);
    assert!(d.message.contains("never fires"), "{d}");
}

#[test]
fn the_http_limits_have_defaults_and_are_checked() {
    let server = parse("", &[]).unwrap().server;
    assert_eq!(
        (
            server.max_connections,
            server.header_timeout.as_secs(),
            server.body_timeout.as_secs(),
            server.shutdown_grace.as_secs()
        ),
        (4096, 10, 10, 5)
    );
    let text = "[server]\nmax_connections = 64\nheader_timeout = \"2s\"\nbody_timeout = \"1m\"\nshutdown_grace = \"0s\"\n";
    let server = parse(text, &[]).unwrap().server;
    assert_eq!(server.max_connections, 64);
    assert_eq!(server.body_timeout.as_secs(), 60);
    assert_eq!(server.shutdown_grace.as_secs(), 0, "no grace: drop at once");
    let overridden = parse("", &[("GATEHOUSE_SERVER__MAX_CONNECTIONS", "8192")]).unwrap();
    assert_eq!(
        overridden.server.max_connections, 8192,
        "the environment gives text"
    );

    let d = only_error("[server]\nmax_connections = 0\n", &[]);
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("between 1 and 1000000"), "{d}");
    let d = only_error("[server]\nheader_timeout = \"0s\"\n", &[]);
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("server.header_timeout is 0s"), "{d}");
    let d = only_error("[server]\nbody_timeout = \"0s\"\n", &[]);
    assert!(d.message.contains("server.body_timeout is 0s"), "{d}");
    let d = only_error("[server]\nmax_connections = \"many\"\n", &[]);
    assert!(d.message.contains("whole number"), "{d}");
}

#[test]
fn the_store_cache_is_read_in_mib_and_checked() {
    assert_eq!(parse("", &[]).unwrap().server.cache_mb, 64);
    let config = parse("[server]\ncache_mb = 16\n", &[]).unwrap();
    assert_eq!(config.server.cache_mb, 16);
    let d = only_error("[server]\ncache_mb = 0\n", &[]);
    assert_eq!(d.line, Some(2));
    assert!(d.message.contains("between 1 and 65536"), "{d}");
    assert!(
        d.help.as_deref().is_some_and(|h| h.contains("64 MiB")),
        "{d}"
    );
    let overridden = parse("", &[("GATEHOUSE_SERVER__CACHE_MB", "32")]).unwrap();
    assert_eq!(overridden.server.cache_mb, 32, "the environment gives text");
    let d = only_error("[server]\ncache_mb = \"lots\"\n", &[]);
    assert!(d.message.contains("whole number of MiB"), "{d}");
}
