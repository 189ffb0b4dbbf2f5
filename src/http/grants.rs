//! `/api/v1/grants` and offboarding: list, show, revoke, extend, end early, offboard.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use super::ApiState;
use super::api::{AsBody, ExtendBody, Grants, Offboarded, OneGrant, ReasonBody, RequestAndGrant};
use super::auth::Operator;
use super::error::{ApiError, ApiJson, ApiQuery};
use super::requests::{MAX_LIMIT, parse_id};
use crate::domain::ids::{GrantId, PersonId};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    live: bool,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Grants>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_LIMIT);
    let grants = state.facade.grants(query.live, limit).await?;
    Ok(Json(Grants { grants }))
}

pub async fn show(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<OneGrant>, ApiError> {
    let id = parse_id::<GrantId>(&id)?;
    let grant = state.facade.grant(id).await?;
    Ok(Json(OneGrant { grant }))
}

pub async fn revoke(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<OneGrant>, ApiError> {
    let id = parse_id::<GrantId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let grant = state.facade.revoke(actor, id, body.reason).await?;
    Ok(Json(OneGrant { grant }))
}

pub async fn extend(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExtendBody>,
) -> Result<(StatusCode, Json<RequestAndGrant>), ApiError> {
    let id = parse_id::<GrantId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let submitted = state
        .facade
        .extend(actor, id, body.duration, body.reason)
        .await?;
    let body = RequestAndGrant {
        request: submitted.request,
        grant: submitted.grant,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn end(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AsBody>,
) -> Result<Json<OneGrant>, ApiError> {
    let id = parse_id::<GrantId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let grant = state.facade.end_early(actor, id).await?;
    Ok(Json(OneGrant { grant }))
}

pub async fn offboard(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(person): Path<String>,
    ApiJson(body): ApiJson<AsBody>,
) -> Result<Json<Offboarded>, ApiError> {
    let person = PersonId::new(person.trim());
    let actor = operator.acting_as(body.person)?;
    let done = state.facade.offboard(actor, person.clone()).await?;
    Ok(Json(Offboarded {
        person,
        grants: done.grants,
        requests: done.requests,
    }))
}
