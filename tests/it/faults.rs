//! Faults everywhere at once: Slack and Discord enabled together (bob and carol on Discord,
//! sam on both, the others on Slack), every resource provisioned through a signed webhook,
//! and the fake Slack, the fake Discord and the webhook receiver each failing 30% of calls
//! at random (429 with a short Retry-After, 500, timeouts, dropped connections, answers lost
//! after the call was applied). Requests go through their stages to grants, are rejected,
//! cancelled, revoked, ended early and left to expire; in the end every card was posted once
//! on each platform that should have it and closed, every grant provisioned once and
//! deprovisioned once. `FAULTS_SEED` replays a run.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::crash::rng;
use crate::discord::{BOB, CAROL, buttons as discord_buttons, shown as discord_shown};
use crate::fake_discord::{self, FakeDiscord, public_key_hex};
use crate::fake_slack::{self, FakeSlack};
use crate::provisioner::{self, Provisioner};
use crate::support::{TestApp, eventually_within, spawn_app_with};

const SAM_ON_DISCORD: &str = "334455667788990011";

/// Where `person`'s cards go: (platform, user id there).
fn reached(person: &str) -> Vec<(&'static str, &'static str)> {
    match person {
        "bob" => vec![("discord", BOB)],
        "carol" => vec![("discord", CAROL)],
        "sam" => vec![("slack", "U0SAM"), ("discord", SAM_ON_DISCORD)],
        "dora" => vec![("slack", "U0DORA")],
        "erin" => vec![("slack", "U0ERIN")],
        "fay" => vec![("slack", "U0FAY")],
        "sue" => vec![("slack", "U0SUE")],
        "sid" => vec![("slack", "U0SID")],
        other => panic!("{other} is not expected to approve anything"),
    }
}

struct Rig {
    app: TestApp,
    slack: FakeSlack,
    discord: FakeDiscord,
    receiver: Provisioner,
}

async fn start(seed: u64) -> Rig {
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let receiver = Provisioner::start(Duration::from_millis(1500)).await;
    let app = spawn_app_with(|files| {
        crate::crash::configure(files, &slack, &receiver, "1s");
        files.enable_discord(&discord.api_url(), "http", &public_key_hex());
        files.edit("directory.toml", |text| {
            text.replace(
                "id = \"bob\"\n",
                &format!("id = \"bob\"\ndiscord = \"{BOB}\"\nnotify = [\"discord\"]\n"),
            )
            .replace(
                "id = \"carol\"\n",
                &format!("id = \"carol\"\ndiscord = \"{CAROL}\"\nnotify = [\"discord\"]\n"),
            )
        });
        files.edit("gatehouse.toml", |text| {
            format!("{text}\n[outbox]\nmax_backoff = \"1s\"\n")
        });
    })
    .await;
    slack.set_slow_delay(Duration::from_secs(1));
    discord.set_slow_delay(Duration::from_secs(1));
    let slack_faults = [
        fake_slack::Fault::RateLimited {
            retry_after_secs: 1,
        },
        fake_slack::Fault::ServerError,
        fake_slack::Fault::Timeout,
        fake_slack::Fault::Drop,
        fake_slack::Fault::LostResponse,
    ];
    slack.fail_at_random(seed, 30, &slack_faults);
    let discord_faults = [
        fake_discord::Fault::RateLimited {
            retry_after: Duration::from_secs(1),
        },
        fake_discord::Fault::ServerError,
        fake_discord::Fault::Timeout,
        fake_discord::Fault::Drop,
        fake_discord::Fault::LostResponse,
    ];
    discord.fail_at_random(seed.wrapping_add(1), 30, &discord_faults);
    receiver.fail_at_random(seed.wrapping_add(2), 30, provisioner::ALL_FAULTS);
    Rig {
        app,
        slack,
        discord,
        receiver,
    }
}

impl Rig {
    async fn call(&self, path: &str, body: Value) -> Value {
        let (status, answer) = self.app.post(&format!("/api/v1{path}"), body).await;
        assert!(status.is_success(), "{path}: {status} {answer}");
        answer
    }

    async fn submit(&self, body: Value) -> String {
        let answer = self.call("/requests", body).await;
        answer["request"]["id"].as_str().unwrap().to_owned()
    }

    /// The approval cards of `request` for `person`, on each platform they are reached on.
    fn cards(&self, request: &str, person: &str) -> Vec<(String, usize)> {
        let mut found = Vec::new();
        for (platform, user) in reached(person) {
            let n = if platform == "slack" {
                let channel = FakeSlack::dm_channel(user);
                let prefix = format!("card:{request}:");
                let suffix = format!(":{person}");
                let posts = crate::crash::checks::posts_by_mark(&self.slack);
                posts
                    .iter()
                    .filter(|((c, k), _)| {
                        *c == channel && k.starts_with(&prefix) && k.ends_with(&suffix)
                    })
                    .map(|(_, ts)| ts.len())
                    .sum()
            } else {
                // Messages show their latest edit: read what each was posted with.
                let approve = format!("gatehouse.approve|{request}");
                let channel = self.discord.dm_channel_of(user).unwrap_or_default();
                let path = format!("/api/v10/channels/{channel}/messages");
                let posted = self.discord.calls_to(fake_discord::Route::CreateMessage);
                let ids: BTreeSet<String> = posted
                    .iter()
                    .filter(|c| c.path == path && c.body.to_string().contains(&approve))
                    .filter_map(|c| c.response["id"].as_str().map(str::to_owned))
                    .collect();
                ids.len()
            };
            found.push((format!("{person} on {platform}"), n));
        }
        found
    }

    /// Waits until every approver of `request`'s current stage has their card(s).
    async fn cards_are_out(&self, request: &str) {
        let every_card = format!("every approver's card of {request}");
        eventually_within(&every_card, Duration::from_secs(60), move || async move {
            let (_, body) = self.app.get(&format!("/api/v1/requests/{request}")).await;
            let stage = body["request"]["current_stage"].as_u64().unwrap() as usize;
            let approvers = &body["request"]["plan"]["stages"][stage]["approvers"];
            for person in approvers.as_array().unwrap() {
                for (whose, n) in self.cards(request, person.as_str().unwrap()) {
                    if n == 0 {
                        return Err(format!("no card of {request} for {whose} yet"));
                    }
                }
            }
            Ok(())
        })
        .await;
    }

    async fn approve(&self, request: &str, by: &str) -> Value {
        self.cards_are_out(request).await;
        self.call(&format!("/requests/{request}/approve"), json!({"as": by}))
            .await
    }

    async fn outbox_depth(&self) -> Option<f64> {
        let (_, metrics) = self.app.get("/metrics").await;
        let text = metrics.as_str()?.to_owned();
        let line = text
            .lines()
            .find(|l| l.starts_with("gatehouse_outbox_depth "))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_third_of_all_calls_failing_every_card_and_grant_happens_exactly_once() {
    gatehouse::app::install_tls_provider();
    let seed = rng::seed("FAULTS_SEED");
    let started = Instant::now();
    let rig = &start(seed).await;
    let ask = |who: &str, resource: &str, role: &str, duration: &str| json!({"as": who, "resource": resource, "role": role, "duration": duration, "reason": "faults test"});
    // Two stages, on both platforms: bob (Discord), then carol (Discord) or dora (Slack).
    let first = rig.submit(ask("alice", "staging-db", "read", "1h")).await;
    let second = rig.submit(ask("dan", "staging-db", "read", "1h")).await;
    // Bob, then fay (Slack).
    let third = rig.submit(ask("alice", "payments", "viewer", "1h")).await;
    // Privileged: bob, carol or dora, then two of sam (both platforms), sue and sid.
    let mut privileged = ask("alice", "prod-db", "admin", "1h");
    privileged["fields"] = json!({"ticket": "INC-4211"});
    let fourth = rig.submit(privileged).await;
    let rejected = rig.submit(ask("dan", "payments", "viewer", "1h")).await;
    let cancelled = rig.submit(ask("alice", "staging-db", "write", "1h")).await;
    // Auto-approved, and left to expire.
    let expiring = rig
        .call("/requests", ask("dan", "grafana", "editor", "8s"))
        .await;
    let expiring = expiring["grant"]["id"].as_str().unwrap().to_owned();

    rig.approve(&first, "bob").await;
    rig.approve(&first, "dora").await;
    rig.approve(&second, "bob").await;
    rig.approve(&second, "carol").await;
    rig.approve(&third, "bob").await;
    rig.approve(&third, "fay").await;
    for by in ["bob", "carol", "sam", "sue"] {
        rig.approve(&fourth, by).await;
    }
    rig.cards_are_out(&rejected).await;
    rig.call(
        &format!("/requests/{rejected}/reject"),
        json!({"as": "bob", "reason": "no"}),
    )
    .await;
    rig.cards_are_out(&cancelled).await;
    rig.call(
        &format!("/requests/{cancelled}/cancel"),
        json!({"as": "alice"}),
    )
    .await;

    // Every grant active (each provisioned through the failing webhook), then taken back.
    let mut grants = BTreeMap::new();
    for request in [&first, &second, &third, &fourth] {
        let (_, body) = rig.app.get(&format!("/api/v1/requests/{request}")).await;
        assert_eq!(body["request"]["state"]["state"], "approved", "{body}");
        let grant = body["request"]["state"]["grant"]
            .as_str()
            .unwrap()
            .to_owned();
        grants.insert(request.clone(), grant);
    }
    for grant in grants.values() {
        let active = format!("{grant} active");
        eventually_within(&active, Duration::from_secs(60), move || async move {
            let (_, body) = rig.app.get(&format!("/api/v1/grants/{grant}")).await;
            let state = &body["grant"]["state"]["state"];
            (state == "active")
                .then_some(())
                .ok_or(format!("{grant} is {state}"))
        })
        .await;
    }
    rig.call(
        &format!("/grants/{}/end", grants[&first]),
        json!({"as": "alice"}),
    )
    .await;
    for request in [&second, &third, &fourth] {
        let body = json!({"as": "sue", "reason": "faults test"});
        rig.call(&format!("/grants/{}/revoke", grants[request]), body)
            .await;
    }

    // Everything done: every grant revoked (the short one by expiry), the outbox empty.
    let all_done = "every grant revoked and the outbox empty";
    eventually_within(all_done, Duration::from_secs(90), move || async move {
        let (_, body) = rig.app.get("/api/v1/grants?limit=100").await;
        for grant in body["grants"].as_array().unwrap() {
            let state = &grant["state"]["state"];
            if state != "revoked" {
                return Err(format!("{} is {state}", grant["id"]));
            }
        }
        match rig.outbox_depth().await {
            Some(0.0) => Ok(()),
            depth => Err(format!("the outbox holds {depth:?}")),
        }
    })
    .await;
    let settled = started.elapsed();

    // Every approver of every stage reached has exactly one card on each of their platforms.
    let expected: &[(&str, &[&str])] = &[
        (&first, &["bob", "carol", "dora"]),
        (&second, &["bob", "carol", "dora"]),
        (&third, &["bob", "fay"]),
        (&fourth, &["bob", "carol", "dora", "sam", "sue", "sid"]),
        (&rejected, &["bob"]),
        (&cancelled, &["bob"]),
    ];
    let mut wrong = Vec::new();
    for (request, people) in expected {
        for person in *people {
            for (whose, n) in rig.cards(request, person) {
                if n != 1 {
                    wrong.push(format!("{request}: {n} cards for {whose}"));
                }
            }
        }
    }
    // Nothing posted twice, and nothing left with buttons: every request and grant is over.
    let mut posted: BTreeMap<(String, String), usize> = BTreeMap::new();
    for ((channel, mark), ts) in crate::crash::checks::posts_by_mark(&rig.slack) {
        posted.insert((channel, mark), ts.len());
    }
    for message in rig.slack.all_messages() {
        if crate::crash::checks::buttons(&message) > 0 {
            wrong.push(format!(
                "Slack {} in {} still has buttons: {:?}",
                message.ts, message.channel, message.text
            ));
        }
    }
    for message in rig.discord.all_messages() {
        let nonce = message
            .nonce
            .as_ref()
            .map_or_else(|| format!("no nonce: {}", message.id), Value::to_string);
        if !discord_buttons(&message).is_empty() {
            wrong.push(format!(
                "Discord {nonce} in {} still has buttons: {}",
                message.channel_id,
                discord_shown(&message)
            ));
        }
        *posted.entry((message.channel_id, nonce)).or_default() += 1;
    }
    for ((channel, what), n) in &posted {
        if *n > 1 {
            wrong.push(format!("{what} posted {n} times in {channel}"));
        }
    }
    assert!(wrong.is_empty(), "seed {seed}:\n{}", wrong.join("\n"));
    assert!(
        rig.slack.violations().is_empty(),
        "{:#?}",
        rig.slack.violations()
    );
    assert!(
        rig.discord.violations().is_empty(),
        "{:#?}",
        rig.discord.violations()
    );

    // Each grant provisioned once and deprovisioned once, however often the calls were retried.
    assert!(
        rig.receiver.refused().is_empty(),
        "{:?}",
        rig.receiver.refused()
    );
    let effects = rig.receiver.effects();
    let all: Vec<&String> = grants.values().chain([&expiring]).collect();
    for grant in &all {
        let done = effects.get(*grant).cloned().unwrap_or_default();
        assert!(
            done.grants.len() == 1
                && done.revokes.len() == 1
                && !done.held
                && !done.revoked_before_granted,
            "seed {seed}: {grant}: {done:?}"
        );
    }
    assert_eq!(effects.len(), all.len(), "{effects:?}");
    let (status, body) = rig.app.get("/api/v1/audit/verify").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    println!(
        "seed {seed}: settled after {settled:?}; {} Slack calls, {} Discord calls, {} webhook calls",
        rig.slack.calls().len(),
        rig.discord.calls().len(),
        rig.receiver.calls()
    );
}
