//! `/api/v1/audit` (read and verify the chain) and `/api/v1/reload`.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::ReloadError;
use super::auth::Operator;
use super::error::{ApiError, ApiQuery};
use super::requests::MAX_LIMIT;
use crate::domain::anchor::PublishedHead;
use crate::engine::EngineError;
use crate::store::StoreError;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    from: Option<u64>,
    limit: Option<usize>,
}

/// Audit records from sequence `from` (1 is the first), in order.
pub async fn audit(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<Value>, ApiError> {
    let from = query.from.unwrap_or(1);
    let limit = query.limit.unwrap_or(100).min(MAX_LIMIT);
    let records = state.facade.audit(from, limit).await?;
    Ok(Json(json!({ "records": records })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyQuery {
    /// Published heads the chain must hold, `SEQ:HASH` separated by commas.
    heads: Option<String>,
}

/// Walks the whole chain with its checkpoints: 200 with what anchors it when intact, 409
/// naming the first problem when not.
pub async fn verify(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<VerifyQuery>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let heads = query
        .heads
        .iter()
        .flat_map(|heads| heads.split(','))
        .filter(|head| !head.trim().is_empty())
        .map(str::parse::<PublishedHead>)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    match state.facade.verify_audit(heads).await {
        Ok(report) => {
            let body = json!({ "ok": true, "events": report.events, "anchor": report, "notes": report.notes() });
            Ok((StatusCode::OK, Json(body)))
        }
        Err(EngineError::Store(StoreError::Chain(broken))) => {
            tracing::error!(%broken, "the audit log failed verification");
            let body =
                json!({ "ok": false, "error": format!("the audit log is not intact: {broken}") });
            Ok((StatusCode::CONFLICT, Json(body)))
        }
        Err(other) => Err(other.into()),
    }
}

/// Reads gatehouse.toml, the policy and the directory again. If they do not pass the
/// checks, nothing changes and the problems are returned; else the new policy, directory
/// and admin tokens are put in force (other settings need a restart), and the directory
/// change is applied to people's access (leavers, movers, joiners).
pub async fn reload(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
) -> Result<Json<Value>, ApiError> {
    match state.reload_files().await {
        Ok(summary) => {
            tracing::info!(token = %operator.token, "reloaded through the admin API");
            Ok(Json(summary))
        }
        Err(ReloadError::Invalid(diagnostics)) => {
            tracing::warn!(token = %operator.token, problems = diagnostics.len(), "reload refused");
            Err(ApiError {
                status: StatusCode::BAD_REQUEST,
                body: json!({
                    "error": "the new configuration does not pass the checks; the old one stays in force",
                    "diagnostics": diagnostics,
                }),
            })
        }
        Err(ReloadError::Engine(e)) => Err(e.into()),
    }
}
