//! The outbox's classes of capacity, measured with the real store, worker and scheduler, and
//! the real `webhook` connector calling a receiver on loopback that takes a fixed time to
//! answer:
//!
//! 1. **Chat during a connector flood.** 1,000 grants are queued over 1 s, each a webhook call
//!    that takes 1 s to answer; meanwhile an approval card is committed every 20 ms and a
//!    security alert every 100 ms (alerts share one lane, the security channel, and go one at
//!    a time, each written before the next). Latency is from the commit returning to the chat port being handed the
//!    effect (a recording port: what is measured is the wait in the outbox, not Slack).
//! 2. **Mass expiry.** 2,000 grants expire evenly over 1.4 s through a webhook that answers
//!    in 100 ms, `max_concurrent = 64`. *Lag* is from a grant's `expires_at` to its revoke
//!    call reaching the receiver, and to the grant recorded as revoked.
//!
//! The restart with 100,000 overdue grants is the scheduler bench's last table.
//!
//! `cargo bench --bench outbox` (about two minutes); `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1`.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse::connector::{BoxFuture, Connectors};
use gatehouse::domain::effect::{Alert, Effect};
use gatehouse::domain::grant::GrantState;
use gatehouse::domain::ids::{GrantId, PersonId, RequestId};
use gatehouse::engine::{Engine, SystemClock};
use gatehouse::outbox::{ChatError, ChatPort, Posted, Worker};
use gatehouse::scheduler::Scheduler;
use gatehouse::store::{Commit, Expect, SledStore, Store};
use support::{Table, World, active_grant, bulk_grants, machine, percentile, smoke};

const PEOPLE: usize = 1000;
const CACHE_BYTES: u64 = 64 * 1024 * 1024;
/// How often a card is committed during a flood; an alert goes with every fifth.
const PROBE_EVERY: Duration = Duration::from_millis(20);
const ALERT_EVERY: u64 = 5;

fn main() {
    let smoke = smoke();
    println!(
        "# outbox bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let receiver = Receiver::start();
    let (calls, call_time, expiring) = if smoke {
        (50, Duration::from_millis(200), 100)
    } else {
        (1_000, Duration::from_secs(1), 2_000)
    };

    let mut flood = Table::new(
        &format!(
            "card and alert latency (ms after their commit; a card every {} ms, an alert every {} ms) while {calls} grants queued over 1 s each take {} ms at the webhook",
            PROBE_EVERY.as_millis(),
            PROBE_EVERY.as_millis() * u128::from(ALERT_EVERY),
            call_time.as_millis()
        ),
        &[
            "connector calls",
            "max_concurrent",
            "at once (most)",
            "probes",
            "card p50",
            "card p99",
            "card max",
            "alert p50",
            "alert p99",
            "alert max",
            "flood done in",
        ],
    );
    flood.row(flood_run(&receiver, 0, 64, call_time));
    for limit in [1024, 64] {
        flood.row(flood_run(&receiver, calls, limit, call_time));
        eprintln!(
            "flood with max_concurrent {limit} done ({})",
            support::load()
        );
    }
    flood.print();

    let mut expiry = Table::new(
        &format!(
            "mass expiry: {expiring} grants expiring evenly over 1.4 s, webhook answering in 100 ms, max_concurrent = 64 (lag from expires_at)"
        ),
        &[
            "grants",
            "revoke calls",
            "at once (most)",
            "call lag p50",
            "call lag p99",
            "call lag max",
            "revoked lag p50",
            "revoked lag p99",
            "revoked lag max",
        ],
    );
    expiry.row(expiry_run(&receiver, expiring));
    expiry.print();
}

/// A world whose resource `app` provisions through the webhook `hook` at `receiver`, with
/// `max_concurrent` calls at once.
fn hook_world(receiver: &Receiver, max_concurrent: usize) -> World {
    let world = World::new(PEOPLE, None, 64);
    let policy = world.dir.path().join("policy.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    std::fs::write(
        &policy,
        text.replace("connector = \"log\"", "connector = \"hook\""),
    )
    .unwrap();
    let config = world.config();
    let text = std::fs::read_to_string(&config).unwrap();
    let log = "[[connectors]]\nid = \"log\"\nkind = \"log\"\n";
    let hook = format!(
        "{log}\n[[connectors]]\nid = \"hook\"\nkind = \"webhook\"\nurl = \"{}\"\nsecret = \"bench-webhook-secret\"\ntimeout = \"30s\"\nmax_concurrent = {max_concurrent}\n",
        receiver.url
    );
    std::fs::write(&config, text.replace(log, &hook)).unwrap();
    world
}

fn engine(world: &World, store: &Arc<SledStore>) -> (Arc<Engine>, Connectors) {
    let loaded = gatehouse::app::load(&world.config()).unwrap();
    let connectors = Connectors::from_config(&loaded.config.connectors).unwrap();
    let engine = Engine::new(
        store.clone(),
        loaded.policy,
        loaded.directory,
        Arc::new(SystemClock),
    );
    (Arc::new(engine), connectors)
}

/// The worker (and the scheduler, with `scheduler`) on their own runtime, until dropped.
struct Running {
    runtime: tokio::runtime::Runtime,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(
        engine: &Arc<Engine>,
        connectors: Connectors,
        chat: Arc<TimedChat>,
        scheduler: bool,
    ) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        if scheduler {
            let scheduler = Scheduler::new(engine.clone(), TimeDelta::minutes(15));
            tasks.push(runtime.spawn(scheduler.run(stopped.clone())));
        }
        let worker = Worker::new(engine.clone(), connectors, chat);
        tasks.push(runtime.spawn(worker.run(stopped)));
        Running {
            runtime,
            stop,
            tasks,
        }
    }

    fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = self.runtime.block_on(task);
        }
    }
}

/// Waits until `done` (checked every 20 ms), at most `timeout`; whether it happened.
fn wait_until(timeout: Duration, done: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn flood_run(
    receiver: &Receiver,
    calls: u64,
    max_concurrent: usize,
    call_time: Duration,
) -> Vec<String> {
    let world = hook_world(receiver, max_concurrent);
    let store = Arc::new(SledStore::open_with(&world.data_dir(), CACHE_BYTES).unwrap());
    let (engine, connectors) = engine(&world, &store);
    receiver.reset(call_time);
    let chat = Arc::new(TimedChat::default());
    let running = Running::start(&engine, connectors, chat.clone(), false);

    let started = Instant::now();
    let flooding = {
        let engine = engine.clone();
        std::thread::spawn(move || {
            let now = Utc::now();
            for i in 0..calls {
                let at = started + Duration::from_secs_f64(i as f64 / calls as f64);
                std::thread::sleep(at.saturating_duration_since(Instant::now()));
                let mut grant =
                    active_grant(i + 1, i as usize % PEOPLE, now + TimeDelta::hours(1), now);
                grant.state = GrantState::Provisioning;
                let provision = Effect::Provision { grant: grant.id };
                let commit = Commit {
                    grants: vec![(grant, Expect::New)],
                    effects: vec![provision],
                    ..Commit::default()
                };
                engine.commit(commit).unwrap();
            }
        })
    };
    // Probes while the grants are queued and their calls under way.
    let probing = Duration::from_secs(1) + call_time;
    let mut committed = HashMap::new();
    let mut k = 0u64;
    while started.elapsed() < probing {
        k += 1;
        for effect in probe(k)
            .into_iter()
            .take(if k.is_multiple_of(ALERT_EVERY) { 2 } else { 1 })
        {
            let commit = Commit {
                effects: vec![effect.clone()],
                ..Commit::default()
            };
            engine.commit(commit).unwrap();
            committed.insert(label(&effect).unwrap(), Instant::now());
        }
        std::thread::sleep(PROBE_EVERY);
    }
    flooding.join().unwrap();
    let provisioned = || receiver.calls("grant") as u64 >= calls;
    let all_there = wait_until(Duration::from_secs(300), || {
        provisioned() && chat.count() >= committed.len()
    });
    let flood_done = started.elapsed();
    running.stop();

    let delivered = chat.delivered();
    let mut cards = Vec::new();
    let mut alerts = Vec::new();
    for (label, at) in &committed {
        if let Some(arrived) = delivered.get(label) {
            let latency = arrived.saturating_duration_since(*at);
            if label.starts_with("card") {
                cards.push(latency);
            } else {
                alerts.push(latency);
            }
        }
    }
    cards.sort();
    alerts.sort();
    let ms = |d: Duration| format!("{:.1}", d.as_secs_f64() * 1000.0);
    vec![
        if calls == 0 {
            "none".to_owned()
        } else {
            format!("{calls} × {} ms", call_time.as_millis())
        },
        if calls == 0 {
            "—".to_owned()
        } else {
            max_concurrent.to_string()
        },
        receiver.most().to_string(),
        format!(
            "{}/{}{}",
            cards.len() + alerts.len(),
            committed.len(),
            if all_there { "" } else { " (timed out)" }
        ),
        ms(percentile(&cards, 50.0)),
        ms(percentile(&cards, 99.0)),
        ms(cards.last().copied().unwrap_or_default()),
        ms(percentile(&alerts, 50.0)),
        ms(percentile(&alerts, 99.0)),
        ms(alerts.last().copied().unwrap_or_default()),
        if calls == 0 {
            "—".to_owned()
        } else {
            format!("{:.1} s", flood_done.as_secs_f64())
        },
    ]
}

/// The card and the alert committed at probe `k`.
fn probe(k: u64) -> [Effect; 2] {
    [
        Effect::ApprovalCard {
            request: RequestId(1_000_000 + k),
            approver: PersonId::new("m0"),
            stage: 0,
        },
        Effect::Alert {
            alert: Alert::EmergencyGranted {
                grant: GrantId(1_000_000 + k),
            },
        },
    ]
}

/// What a probe is known by: `card <request>`, `alert <grant>`.
fn label(effect: &Effect) -> Option<String> {
    match effect {
        Effect::ApprovalCard { request, .. } => Some(format!("card {request}")),
        Effect::Alert {
            alert: Alert::EmergencyGranted { grant },
        } => Some(format!("alert {grant}")),
        _ => None,
    }
}

fn expiry_run(receiver: &Receiver, expiring: u64) -> Vec<String> {
    let world = hook_world(receiver, 64);
    let store = Arc::new(SledStore::open_with(&world.data_dir(), CACHE_BYTES).unwrap());
    let first_expiry = Utc::now() + TimeDelta::seconds(3);
    let step = 1.4 / expiring as f64;
    let expiry =
        move |i: u64| first_expiry + TimeDelta::microseconds((i as f64 * step * 1e6) as i64);
    bulk_grants(&*store, 1, expiring, PEOPLE, expiry);
    let (engine, connectors) = engine(&world, &store);
    receiver.reset(Duration::from_millis(100));
    let running = Running::start(&engine, connectors, Arc::new(TimedChat::default()), true);
    let finished = wait_until(Duration::from_secs(120), || {
        receiver.calls("revoke") as u64 >= expiring && store.outbox(1).unwrap().is_empty()
    });
    running.stop();

    let arrived = receiver.arrivals("revoke");
    let mut calls = Vec::new();
    let mut revoked = Vec::new();
    for id in 1..=expiring {
        let expires = expiry(id - 1);
        if let Some(at) = arrived.get(&id) {
            calls.push((*at - expires).to_std().unwrap_or_default());
        }
        let grant = store.grant(GrantId(id)).unwrap().unwrap().value;
        if let GrantState::Revoked { at, .. } = grant.state {
            revoked.push((at - expires).to_std().unwrap_or_default());
        }
    }
    calls.sort();
    revoked.sort();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    vec![
        expiring.to_string(),
        format!(
            "{}{}",
            calls.len(),
            if finished { "" } else { " (timed out)" }
        ),
        receiver.most().to_string(),
        ms(percentile(&calls, 50.0)),
        ms(percentile(&calls, 99.0)),
        ms(calls.last().copied().unwrap_or_default()),
        ms(percentile(&revoked, 50.0)),
        ms(percentile(&revoked, 99.0)),
        ms(revoked.last().copied().unwrap_or_default()),
    ]
}

/// A chat port that notes when it was handed each probe, and delivers everything at once.
#[derive(Default)]
struct TimedChat {
    delivered: Mutex<HashMap<String, Instant>>,
}

impl TimedChat {
    fn count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }

    fn delivered(&self) -> HashMap<String, Instant> {
        self.delivered.lock().unwrap().clone()
    }
}

impl ChatPort for TimedChat {
    fn deliver<'a>(
        &'a self,
        effect: &'a Effect,
        _key: &'a str,
        _attempt: u32,
    ) -> BoxFuture<'a, Result<Posted, ChatError>> {
        let at = Instant::now();
        if let Some(label) = label(effect) {
            self.delivered.lock().unwrap().entry(label).or_insert(at);
        }
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A webhook receiver on loopback that answers every call with 200 after a fixed time, and
/// notes when each call arrived and how many were under way at once.
struct Receiver {
    url: String,
    state: Arc<Received>,
    _thread: std::thread::JoinHandle<()>,
}

#[derive(Default)]
struct Received {
    delay_ms: AtomicU64,
    running: AtomicUsize,
    most: AtomicUsize,
    /// (action, grant id) → when the call arrived.
    arrivals: Mutex<HashMap<(String, u64), DateTime<Utc>>>,
}

impl Receiver {
    fn start() -> Receiver {
        let state = Arc::new(Received::default());
        let shared = state.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                tx.send(listener.local_addr().unwrap()).unwrap();
                let app = axum::Router::new()
                    .route("/hook", post(answer))
                    .with_state(shared);
                axum::serve(listener, app).await.unwrap();
            });
        });
        let address = rx.recv().unwrap();
        Receiver {
            url: format!("http://{address}/hook"),
            state,
            _thread: thread,
        }
    }

    fn reset(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
        self.state.most.store(0, Ordering::SeqCst);
        self.state.arrivals.lock().unwrap().clear();
    }

    fn most(&self) -> usize {
        self.state.most.load(Ordering::SeqCst)
    }

    fn calls(&self, action: &str) -> usize {
        let arrivals = self.state.arrivals.lock().unwrap();
        arrivals.keys().filter(|(a, _)| a == action).count()
    }

    fn arrivals(&self, action: &str) -> HashMap<u64, DateTime<Utc>> {
        let arrivals = self.state.arrivals.lock().unwrap();
        arrivals
            .iter()
            .filter(|((a, _), _)| a == action)
            .map(|((_, id), at)| (*id, *at))
            .collect()
    }
}

async fn answer(State(state): State<Arc<Received>>, body: Bytes) -> &'static str {
    let at = Utc::now();
    let call: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let action = call["action"].as_str().unwrap_or("").to_owned();
    let grant = call["grant"]
        .as_str()
        .and_then(|g| g.strip_prefix("G-"))
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    state
        .arrivals
        .lock()
        .unwrap()
        .entry((action, grant))
        .or_insert(at);
    let running = state.running.fetch_add(1, Ordering::SeqCst) + 1;
    state.most.fetch_max(running, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay)).await;
    state.running.fetch_sub(1, Ordering::SeqCst);
    "ok"
}
