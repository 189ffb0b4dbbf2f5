//! Ack latency of signed Slack slash commands (`/access request app read …`, each a durable
//! submission) over real HTTP to the real server, open-loop at fixed rates, next to two
//! ceilings built here under the same load: a bare axum handler answering 200 (HTTP ceiling),
//! and one that verifies the Slack signature and appends the body to a file with group commit
//! (durable-ack ceiling: one fdatasync per batch of waiting requests).
//!
//! `cargo bench --bench ack` (about 3 minutes); `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1` for
//! a few seconds that only show it runs; `-- --only-gatehouse` leaves the ceilings out;
//! `-- --store postgres` runs Gatehouse on PostgreSQL too (a server of its own, durable
//! commits, a fresh database each step), beside Gatehouse on sled; `-- --store postgres
//! --only-postgres` runs Gatehouse on PostgreSQL alone (for a before/after of a change there).

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::io::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use support::cards::{CardWatch, request_number};
use support::load::{Make, Summary, open_loop};
use support::{
    Server, Table, World, machine, ms, requester_slack, slack_headers, slash_command, smoke,
};

const RATES: [f64; 9] = [
    100.0, 250.0, 500.0, 1000.0, 2000.0, 3000.0, 4000.0, 8000.0, 16000.0,
];
/// Requests sent before each measured step, at a low rate, so connections and caches are warm.
const WARM: usize = 50;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    Http,
    Durable,
    Gatehouse,
    GatehousePostgres,
}

impl Target {
    fn name(self) -> &'static str {
        match self {
            Target::Http => "HTTP ceiling (bare axum 200)",
            Target::Durable => "durable-ack ceiling (verify + group-committed append)",
            Target::Gatehouse => "Gatehouse /slack/commands",
            Target::GatehousePostgres => "Gatehouse /slack/commands on PostgreSQL",
        }
    }
}

fn main() {
    let smoke = smoke();
    let (mut rates, mut secs) = if smoke {
        (vec![50.0, 100.0], 0.4)
    } else {
        (RATES.to_vec(), 5.0)
    };
    // `GATEHOUSE_BENCH_RATES=2000 GATEHOUSE_BENCH_SECS=20`: other rates, or longer steps (to
    // profile one rate).
    if let Some(chosen) = support::sizes_from_env("GATEHOUSE_BENCH_RATES") {
        rates = chosen.into_iter().map(|r| r as f64).collect();
    }
    if let Some(&[chosen]) = support::sizes_from_env("GATEHOUSE_BENCH_SECS").as_deref() {
        secs = chosen as f64;
    }
    let step = Duration::from_secs_f64(secs);
    println!(
        "# ack bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let most = rates.iter().map(|r| (r * secs) as usize).max().unwrap_or(0);
    let slack = CardWatch::start();
    let world = World::new(most + WARM + 10, Some(&slack.api_url), 64);

    let mut results = Vec::new();
    // Gatehouse's store writer at each rate (from its `/metrics`).
    let mut writers: Vec<(f64, Target, WriterShare)> = Vec::new();
    // `-- --only-gatehouse` skips the ceilings (for a before/after of a change in Gatehouse).
    let only_gatehouse = std::env::args().any(|a| a == "--only-gatehouse");
    let only_postgres = std::env::args().any(|a| a == "--only-postgres");
    let postgres = std::env::args()
        .collect::<Vec<_>>()
        .windows(2)
        .any(|w| w[0] == "--store" && w[1] == "postgres")
        .then(support::postgres::Postgres::start);
    let mut targets = vec![Target::Http, Target::Durable, Target::Gatehouse];
    if postgres.is_some() {
        targets.push(Target::GatehousePostgres);
        if only_postgres {
            targets = vec![Target::GatehousePostgres];
        }
    }
    for &target in &targets {
        if only_gatehouse && matches!(target, Target::Http | Target::Durable) {
            results.push((target, rates.iter().map(|r| (*r, None)).collect()));
            continue;
        }
        let mut rows: Vec<(f64, Option<Summary>)> = Vec::new();
        let mut overloaded = false;
        for &rate in &rates {
            if overloaded {
                rows.push((rate, None));
                continue;
            }
            settle(smoke);
            let (summary, writer) = run_step(target, &world, postgres.as_ref(), rate, step);
            if let Some(writer) = writer {
                writers.push((rate, target, writer));
            }
            eprintln!(
                "{} at {rate}/s: p50 {} ms, p99 {} ms, failed {}, {} µs CPU/request ({})",
                target.name(),
                ms(summary.p50),
                ms(summary.p99),
                summary.failed,
                summary.cpu_per_request.unwrap_or_default().as_micros(),
                support::load()
            );
            overloaded =
                summary.p99 > Duration::from_secs(1) || summary.failed * 100 > summary.sent;
            rows.push((rate, Some(summary)));
        }
        results.push((target, rows));
    }

    let mut table = Table::new(
        &format!("ack latency, open loop, {secs} s per rate (ms from the scheduled send)"),
        &[
            "rate/s",
            "target",
            "sent",
            "failed",
            "p50",
            "p99",
            "max",
            "cpu µs/req",
        ],
    );
    for (i, &rate) in rates.iter().enumerate() {
        for (target, rows) in &results {
            let cells = match &rows[i].1 {
                Some(s) => vec![
                    s.sent.to_string(),
                    s.failed.to_string(),
                    ms(s.p50),
                    ms(s.p99),
                    ms(s.max),
                    s.cpu_per_request
                        .map_or_else(String::new, |c| c.as_micros().to_string()),
                ],
                None => vec![
                    "—".into(),
                    "not run".into(),
                    String::new(),
                    String::new(),
                    String::new(),
                    String::new(),
                ],
            };
            let mut row = vec![format!("{rate}"), short(*target).to_owned()];
            row.extend(cells);
            table.row(row);
        }
    }
    table.print();

    let mut store = Table::new(
        "Gatehouse's store writer during each step (from /metrics): the one writer applies every commit (on PostgreSQL: one transaction per batch, a flush is its COMMIT)",
        &[
            "rate/s",
            "store",
            "writer busy",
            "writes/submission",
            "writes/batch",
            "flushes/s",
            "ms/batch",
            "of it flushing",
        ],
    );
    for (rate, target, w) in &writers {
        store.row(vec![
            format!("{rate}"),
            short(*target).to_owned(),
            format!("{:.0}%", w.busy * 100.0),
            format!("{:.1}", w.writes_per_submission),
            format!("{:.1}", w.writes_per_batch),
            format!("{:.0}", w.flushes_per_second),
            format!("{:.2}", w.ms_per_batch),
            format!("{:.0}%", w.flushing * 100.0),
        ]);
    }
    store.print();

    let sustained = |target: Target| -> f64 {
        results
            .iter()
            .find(|(t, _)| *t == target)
            .map(|(_, rows)| {
                rows.iter()
                    .filter(|(_, s)| s.as_ref().is_some_and(Summary::sustained))
                    .map(|(rate, _)| *rate)
                    .fold(0.0, f64::max)
            })
            .unwrap_or(0.0)
    };
    let gatehouse = sustained(Target::Gatehouse);
    let mut summary = Table::new(
        "highest sustained rate (every request answered, p99 < 100 ms)",
        &["target", "sustained/s", "Gatehouse ÷ it"],
    );
    for target in [
        Target::Gatehouse,
        Target::GatehousePostgres,
        Target::Durable,
        Target::Http,
    ] {
        if !targets.contains(&target) {
            continue;
        }
        let rate = sustained(target);
        let ratio = if rate > 0.0 {
            format!("{:.2}", gatehouse / rate)
        } else {
            "—".into()
        };
        summary.row(vec![target.name().to_owned(), format!("{rate}"), ratio]);
    }
    summary.print();
    if rates
        .last()
        .is_some_and(|top| sustained(Target::Durable) >= *top)
    {
        println!(
            "\n(the ceilings sustained the highest rate tried: their real ceiling is higher, so the ratios are upper bounds)"
        );
    }
}

/// What `work` returns, and the CPU the whole process used meanwhile.
fn with_cpu<T>(work: impl FnOnce() -> T) -> (T, Duration) {
    let before = support::process_cpu();
    let done = work();
    (done, support::process_cpu().saturating_sub(before))
}

/// Lets the disk write back what the last step left dirty (the durable ceiling appends tens
/// of MB at its top rates) before the next step measures: measured in one run, Gatehouse's
/// p99 at 2,000/s was 438 ms right after the ceilings' steps and 65 ms alone.
fn settle(smoke: bool) {
    let _ = std::process::Command::new("sync").status();
    if !smoke {
        std::thread::sleep(Duration::from_secs(2));
    }
}

fn short(target: Target) -> &'static str {
    match target {
        Target::Http => "http ceiling",
        Target::Durable => "durable ceiling",
        Target::Gatehouse => "gatehouse",
        Target::GatehousePostgres => "gatehouse (postgres)",
    }
}

/// How busy Gatehouse's store writer was during a step.
struct WriterShare {
    /// Of the step's time, the share the writer spent applying batches.
    busy: f64,
    writes_per_submission: f64,
    writes_per_batch: f64,
    flushes_per_second: f64,
    /// The writer's time per batch.
    ms_per_batch: f64,
    /// Of the writer's time, the share spent flushing: on PostgreSQL the round trip of the
    /// batch's writes and its `COMMIT` (the rest is taking the head lock with the reads, and
    /// checking and applying the commits in memory).
    flushing: f64,
}

/// The store's counters from `/metrics` at `base`: busy seconds, writes, batches, flushes,
/// flushing seconds.
fn store_counters(base: &str) -> [f64; 5] {
    let address = base.trim_start_matches("http://");
    let mut text = String::new();
    if let Ok(mut stream) = std::net::TcpStream::connect(address) {
        let request =
            format!("GET /metrics HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        let _ = stream.write_all(request.as_bytes());
        let _ = std::io::Read::read_to_string(&mut stream, &mut text);
    }
    [
        "gatehouse_store_writer_busy_seconds_total",
        "gatehouse_store_commits_total",
        "gatehouse_store_batches_total",
        "gatehouse_store_flushes_total",
        "gatehouse_store_flush_seconds_total",
    ]
    .map(|name| {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    })
}

fn run_step(
    target: Target,
    world: &World,
    postgres: Option<&support::postgres::Postgres>,
    rate: f64,
    step: Duration,
) -> (Summary, Option<WriterShare>) {
    match target {
        Target::Gatehouse | Target::GatehousePostgres => {
            let _ = std::fs::remove_dir_all(world.data_dir());
            let config = match (target, postgres) {
                (Target::GatehousePostgres, Some(pg)) => world.config_on_postgres(&pg.database()),
                _ => world.config(),
            };
            let server = Server::start(&config);
            let url = format!("{}/slack/commands", server.base);
            let make = submission(0);
            let warm = open_loop(
                &url,
                100.0,
                Duration::from_secs_f64(WARM as f64 / 100.0),
                &*make,
            );
            assert!(
                warm.iter().all(|o| o.ok),
                "warm-up failed: {}",
                warm[0].body
            );
            let make = submission(WARM);
            let before = store_counters(&server.base);
            let started = std::time::Instant::now();
            let (mut outcomes, cpu) = with_cpu(|| open_loop(&url, rate, step, &*make));
            let took = started.elapsed().as_secs_f64();
            let after = store_counters(&server.base);
            // A 200 that is not a submission (a refusal) is a failure too.
            for outcome in &mut outcomes {
                outcome.ok &= request_number(&outcome.body).is_some();
            }
            server.stop();
            let [busy, writes, batches, flushes, flushing] =
                [0, 1, 2, 3, 4].map(|i| after[i] - before[i]);
            let writer = WriterShare {
                busy: busy / took,
                writes_per_submission: writes / outcomes.len().max(1) as f64,
                writes_per_batch: writes / batches.max(1.0),
                flushes_per_second: flushes / took,
                ms_per_batch: busy * 1000.0 / batches.max(1.0),
                flushing: flushing / busy.max(f64::MIN_POSITIVE),
            };
            (Summary::of(&outcomes).with_cpu(cpu), Some(writer))
        }
        Target::Http | Target::Durable => {
            let ceiling = Ceiling::start(target, world);
            let url = format!("{}/slack/commands", ceiling.base);
            let make = submission(0);
            let _ = open_loop(
                &url,
                100.0,
                Duration::from_secs_f64(WARM as f64 / 100.0),
                &*make,
            );
            let (outcomes, cpu) = with_cpu(|| open_loop(&url, rate, step, &*make));
            (Summary::of(&outcomes).with_cpu(cpu), None)
        }
    }
}

/// Signed `/access request app read for 1h …` from requester `offset + i`.
fn submission(offset: usize) -> Box<Make> {
    Box::new(move |i| {
        let n = offset + i as usize;
        let body = slash_command(
            &requester_slack(n),
            "request app read for 1h load test of the ack path",
            &format!("trigger-{n}"),
        );
        let headers = slack_headers(&body).to_vec();
        (body, headers)
    })
}

/// A ceiling server on its own runtime; stops when dropped (the runtime with it).
struct Ceiling {
    base: String,
    _runtime: tokio::runtime::Runtime,
}

impl Ceiling {
    fn start(target: Target, world: &World) -> Ceiling {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        let router = match target {
            Target::Http => axum::Router::new().route("/slack/commands", post(bare)),
            _ => {
                let log = world.dir.path().join("ceiling.log");
                let appender = Appender::start(&log);
                axum::Router::new()
                    .route("/slack/commands", post(durable))
                    .with_state(appender)
            }
        };
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        runtime.spawn(async move { axum::serve(listener, router).await });
        Ceiling {
            base,
            _runtime: runtime,
        }
    }
}

async fn bare(_body: Bytes) -> StatusCode {
    StatusCode::OK
}

async fn durable(
    State(appender): State<Arc<Appender>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let now = chrono::Utc::now().timestamp();
    if gatehouse::slack::verify::verify(support::SIGNING_SECRET.as_bytes(), &headers, &body, now)
        .is_err()
    {
        return StatusCode::UNAUTHORIZED;
    }
    let (done, durable) = tokio::sync::oneshot::channel();
    if appender.queue.send((body, done)).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    match durable.await {
        Ok(true) => StatusCode::OK,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Appends bodies to a file; one thread takes everything queued, writes it, calls
/// fdatasync once, and only then answers each writer.
struct Appender {
    queue: std::sync::mpsc::Sender<(Bytes, tokio::sync::oneshot::Sender<bool>)>,
}

impl Appender {
    fn start(path: &std::path::Path) -> Arc<Appender> {
        let (queue, waiting) =
            std::sync::mpsc::channel::<(Bytes, tokio::sync::oneshot::Sender<bool>)>();
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        std::thread::spawn(move || {
            while let Ok(first) = waiting.recv() {
                let mut batch = vec![first];
                batch.extend(waiting.try_iter());
                let mut written = true;
                for (body, _) in &batch {
                    written &= file
                        .write_all(body)
                        .and_then(|()| file.write_all(b"\n"))
                        .is_ok();
                }
                written &= file.sync_data().is_ok();
                for (_, done) in batch {
                    let _ = done.send(written);
                }
            }
        });
        Arc::new(Appender { queue })
    }
}
