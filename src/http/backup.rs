//! `GET /api/v1/backup`: a consistent snapshot of the running server's store, in the backup
//! format of [`crate::store::backup`], for `gatehouse backup` while a server holds the data
//! directory. Authenticated like every admin call; whoever took one is logged.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::ApiState;
use super::auth::Operator;
use super::error::ApiError;
use crate::store::Store;
use crate::store::backup::{self, BackupError};

pub async fn backup<S: Store>(
    State(state): State<Arc<ApiState<S>>>,
    Extension(operator): Extension<Operator>,
) -> Result<Response, ApiError> {
    let bytes = state
        .blocking(|engine| {
            let snapshot = engine.store().backup().map_err(|e| match e {
                BackupError::Unsupported => ApiError::new(
                    axum::http::StatusCode::NOT_IMPLEMENTED,
                    "this store cannot take backups",
                ),
                other => ApiError::internal(other),
            })?;
            let mut bytes = Vec::new();
            backup::write(&snapshot, &mut bytes).map_err(ApiError::internal)?;
            Ok((bytes, snapshot.entries.len(), snapshot.header.created_at))
        })
        .await?;
    let (bytes, entries, at) = bytes;
    tracing::info!(token = %operator.token, entries, "backup taken through the admin API");
    let disposition = format!("attachment; filename=\"{}\"", backup::file_name(at));
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
        ],
        bytes,
    )
        .into_response())
}
