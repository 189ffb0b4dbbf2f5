//! `/api/v1/requests`: list, show, submit, approve (with changes), reject, cancel.

use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;

use super::ApiState;
use super::api::{
    ApproveBody, AsBody, OneRequest, ReasonBody, RequestAndGrant, Requests, SubmitBody,
};
use super::auth::Operator;
use super::error::{ApiError, ApiJson, ApiQuery};
use crate::domain::ids::{IdError, RequestId};
use crate::domain::request::Changes;
use crate::domain::validation::Ask;

/// Most records one list call returns.
pub const MAX_LIMIT: usize = 1000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    #[serde(default)]
    pending: bool,
    limit: Option<usize>,
}

pub async fn list(
    State(state): State<Arc<ApiState>>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<Requests>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_LIMIT);
    let requests = state.facade.requests(query.pending, limit).await?;
    Ok(Json(Requests { requests }))
}

/// A request or grant id from the path (`AR-12`, `ar-12`, `12`); anything else is a 400
/// that says what ids look like.
pub fn parse_id<T: FromStr<Err = IdError>>(id: &str) -> Result<T, ApiError> {
    id.parse()
        .map_err(|e: IdError| ApiError::bad_request(e.to_string()))
}

pub async fn show(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Json<OneRequest>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let request = state.facade.request(id).await?;
    Ok(Json(OneRequest { request }))
}

pub async fn submit(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    ApiJson(body): ApiJson<SubmitBody>,
) -> Result<(StatusCode, Json<RequestAndGrant>), ApiError> {
    let actor = operator.acting_as(body.person)?;
    let requester = actor.person_id().cloned().unwrap_or_default();
    let ask = Ask {
        requester,
        resource: body.resource,
        role: body.role,
        duration: body.duration,
        justification: body.reason,
        fields: body.fields,
        emergency: body.emergency,
        extends: None,
    };
    let submitted = state.facade.submit(actor, ask).await?;
    let body = RequestAndGrant {
        request: submitted.request,
        grant: submitted.grant,
    };
    Ok((StatusCode::CREATED, Json(body)))
}

pub async fn approve(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<Json<RequestAndGrant>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let changes = Changes {
        duration: body.duration,
        role: body.role,
        ..Changes::default()
    };
    let decided = state.facade.approve(actor, id, changes).await?;
    Ok(Json(RequestAndGrant {
        request: decided.request,
        grant: decided.grant,
    }))
}

pub async fn reject(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReasonBody>,
) -> Result<Json<OneRequest>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let decided = state.facade.reject(actor, id, body.reason).await?;
    Ok(Json(OneRequest {
        request: decided.request,
    }))
}

pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AsBody>,
) -> Result<Json<OneRequest>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let decided = state.facade.cancel(actor, id).await?;
    Ok(Json(OneRequest {
        request: decided.request,
    }))
}
