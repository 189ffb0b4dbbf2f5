//! What the benches share: the smoke switch, the header every table carries (cores, CPU, load,
//! commit), a generated world (policy, a directory with many people, gatehouse.toml), the real
//! server started in-process, the tests' fake Slack Web API (one fake for tests and benches), an
//! open-loop load generator and bulk-built grants. Benches print tables; they assert nothing
//! about speed.

#![allow(dead_code)] // each bench uses a different part

pub mod cards;
#[path = "../../tests/it/fake_slack/mod.rs"]
pub mod fake_slack;
pub mod load;
pub mod postgres;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use gatehouse::domain::grant::{Grant, GrantState};
use gatehouse::domain::ids::{GrantId, PersonId, RequestId, ResourceId, RoleId};
use gatehouse::store::{Commit, Expect, Store};

/// The signing secret of the generated gatehouse.toml.
pub const SIGNING_SECRET: &str = "bench-signing-secret";
/// How many managers the generated people report to (each gets the approval cards of theirs).
pub const MANAGERS: usize = 50;

/// `--smoke` or `GATEHOUSE_BENCH_SMOKE=1`: a tiny run that only shows the bench works.
pub fn smoke() -> bool {
    std::env::args().any(|a| a == "--smoke")
        || std::env::var("GATEHOUSE_BENCH_SMOKE").is_ok_and(|v| v == "1")
}

/// Numbers from the environment variable `name` (comma-separated), to run a bench at other
/// sizes than its own, e.g. `GATEHOUSE_BENCH_SIZES=10000,100000`.
pub fn sizes_from_env(name: &str) -> Option<Vec<u64>> {
    let text = std::env::var(name).ok()?;
    text.split(',').map(|n| n.trim().parse().ok()).collect()
}

/// The lines every bench prints first, and again with each table: where and when it ran.
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    format!(
        "machine: {cores} cores, {cpu}; commit {}; {}",
        commit(),
        load()
    )
}

/// The load averages now, as `uptime` shows them.
pub fn load() -> String {
    let loadavg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let parts: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    format!("load average {}", parts.join(" "))
}

fn commit() -> String {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output();
    let head = match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_owned(),
        _ => "unknown".to_owned(),
    };
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .is_ok_and(|out| !out.stdout.is_empty());
    let head = if dirty {
        format!("{head}+changes")
    } else {
        head
    };
    if built_before_head() {
        format!("{head} (binary older than this commit)")
    } else {
        head
    }
}

/// Whether this bench binary was built before HEAD was committed: a table it prints then
/// comes from an earlier tree than the commit named.
fn built_before_head() -> bool {
    let committed = std::process::Command::new("git")
        .args(["log", "-1", "--format=%ct"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse::<u64>()
                .ok()
        });
    let built = std::env::current_exe()
        .and_then(std::fs::metadata)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs());
    matches!((built, committed), (Some(built), Some(committed)) if built < committed)
}

/// A plain text table, columns right-aligned but the first.
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(title: &str, header: &[&str]) -> Self {
        Self {
            title: title.to_owned(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Prints the table under its title and the machine line (load as it is now).
    pub fn print(&self) {
        let mut widths: Vec<usize> = self.header.iter().map(String::len).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if i < widths.len() {
                    widths[i] = widths[i].max(cell.len());
                }
            }
        }
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for (i, cell) in cells.iter().enumerate() {
                let w = widths.get(i).copied().unwrap_or(0);
                if i == 0 {
                    let _ = write!(out, " {cell:<w$} |");
                } else {
                    let _ = write!(out, " {cell:>w$} |");
                }
            }
            out
        };
        println!("\n### {}\n{}\n", self.title, machine());
        println!("{}", line(&self.header));
        let mut rule = String::from("|");
        for (i, w) in widths.iter().enumerate() {
            let dashes = "-".repeat(w.saturating_sub(1).max(1));
            if i == 0 {
                let _ = write!(rule, " :{dashes} |");
            } else {
                let _ = write!(rule, " {dashes}: |");
            }
        }
        println!("{rule}");
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

/// Milliseconds with two decimals.
pub fn ms(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1000.0)
}

/// CPU time this process has used so far (user + system), from `/proc/self/stat`.
pub fn process_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state, field 3;
    // utime and stime are fields 14 and 15, in clock ticks (100 per second on Linux).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|t| t.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// The `p`-th percentile (0–100) of sorted values.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The admin API token of a [`World`]'s server.
pub const ADMIN_TOKEN: &str = "bench-admin-token-0123456789abcdef";

/// A directory with files for Gatehouse: policy, `people` requesters, gatehouse.toml.
pub struct World {
    pub dir: tempfile::TempDir,
}

/// The requester number `i`'s Slack user id.
pub fn requester_slack(i: usize) -> String {
    format!("UP{i}")
}

impl World {
    /// `people` requesters p0…, each reporting to one of [`MANAGERS`] managers; one resource
    /// `app` (role `read`, medium risk, the `log` connector) whose requests need the
    /// requester's manager: a submission stores a pending request and queues an approval
    /// card and a notice. `slack_api` turns Slack on in HTTP mode against that URL.
    pub fn new(people: usize, slack_api: Option<&str>, cache_mb: u64) -> World {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("policy.toml"), POLICY).unwrap();
        let mut directory = String::with_capacity(people * 120);
        directory.push_str("[[people]]\nid = \"owner\"\nname = \"Owner\"\nslack = \"UOWNER\"\n\n");
        for m in 0..MANAGERS {
            let _ = write!(
                directory,
                "[[people]]\nid = \"m{m}\"\nname = \"Manager {m}\"\nmanager = \"owner\"\nslack = \"UM{m}\"\n\n"
            );
        }
        for i in 0..people {
            let _ = write!(
                directory,
                "[[people]]\nid = \"p{i}\"\nname = \"Person {i}\"\nmanager = \"m{}\"\ndepartment = \"engineering\"\nslack = \"{}\"\n\n",
                i % MANAGERS,
                requester_slack(i)
            );
        }
        directory.push_str("[[groups]]\nid = \"admins\"\nmembers = [\"owner\"]\n");
        std::fs::write(dir.path().join("directory.toml"), directory).unwrap();
        let slack = match slack_api {
            Some(url) => format!(
                "[slack]\nenabled = true\nmode = \"http\"\nbot_token = \"xoxb-bench\"\nsigning_secret = \"{SIGNING_SECRET}\"\napi_url = \"{url}\"\nsecurity_channel = \"C0SECURITY\"\ncommand = \"/access\"\n"
            ),
            None => "[slack]\nenabled = false\n".to_owned(),
        };
        let config = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"./data\"\ncache_mb = {cache_mb}\n\n[files]\npolicy = \"policy.toml\"\ndirectory = \"directory.toml\"\n\n{slack}\n[discord]\nenabled = false\n\n[[connectors]]\nid = \"log\"\nkind = \"log\"\n\n[scheduler]\nexpiry_warning = \"15m\"\ndigest = \"off\"\n\n[log]\nlevel = \"error\"\n\n[[admin.tokens]]\nname = \"bench\"\ntoken = \"{ADMIN_TOKEN}\"\n"
        );
        std::fs::write(dir.path().join("gatehouse.toml"), config).unwrap();
        World { dir }
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("gatehouse.toml")
    }

    /// gatehouse.toml with `[store]` on the PostgreSQL database at `url`, as another file.
    pub fn config_on_postgres(&self, url: &str) -> PathBuf {
        let text = std::fs::read_to_string(self.config()).unwrap();
        let path = self.dir.path().join("gatehouse-postgres.toml");
        let store =
            format!("\n[store]\nbackend = \"postgres\"\nurl = \"{url}\"\nconnections = 16\n");
        std::fs::write(&path, format!("{text}{store}")).unwrap();
        path
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }
}

const POLICY: &str = r#"
[defaults]
pending_ttl = "24h"
remind_every = "4h"
escalate_after = "8h"
max_duration = "8h"
admins = ["group:admins"]

[[resources]]
id = "app"
name = "Bench application"
kind = "saas"
owners = ["owner"]
risk = "medium"
connector = "log"
  [[resources.roles]]
  id = "read"
  max_duration = "8h"

[[workflows]]
id = "default"
stages = [ { approvers = ["manager"], quorum = 1 } ]
"#;

/// The real server, in-process on its own runtime, on 127.0.0.1:0.
pub struct Server {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    pub fn start(config: &Path) -> Server {
        gatehouse::app::install_tls_provider();
        let loaded = gatehouse::app::load(config).expect("the bench configuration loads");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                ready_tx.send(listener.local_addr().unwrap()).unwrap();
                gatehouse::app::serve(loaded, listener, async move {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
            });
        });
        let address = ready_rx.recv().unwrap();
        Server {
            base: format!("http://{address}"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.halt();
    }
}

/// A slash command body `/access <text>` from Slack user `user`, as Slack posts it.
pub fn slash_command(user: &str, text: &str, trigger: &str) -> String {
    let text: String = text
        .chars()
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    format!(
        "token=bench&team_id=T0BENCH&team_domain=bench&channel_id=C0BENCH&channel_name=bench&user_id={user}&user_name={user}&command=%2Faccess&text={text}&api_app_id=A0BENCH&response_url=https%3A%2F%2Fhooks.invalid%2Fcommands&trigger_id={trigger}"
    )
}

/// Signs `body` as Slack would now: the two headers.
pub fn slack_headers(body: &str) -> [(&'static str, String); 2] {
    let now = Utc::now().timestamp();
    let signature = gatehouse::slack::verify::sign(SIGNING_SECRET.as_bytes(), now, body.as_bytes());
    [
        ("x-slack-request-timestamp", now.to_string()),
        ("x-slack-signature", signature),
    ]
}

/// A live grant of `app`/`read` to requester `person`, as the store holds it.
pub fn active_grant(
    id: u64,
    person: usize,
    expires_at: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Grant {
    Grant {
        id: GrantId(id),
        person: PersonId::new(format!("p{person}")),
        resource: ResourceId::new("app"),
        role: RoleId::new("read"),
        request: RequestId(id),
        granted_at: now - TimeDelta::hours(1),
        expires_at: Some(expires_at),
        emergency: false,
        review: None,
        // Already warned: the benches measure revocation, not the expiry warnings.
        warned_at: Some(now - TimeDelta::minutes(30)),
        state: GrantState::Active {
            since: now - TimeDelta::hours(1),
        },
    }
}

/// Writes `count` live grants with ids from `first`, `expires(i)` each, through the `Store`
/// trait in commits of a few thousand; the people are `people` requesters in turn.
pub fn bulk_grants(
    store: &dyn Store,
    first: u64,
    count: u64,
    people: usize,
    expires: impl Fn(u64) -> DateTime<Utc>,
) {
    const CHUNK: u64 = 5_000;
    let now = Utc::now();
    let mut next = 0;
    while next < count {
        let end = (next + CHUNK).min(count);
        let grants = (next..end)
            .map(|i| {
                let id = first + i;
                let person = (id as usize) % people.max(1);
                (active_grant(id, person, expires(i), now), Expect::New)
            })
            .collect();
        store
            .commit(Commit {
                grants,
                ..Commit::default()
            })
            .unwrap();
        next = end;
    }
}

/// The allocator the `gatehouse` binary uses (see src/main.rs), so that what the benches
/// measure in-process is what the binary does.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
