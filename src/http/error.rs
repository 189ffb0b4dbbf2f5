//! How the admin API fails: always a JSON body `{"error": sentence}` with a status that says
//! whose problem it is. Internal errors are logged once, here, with a reference id that the
//! caller is given instead of the details.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::engine::{Clock, EngineError, SystemClock};

/// An error response of the admin API.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            body: json!({ "error": message.into() }),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// Logs `err` with a fresh reference id; the caller sees only the id.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        let reference = reference_id();
        tracing::error!(reference = %reference, error = %err, "internal error in the admin API");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error, reference {reference}"),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

impl From<EngineError> for ApiError {
    fn from(err: EngineError) -> Self {
        let status = match &err {
            EngineError::Refused(_) | EngineError::Decision(_) | EngineError::Grant(_) => {
                StatusCode::BAD_REQUEST
            }
            EngineError::NotAllowed(_) => StatusCode::FORBIDDEN,
            EngineError::NotFound(_) => StatusCode::NOT_FOUND,
            EngineError::Store(_) | EngineError::Internal(_) => return ApiError::internal(&err),
        };
        ApiError::new(status, err.to_string())
    }
}

/// A short id that ties what the caller was told to the log line: time and a counter.
fn reference_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let millis = Clock::now(&SystemClock).timestamp_millis();
    let count = COUNTER.fetch_add(1, Ordering::Relaxed);
    // 48 bits of time in milliseconds is plenty to be unique together with the counter.
    let millis = millis as u64 & 0xffff_ffff_ffff;
    format!("E{millis:x}-{count}")
}

/// A JSON body whose problems become a 400 that says what is wrong.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(ApiJson(value)),
            Err(rejection) => Err(json_problem(&rejection)),
        }
    }
}

fn json_problem(rejection: &JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "the request body is larger than this call takes; send less",
        );
    }
    let detail =
        match rejection {
            JsonRejection::MissingJsonContentType(_) => {
                return ApiError::bad_request(
                    "the body must be JSON, sent with the header Content-Type: application/json",
                );
            }
            JsonRejection::JsonDataError(e) => std::error::Error::source(e)
                .map_or_else(|| rejection.body_text(), ToString::to_string),
            JsonRejection::JsonSyntaxError(e) => std::error::Error::source(e)
                .map_or_else(|| rejection.body_text(), ToString::to_string),
            _ => rejection.body_text(),
        };
    ApiError::bad_request(format!(
        "the request body is not what this call takes: {detail}"
    ))
}

/// Query parameters whose problems become a 400 that says what is wrong.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(query_problem(&rejection)),
        }
    }
}

fn query_problem(rejection: &QueryRejection) -> ApiError {
    let detail = match rejection {
        QueryRejection::FailedToDeserializeQueryString(e) => {
            std::error::Error::source(e).map_or_else(|| rejection.body_text(), ToString::to_string)
        }
        _ => rejection.body_text(),
    };
    ApiError::bad_request(format!(
        "the query string is not what this call takes: {detail}"
    ))
}
