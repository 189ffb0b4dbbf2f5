//! The backends the suite runs on. Each test gets a store of its own: a temporary sled
//! directory, or a fresh database on a PostgreSQL server shared by the tests that run at
//! the same time (started by the first, stopped when the last lets go of it).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};

use gatehouse::config::SslMode;
use gatehouse::store::{AnyStore, PgConfig, PgStore, SledStore};

use crate::real::postgres::Postgres as Server;

/// Somewhere a store lives; `open` opens it (again, after the last store opened was dropped).
pub trait Backend {
    fn open(&self) -> AnyStore;
}

pub struct Sled {
    dir: tempfile::TempDir,
}

impl Sled {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }
}

impl Backend for Sled {
    fn open(&self) -> AnyStore {
        AnyStore::Sled(SledStore::open(&self.dir.path().join("data")).unwrap())
    }
}

pub struct Postgres {
    /// Keeps the shared server running while this database is in use.
    _server: Arc<Shared>,
    url: String,
}

struct Shared {
    server: Server,
    databases: AtomicU32,
}

static SHARED: Mutex<Weak<Shared>> = Mutex::new(Weak::new());

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Postgres {
    /// A fresh database on the shared server.
    pub fn new() -> Self {
        let server = {
            let mut shared = SHARED.lock().unwrap_or_else(|p| p.into_inner());
            match shared.upgrade() {
                Some(server) => server,
                None => {
                    let server = Arc::new(Shared {
                        server: runtime().block_on(Server::start()),
                        databases: AtomicU32::new(0),
                    });
                    *shared = Arc::downgrade(&server);
                    server
                }
            }
        };
        Self::on(server)
    }

    fn on(server: Arc<Shared>) -> Self {
        let name = format!("store_{}", server.databases.fetch_add(1, Ordering::SeqCst));
        runtime().block_on(server.server.execute(&format!("CREATE DATABASE {name}")));
        let url = format!(
            "postgres://postgres@127.0.0.1:{}/{name}",
            server.server.port
        );
        Self {
            _server: server,
            url,
        }
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn config(&self) -> PgConfig {
        PgConfig::new(&self.url, None, SslMode::Disable, None, 8).unwrap()
    }

    /// The store, as `PgStore`.
    pub fn pg(&self) -> PgStore {
        PgStore::open(self.config()).unwrap()
    }

    /// Runs `sql` in this database as the superuser (to look, or to tamper).
    pub fn sql(&self, sql: &str) -> Vec<tokio_postgres::Row> {
        let url = self.url.clone();
        runtime().block_on(async move {
            let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(connection);
            client
                .query(sql, &[])
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        })
    }
}

impl Backend for Postgres {
    fn open(&self) -> AnyStore {
        AnyStore::Postgres(self.pg())
    }
}
