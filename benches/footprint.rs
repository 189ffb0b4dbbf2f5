//! Memory and start-up of the real binary (`gatehouse serve`, spawned): resident memory idle
//! on an empty data directory and with 1M live grants, for a few `server.cache_mb`, and the
//! time from process start to `/healthz` answering; then one backup through
//! `GET /api/v1/backup`, read to the end, and the peak memory after it. Memory is VmRSS (now)
//! and VmHWM (peak) from /proc/<pid>/status.
//!
//! `cargo bench --bench footprint` (a few minutes: building 1M grants dominates);
//! `-- --smoke` or `GATEHOUSE_BENCH_SMOKE=1`; `GATEHOUSE_BENCH_GRANTS=100000` for another size.

// A test harness: its fakes check signatures and timestamps against the real wall clock and
// talk to local servers over plain HTTP, so the product's clock and TLS rules
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::{TimeDelta, Utc};
use gatehouse::store::SledStore;
use support::{Table, World, bulk_grants, machine, smoke};

const PEOPLE: usize = 1000;
/// How long the server idles before its memory is read.
const SETTLE: Duration = Duration::from_secs(3);

fn main() {
    let smoke = smoke();
    let (grants, caches) = if smoke {
        (10_000_u64, vec![64_u64])
    } else {
        (1_000_000, vec![16, 64])
    };
    let grants = support::sizes_from_env("GATEHOUSE_BENCH_GRANTS")
        .and_then(|n| n.first().copied())
        .unwrap_or(grants);
    println!(
        "# footprint bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let mut table = Table::new(
        "resident memory and start-up of `gatehouse serve` (spawned binary)",
        &[
            "data",
            "cache_mb",
            "start → /healthz",
            "VmRSS idle",
            "VmHWM (peak)",
            "backup",
            "VmHWM after it",
            "data dir",
        ],
    );
    for &cache in &caches {
        let world = World::new(PEOPLE, None, cache);
        table.row(measure(&world, "empty", cache));
    }
    let world = World::new(PEOPLE, None, 64);
    let built = Instant::now();
    {
        let store = SledStore::open_with(&world.data_dir(), 64 * 1024 * 1024).unwrap();
        let later = Utc::now() + TimeDelta::days(30);
        bulk_grants(&store, 1, grants, PEOPLE, |i| {
            later + TimeDelta::milliseconds(i as i64)
        });
    }
    eprintln!(
        "built {grants} grants in {:.1} s",
        built.elapsed().as_secs_f64()
    );
    for &cache in &caches {
        let config = std::fs::read_to_string(world.config()).unwrap();
        let config = config
            .lines()
            .map(|l| {
                if l.starts_with("cache_mb") {
                    format!("cache_mb = {cache}")
                } else {
                    l.to_owned()
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        std::fs::write(world.config(), config).unwrap();
        table.row(measure(&world, &format!("{grants} live grants"), cache));
    }
    table.print();
}

fn measure(world: &World, what: &str, cache: u64) -> Vec<String> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(world.config())
        .arg("serve")
        .env("GATEHOUSE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = loop {
        if healthy(port) {
            break Some(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(120) || child.try_wait().unwrap().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    std::thread::sleep(SETTLE);
    let (rss, hwm) = memory(child.id());
    let backup = Instant::now();
    let backed_up = backup_size(port);
    let backup = backup.elapsed();
    let (_, hwm_after) = memory(child.id());
    stop(&mut child);
    let size = dir_size(&world.data_dir());
    vec![
        what.to_owned(),
        cache.to_string(),
        ready.map_or("never".into(), |d| {
            format!("{:.0} ms", d.as_secs_f64() * 1000.0)
        }),
        format!("{:.1} MB", rss as f64 / 1024.0),
        format!("{:.1} MB", hwm as f64 / 1024.0),
        format!(
            "{:.0} MB in {:.1} s",
            backed_up as f64 / 1e6,
            backup.as_secs_f64()
        ),
        format!("{:.1} MB", hwm_after as f64 / 1024.0),
        format!("{:.0} MB", size as f64 / 1e6),
    ]
}

/// `GET /healthz` answered 200.
fn healthy(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut answer = [0u8; 16];
    stream
        .read(&mut answer)
        .is_ok_and(|n| answer[..n].starts_with(b"HTTP/1.1 200"))
}

/// Takes a backup through `GET /api/v1/backup` and reads it to the end, as `gatehouse
/// backup` does; its size in bytes (0 when it failed).
fn backup_size(port: u16) -> u64 {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return 0;
    };
    let request = format!(
        "GET /api/v1/backup HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        support::ADMIN_TOKEN
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return 0;
    }
    let mut answer = Vec::new();
    if stream.read_to_end(&mut answer).is_err() || !answer.starts_with(b"HTTP/1.1 200") {
        return 0;
    }
    let body = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(0, |at| answer.len() - at - 4);
    body as u64
}

/// VmRSS and VmHWM of a process, in KiB.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// SIGTERM, as an operator would, then wait.
fn stop(child: &mut Child) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn dir_size(path: &std::path::Path) -> u64 {
    std::fs::read_dir(path)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| match e.metadata() {
                    Ok(m) if m.is_dir() => dir_size(&e.path()),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .sum()
        })
        .unwrap_or(0)
}
