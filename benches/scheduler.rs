//! The scheduler at 10k, 100k and 1M live grants (built in bulk through the `Store` trait):
//! the cost of one wake against the number of grants, and the revocation lag of grants
//! expiring during the run — from `expires_at` to the grant revoked, i.e. its `Deprovision`
//! done through the `log` connector and committed — with the real scheduler and outbox worker.
//! Then a restart with 100k overdue grants: the time until every one is revoked, and the
//! worker's memory; again with their revocations started before the restart, so that it
//! finds the outbox holding two effects a grant.
//!
//! `cargo bench --bench scheduler` (several minutes: building 1M grants dominates);
//! `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1`; `GATEHOUSE_BENCH_SIZES=10000,100000` and
//! `GATEHOUSE_BENCH_OVERDUE=20000` run other sizes; `GATEHOUSE_BENCH_ONLY=restart` runs the
//! restart alone (its peak memory is then the restart's); `-- --store postgres` runs it all on
//! PostgreSQL (a server of its own, durable commits, a fresh database per run) instead of sled.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse::connector::Connectors;
use gatehouse::domain::grant::GrantState;
use gatehouse::domain::ids::GrantId;
use gatehouse::engine::{Engine, SystemClock};
use gatehouse::outbox::{LogChat, Worker};
use gatehouse::scheduler::Scheduler;
use gatehouse::store::{PgConfig, PgStore, SledStore, Store};
use support::postgres::Postgres;
use support::{Table, World, bulk_grants, machine, percentile, smoke};

/// Requesters the grants are spread over.
const PEOPLE: usize = 1000;
const CACHE_BYTES: u64 = 64 * 1024 * 1024;

fn main() {
    let smoke = smoke();
    let (sizes, expiring, window, overdue) = if smoke {
        (vec![2_000_u64], 50_u64, Duration::from_secs(1), 500_u64)
    } else {
        (
            vec![10_000, 100_000, 1_000_000],
            1_000,
            Duration::from_secs(10),
            100_000,
        )
    };
    let sizes = support::sizes_from_env("GATEHOUSE_BENCH_SIZES").unwrap_or(sizes);
    let restart_only = std::env::var("GATEHOUSE_BENCH_ONLY").is_ok_and(|only| only == "restart");
    let sizes = if restart_only { Vec::new() } else { sizes };
    let overdue = support::sizes_from_env("GATEHOUSE_BENCH_OVERDUE")
        .and_then(|n| n.first().copied())
        .unwrap_or(overdue);
    println!(
        "# scheduler bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let world = World::new(PEOPLE, None, 64);
    let postgres = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "--store" && w[1] == "postgres")
        .then(Postgres::start);
    let backend = Backend(postgres.as_ref());
    println!("store: {}", backend.name());

    let mut table = Table::new(
        &format!(
            "revocation lag ({expiring} grants expiring evenly over {} s; the rest expire in 30 days) and cost of a wake",
            window.as_secs()
        ),
        &[
            "live grants",
            "built in",
            "wake p50",
            "wake p99",
            "revoked",
            "lag p50",
            "lag p99",
            "lag max",
            "/metrics gauges",
        ],
    );
    for &size in &sizes {
        let row = lag_run(&world, backend, size, expiring, window);
        table.row(row);
        eprintln!("{size} grants done ({})", support::load());
    }
    if !sizes.is_empty() {
        table.print();
    }

    let mut restart = Table::new(
        "restart with overdue grants: catch-up through the log connector",
        &[
            "overdue grants",
            "outbox at start",
            "store opened in",
            "all revocations started",
            "all grants revoked",
            "outbox empty",
            "revoked/s",
            "RSS at start → peak",
        ],
    );
    restart.row(restart_run(&world, backend, overdue, false));
    // The same grants with their revocations started before the restart: the outbox it finds
    // holds two effects a grant (the call, the refresh of the holder's warning).
    restart.row(restart_run(&world, backend, overdue, true));
    restart.print();
}

/// Where the grants are stored: sled in a temporary directory, or a fresh database.
#[derive(Clone, Copy)]
struct Backend<'a>(Option<&'a Postgres>);

impl Backend<'_> {
    fn name(self) -> &'static str {
        match self.0 {
            None => "sled",
            Some(_) => "postgres",
        }
    }

    /// A new, empty store; the directory it lives in (kept for a reopen).
    fn create(self) -> (Arc<dyn Store>, Place) {
        match self.0 {
            None => {
                let dir = tempfile::tempdir().unwrap();
                let store = SledStore::open_with(dir.path(), CACHE_BYTES).unwrap();
                (Arc::new(store), Place::Dir(dir))
            }
            Some(pg) => {
                let url = pg.database();
                let store = PgStore::open(config(&url)).unwrap();
                (Arc::new(store), Place::Url(url))
            }
        }
    }

    fn reopen(self, place: &Place) -> Arc<dyn Store> {
        match place {
            Place::Dir(dir) => Arc::new(SledStore::open_with(dir.path(), CACHE_BYTES).unwrap()),
            Place::Url(url) => Arc::new(PgStore::open(config(url)).unwrap()),
        }
    }
}

enum Place {
    Dir(tempfile::TempDir),
    Url(String),
}

fn config(url: &str) -> PgConfig {
    PgConfig::new(url, None, gatehouse::config::SslMode::Disable, None, 16).unwrap()
}

fn engine(world: &World, store: &Arc<dyn Store>) -> (Arc<Engine>, Connectors) {
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

/// Runs the real scheduler and outbox worker until `done`, on their own runtime.
fn run_until(
    engine: &Arc<Engine>,
    store: &dyn Store,
    connectors: Connectors,
    timeout: Duration,
    done: impl Fn(&dyn Store) -> bool,
) -> bool {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let scheduler = Scheduler::new(engine.clone(), TimeDelta::minutes(15));
    let worker = Worker::new(engine.clone(), connectors, Arc::new(LogChat));
    let tasks = [
        runtime.spawn(scheduler.run(stopped.clone())),
        runtime.spawn(worker.run(stopped)),
    ];
    let deadline = Instant::now() + timeout;
    let finished = loop {
        if done(store) {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let _ = stop.send(true);
    for task in tasks {
        let _ = runtime.block_on(task);
    }
    finished
}

fn micros(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

fn lag_run(
    world: &World,
    backend: Backend,
    size: u64,
    expiring: u64,
    window: Duration,
) -> Vec<String> {
    let (store, _place) = backend.create();
    let built = Instant::now();
    let now = Utc::now();
    let later = now + TimeDelta::days(30);
    bulk_grants(&*store, 1, size - expiring, PEOPLE, |i| {
        later + TimeDelta::milliseconds(i as i64)
    });
    // The measured grants expire from a few seconds after the build, evenly over `window`.
    let first_expiry = Utc::now() + TimeDelta::seconds(3);
    let step = window.as_secs_f64() / expiring as f64;
    let expiry =
        move |i: u64| first_expiry + TimeDelta::microseconds((i as f64 * step * 1e6) as i64);
    let first_id = size - expiring + 1;
    bulk_grants(&*store, first_id, expiring, PEOPLE, expiry);
    let built = built.elapsed();

    let (engine, connectors) = engine(world, &store);
    // The cost of a wake with nothing due: a pass (what is due, from the indexes) and the
    // next wake-up time, as the scheduler does each time it wakes.
    let scheduler = Scheduler::new(engine.clone(), TimeDelta::minutes(15));
    let mut wakes = Vec::new();
    for _ in 0..200 {
        let start = Instant::now();
        let pass = scheduler.wake().unwrap();
        engine.next_wake(TimeDelta::minutes(15)).unwrap();
        wakes.push(start.elapsed());
        assert_eq!(pass.revoked, 0, "nothing is due yet");
    }
    wakes.sort();
    // What a `/metrics` scrape reads from the store.
    let scrape = Instant::now();
    gatehouse::metrics::StoreGauges::read(&*store).unwrap();
    let scrape = scrape.elapsed();

    let last_id = size;
    let revoked = |store: &dyn Store| {
        (first_id..=last_id)
            .rev()
            .step_by(97)
            .all(|id| is_revoked(store, id))
            && store
                .grants_expiring(DateTime::<Utc>::MAX_UTC, 1)
                .unwrap()
                .first()
                .is_none_or(|(at, _)| *at > later - TimeDelta::days(1))
            && store.outbox(1).unwrap().is_empty()
    };
    let timeout = window + Duration::from_secs(120);
    let finished = run_until(&engine, &*store, connectors, timeout, revoked);
    let mut lags = Vec::new();
    let mut count = 0;
    for id in first_id..=last_id {
        let grant = store.grant(GrantId(id)).unwrap().unwrap().value;
        if let (GrantState::Revoked { at, .. }, Some(expires)) = (&grant.state, grant.expires_at) {
            count += 1;
            lags.push((*at - expires).to_std().unwrap_or_default());
        }
    }
    lags.sort();
    let ms = |d: Duration| format!("{:.0} ms", d.as_secs_f64() * 1000.0);
    vec![
        size.to_string(),
        format!("{:.1} s", built.as_secs_f64()),
        micros(percentile(&wakes, 50.0)),
        micros(percentile(&wakes, 99.0)),
        format!(
            "{count}/{expiring}{}",
            if finished { "" } else { " (timed out)" }
        ),
        ms(percentile(&lags, 50.0)),
        ms(percentile(&lags, 99.0)),
        ms(lags.last().copied().unwrap_or_default()),
        ms(scrape),
    ]
}

fn is_revoked(store: &dyn Store, id: u64) -> bool {
    store
        .grant(GrantId(id))
        .unwrap()
        .is_some_and(|g| matches!(g.value.state, GrantState::Revoked { .. }))
}

/// A restart that finds `overdue` grants past their end, their revocations `started` or not.
fn restart_run(world: &World, backend: Backend, overdue: u64, started: bool) -> Vec<String> {
    let (store, place) = backend.create();
    {
        let past = Utc::now() - TimeDelta::hours(2);
        bulk_grants(&*store, 1, overdue, PEOPLE, |i| {
            past + TimeDelta::milliseconds(i as i64)
        });
    }
    if started {
        let (engine, _) = engine(world, &store);
        while engine.revoke_expired_grants(100_000).unwrap() > 0 {}
    }
    let queued = store.outbox(usize::MAX).unwrap().len();
    drop(store);
    let opened = Instant::now();
    let store = backend.reopen(&place);
    let opened = opened.elapsed();
    let (engine, connectors) = engine(world, &store);
    let writes_before = store.write_stats();
    reset_peak_rss();
    let rss_at_start = peak_rss();
    let started = Instant::now();
    let all_started = std::sync::Mutex::new(None);
    let all_revoked = std::sync::Mutex::new(None);
    let done = |store: &dyn Store| {
        let none_live = store
            .grants_expiring(DateTime::<Utc>::MAX_UTC, 1)
            .unwrap()
            .is_empty();
        if none_live {
            all_started.lock().unwrap().get_or_insert(started.elapsed());
        }
        // The tally counts grants live or revoking: none left is every one revoked, the
        // target having confirmed it (the notices to their holders may still be queued).
        let tally = store.grant_tally().unwrap();
        if none_live && tally.active + tally.revoking + tally.provisioning == 0 {
            all_revoked.lock().unwrap().get_or_insert(started.elapsed());
        }
        none_live && store.outbox(1).unwrap().is_empty() && is_revoked(store, overdue)
    };
    // Past this the table says how many were revoked by then, and at what rate.
    let finished = run_until(&engine, &*store, connectors, Duration::from_secs(180), done);
    let total = started.elapsed();
    let writes = store.write_stats();
    let per_grant = |n: u64| n as f64 / overdue as f64;
    eprintln!(
        "the store's writer during the restart: {:.1} writes a grant in {} batches ({:.0} writes a batch), busy {:.1} s ({:.0} µs a grant); {} flushes taking {:.1} s",
        per_grant(writes.commits - writes_before.commits),
        writes.batches - writes_before.batches,
        (writes.commits - writes_before.commits) as f64
            / (writes.batches - writes_before.batches).max(1) as f64,
        (writes.busy - writes_before.busy).as_secs_f64(),
        (writes.busy - writes_before.busy).as_secs_f64() * 1e6 / overdue as f64,
        writes.flushes - writes_before.flushes,
        (writes.flushing - writes_before.flushing).as_secs_f64(),
    );
    let revoked = (1..=overdue).filter(|id| is_revoked(&*store, *id)).count();
    let secs = |d: Duration| format!("{:.1} s", d.as_secs_f64());
    let all_started = *all_started.lock().unwrap();
    let all_revoked = *all_revoked.lock().unwrap();
    vec![
        overdue.to_string(),
        queued.to_string(),
        secs(opened),
        all_started.map_or("—".into(), secs),
        all_revoked.map_or("—".into(), secs),
        format!(
            "{}{}",
            secs(total),
            if finished { "" } else { " (timed out)" }
        ),
        format!(
            "{:.0} ({revoked} revoked)",
            revoked as f64 / all_revoked.unwrap_or(total).as_secs_f64()
        ),
        format!(
            "{} → {} MiB",
            rss_at_start.map_or("—".into(), |kib| (kib / 1024).to_string()),
            peak_rss().map_or("—".into(), |kib| (kib / 1024).to_string()),
        ),
    ]
}

/// Starts the process's peak resident set (`VmHWM`) again from what it holds now, so that the
/// peak read after the restart is the restart's, not the build's (Linux; elsewhere a no-op).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident set in KiB, from `/proc/self/status` (Linux).
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
