//! `[store]`: where Gatehouse keeps its state. `backend = "sled"` (the default) is the embedded
//! database in `server.data_dir`, for one process; `backend = "postgres"` is a PostgreSQL
//! database shared by several replicas (docs/operations.md, "High availability"), reached as
//! the `postgres` connector reaches its server: a URL without the password, the password from
//! `password` / `password_file`, and `sslmode` with an optional `ca` / `ca_file`.

use serde::Deserialize;

use super::secret::Secret;
use super::sections::SslMode;

/// Which store Gatehouse runs on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    /// sled in `server.data_dir`: nothing to set up, one process at a time.
    #[default]
    Sled,
    /// A PostgreSQL database: several replicas, one of them leading.
    Postgres,
}

/// `[store]`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    pub backend: StoreBackend,
    /// `postgres://user@host:5432/dbname`, without the password.
    pub url: Option<String>,
    /// The database password; usually `password_file`.
    pub password: Option<Secret>,
    pub sslmode: SslMode,
    /// Extra CA certificates to trust, as PEM text (`ca_file` reads it from a file).
    pub ca: Option<String>,
    /// How many connections one replica keeps open at most.
    pub connections: u32,
}

/// `store.connections` when not set.
pub const DEFAULT_CONNECTIONS: u32 = 8;

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            backend: StoreBackend::Sled,
            url: None,
            password: None,
            sslmode: SslMode::default(),
            ca: None,
            connections: DEFAULT_CONNECTIONS,
        }
    }
}
