//! One port for REST and the gateway, as Discord's clients see two hosts: each accepted TCP
//! connection's request head is read first; a websocket upgrade goes to [`super::gateway`], the
//! rest to axum with the head replayed. Each HTTP connection is wrapped in the fake Slack's
//! [`Killable`], whose [`KillSwitch`] a handler reaches through `ConnectInfo`: once thrown, every
//! read and write on that connection fails, the way a load balancer or a network blip does.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

pub use crate::fake_slack::killable::KillSwitch;
use crate::fake_slack::killable::Killable;

use super::{Shared, gateway};

/// A TCP stream whose first bytes (the request head, already read) are replayed.
pub struct Conn {
    stream: TcpStream,
    head: Vec<u8>,
    read: usize,
}

/// Accepts connections and sorts them; HTTP ones come out of the returned [`Incoming`].
pub fn split(listener: TcpListener, shared: Arc<Shared>) -> Incoming {
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((stream, peer)) = listener.accept().await {
            let (tx, cloned) = (tx.clone(), shared.clone());
            let sorter = tokio::spawn(async move {
                let Some((conn, path)) = read_head(stream).await else {
                    return;
                };
                match path {
                    Some(path) => gateway::serve(conn, path, cloned).await,
                    None => {
                        let _ = tx.send((Killable::new(conn), peer));
                    }
                }
            });
            shared.lock().gateway.tasks.push(sorter.abort_handle());
        }
    });
    Incoming {
        rx,
        addr,
        _accept: task.abort_handle(),
    }
}

/// Reads up to the end of the request head; `Some(path)` when it asks for a websocket.
async fn read_head(mut stream: TcpStream) -> Option<(Conn, Option<String>)> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        head.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let upgrade = text
        .lines()
        .any(|line| line.starts_with("upgrade:") && line.contains("websocket"));
    let path = upgrade.then(|| {
        let line = String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or("")
            .to_owned();
        line.split(' ').nth(1).unwrap_or("").to_owned()
    });
    let conn = Conn {
        stream,
        head,
        read: 0,
    };
    Some((conn, path))
}

pub struct Incoming {
    rx: mpsc::UnboundedReceiver<(Killable<Conn>, SocketAddr)>,
    addr: SocketAddr,
    _accept: tokio::task::AbortHandle,
}

impl Drop for Incoming {
    fn drop(&mut self) {
        self._accept.abort();
    }
}

impl Listener for Incoming {
    type Io = Killable<Conn>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

impl Connected<IncomingStream<'_, Incoming>> for KillSwitch {
    fn connect_info(incoming: IncomingStream<'_, Incoming>) -> Self {
        incoming.io().switch().clone()
    }
}

impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.read < self.head.len() {
            let n = (self.head.len() - self.read).min(buf.remaining());
            let start = self.read;
            buf.put_slice(&self.head[start..start + n]);
            self.read += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
