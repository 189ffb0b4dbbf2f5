//! From a signed `/access request …` being sent (its scheduled moment, open loop) to the
//! approver's card arriving at the fake Slack (chat.postMessage to the manager's DM): the
//! submission's commit, the outbox worker, rendering and the Web API call.
//!
//! `cargo bench --bench e2e` (about two minutes); `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1`;
//! `GATEHOUSE_BENCH_RATES=1000,2000` for other rates.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::time::{Duration, Instant};

use support::cards::{CardWatch, request_number};
use support::load::{Summary, open_loop};
use support::{
    Server, Table, World, machine, ms, percentile, requester_slack, slack_headers, slash_command,
    smoke,
};

fn main() {
    let smoke = smoke();
    let (mut rates, secs) = if smoke {
        (vec![20.0], 1.0)
    } else {
        // The higher rates show where cards stop keeping up with submissions.
        (vec![100.0, 200.0, 500.0, 1000.0, 2000.0], 10.0)
    };
    if let Some(chosen) = support::sizes_from_env("GATEHOUSE_BENCH_RATES") {
        rates = chosen.into_iter().map(|r| r as f64).collect();
    }
    println!(
        "# e2e bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let most = rates.iter().map(|r| (r * secs) as usize).max().unwrap_or(0);
    let slack = CardWatch::start();
    let world = World::new(most + 10, Some(&slack.api_url), 64);
    let mut table = Table::new(
        &format!("submission → approver's card at Slack, open loop, {secs} s per rate (ms)"),
        &[
            "rate/s",
            "sent",
            "acked",
            "cards",
            "ack p99",
            "card p50",
            "card p99",
            "card max",
            "last card after",
        ],
    );
    for rate in rates {
        let _ = std::fs::remove_dir_all(world.data_dir());
        let server = Server::start(&world.config());
        let url = format!("{}/slack/commands", server.base);
        let make = move |i: u64| {
            let body = slash_command(
                &requester_slack(i as usize),
                "request app read for 1h end to end bench",
                &format!("e2e-{rate}-{i}"),
            );
            (body.clone(), slack_headers(&body).to_vec())
        };
        let started = Instant::now();
        let outcomes = open_loop(&url, rate, Duration::from_secs_f64(secs), &make);
        let ack = Summary::of(&outcomes);
        let sent: Vec<(u64, Instant)> = outcomes
            .iter()
            .filter(|o| o.ok)
            .filter_map(|o| request_number(&o.body).map(|n| (n, o.scheduled)))
            .collect();
        // Wait for every card (or give up after a minute).
        let deadline = Instant::now() + Duration::from_secs(60);
        let cards = loop {
            let cards = slack.cards();
            if sent.iter().all(|(n, _)| cards.contains_key(n)) || Instant::now() > deadline {
                break cards;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        server.stop();
        let mut latencies: Vec<Duration> = sent
            .iter()
            .filter_map(|(n, at)| {
                cards
                    .get(n)
                    .map(|arrived| arrived.saturating_duration_since(*at))
            })
            .collect();
        latencies.sort();
        let last = sent
            .iter()
            .filter_map(|(n, _)| cards.get(n))
            .max()
            .map(|t| t.saturating_duration_since(started));
        table.row(vec![
            format!("{rate}"),
            ack.sent.to_string(),
            sent.len().to_string(),
            latencies.len().to_string(),
            ms(ack.p99),
            ms(percentile(&latencies, 50.0)),
            ms(percentile(&latencies, 99.0)),
            ms(latencies.last().copied().unwrap_or_default()),
            last.map_or("—".into(), |d| format!("{:.1} s", d.as_secs_f64())),
        ]);
        slack.clear();
        eprintln!("e2e at {rate}/s done ({})", support::load());
    }
    table.print();
}
