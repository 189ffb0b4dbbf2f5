//! Crash safety, with the real binary: `gatehouse serve` is started on one data directory
//! again and again and killed with SIGKILL at random moments while random request flows run
//! against it (submissions through the admin API and signed Slack commands, approvals by API
//! and by Slack clicks, rejections, cancellations, grants ended early and revoked, emergency
//! access, all with JIT durations of seconds so that grants expire during the test, some
//! while no process runs). The fake Slack, the fake Discord (HTTP mode: the people with a
//! Discord id get their cards and notices there too) and a signed webhook receiver, the
//! provisioning target of every resource, live in the test process across lives. After the
//! last start and once everything is due, nothing acknowledged may be lost, no grant
//! provisioned or deprovisioned twice, no Slack or Discord message posted twice, nothing overdue held, and the audit
//! chain must verify. `CRASH_SEED` replays a run; `CRASH_LIVES` changes how many kills.

pub mod checks;
pub mod daemon;
pub mod driver;
pub mod rng;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::fake_discord::{FakeDiscord, public_key_hex};
use crate::fake_slack::FakeSlack;
use crate::provisioner::Provisioner;
use crate::support::Files;
use daemon::Life;
use driver::Ledger;
use rng::Rng;

/// The example configuration with Slack on (against `slack`) and every resource provisioned
/// through the webhook `receiver`, which has `timeout` to answer.
pub fn configure(files: &Files, slack: &FakeSlack, receiver: &Provisioner, timeout: &str) {
    files.enable_slack(&slack.api_url(), crate::slack_inbound::SECRET);
    files.edit("policy.toml", |text| {
        text.replace("connector = \"log\"", "connector = \"hook\"")
    });
    files.edit("gatehouse.toml", |text| {
        format!("{text}\n{}", receiver.connector_toml("hook", timeout))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_random_fifty_times_gatehouse_loses_nothing_and_does_nothing_twice() {
    gatehouse::app::install_tls_provider();
    let seed = rng::seed("CRASH_SEED");
    let lives: usize = std::env::var("CRASH_LIVES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(55);
    let mut rng = Rng::new(seed);
    let slack = FakeSlack::start().await;
    let discord = FakeDiscord::start().await;
    let receiver = Provisioner::start(Duration::from_secs(3)).await;
    let files = Files::copy_examples();
    configure(&files, &slack, &receiver, "2s");
    files.enable_discord(&discord.api_url(), "http", &public_key_hex());
    let log = files.path("gatehouse.log");
    let ledger = Mutex::new(Ledger::default());
    let started = Instant::now();

    for life_no in 0..lives {
        let life = Life::start(&files, &log).await;
        // Some kills come while the new life catches up (revoking what expired while no
        // process ran, resuming the outbox); most while requests come in.
        let lifetime = if rng.chance(25) {
            rng.between(0, 80)
        } else {
            rng.between(80, 500)
        };
        let drivers = async {
            tokio::join!(
                driver::drive(&life, &ledger, Rng::new(rng.next())),
                driver::drive(&life, &ledger, Rng::new(rng.next())),
            )
        };
        tokio::select! {
            _ = drivers => unreachable!("the drivers run until killed"),
            () = tokio::time::sleep(Duration::from_millis(lifetime)) => {}
        }
        life.kill();
        if life_no % 10 == 9 {
            println!("{} kills after {:?}", life_no + 1, started.elapsed());
        }
    }
    let killed_after = started.elapsed();

    let life = Life::start(&files, &log).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match checks::settled(&life).await {
            Ok(()) => break,
            Err(why) if Instant::now() < deadline => {
                let _ = why;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(why) => panic!(
                "not settled 60 s after the last start: {why} (seed {seed}, log {})",
                log.display()
            ),
        }
    }
    let ledger = ledger.into_inner().unwrap_or_else(|p| p.into_inner());
    checks::nothing_acknowledged_was_lost(&life, &ledger).await;
    let grants = checks::every_grant_was_provisioned_once(&life, &receiver).await;
    let messages = checks::every_slack_message_was_posted_once(&life, &slack).await;
    let discord_messages = checks::every_discord_message_was_posted_once(&life, &discord).await;
    let events = checks::the_audit_chain_is_intact(&life).await;
    println!(
        "seed {seed}: {lives} kills in {killed_after:?}, settled after {:?}; {} requests and {} approvals acknowledged, {grants} grants, {} webhook calls, {messages} Slack messages, {discord_messages} Discord messages, {events} audit events; calls: {:?}",
        started.elapsed(),
        ledger.requests.len(),
        ledger.approvals.len(),
        receiver.calls(),
        ledger.calls,
    );
    life.kill();
}
