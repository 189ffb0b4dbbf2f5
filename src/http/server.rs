//! The HTTP server: HTTP/1.1 connections served by hyper, bounded so that slow, idle or
//! hostile clients cannot take the server away from everyone else.
//!
//! - At most `server.max_connections` connections are served at once; beyond that, new ones
//!   wait in the kernel's listen backlog until one closes. The open-file limit is raised to
//!   what the system allows, and the cap is lowered to fit under it, so accepting never fails
//!   for want of file handles.
//! - A client has `server.header_timeout` to send a request's line and headers, counted from
//!   connecting or from the previous response: a slow or idle connection is closed then.
//! - Headers are at most [`MAX_HEAD`] bytes; bodies are bounded by each route's limit, the
//!   body timeout and one memory budget for all of them (see `body`), so what a connection
//!   holds is bounded.
//! - Memory freed when a crowd of connections has gone is returned to the system.
//! - On shutdown the listener is closed, connections finish the request they are in, and
//!   after `server.shutdown_grace` whatever is left is dropped.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::task::JoinSet;

use super::body::BodyRules;
use crate::config::ServerConfig;

/// The largest request line and headers taken (431 beyond): Slack's, Discord's and the admin
/// API's are well under 2 KiB.
pub const MAX_HEAD: usize = 16 * 1024;
/// The most a connection buffers from its socket at once.
const READ_BUFFER: usize = 64 * 1024;
/// The memory all request bodies being received may take together. The largest route limit
/// is 1 MiB, so this is many large bodies at once, and a few thousand slow ones cannot
/// take more.
pub const BODY_MEMORY: usize = 32 * 1024 * 1024;
/// Open files kept for everything but connections: the store, outbound calls, logs.
const FILES_KEPT: u64 = 256;

/// How the server bounds its clients; from `[server]`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub max_connections: usize,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub shutdown_grace: Duration,
    pub body_memory: usize,
}

impl Limits {
    pub fn from_config(server: &ServerConfig) -> Self {
        Self {
            max_connections: usize::try_from(server.max_connections).unwrap_or(usize::MAX),
            header_timeout: server.header_timeout.to_std(),
            body_timeout: server.body_timeout.to_std(),
            shutdown_grace: server.shutdown_grace.to_std(),
            body_memory: BODY_MEMORY,
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then closes the listener, lets
/// open connections finish their requests for the grace period, and drops the rest.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    shutdown: impl Future<Output = ()> + Send,
) {
    let max_connections = fit_open_files(limits.max_connections);
    let rules = BodyRules::new(limits.body_timeout, limits.body_memory);
    let service = TowerToHyperService::new(router.layer(axum::Extension(rules.clone())));
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(MAX_HEAD)
        .max_buf_size(READ_BUFFER)
        .keep_alive(true);
    let slots = Arc::new(Semaphore::new(max_connections));
    let trimmer = tokio::spawn(return_memory(slots.clone(), max_connections, rules.clone()));
    let (closing, closed) = watch::channel(false);
    let mut connections = JoinSet::new();
    let full = Throttle::default();
    let failing = Throttle::default();
    tokio::pin!(shutdown);
    loop {
        while connections.try_join_next().is_some() {}
        let slot = match slots.clone().try_acquire_owned() {
            Ok(slot) => slot,
            Err(_) => {
                if full.ready() {
                    tracing::warn!(
                        max_connections,
                        "every connection slot is in use (server.max_connections); new \
                         connections wait until one closes"
                    );
                }
                tokio::select! {
                    slot = slots.clone().acquire_owned() => match slot {
                        Ok(slot) => slot,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    accept_failed(&error, &failing).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        connections.spawn(connection(
            stream,
            http.clone(),
            service.clone(),
            closed.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = closing.send(true);
    let open = connections.len();
    let finished = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if finished.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace = ?limits.shutdown_grace,
            "dropping connections still open after the shutdown grace period"
        );
    } else if open > 0 {
        tracing::info!(open, "open connections finished");
    }
    connections.shutdown().await;
    trimmer.abort();
}

/// Gives the memory of a crowd of connections or bodies back to the system once it has
/// gone. The allocator keeps freed memory for reuse, so after thousands of connections
/// closed the process would stay as large as at their peak. Every second the memory
/// held for connections and bodies is estimated; once it has fallen by [`TRIM_AFTER`] from
/// its high point, free pages are returned.
async fn return_memory(slots: Arc<Semaphore>, max_connections: usize, bodies: BodyRules) {
    let mut high = 0;
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        every.tick().await;
        let open = max_connections.saturating_sub(slots.available_permits());
        let held = open * CONNECTION_BYTES + bodies.held_bytes();
        high = high.max(held);
        if high - held >= TRIM_AFTER {
            high = held;
            let _ = tokio::task::spawn_blocking(trim).await;
        }
    }
}

/// About what an open connection takes: its read buffer, task and socket state.
const CONNECTION_BYTES: usize = 16 * 1024;
/// How much memory must have been given up before returning it is worth a pass.
const TRIM_AFTER: usize = 4 * 1024 * 1024;

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() {
    // SAFETY: malloc_trim only walks glibc's own heaps and takes a plain integer.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() {}

/// One connection, served until the client closes it, a timeout or limit closes it, or the
/// server shuts down (then the request in progress is finished first).
async fn connection<S>(
    stream: TcpStream,
    http: http1::Builder,
    service: S,
    mut closing: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) where
    S: hyper::service::HttpService<hyper::body::Incoming> + Send,
    S::Future: Send + 'static,
    S::ResBody: Send + 'static,
    <S::ResBody as hyper::body::Body>::Data: Send,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let _ = stream.set_nodelay(true);
    let served = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(served);
    let result = tokio::select! {
        result = served.as_mut() => result,
        _ = async { closing.wait_for(|closing| *closing).await.is_ok() } => {
            served.as_mut().graceful_shutdown();
            served.await
        }
    };
    if let Err(error) = result {
        // Clients that time out, send garbage or go away are theirs to worry about.
        tracing::debug!(%error, "an HTTP connection ended with an error");
    }
}

/// A failed accept: per-connection errors (the client gave up) are skipped; running out of
/// file handles or memory is logged and waited out briefly rather than spun on.
async fn accept_failed(error: &std::io::Error, throttle: &Throttle) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        error.kind(),
        ConnectionAborted | ConnectionRefused | ConnectionReset
    ) {
        return;
    }
    if throttle.ready() {
        tracing::error!(%error, "cannot accept HTTP connections; retrying");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
}

/// `wanted` connections, or fewer if the open-file limit (raised first to the most the system
/// allows) would not fit them beside the files Gatehouse needs otherwise.
fn fit_open_files(wanted: usize) -> usize {
    let Some(files) = raise_open_files_limit() else {
        return wanted;
    };
    let fits = usize::try_from(files.saturating_sub(FILES_KEPT).max(1)).unwrap_or(usize::MAX);
    if wanted > fits {
        tracing::warn!(
            max_connections = wanted,
            open_files = files,
            serving = fits,
            "server.max_connections does not fit the open-file limit; raise LimitNOFILE (systemd) \
             or `ulimit -n`, or lower server.max_connections"
        );
        return fits;
    }
    wanted
}

/// Raises the soft limit on open files to the hard limit (the most an unprivileged process
/// may), as servers do; the soft limit now in force, or `None` when it cannot be read.
fn raise_open_files_limit() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one rlimit into the struct we own and pass by pointer.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads one rlimit from the struct we own and pass by pointer.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    Some(limit.rlim_cur)
}

/// Lets a repeated warning through at most once every ten seconds, so that an attack or a
/// flood fills no disk with log lines.
#[derive(Default)]
pub struct Throttle {
    last: AtomicU64,
}

impl Throttle {
    const EVERY: Duration = Duration::from_secs(10);

    pub const fn new() -> Self {
        Self {
            last: AtomicU64::new(0),
        }
    }

    pub fn ready(&self) -> bool {
        static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let start = *START.get_or_init(Instant::now);
        // Offset by EVERY so that the first call is always let through.
        let now = (start.elapsed() + Self::EVERY).as_secs();
        let last = self.last.load(Ordering::Relaxed);
        now >= last + Self::EVERY.as_secs()
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
    }
}
