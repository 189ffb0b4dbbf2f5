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
    let requests = state
        .blocking(move |engine| {
            engine
                .store()
                .requests(query.pending, limit)
                .map_err(ApiError::internal)
        })
        .await?;
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
    let request = state
        .blocking(move |engine| engine.store().request(id).map_err(ApiError::internal))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("there is no request {id}")))?;
    Ok(Json(json!({ "request": request.value })))
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
    let submitted = state
        .blocking(move |engine| Ok(engine.submit(&actor, ask)?))
        .await?;
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
    let decided = state
        .blocking(move |engine| Ok(engine.approve(&actor, id, &changes)?))
        .await?;
    decided_with_grant(&state, decided.request).await
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
    let decided = state
        .blocking(move |engine| Ok(engine.reject(&actor, id, &body.reason)?))
        .await?;
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
    let decided = state
        .blocking(move |engine| Ok(engine.cancel(&actor, id)?))
        .await?;
    Ok(Json(json!({ "request": decided.request })))
}

/// The request and, once it is approved, the grant it produced.
async fn decided_with_grant(
    state: &ApiState,
    request: crate::domain::request::AccessRequest,
) -> Result<Json<Value>, ApiError> {
    let grant = match &request.state {
        crate::domain::request::RequestState::Approved { grant, .. } => {
            let id = *grant;
            state
                .blocking(move |engine| engine.store().grant(id).map_err(ApiError::internal))
                .await?
                .map(|g| g.value)
        }
        _ => None,
    };
    Ok(Json(json!({ "request": request, "grant": grant })))
}
