//! The HTTP front end: health checks, metrics and the admin API (`/api/v1`, JSON, bearer tokens).
//! Handlers parse at the edge, act "as" a person through the engine's [`Facade`] (one call
//! each), and map the engine's errors to statuses (see the `error` module).

mod admin;
pub mod api;
mod auth;
mod backup;
pub mod body;
mod error;
mod grants;
mod health;
mod requests;
pub mod server;

use std::sync::{Arc, RwLock};

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use serde_json::json;

pub use auth::{Operator, authenticate};
pub use body::{BodyLimit, BodyRules, read_body};
pub use error::ApiError;

use crate::config::{AdminConfig, Power};
use crate::domain::directory::Directory;
use crate::domain::policy::Policy;
use crate::engine::{EngineError, Facade, ReloadReport, on_blocking_pool};

/// A new policy, directory and admin tokens, read and checked.
pub struct Reloaded {
    pub policy: Policy,
    pub directory: Directory,
    pub admin: AdminConfig,
    pub warnings: Vec<String>,
}

/// Reads the configuration again for `POST /api/v1/reload`. On failure, the problems one
/// per line (`policy.toml:12: error: …`), and nothing in force changes.
pub trait Reloader: Send + Sync + 'static {
    fn reload(&self) -> Result<Reloaded, Vec<String>>;
}

/// Why a reload changed nothing.
#[derive(Debug)]
pub enum ReloadError {
    /// The files do not pass the checks: the problems, one per line.
    Invalid(Vec<String>),
    Engine(EngineError),
}

/// What every handler shares.
pub struct ApiState {
    pub facade: Facade,
    admin: RwLock<Arc<AdminConfig>>,
    reloader: Arc<dyn Reloader>,
}

impl ApiState {
    pub fn new(facade: Facade, admin: AdminConfig, reloader: Arc<dyn Reloader>) -> Arc<Self> {
        Arc::new(Self {
            facade,
            admin: RwLock::new(Arc::new(admin)),
            reloader,
        })
    }

    /// The admin tokens in force.
    pub fn admin(&self) -> Arc<AdminConfig> {
        self.admin
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn replace_admin(&self, admin: AdminConfig) {
        *self
            .admin
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(admin);
    }

    /// Reads the configuration again and puts it in force. Used by `POST /api/v1/reload`,
    /// by SIGHUP and by the directory sync.
    pub async fn reload_files(&self) -> Result<serde_json::Value, ReloadError> {
        // Reading files blocks too; it is no engine call.
        let reloader = self.reloader.clone();
        let read = on_blocking_pool(move || Ok::<_, EngineError>(reloader.reload())).await;
        let new = read
            .map_err(ReloadError::Engine)?
            .map_err(ReloadError::Invalid)?;
        let mut summary = api::ReloadSummary {
            ok: true,
            people: new.directory.people().count(),
            resources: new.policy.resources.len(),
            workflows: new.policy.workflows.len(),
            reviews: new.policy.reviews.len(),
            admin_tokens: new.admin.tokens.len(),
            warnings: new.warnings,
            access: ReloadReport::default(),
        };
        summary.access = self
            .facade
            .reload(new.policy, new.directory)
            .await
            .map_err(ReloadError::Engine)?;
        self.replace_admin(new.admin);
        tracing::info!(report = ?summary.access, "policy, directory and admin tokens reloaded");
        Ok(json!(summary))
    }
}

/// The largest admin API body: a request with its reason and fields, a decision's comment.
const ADMIN_BODY: BodyLimit = BodyLimit::kib(64);

/// Every route Gatehouse serves over HTTP. The admin API's routes are grouped by the
/// [`Power`] a token needs for them (see `docs/security.md`); the checks of who a call acts
/// as are the handlers' ([`Operator::acting_as`]).
pub fn router(state: Arc<ApiState>) -> Router {
    let read = Router::new()
        .route("/requests", get(requests::list))
        .route("/requests/{id}", get(requests::show))
        .route("/grants", get(grants::list))
        .route("/grants/{id}", get(grants::show))
        .route("/audit", get(admin::audit))
        .route("/audit/verify", get(admin::verify))
        .route_layer(from_fn_with_state(Power::Read, auth::require_power));
    let request = Router::new()
        .route("/requests", post(requests::submit))
        .route("/requests/{id}/cancel", post(requests::cancel))
        .route("/grants/{id}/extend", post(grants::extend))
        .route("/grants/{id}/end", post(grants::end))
        .route_layer(from_fn_with_state(Power::Request, auth::require_power));
    let decide = Router::new()
        .route("/requests/{id}/approve", post(requests::approve))
        .route("/requests/{id}/reject", post(requests::reject))
        .route_layer(from_fn_with_state(Power::Decide, auth::require_power));
    let admin = Router::new()
        .route("/grants/{id}/revoke", post(grants::revoke))
        .route("/people/{id}/offboard", post(grants::offboard))
        .route("/reload", post(admin::reload))
        .route("/backup", get(backup::backup))
        .route_layer(from_fn_with_state(Power::Admin, auth::require_power));
    let api = read
        .merge(request)
        .merge(decide)
        .merge(admin)
        // Bodies are read after the token is checked (the layer added last runs first).
        .route_layer(from_fn_with_state(ADMIN_BODY, read_body))
        .route_layer(from_fn_with_state(state.clone(), auth::require_token))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "no such admin API call; see `gatehouse --help` for what exists",
            )
        });
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api/v1", api)
        .with_state(state)
}
