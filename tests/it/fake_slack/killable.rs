//! Connections the fake can cut: the fake's [`Fault::Drop`](super::Fault::Drop) closes the TCP
//! connection a request came on without an answer, the way a load balancer or a network blip
//! does. Each accepted stream carries a [`KillSwitch`] that a handler reaches through
//! `ConnectInfo`; once thrown, every read and write on that stream fails, so hyper abandons the
//! connection and closes the socket. The fake Discord's connections are cut the same way.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Throws once: the connection it belongs to is dead from then on.
#[derive(Clone, Default, Debug)]
pub struct KillSwitch(Arc<AtomicBool>);

impl KillSwitch {
    pub fn kill(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn killed(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct KillableListener(pub TcpListener);

impl Listener for KillableListener {
    type Io = Killable;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((stream, peer)) => return (Killable::new(stream), peer),
                // Out of file descriptors and the like: wait and try again, as axum does.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(incoming: IncomingStream<'_, KillableListener>) -> Self {
        incoming.io().switch().clone()
    }
}

/// A stream whose reads and writes all fail once its [`KillSwitch`] is thrown. The fake
/// Discord wraps its own connections (whose request head it has read already) in it too.
pub struct Killable<S = TcpStream> {
    stream: S,
    switch: KillSwitch,
}

impl<S> Killable<S> {
    pub fn new(stream: S) -> Self {
        Self {
            stream,
            switch: KillSwitch::default(),
        }
    }

    pub fn switch(&self) -> &KillSwitch {
        &self.switch
    }
}

fn cut() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionReset,
        "the fake dropped this connection",
    )
}

impl<S: AsyncRead + Unpin> AsyncRead for Killable<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Killable<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.killed() {
            return Poll::Ready(Err(cut()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
