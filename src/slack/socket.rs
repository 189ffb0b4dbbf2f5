//! Slack's Socket Mode: instead of Slack calling `/slack/*`, Gatehouse opens a websocket to
//! Slack and receives the same commands, clicks and events over it as envelopes. [`run`]
//! asks for a URL with `apps.connections.open` (app-level `xapp-` token, through
//! `slack.api_url`), connects, and hands each envelope to `envelope::handle`, which
//! acknowledges it within Slack's 3 s and feeds its payload to the very handlers HTTP mode
//! uses. When Slack asks for a reconnect (`disconnect`) a fresh URL is fetched at once; when
//! the connection is lost or cannot be made, the next attempt waits by [`RECONNECT`]. Every
//! connection ends with a close handshake when it can (RFC 6455 §7.1.2): ours on shutdown and
//! after `disconnect`, our answer to Slack's close frame when Slack closes first (§5.5.1), and
//! on shutdown the envelopes in flight are given a moment to finish.
//!
//! `/readyz` counts Slack as connected from Slack's `hello` until the connection ends; the
//! caller registers Slack with [`crate::metrics::Readiness::expect`] before serving.
//!
//! No signatures here: the connection itself is authenticated by the app token. `wss://`
//! uses rustls with [`crate::tls`]'s configuration, handed to tokio-tungstenite explicitly.

mod envelope;

use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::{self, Message};

#[cfg(any(test, feature = "testing"))]
pub use envelope::fuzz_envelope;

use super::Slack;
use super::http::Inbound;
use crate::backoff::{Backoff, Retries};
use crate::engine::Facade;
use crate::metrics::{CallOutcome, Metrics};

/// The platform's name in metrics and readiness.
const PLATFORM: &str = "slack";

/// How long envelopes still being handled at shutdown may take to finish.
const FINISH_WITHIN: Duration = Duration::from_secs(5);
/// How long to wait for Slack's answer to our close frame, or for Slack to end the TCP
/// connection after we answered its close frame.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);
/// How long opening the websocket (TCP, TLS, the upgrade) may take.
const OPEN_WITHIN: Duration = Duration::from_secs(10);
/// The waits before reconnecting: 1 s, doubling up to 30 s, each up to a quarter longer. A
/// connection Slack greeted starts them over.
pub const RECONNECT: Backoff =
    Backoff::new(Duration::from_secs(1), Duration::from_secs(30)).jitter(0.0, 0.25);

/// Why a connection could not be made or did not last; logged, then retried.
#[derive(Debug, thiserror::Error)]
pub enum SocketError {
    #[error("slack.app_token is required in socket mode")]
    NoAppToken,
    #[error("apps.connections.open failed: {0}")]
    Open(#[from] SlackClientError),
    #[error("the websocket failed: {0}")]
    Socket(#[from] tungstenite::Error),
    #[error("the websocket did not open within {}s", OPEN_WITHIN.as_secs())]
    OpenTimedOut,
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
}

/// How one connection ended.
#[derive(Debug, PartialEq, Eq)]
enum Ended {
    /// Shutdown was asked for; the socket is closed.
    Stopped,
    /// Slack sent `disconnect`: it wants us on a new connection now.
    Refresh,
    /// The connection closed or broke.
    Lost,
}

/// Receives Socket Mode envelopes until `stop` turns true (or its sender is gone).
pub async fn run(slack: Arc<Slack>, facade: Facade, stop: watch::Receiver<bool>) {
    let Some(app_token) = slack.app_token.as_ref() else {
        tracing::error!("{}; Socket Mode is not started", SocketError::NoAppToken);
        return;
    };
    let token = SlackApiToken::new(SlackApiTokenValue::new(app_token.expose().to_owned()));
    // `/readyz` says not ready until Slack greets us, and again whenever the connection is down.
    let metrics = facade.metrics().clone();
    let inbound = Inbound::new(slack.clone(), facade);
    let mut tasks = JoinSet::new();
    let mut backoff = Retries::new(RECONNECT);
    let mut stop = stop;
    loop {
        if *stop.borrow() {
            break;
        }
        let (ended, greeted) = match connect(&slack, &token, &metrics).await {
            Ok(url) => match session(&inbound, &url, &mut stop, &mut tasks, &metrics).await {
                Ok(outcome) => outcome,
                Err((error, greeted)) => {
                    tracing::warn!(%error, "the Socket Mode connection broke");
                    (Ended::Lost, greeted)
                }
            },
            Err(error) => {
                tracing::warn!(%error, "cannot open a Socket Mode connection");
                (Ended::Lost, false)
            }
        };
        metrics.readiness().disconnected(PLATFORM);
        if greeted {
            backoff.reset();
        }
        match ended {
            Ended::Stopped => break,
            Ended::Refresh => tracing::info!("Slack asked for a new Socket Mode connection"),
            Ended::Lost => {
                let delay = backoff.next_delay();
                tracing::info!(?delay, "reconnecting to Slack Socket Mode");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = stopped(&mut stop) => break,
                }
            }
        }
    }
    let finished = tokio::time::timeout(FINISH_WITHIN, tasks.join_all()).await;
    if finished.is_err() {
        tracing::warn!("Socket Mode envelopes were still being handled at shutdown");
    }
    tracing::info!("Socket Mode stopped");
}

/// A fresh websocket URL from `apps.connections.open`.
async fn connect(
    slack: &Slack,
    token: &SlackApiToken,
    metrics: &Metrics,
) -> Result<String, SocketError> {
    let opened = slack
        .client
        .open_session(token)
        .apps_connections_open(&SlackApiAppsConnectionOpenRequest::new())
        .await;
    let outcome = match &opened {
        Ok(_) => CallOutcome::Ok,
        Err(error) => crate::slack::port::call_outcome(error),
    };
    metrics.platform_call(PLATFORM, "apps.connections.open", outcome);
    Ok(opened?.url.0.to_string())
}

/// One connection, from the handshake until it ends. Along with how it ended: whether Slack
/// said `hello`, i.e. the connection really worked (which resets the backoff).
async fn session(
    inbound: &Arc<Inbound>,
    url: &str,
    stop: &mut watch::Receiver<bool>,
    tasks: &mut JoinSet<()>,
    metrics: &Metrics,
) -> Result<(Ended, bool), (SocketError, bool)> {
    let mut socket = open(url).await.map_err(|error| (error, false))?;
    let (acks, mut to_send) = mpsc::unbounded_channel::<String>();
    let mut greeted = false;
    let broke = |error: tungstenite::Error, greeted| (SocketError::from(error), greeted);
    loop {
        tokio::select! {
            () = stopped(stop) => {
                close(&mut socket, &mut to_send).await;
                return Ok((Ended::Stopped, greeted));
            }
            Some(ack) = to_send.recv() => {
                let sent = socket.send(Message::text(ack)).await;
                sent.map_err(|error| broke(error, greeted))?;
            }
            frame = socket.next() => match frame {
                Some(Ok(Message::Text(text))) => match envelope::read(&text) {
                    envelope::Read::Hello => {
                        greeted = true;
                        metrics.readiness().connected(PLATFORM);
                    }
                    envelope::Read::Disconnect(reason) => {
                        tracing::info!(reason, "Slack sent disconnect");
                        close(&mut socket, &mut to_send).await;
                        return Ok((Ended::Refresh, greeted));
                    }
                    envelope::Read::Work(work) => {
                        tasks.spawn(envelope::handle(inbound.clone(), work, acks.clone()));
                        while tasks.try_join_next().is_some() {}
                    }
                    envelope::Read::Unreadable => {}
                },
                Some(Ok(Message::Close(frame))) => {
                    tracing::info!(?frame, "Slack closed the Socket Mode connection");
                    answer_close(&mut socket).await;
                    return Ok((Ended::Lost, greeted));
                }
                // Pings are answered by tungstenite itself; binary frames are not Slack's.
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(broke(error, greeted)),
                None => return Ok((Ended::Lost, greeted)),
            }
        }
    }
}

/// Until shutdown is asked for, or nobody can ask any more.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; it must not live across an await.
    let _ = stop.wait_for(|stopped| *stopped).await.map(|_| ());
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the websocket at `url` (TCP, TLS for `wss://`, the upgrade). The rustls configuration
/// is handed over explicitly, so that a TLS library another crate turns on in
/// tokio-tungstenite is never picked instead.
async fn open(url: &str) -> Result<Socket, SocketError> {
    let tls = tokio_tungstenite::Connector::Rustls(Arc::new(crate::tls::verifying(None)?));
    let opening = tokio_tungstenite::connect_async_tls_with_config(url, None, false, Some(tls));
    let (socket, _) = tokio::time::timeout(OPEN_WITHIN, opening)
        .await
        .map_err(|_| SocketError::OpenTimedOut)??;
    Ok(socket)
}

/// Sends the acks still queued, then a close frame, and waits briefly for Slack's close.
async fn close(socket: &mut Socket, to_send: &mut mpsc::UnboundedReceiver<String>) {
    while let Ok(ack) = to_send.try_recv() {
        if socket.send(Message::text(ack)).await.is_err() {
            return;
        }
    }
    if let Err(error) = socket.close(None).await {
        tracing::debug!(%error, "closing the Socket Mode connection");
        return;
    }
    if !drained(socket).await {
        tracing::debug!("Slack did not answer our close frame in time");
    }
}

/// Answers the close frame Slack sent with ours (RFC 6455 §5.5.1). tungstenite queues that
/// answer as it reads Slack's frame, but writes it only with the next write or flush: without
/// one here it would be dropped with the socket. Then Slack, the server, ends the TCP
/// connection (§7.1.1), which is waited for briefly.
async fn answer_close(socket: &mut Socket) {
    // `flush`, not `close`: with Slack's frame read, no new frame may be sent, only the
    // answer tungstenite queued.
    if let Err(error) = socket.flush().await {
        tracing::debug!(%error, "answering Slack's close frame");
        return;
    }
    if !drained(socket).await {
        tracing::debug!("Slack did not end the connection after our close frame");
    }
}

/// Reads what is left until the connection ends; whether it did within [`CLOSE_WITHIN`].
async fn drained(socket: &mut Socket) -> bool {
    let rest = async { while let Some(Ok(_)) = socket.next().await {} };
    tokio::time::timeout(CLOSE_WITHIN, rest).await.is_ok()
}

#[cfg(test)]
mod tests;
