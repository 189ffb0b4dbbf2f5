//! A PostgreSQL server for the benches that run Gatehouse on PostgreSQL (`--store postgres`):
//! Debian's `initdb` and `postgres` in a temporary directory on a free loopback port, with
//! durable commits (fsync on, as in production: a bench of durable submissions must pay for
//! them), stopped when dropped. Each measured step gets a fresh database.
//!
//! `GATEHOUSE_BENCH_PG_SETTINGS="commit_delay=100 track_wal_io_timing=on"`: more server
//! settings (each `name=value`, separated by spaces), to measure a setting or to look inside
//! the server (`shared_preload_libraries=pg_stat_statements`) while a step runs.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
    databases: AtomicU32,
}

/// `/usr/lib/postgresql/<newest>/bin/<name>`.
fn binary(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    // By number: 9 is older than 15.
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    let found = versions
        .iter()
        .rev()
        .map(|v| v.join("bin").join(name))
        .find(|p| p.is_file());
    found.unwrap_or_else(|| {
        panic!("PostgreSQL is not installed (no {name} under /usr/lib/postgresql/*/bin); apt-get install postgresql, as .ci/run does")
    })
}

/// Under root, the `postgres` account (PostgreSQL refuses to run as root).
fn account() -> Option<(u32, u32)> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 {
        return None;
    }
    // SAFETY: a NUL-terminated name; the record is read at once.
    let entry = unsafe { libc::getpwnam(c"postgres".as_ptr()) };
    assert!(
        !entry.is_null(),
        "running as root and there is no postgres user"
    );
    // SAFETY: not null, so a passwd record.
    let entry = unsafe { &*entry };
    Some((entry.pw_uid, entry.pw_gid))
}

fn give(path: &std::path::Path, to: Option<(u32, u32)>) {
    if let Some((uid, gid)) = to {
        std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
    }
}

impl Postgres {
    pub fn start() -> Postgres {
        let initdb = binary("initdb");
        let user = account();
        let dir = tempfile::tempdir_in("/tmp").unwrap();
        give(dir.path(), user);
        let data = dir.path().join("data");
        let as_user = |command: &mut Command| {
            if let Some((uid, gid)) = user {
                command.uid(uid).gid(gid);
            }
        };
        let mut init = Command::new(&initdb);
        init.args([
            "--auth=trust",
            "--username=postgres",
            "--encoding=UTF8",
            "--locale=C",
        ])
        .arg("-D")
        .arg(&data)
        .stdout(Stdio::null());
        as_user(&mut init);
        assert!(init.status().unwrap().success(), "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Command::new(initdb.with_file_name("postgres"));
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args([
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "unix_socket_directories=",
            ])
            .args(["-c", "max_connections=200"])
            .args(
                std::env::var("GATEHOUSE_BENCH_PG_SETTINGS")
                    .unwrap_or_default()
                    .split_whitespace()
                    .flat_map(|setting| ["-c".to_owned(), setting.to_owned()]),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        as_user(&mut server);
        let child = server.spawn().unwrap();
        let pg = Postgres {
            port,
            dir,
            child,
            databases: AtomicU32::new(0),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        while pg.sql("postgres", "SELECT 1").is_err() {
            assert!(Instant::now() < deadline, "postgres did not start in 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
        pg
    }

    fn sql(&self, dbname: &str, sql: &str) -> Result<(), tokio_postgres::Error> {
        let url = format!("postgres://postgres@127.0.0.1:{}/{dbname}", self.port);
        let sql = sql.to_owned();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&url, tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client.batch_execute(&sql).await
            })
    }

    /// A fresh, empty database; its URL (TLS off: the server is on loopback).
    pub fn database(&self) -> String {
        let name = format!("bench_{}", self.databases.fetch_add(1, Ordering::SeqCst));
        self.sql("postgres", &format!("CREATE DATABASE {name}"))
            .unwrap();
        format!(
            "postgres://postgres@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SAFETY: our own child's pid; SIGQUIT is an immediate shutdown.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGQUIT) };
        let _ = self.child.wait();
    }
}
