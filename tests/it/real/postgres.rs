//! A PostgreSQL server of its own for a test: `initdb` into a temporary directory, then the
//! `postgres` binary on a free loopback port, with trust authentication for the superuser
//! `postgres` and no Unix socket.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tokio_postgres::{Client, NoTls};

use super::tls::Certificates;
use super::{give_to, log_tail, program, stop, unprivileged_user};

pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// `/usr/lib/postgresql/<newest version>/bin/<name>`.
fn binary(name: &str) -> Vec<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| dir.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    versions.sort_by_key(|p| {
        p.file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.reverse();
    versions
        .into_iter()
        .map(|v| v.join("bin").join(name))
        .collect()
}

impl Postgres {
    /// A running server; fails the test when PostgreSQL is not installed.
    pub async fn start() -> Postgres {
        Self::start_with(None).await
    }

    /// [`Postgres::start`], also accepting TLS with `certificates` when given.
    pub async fn start_with(certificates: Option<&Certificates>) -> Postgres {
        let hba = certificates.map(|_| {
            // The superuser may come in plain (for the test's own checks); the role
            // `gatehouse` only over TLS, so a connector that gets in proves TLS was used.
            "hostssl all gatehouse 127.0.0.1/32 trust\nhostnossl all postgres 127.0.0.1/32 trust\n"
        });
        Self::launch(certificates, hba).await
    }

    /// [`Postgres::start`], where every role but the superuser `postgres` logs in with its
    /// password (SCRAM), so that a wrong or rotated password is refused as in production.
    pub async fn start_with_passwords() -> Postgres {
        let hba = "host all postgres 127.0.0.1/32 trust\nhost all all 127.0.0.1/32 scram-sha-256\n";
        Self::launch(None, Some(hba)).await
    }

    async fn launch(certificates: Option<&Certificates>, hba: Option<&str>) -> Postgres {
        let initdb = program("PostgreSQL (initdb)", "postgresql", &binary("initdb"));
        let postgres = initdb.with_file_name("postgres");
        let user = unprivileged_user();
        // The server's user must reach its directory: under root, TMPDIR may be private.
        let dir = match user {
            Some(_) => tempfile::tempdir_in("/tmp").unwrap(),
            None => tempfile::tempdir().unwrap(),
        };
        let data = dir.path().join("data");
        let log = dir.path().join("postgres.log");
        std::fs::File::create(&log).unwrap();
        let mut tls = Vec::new();
        if let Some(certificates) = certificates {
            // PostgreSQL wants its key owned by the server's user and private.
            let key = dir.path().join("server.key");
            std::fs::copy(&certificates.key, &key).unwrap();
            std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
            tls = vec![
                "-c".to_owned(),
                "ssl=on".to_owned(),
                "-c".to_owned(),
                format!("ssl_cert_file={}", certificates.cert.display()),
                "-c".to_owned(),
                format!("ssl_key_file={}", key.display()),
            ];
        }
        give_to(dir.path(), user);
        let as_user = |command: &mut Command| {
            command.current_dir(dir.path());
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
        .arg("--no-sync")
        .arg("-D")
        .arg(&data);
        as_user(&mut init);
        let output = init.output().expect("initdb runs");
        assert!(
            output.status.success(),
            "initdb failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );

        if let Some(hba) = hba {
            std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        }
        let port = super::free_port();
        let mut server = Command::new(&postgres);
        server
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .args(["-c", "unix_socket_directories="])
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .args(&tls)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::OpenOptions::new().append(true).open(&log).unwrap());
        as_user(&mut server);
        let child = server.spawn().expect("postgres starts");
        let mut pg = Postgres { port, dir, child };
        pg.wait_ready(&log).await;
        pg
    }

    async fn wait_ready(&mut self, log: &std::path::Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.try_connect().await.is_ok() {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("postgres exited with {status}:\n{}", log_tail(log));
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections within 60 s:\n{}",
                log_tail(log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn try_connect(&self) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = tokio_postgres::Config::new()
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(NoTls)
            .await?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// A superuser session.
    pub async fn admin(&self) -> Client {
        self.try_connect().await.expect("the superuser connects")
    }

    /// Runs `sql` as the superuser.
    pub async fn execute(&self, sql: &str) {
        self.admin()
            .await
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    /// The logins that are direct members of `role`, read from pg_auth_members.
    pub async fn members_of(&self, role: &str) -> Vec<String> {
        let rows = self
            .admin()
            .await
            .query(
                "SELECT m.rolname::text FROM pg_auth_members a \
                 JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member \
                 WHERE r.rolname = $1 ORDER BY 1",
                &[&role],
            )
            .await
            .unwrap();
        rows.iter().map(|row| row.get(0)).collect()
    }

    /// `rolvaliduntil` of `login` as text, `None` when unset.
    pub async fn valid_until(&self, login: &str) -> Option<String> {
        let row = self
            .admin()
            .await
            .query_one(
                "SELECT to_char(rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS') \
                 FROM pg_roles WHERE rolname = $1",
                &[&login],
            )
            .await
            .unwrap();
        row.get(0)
    }

    /// The `[[connectors]]` lines that reach this server as the superuser.
    pub fn connector_toml(&self, id: &str) -> String {
        format!(
            "[[connectors]]\nid = \"{id}\"\nkind = \"postgres\"\nhost = \"127.0.0.1\"\nport = {}\nuser = \"postgres\"\ndbname = \"postgres\"\nsslmode = \"disable\"\ntimeout = \"10s\"\n",
            self.port
        )
    }

    pub fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; the data is thrown away anyway.
        stop(&mut self.child, libc::SIGQUIT);
    }
}
