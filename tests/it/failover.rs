//! High availability, with the real binary: three replicas of `gatehouse serve` on one
//! PostgreSQL database (a throwaway server the test starts), request flows running against
//! all of them as in the crash test, and the leader — the replica running the scheduler and
//! the outbox — killed with SIGKILL at random moments, again and again, each time restarted
//! as a standby. After the last kill, once everything is due and done: nothing acknowledged
//! lost, every grant provisioned once and revoked once at the signed webhook receiver
//! (counted by idempotency key), no Slack message posted twice, nothing overdue still held,
//! the audit chain intact; and after each kill another replica led within 10 s.
//! `FAILOVER_SEED` replays a run; `FAILOVER_KILLS` changes how many leaders are killed.
//! Then a partition: the leader's path to the database cut (held silent, as a partition
//! does), it stands down on its own clock before another replica leads — even when the cut
//! falls inside one of its transactions, whose locks the server must then let go of.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::crash::checks;
use crate::crash::daemon::Life;
use crate::crash::driver::{self, Ledger};
use crate::crash::rng::{self, Rng};
use crate::fake_slack::FakeSlack;
use crate::provisioner::Provisioner;
use crate::real::postgres::Postgres;
use crate::support::Files;

/// How long another replica may take to lead after the leader is killed (the lease lasts
/// 6 s and is asked for every second).
const TAKEOVER: Duration = Duration::from_secs(10);

/// What `/readyz` says this replica is: `leader`, `standby`, or nothing when it does not answer.
async fn role(life: &Life) -> Option<String> {
    let response = life
        .http
        .get(format!("{}/readyz", life.base))
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = response.json().await.ok()?;
    body["role"].as_str().map(str::to_owned)
}

/// The replica that leads now, waiting up to [`TAKEOVER`] for one; its index.
async fn leader(replicas: &[Life]) -> Option<usize> {
    let deadline = Instant::now() + TAKEOVER;
    while Instant::now() < deadline {
        for (at, life) in replicas.iter().enumerate() {
            if role(life).await.as_deref() == Some("leader") {
                return Some(at);
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn three_replicas_lose_nothing_and_do_nothing_twice_while_their_leader_is_killed_at_random() {
    gatehouse::app::install_tls_provider();
    let seed = rng::seed("FAILOVER_SEED");
    let kills: usize = std::env::var("FAILOVER_KILLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(22);
    let mut rng = Rng::new(seed);
    let database = Postgres::start().await;
    database.execute("CREATE DATABASE gatehouse").await;
    let slack = FakeSlack::start().await;
    let receiver = Provisioner::start(Duration::from_secs(3)).await;
    let files = Files::copy_examples();
    crate::crash::configure(&files, &slack, &receiver, "2s");
    files.edit("gatehouse.toml", |text| {
        format!(
            "{text}\n[store]\nbackend = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{}/gatehouse?sslmode=disable\"\n",
            database.port
        )
    });
    let log = files.path("gatehouse.log");
    let ledger = Mutex::new(Ledger::default());
    let started = Instant::now();
    let mut replicas = Vec::new();
    for _ in 0..3 {
        replicas.push(Life::start(&files, &log).await);
    }
    let mut takeovers = Vec::new();
    let mut killed_at: Option<Instant> = None;
    for kill in 0..kills {
        let Some(leading) = leader(&replicas).await else {
            panic!(
                "no replica led within {TAKEOVER:?} after kill {kill} (seed {seed}, log {})",
                log.display()
            );
        };
        if let Some(at) = killed_at.take() {
            takeovers.push(at.elapsed());
        }
        // Flows run against every replica while the leader lives a while.
        let lifetime = rng.between(300, 2_500);
        let drivers = async {
            tokio::join!(
                driver::drive(&replicas[0], &ledger, Rng::new(rng.next())),
                driver::drive(&replicas[1], &ledger, Rng::new(rng.next())),
                driver::drive(&replicas[2], &ledger, Rng::new(rng.next())),
            )
        };
        tokio::select! {
            _ = drivers => unreachable!("the drivers run until stopped"),
            () = tokio::time::sleep(Duration::from_millis(lifetime)) => {}
        }
        let dead = replicas.swap_remove(leading);
        dead.kill();
        killed_at = Some(Instant::now());
        replicas.push(Life::start(&files, &log).await);
        if kill % 5 == 4 {
            println!("{} leaders killed after {:?}", kill + 1, started.elapsed());
        }
    }
    assert!(
        leader(&replicas).await.is_some(),
        "no leader after the last kill"
    );
    if let Some(at) = killed_at {
        takeovers.push(at.elapsed());
    }
    let killed_after = started.elapsed();

    let deadline = Instant::now() + Duration::from_secs(90);
    let life = &replicas[0];
    loop {
        match checks::settled(life).await {
            Ok(()) => break,
            Err(why) if Instant::now() < deadline => {
                let _ = why;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(why) => panic!(
                "not settled 90 s after the last kill: {why} (seed {seed}, log {})",
                log.display()
            ),
        }
    }
    let ledger = ledger.into_inner().unwrap_or_else(|p| p.into_inner());
    checks::nothing_acknowledged_was_lost(life, &ledger).await;
    let grants = checks::every_grant_was_provisioned_once(life, &receiver).await;
    let messages = checks::every_slack_message_was_posted_once(life, &slack).await;
    let events = checks::the_audit_chain_is_intact(life).await;
    let slowest = takeovers.iter().max().copied().unwrap_or_default();
    println!(
        "seed {seed}: {kills} leaders killed in {killed_after:?}, settled after {:?}; takeovers {takeovers:?} (slowest {slowest:?}); {} requests and {} approvals acknowledged, {grants} grants, {} webhook calls, {messages} Slack messages, {events} audit events; calls: {:?}",
        started.elapsed(),
        ledger.requests.len(),
        ledger.approvals.len(),
        receiver.calls(),
        ledger.calls,
    );
    assert!(
        slowest <= TAKEOVER,
        "a takeover took {slowest:?}, longer than {TAKEOVER:?}: {takeovers:?}"
    );
    assert!(
        grants > 0 && ledger.requests.len() > 20,
        "too little ran to tell anything"
    );
}

/// A TCP path to PostgreSQL that the test can cut the way a partition does: from the cut on,
/// nothing more goes through (bytes are held, not refused: no reset tells the replica), until
/// it is healed.
struct Path {
    port: u16,
    cut: Arc<AtomicBool>,
}

impl Path {
    async fn to(port: u16) -> Path {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let local = listener.local_addr().unwrap().port();
        let cut = Arc::new(AtomicBool::new(false));
        let watching = cut.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let cut = watching.clone();
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await
                    else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    let until = |state: bool| {
                        let cut = cut.clone();
                        async move {
                            while cut.load(Ordering::SeqCst) != state {
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                        }
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        // Held open and silent until healed, then closed.
                        () = until(true) => until(false).await,
                    }
                });
            }
        });
        Path { port: local, cut }
    }

    fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::SeqCst);
    }
}

/// When the log at `path` first said `what` (each line starts with its time).
fn said_at(path: &std::path::Path, what: &str) -> chrono::DateTime<chrono::Utc> {
    let text = std::fs::read_to_string(path).unwrap();
    let line = text
        .lines()
        .find(|line| line.contains(what))
        .unwrap_or_else(|| panic!("{} never said {what:?}: {text}", path.display()));
    line.split_whitespace()
        .next()
        .and_then(|time| time.parse().ok())
        .unwrap_or_else(|| panic!("no time at the start of {line:?}"))
}

/// What each of the database's client sessions is doing, and for how long its transaction
/// has been open: where a takeover that does not come is stuck.
async fn sessions(database: &Postgres) -> String {
    let rows = database
        .admin()
        .await
        .simple_query(
            "SELECT state, wait_event, now() - xact_start, query FROM pg_stat_activity \
             WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()",
        )
        .await
        .unwrap();
    rows.iter()
        .filter_map(|message| match message {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).unwrap_or("-"))
                    .collect::<Vec<_>>()
                    .join(" | "),
            ),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// gatehouse.toml of the example files on the PostgreSQL database at `port`.
fn on_database(files: &Files, port: u16) {
    files.edit("gatehouse.toml", |text| {
        format!(
            "{text}\n[store]\nbackend = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{port}/gatehouse?sslmode=disable\"\n"
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs PostgreSQL; .ci/run installs it"]
async fn a_leader_cut_off_from_the_database_stands_down_and_another_leads() {
    let database = Postgres::start().await;
    database.execute("CREATE DATABASE gatehouse").await;
    let path = Path::to(database.port).await;
    let (cut_off, direct) = (Files::copy_examples(), Files::copy_examples());
    on_database(&cut_off, path.port);
    on_database(&direct, database.port);
    let log = cut_off.path("gatehouse.log");
    let first = Life::start(&cut_off, &log).await;
    assert_eq!(leader(std::slice::from_ref(&first)).await, Some(0));
    let second = Life::start(&direct, &direct.path("gatehouse.log")).await;
    assert_eq!(role(&second).await.as_deref(), Some("standby"));

    path.cut(true);
    let cut_at = Instant::now();
    let deadline = cut_at + TAKEOVER;
    while role(&second).await.as_deref() != Some("leader") {
        assert!(
            Instant::now() < deadline,
            "nobody led within {TAKEOVER:?} of the cut; the database's sessions:\n{}",
            sessions(&database).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let took_over = cut_at.elapsed();
    // Both replicas on this machine's clock: the deposed leader stopped leading first.
    let stood_down = said_at(&log, "this replica stands down");
    let led = said_at(&direct.path("gatehouse.log"), "this replica leads");
    assert!(
        stood_down < led,
        "the cut-off leader stood down at {stood_down}, after the other led at {led}"
    );

    path.cut(false);
    let deadline = Instant::now() + TAKEOVER;
    while role(&first).await.as_deref() != Some("standby") {
        assert!(
            Instant::now() < deadline,
            "the healed replica never said it stands by"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(role(&second).await.as_deref(), Some("leader"), "one leader");
    println!("another replica led {took_over:?} after the cut");
}
