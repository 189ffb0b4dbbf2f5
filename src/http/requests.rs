//! `/api/v1/requests`: list, show, submit, approve (with changes), reject, cancel.

use std::collections::BTreeMap;
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::auth::Operator;
use super::error::{ApiError, ApiJson, ApiQuery};
use crate::domain::duration::Duration;
use crate::domain::ids::{IdError, PersonId, RequestId, RoleId};
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
) -> Result<Json<Value>, ApiError> {
    let limit = query.limit.unwrap_or(50).min(MAX_LIMIT);
    let requests = state.facade.requests(query.pending, limit).await?;
    Ok(Json(json!({ "requests": requests })))
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
) -> Result<Json<Value>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let request = state.facade.request(id).await?;
    Ok(Json(json!({ "request": request })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitBody {
    #[serde(rename = "as")]
    person: Option<PersonId>,
    resource: String,
    role: String,
    duration: Option<Duration>,
    #[serde(default)]
    reason: String,
    #[serde(default)]
    fields: BTreeMap<String, String>,
    #[serde(default)]
    emergency: bool,
}

pub async fn submit(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    ApiJson(body): ApiJson<SubmitBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
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
    let body = json!({ "request": submitted.request, "grant": submitted.grant });
    Ok((StatusCode::CREATED, Json(body)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(rename = "as")]
    person: Option<PersonId>,
    duration: Option<Duration>,
    role: Option<RoleId>,
}

pub async fn approve(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ApproveBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let changes = Changes {
        duration: body.duration,
        role: body.role,
        ..Changes::default()
    };
    let decided = state.facade.approve(actor, id, changes).await?;
    Ok(Json(
        json!({ "request": decided.request, "grant": decided.grant }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    #[serde(rename = "as")]
    person: Option<PersonId>,
    #[serde(default)]
    reason: String,
}

pub async fn reject(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RejectBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let decided = state.facade.reject(actor, id, body.reason).await?;
    Ok(Json(json!({ "request": decided.request })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AsBody {
    #[serde(rename = "as")]
    pub person: Option<PersonId>,
}

pub async fn cancel(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<AsBody>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id::<RequestId>(&id)?;
    let actor = operator.acting_as(body.person)?;
    let decided = state.facade.cancel(actor, id).await?;
    Ok(Json(json!({ "request": decided.request })))
}
