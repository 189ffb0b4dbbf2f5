//! The deploy files say what the binary does: the Dockerfile's and the systemd unit's
//! commands parse as real subcommands and flags of `gatehouse`, their ports and paths agree
//! with the configuration, and the hardening they promise is there. (The Kubernetes
//! manifests are checked by .ci/check-deploy.py, which also runs `systemd-analyze verify`.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use clap::Parser;
use gatehouse::cli::{Cli, Command};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The command line `words` as the binary would parse it (`gatehouse` first).
fn parse(words: &[String]) -> Cli {
    let mut argv = words.to_vec();
    argv[0] = "gatehouse".to_owned();
    Cli::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("{words:?} is not a gatehouse command: {e}"))
}

/// The port of `server.listen` in the example configuration.
fn example_port() -> u16 {
    let config = gatehouse::config::Config::load(&deploy("examples/gatehouse.toml")).unwrap();
    config.server.listen.port()
}

/// Dockerfile instructions, continuation lines joined: (INSTRUCTION, arguments).
fn instructions(text: &str) -> Vec<(String, String)> {
    let mut joined = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let line = line.trim();
        if current.is_empty() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(line);
                joined.push(std::mem::take(&mut current));
            }
        }
    }
    joined
        .into_iter()
        .map(|line| {
            let (word, rest) = line.split_once(' ').unwrap_or((&line, ""));
            (word.to_ascii_uppercase(), rest.trim().to_owned())
        })
        .collect()
}

/// An exec-form (`["a", "b"]`) argument list.
fn exec_form(text: &str) -> Vec<String> {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not exec form ({e}): {text}"))
}

#[test]
fn the_dockerfile_builds_in_a_rust_stage_and_runs_unprivileged_in_a_slim_one() {
    let text = read("docker/Dockerfile");
    let all = instructions(&text);
    let of = |name: &str| -> Vec<String> {
        all.iter()
            .filter(|(i, _)| i == name)
            .map(|(_, a)| a.clone())
            .collect()
    };
    let stages = of("FROM");
    assert_eq!(stages.len(), 2, "{stages:?}");
    assert!(
        stages[0].starts_with("rust:") && stages[0].ends_with(" AS builder"),
        "{stages:?}"
    );
    assert!(stages[1].starts_with("debian:bookworm-slim"), "{stages:?}");

    let runtime_start = all.iter().rposition(|(i, _)| i == "FROM").unwrap();
    let runtime = &all[runtime_start..];
    let installs: String = runtime
        .iter()
        .filter(|(i, a)| i == "RUN" && a.contains("apt-get install"))
        .map(|(_, a)| a.as_str())
        .collect();
    for package in ["ca-certificates", "libssl3"] {
        assert!(
            installs.contains(package),
            "the runtime lacks {package}: {installs}"
        );
    }
    let copied = runtime.iter().any(|(i, a)| {
        i == "COPY" && a.contains("--from=builder") && a.contains("/usr/local/bin/gatehouse")
    });
    assert!(copied, "the runtime takes the binary from the builder");

    // Everything the builder copies exists, and is all the build needs.
    for (_, args) in all
        .iter()
        .filter(|(i, a)| i == "COPY" && !a.contains("--from"))
    {
        let words: Vec<&str> = args.split_whitespace().collect();
        for source in &words[..words.len() - 1] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(source);
            assert!(
                path.exists(),
                "COPY {source}: no such file in the repository"
            );
        }
    }

    let user = of("USER");
    let uid: u32 = user
        .last()
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uid >= 1000,
        "USER must be an unprivileged numeric uid: {user:?}"
    );

    let volumes = of("VOLUME");
    assert!(
        volumes
            .iter()
            .any(|v| exec_form(v).contains(&"/data".to_owned())),
        "{volumes:?}"
    );
    let env = of("ENV").join(" ");
    let setting = |key: &str| -> String {
        env.split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("no ENV {key}"))
            .to_owned()
    };
    assert!(
        setting("GATEHOUSE_SERVER__DATA_DIR").starts_with("/data/"),
        "data on the volume"
    );
    let listen: std::net::SocketAddr = setting("GATEHOUSE_SERVER__LISTEN").parse().unwrap();
    assert!(
        listen.ip().is_unspecified(),
        "reachable from outside the container"
    );
    let exposed: u16 = of("EXPOSE")[0].parse().unwrap();
    assert_eq!(exposed, listen.port());
    assert_eq!(exposed, example_port(), "the example configuration's port");
    assert_eq!(setting("GATEHOUSE_CONFIG"), "/etc/gatehouse/gatehouse.toml");

    let healthcheck = of("HEALTHCHECK");
    let (_, command) = healthcheck[0]
        .split_once("CMD ")
        .expect("HEALTHCHECK … CMD");
    let cli = parse(&exec_form(command));
    assert!(
        matches!(cli.command, Command::Healthcheck { ready: false, .. }),
        "liveness"
    );

    let mut entry = exec_form(&of("ENTRYPOINT")[0]);
    entry.extend(exec_form(&of("CMD")[0]));
    assert_eq!(entry[0], "gatehouse");
    assert!(matches!(parse(&entry).command, Command::Serve));

    let ignored = read("docker/Dockerfile.dockerignore");
    assert!(
        ignored.lines().any(|l| l.trim() == "target"),
        "target/ stays out of the context"
    );
}

/// `[Section]` → key → every value given, in order.
fn unit(text: &str) -> BTreeMap<String, BTreeMap<String, Vec<String>>> {
    let mut sections: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    let mut section = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_owned();
            continue;
        }
        let (key, value) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("not key=value: {line}"));
        sections
            .entry(section.clone())
            .or_default()
            .entry(key.trim().to_owned())
            .or_default()
            .push(value.trim().to_owned());
    }
    sections
}

#[test]
fn the_systemd_unit_is_hardened_and_starts_a_real_command() {
    let sections = unit(&read("systemd/gatehouse.service"));
    let service = &sections["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("no {key}="));
        values.last().unwrap()
    };
    for (key, value) in [
        ("DynamicUser", "yes"),
        ("StateDirectory", "gatehouse"),
        ("ProtectSystem", "strict"),
        ("NoNewPrivileges", "yes"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictNamespaces", "yes"),
        ("RestrictSUIDSGID", "yes"),
        ("LockPersonality", "yes"),
        ("MemoryDenyWriteExecute", "yes"),
        ("CapabilityBoundingSet", ""),
    ] {
        assert_eq!(one(key), value, "{key}");
    }
    // It must still listen and reach Slack, Discord and connectors.
    let families = one("RestrictAddressFamilies");
    for family in ["AF_INET", "AF_INET6"] {
        assert!(
            families.split_whitespace().any(|f| f == family),
            "{families}"
        );
    }
    assert!(!service.contains_key("PrivateNetwork"), "no network at all");
    assert!(!service.contains_key("IPAddressDeny"), "no network at all");

    let exec: Vec<String> = one("ExecStart")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    assert!(exec[0].ends_with("/gatehouse"), "{exec:?}");
    let cli = parse(&exec);
    assert!(matches!(cli.command, Command::Serve), "{exec:?}");
    assert_eq!(
        cli.global.config,
        Path::new("/etc/gatehouse/gatehouse.toml")
    );
    assert!(one("ExecReload").contains("-HUP"), "reload is SIGHUP");
    let data = service["Environment"]
        .iter()
        .find_map(|e| e.strip_prefix("GATEHOUSE_SERVER__DATA_DIR="))
        .expect("the data directory is set");
    assert!(
        data.starts_with("/var/lib/gatehouse/"),
        "inside StateDirectory, the one writable place: {data}"
    );
}

#[test]
fn the_systemd_unit_opens_enough_files_for_every_connection_and_waits_out_the_grace() {
    let sections = unit(&read("systemd/gatehouse.service"));
    let service = &sections["Service"];
    let one = |key: &str| -> &str {
        let values = service.get(key).unwrap_or_else(|| panic!("no {key}="));
        values.last().unwrap()
    };
    let defaults = gatehouse::config::ServerConfig::default();
    // systemd's default soft limit (1024) is below the default connection cap.
    let files: u64 = match one("LimitNOFILE") {
        "infinity" => u64::MAX,
        n => n.parse().expect("LimitNOFILE is a number"),
    };
    assert!(
        files >= defaults.max_connections + 1024,
        "LimitNOFILE={files} leaves no room beside {} connections",
        defaults.max_connections
    );
    let stop: u64 = one("TimeoutStopSec")
        .strip_suffix('s')
        .and_then(|s| s.parse().ok())
        .expect("TimeoutStopSec in seconds");
    assert!(
        stop >= defaults.shutdown_grace.as_secs() + 10,
        "TimeoutStopSec={stop}s does not wait out server.shutdown_grace"
    );
}
