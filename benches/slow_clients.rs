//! The real binary (`gatehouse serve`, spawned, default `[server]` limits) under slow, idle
//! and oversized clients that hold connections open without credentials: for each kind,
//! how long `/healthz` takes for a normal client meanwhile, the server's resident memory
//! while they are held and after they leave, and how many of them the server cut off
//! itself. Then SIGTERM with slow clients still connected: the time until the process exits.
//! Memory is VmRSS and VmHWM from /proc/<pid>/status; VmHWM is reset before each kind.
//!
//! `cargo bench --bench slow_clients` (about a minute); `-- --smoke` or
//! `GATEHOUSE_BENCH_SMOKE=1`; `GATEHOUSE_BENCH_CLIENTS=4000` for another count.

// Bench code, like test code: the product's rules on time and TLS clients
// (clippy.toml's disallowed-methods) do not apply here.
#![allow(clippy::disallowed_methods)]

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use support::{Table, World, machine, ms, percentile, smoke};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How the clients of one row misbehave.
#[derive(Clone, Copy)]
enum Kind {
    /// Connect and send nothing.
    Idle,
    /// Send a request's headers one byte a second.
    SlowHead,
    /// Send headers announcing a 1,000,000-byte body, then the body at 1 KB a second.
    SlowBody,
    /// Send as much of a chunked body as the server takes, up to `bytes`, then stall.
    BigBody { bytes: usize },
}

impl Kind {
    fn describe(self, clients: usize) -> String {
        match self {
            Kind::Idle => format!("{clients} idle"),
            Kind::SlowHead => format!("{clients} slow headers (1 B/s)"),
            Kind::SlowBody => format!("{clients} slow bodies (1 KB/s)"),
            Kind::BigBody { bytes } => {
                format!("{clients} × {:.1} MB partial bodies", bytes as f64 / 1e6)
            }
        }
    }
}

/// What the clients of one row saw.
#[derive(Default)]
struct Seen {
    connected: AtomicUsize,
    cut_off: AtomicUsize,
}

fn main() {
    let smoke = smoke();
    raise_open_files();
    let clients = support::sizes_from_env("GATEHOUSE_BENCH_CLIENTS")
        .and_then(|n| n.first().copied())
        .map_or(if smoke { 50 } else { 2000 }, |n| n as usize);
    // The 1.9 MB (over the 1 MiB limit of /slack/interactions), and 0.9 MB (under
    // it: only the memory budget bounds what these hold).
    let (over, under) = if smoke {
        (200_000, 100_000)
    } else {
        (1_900_000, 900_000)
    };
    println!(
        "# slow_clients bench{}\n{}",
        if smoke { " (smoke)" } else { "" },
        machine()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // A Slack endpoint takes the largest bodies (1 MiB); nothing here is signed, so Slack's
    // Web API is never called.
    let world = World::new(10, Some("http://127.0.0.1:9/api"), 16);
    let (mut child, port) = spawn(&world);
    let pid = child.id();
    let mut table = Table::new(
        "`gatehouse serve` under clients holding connections (spawned binary, default limits)",
        &[
            "clients",
            "held",
            "/healthz p50 ms",
            "/healthz max ms",
            "VmRSS held",
            "VmHWM",
            "VmRSS 3 s after",
            "cut off by server",
        ],
    );
    let (rss, hwm) = memory(pid);
    table.row(vec![
        "none (idle server)".into(),
        "0".into(),
        String::new(),
        String::new(),
        mb(rss),
        mb(hwm),
        String::new(),
        String::new(),
    ]);
    let kinds = [
        Kind::Idle,
        Kind::SlowHead,
        Kind::SlowBody,
        Kind::BigBody { bytes: over },
        Kind::BigBody { bytes: under },
    ];
    for kind in kinds {
        let clients = match kind {
            Kind::BigBody { .. } => clients / 2,
            _ => clients,
        };
        let row = runtime.block_on(row(port, pid, kind, clients));
        table.row(row);
    }
    table.print();

    let (exit, cut) = runtime.block_on(sigterm(&mut child, port, clients));
    let mut stop = Table::new(
        "SIGTERM with slow clients connected (server.shutdown_grace = 5s)",
        &["clients connected", "SIGTERM → process exit"],
    );
    stop.row(vec![
        format!("{clients} slow headers, {cut} cut off before"),
        exit.map_or("did not exit within 60 s".into(), |d| {
            format!("{:.2} s", d.as_secs_f64())
        }),
    ]);
    stop.print();
}

/// One row: `clients` of `kind` connect and misbehave; meanwhile /healthz is sampled and the
/// memory read; then they leave and the memory is read again.
async fn row(port: u16, pid: u32, kind: Kind, clients: usize) -> Vec<String> {
    reset_peak(pid);
    let seen = Arc::new(Seen::default());
    let mut attackers = JoinSet::new();
    open(&mut attackers, port, kind, clients, &seen).await;
    let connecting = Instant::now();
    while seen.connected.load(Ordering::Relaxed) < clients
        && connecting.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Let bodies fill what the server will take.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut latencies = Vec::new();
    let mut failed = 0;
    for _ in 0..20 {
        match healthz(port).await {
            Some(latency) => latencies.push(latency),
            None => failed += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (rss, hwm) = memory(pid);
    let held = seen.connected.load(Ordering::Relaxed);
    let cut_off = seen.cut_off.load(Ordering::Relaxed);
    attackers.shutdown().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, _) = memory(pid);
    latencies.sort();
    let max = latencies.last().copied().unwrap_or_default();
    let max = if failed > 0 {
        format!("{failed} of 20 unanswered")
    } else {
        ms(max)
    };
    vec![
        kind.describe(clients),
        held.to_string(),
        ms(percentile(&latencies, 50.0)),
        max,
        mb(rss),
        mb(hwm),
        mb(after),
        cut_off.to_string(),
    ]
}

/// Starts `clients` misbehaving clients, 50 at a time: a burst of thousands of connects at
/// once overflows the listen backlog (1024) before the server can accept them, and the
/// kernel resets some, which would measure the backlog rather than the server.
async fn open(
    attackers: &mut JoinSet<()>,
    port: u16,
    kind: Kind,
    clients: usize,
    seen: &Arc<Seen>,
) {
    for i in 0..clients {
        attackers.spawn(attack(port, kind, seen.clone()));
        if i % 50 == 49 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// One misbehaving client, until aborted. Counts itself connected, and cut off when the
/// server answers or closes the connection first.
async fn attack(port: u16, kind: Kind, seen: Arc<Seen>) {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)).await else {
        return;
    };
    seen.connected.fetch_add(1, Ordering::Relaxed);
    let (mut reader, mut writer) = stream.split();
    let misbehave = async {
        match kind {
            Kind::Idle => std::future::pending::<()>().await,
            Kind::SlowHead => {
                for byte in b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\nX-Slow: ".repeat(10) {
                    if writer.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Kind::SlowBody => {
                let head = "POST /slack/interactions HTTP/1.1\r\nHost: gatehouse\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000000\r\n\r\n";
                if writer.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                loop {
                    if writer.write_all(&[b'a'; 1000]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
            Kind::BigBody { bytes } => {
                let head = "POST /slack/interactions HTTP/1.1\r\nHost: gatehouse\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n";
                if writer.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = [b'a'; 16 * 1024];
                let mut sent = 0;
                while sent < bytes {
                    let frame =
                        [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
                    if writer.write_all(&frame).await.is_err() {
                        return;
                    }
                    sent += chunk.len();
                }
            }
        }
        std::future::pending::<()>().await
    };
    let mut answer = [0u8; 1];
    tokio::select! {
        () = misbehave => {}
        _ = reader.read(&mut answer) => {
            seen.cut_off.fetch_add(1, Ordering::Relaxed);
        }
    }
    // Hold whatever is left open until aborted.
    std::future::pending::<()>().await;
}

/// `GET /healthz` on a new connection: the time to the status line, `None` when it is not
/// 200 within 10 s.
async fn healthz(port: u16) -> Option<Duration> {
    let started = Instant::now();
    let ask = async {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: gatehouse\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).await.ok()?;
        (&answer == b"HTTP/1.1 200").then_some(())
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .ok()
        .flatten()
        .map(|()| started.elapsed())
}

/// SIGTERM while `clients` slow clients are connected: the time until the process exits, and
/// how many the server had cut off before.
async fn sigterm(child: &mut Child, port: u16, clients: usize) -> (Option<Duration>, usize) {
    let seen = Arc::new(Seen::default());
    let mut attackers = JoinSet::new();
    open(&mut attackers, port, Kind::SlowHead, clients, &seen).await;
    let connecting = Instant::now();
    while seen.connected.load(Ordering::Relaxed) < clients
        && connecting.elapsed() < Duration::from_secs(5)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cut = seen.cut_off.load(Ordering::Relaxed);
    let signalled = Instant::now();
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(child.id() as libc::pid_t, libc::SIGTERM);
    }
    let mut exited = None;
    while signalled.elapsed() < Duration::from_secs(60) {
        if child.try_wait().unwrap().is_some() {
            exited = Some(signalled.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    if exited.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    attackers.shutdown().await;
    (exited, cut)
}

/// `gatehouse serve` on a free port, once `/healthz` answers.
fn spawn(world: &World) -> (Child, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(world.config())
        .arg("serve")
        .env("GATEHOUSE_SERVER__LISTEN", format!("127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    while runtime.block_on(healthz(port)).is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "gatehouse serve did not come up"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Idle a moment so the first row starts from a settled server.
    std::thread::sleep(Duration::from_secs(2));
    (child, port)
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

/// Resets VmHWM to the current VmRSS (`echo 5 > /proc/<pid>/clear_refs`).
fn reset_peak(pid: u32) {
    let _ = std::fs::write(format!("/proc/{pid}/clear_refs"), "5");
}

fn mb(kib: u64) -> String {
    format!("{:.1} MB", kib as f64 / 1024.0)
}

/// The bench holds thousands of sockets: raise its own open-file limit to the hard limit.
fn raise_open_files() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit read and write one rlimit we own.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
