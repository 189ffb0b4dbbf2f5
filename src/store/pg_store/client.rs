//! Talking to PostgreSQL from the synchronous `Store`: a bounded pool of tokio-postgres
//! connections whose I/O runs on a small runtime of the store's own, and a `block_on` that
//! waits for a query on the calling thread.
//!
//! Why not the caller's runtime: the `Store` is called on tokio's blocking pool, and
//! sometimes from a plain thread; waiting there on a future whose socket is driven by a
//! runtime of its own can never deadlock the server's runtime, nor panic as a nested
//! `block_on` would. A connection's socket is read and written by its task on that runtime;
//! the calling thread only sends requests and waits for answers (parked, with a deadline,
//! so that a database that stops answering fails the call instead of hanging it).
//!
//! Statements are prepared once per connection and kept, so that a query costs one round
//! trip; transactions are plain `BEGIN` … `COMMIT`, so that they can use those statements.

use std::collections::HashMap;
use std::future::Future;
use std::str::FromStr;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::{SslMode, StoreConfig};
use crate::store::StoreError;

/// How long any one call may wait for the database before it fails.
pub(super) const CALL_LIMIT: Duration = Duration::from_secs(30);
/// How long opening a connection may take.
const CONNECT_LIMIT: Duration = Duration::from_secs(10);

/// Where the database is and how to reach it.
#[derive(Clone)]
pub struct PgConfig {
    pg: tokio_postgres::Config,
    tls: Option<MakeRustlsConnect>,
    /// `host:port/dbname`, for messages.
    pub(crate) shown: String,
    connections: usize,
}

impl std::fmt::Debug for PgConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgConfig({})", self.shown)
    }
}

impl PgConfig {
    /// From `[store]` of gatehouse.toml.
    pub fn from_config(store: &StoreConfig) -> Result<Self, StoreError> {
        let url = store.url.as_deref().ok_or_else(|| StoreError::Setup {
            what: "[store]".to_owned(),
            why: "backend = \"postgres\" needs url = \"postgres://user@host:5432/dbname\""
                .to_owned(),
        })?;
        Self::new(
            url,
            store.password.as_ref().map(|p| p.expose()),
            store.sslmode,
            store.ca.as_deref(),
            store.connections as usize,
        )
    }

    /// `url` with the other settings of `[store]`.
    pub fn new(
        url: &str,
        password: Option<&str>,
        sslmode: SslMode,
        ca: Option<&str>,
        connections: usize,
    ) -> Result<Self, StoreError> {
        let setup = |why: String| StoreError::Setup {
            what: "store.url".to_owned(),
            why,
        };
        Self::check_url(url).map_err(setup)?;
        let mut pg = tokio_postgres::Config::from_str(url).map_err(|e| setup(e.to_string()))?;
        if let Some(password) = password {
            pg.password(password);
        }
        pg.connect_timeout(CONNECT_LIMIT);
        pg.application_name("gatehouse");
        // A partition from the database shows as an error within seconds, not minutes.
        pg.keepalives_idle(Duration::from_secs(5));
        pg.tcp_user_timeout(Duration::from_secs(10));
        // `sslmode=disable` in the URL wins: a database on the same host, or in tests.
        let sslmode = match pg.get_ssl_mode() {
            tokio_postgres::config::SslMode::Disable => SslMode::Disable,
            _ => sslmode,
        };
        let tls = match sslmode {
            SslMode::Disable => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Disable);
                None
            }
            mode => {
                pg.ssl_mode(tokio_postgres::config::SslMode::Require);
                // As the `postgres` connector: `verify-full` checks the certificate and the
                // name (system roots plus `ca`), `require` encrypts without checking.
                let tls = match mode {
                    SslMode::VerifyFull => crate::tls::verifying(ca),
                    _ => crate::tls::encrypting_only(),
                };
                let tls = tls.map_err(|e| StoreError::Setup {
                    what: "store.ca".to_owned(),
                    why: e.to_string(),
                })?;
                Some(MakeRustlsConnect::new(tls))
            }
        };
        let shown = shown(&pg);
        Ok(Self {
            pg,
            tls,
            shown,
            connections: connections.max(2),
        })
    }

    /// Why `url` cannot name Gatehouse's database, if it cannot.
    pub fn check_url(url: &str) -> Result<(), String> {
        let pg = tokio_postgres::Config::from_str(url)
            .map_err(|e| format!("is not a PostgreSQL URL: {e}"))?;
        if pg.get_password().is_some() {
            return Err(
                "holds a password; move it to password or password_file, which are never shown"
                    .to_owned(),
            );
        }
        if pg.get_hosts().is_empty() {
            return Err("names no host".to_owned());
        }
        if pg.get_user().is_none() {
            return Err("names no user (postgres://USER@host/dbname)".to_owned());
        }
        Ok(())
    }
}

fn shown(pg: &tokio_postgres::Config) -> String {
    let host = match pg.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(host)) => host.clone(),
        Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
        None => String::new(),
    };
    let port = pg.get_ports().first().copied().unwrap_or(5432);
    let dbname = pg.get_dbname().or(pg.get_user()).unwrap_or_default();
    format!("{host}:{port}/{dbname}")
}

/// A database error as the store reports it.
pub(super) fn db_error(shown: &str, error: &tokio_postgres::Error) -> StoreError {
    let said = match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => crate::connector::webhook::error_chain(error),
    };
    StoreError::Database(format!("{shown}: {said}"))
}

/// One open connection and the statements prepared on it.
pub(super) struct Conn {
    pub client: Client,
    statements: HashMap<&'static str, Statement>,
    shown: Arc<str>,
}

impl Conn {
    fn error(&self, error: &tokio_postgres::Error) -> StoreError {
        db_error(&self.shown, error)
    }

    /// `sql` prepared on this connection (once: it is kept).
    pub async fn statement(&mut self, sql: &'static str) -> Result<Statement, StoreError> {
        if let Some(statement) = self.statements.get(sql) {
            return Ok(statement.clone());
        }
        let statement = self.client.prepare(sql).await.map_err(|e| self.error(&e))?;
        self.statements.insert(sql, statement.clone());
        Ok(statement)
    }

    pub async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = self.statement(sql).await?;
        self.client
            .query(&statement, params)
            .await
            .map_err(|e| self.error(&e))
    }

    pub async fn query_opt(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    pub async fn execute(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let statement = self.statement(sql).await?;
        self.client
            .execute(&statement, params)
            .await
            .map_err(|e| self.error(&e))
    }

    /// A prepared statement's rows; calls made together on one connection are pipelined
    /// (sent at once, answered in order).
    pub async fn query_prepared(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        self.client
            .query(statement, params)
            .await
            .map_err(|e| self.error(&e))
    }

    /// A prepared statement run for the rows it changed; pipelined as [`Self::query_prepared`].
    pub async fn execute_prepared(
        &self,
        statement: &Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        self.client
            .execute(statement, params)
            .await
            .map_err(|e| self.error(&e))
    }

    /// The rows of `sql` planned for these very arguments, in one round trip (nothing is
    /// prepared or kept), and pipelined as [`Self::query_prepared`]. For a lookup by key
    /// in a table that grows: a statement that is kept gets one generic plan after its first
    /// few runs, and PostgreSQL keeps it until the table's statistics change; made while the
    /// table was nearly empty, that plan scans the whole table however large it grows. The
    /// delivery check on `seen` was such a scan in a fresh database, 1–3 ms a call after a
    /// few thousand deliveries (docs/performance.md).
    pub async fn query_planned(
        &self,
        sql: &str,
        params: &[(&(dyn ToSql + Sync), Type)],
    ) -> Result<Vec<Row>, StoreError> {
        self.client
            .query_typed(sql, params)
            .await
            .map_err(|e| self.error(&e))
    }

    /// The rows of the last statement of `sql` (simple protocol, values as text): a
    /// `BEGIN` and the query after it in one round trip.
    pub async fn simple_rows(&self, sql: &str) -> Result<Vec<Vec<Option<String>>>, StoreError> {
        let messages = self
            .client
            .simple_query(sql)
            .await
            .map_err(|e| self.error(&e))?;
        Ok(messages
            .iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_owned))
                        .collect(),
                ),
                _ => None,
            })
            .collect())
    }

    /// Statements without parameters, in the simple protocol (`BEGIN`, `SAVEPOINT a`, DDL).
    pub async fn simple(&self, sql: &str) -> Result<(), StoreError> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| self.error(&e))
    }
}

/// The connections of one store, at most `connections` of them.
pub(super) struct Pool {
    config: PgConfig,
    shown: Arc<str>,
    /// `None` only while dropping: see the `Drop` impl.
    runtime: Option<tokio::runtime::Runtime>,
    state: Mutex<PoolState>,
    freed: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Conn>,
    open: usize,
}

impl Pool {
    pub fn new(config: PgConfig) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("gatehouse-pg")
            .enable_all()
            .build()
            .map_err(|e| StoreError::Database(format!("cannot start the database I/O: {e}")))?;
        Ok(Self {
            shown: config.shown.as_str().into(),
            config,
            runtime: Some(runtime),
            state: Mutex::new(PoolState::default()),
            freed: Condvar::new(),
        })
    }

    pub fn shown(&self) -> &str {
        &self.shown
    }

    /// Runs `work` on a connection of the pool, failing after `limit`. A connection whose
    /// call failed for anything but an answer from the server is not reused.
    pub fn run<T>(
        &self,
        limit: Duration,
        work: impl AsyncFnOnce(&mut Conn) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.checkout()?;
        let outcome = block_on(work(&mut conn), limit);
        let healthy = !conn.client.is_closed();
        match outcome {
            Some(result) => {
                // An error the server answered with leaves the connection usable, but it
                // may sit in a failed transaction: only a clean one goes back.
                let clean = result.is_ok() || matches!(result, Err(StoreError::Conflict));
                self.give_back(conn, healthy && clean);
                result
            }
            None => {
                self.give_back(conn, false);
                Err(StoreError::Database(format!(
                    "{}: no answer within {} s",
                    self.shown,
                    limit.as_secs()
                )))
            }
        }
    }

    fn checkout(&self) -> Result<Conn, StoreError> {
        let mut state = self.lock();
        loop {
            while let Some(conn) = state.idle.pop() {
                if !conn.client.is_closed() {
                    return Ok(conn);
                }
                state.open -= 1;
            }
            if state.open < self.config.connections {
                state.open += 1;
                drop(state);
                return self.connect().inspect_err(|_| {
                    self.lock().open -= 1;
                    self.freed.notify_one();
                });
            }
            state = self
                .freed
                .wait_timeout(state, CALL_LIMIT)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn give_back(&self, conn: Conn, reuse: bool) {
        let mut state = self.lock();
        if reuse {
            state.idle.push(conn);
        } else {
            state.open -= 1;
        }
        drop(state);
        self.freed.notify_one();
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let (pg, tls, shown) = (
            self.config.pg.clone(),
            self.config.tls.clone(),
            self.shown.clone(),
        );
        let Some(runtime) = &self.runtime else {
            return Err(StoreError::Database("the store is closing".to_owned()));
        };
        let connecting = runtime.spawn(async move {
            let client = match tls {
                None => {
                    let (client, connection) = pg.connect(tokio_postgres::NoTls).await?;
                    tokio::spawn(drive(connection));
                    client
                }
                Some(tls) => {
                    let (client, connection) = pg.connect(tls).await?;
                    tokio::spawn(drive(connection));
                    client
                }
            };
            Ok::<_, tokio_postgres::Error>(client)
        });
        let client = match block_on(connecting, CONNECT_LIMIT + Duration::from_secs(1)) {
            Some(Ok(Ok(client))) => client,
            Some(Ok(Err(e))) => {
                return Err(StoreError::Database(format!(
                    "cannot connect to {shown}: {}",
                    match e.as_db_error() {
                        Some(db) => db.message().to_owned(),
                        None => crate::connector::webhook::error_chain(&e),
                    }
                )));
            }
            Some(Err(e)) => return Err(StoreError::Database(format!("connecting failed: {e}"))),
            None => {
                return Err(StoreError::Database(format!(
                    "cannot connect to {shown}: no answer within {} s",
                    CONNECT_LIMIT.as_secs()
                )));
            }
        };
        Ok(Conn {
            client,
            statements: HashMap::new(),
            shown,
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Pool {
    /// The store may be dropped on an async thread (the server's engine, as it stops), where
    /// a runtime must not wait for its tasks: the connections' tasks are let go instead.
    fn drop(&mut self) {
        self.lock().idle.clear();
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

async fn drive<S, T>(connection: tokio_postgres::Connection<S, T>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    if let Err(error) = connection.await {
        tracing::debug!(%error, "a database connection ended");
    }
}

/// Wakes the thread that waits in [`block_on`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread until it is done or `limit` has passed (`None`). The
/// future's I/O is driven elsewhere (the pool's runtime), so this only waits.
pub(super) fn block_on<F: Future>(future: F, limit: Duration) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let deadline = Instant::now() + limit;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}
