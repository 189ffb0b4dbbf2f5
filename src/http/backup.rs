//! `GET /api/v1/backup`: a consistent snapshot of the running server's store, in the backup
//! format of [`crate::store::backup`], for `gatehouse backup` while a server holds the data
//! directory. Authenticated like every admin call; whoever took one is logged.
//!
//! The snapshot is written to a file without a name as it is read (under the store's
//! writer lock, which a slow client must not hold), then sent from that file: a backup of a
//! store of any size costs the server disk while it is sent, not memory.

use std::sync::Arc;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::io::AsyncReadExt as _;

use super::ApiState;
use super::auth::Operator;
use super::error::ApiError;
use crate::store::backup::{self, BackupError};

/// How much of the file is read and sent at a time.
const CHUNK: usize = 64 * 1024;

pub async fn backup(
    State(state): State<Arc<ApiState>>,
    Extension(operator): Extension<Operator>,
) -> Result<Response, ApiError> {
    let spooled = state.facade.backup().await.map_err(|e| match e {
        BackupError::Unsupported => ApiError::new(
            axum::http::StatusCode::NOT_IMPLEMENTED,
            "this store cannot take backups",
        ),
        other => ApiError::internal(other),
    })?;
    let length = spooled.file.metadata().map_err(ApiError::internal)?.len();
    tracing::info!(token = %operator.token, entries = spooled.entries, bytes = length, "backup taken through the admin API");
    let disposition = format!(
        "attachment; filename=\"{}\"",
        backup::file_name(spooled.header.created_at)
    );
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(chunks(tokio::fs::File::from_std(spooled.file))),
    )
        .into_response())
}

/// The file's bytes, `CHUNK` at a time; the stream ends after an error.
fn chunks(
    file: tokio::fs::File,
) -> impl futures_util::Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buffer = vec![0; CHUNK];
        match file.read(&mut buffer).await {
            Ok(0) => None,
            Ok(read) => {
                buffer.truncate(read);
                Some((Ok(Bytes::from(buffer)), Some(file)))
            }
            Err(e) => Some((Err(e), None)),
        }
    })
}
