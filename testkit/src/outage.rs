//! A listener that can go down: while an [`Outage`] is on, new connections are closed as soon as they
//! are accepted and every open connection fails its next read or write, as when an API server's process
//! dies or its load balancer stops routing to it. Off again, connections work as before.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// The switch, shared by the listener and every connection it accepted.
#[derive(Debug, Clone, Default)]
pub struct Outage(Arc<AtomicBool>);

impl Outage {
    /// Turn the outage on or off.
    pub fn set(&self, down: bool) {
        self.0.store(down, Ordering::SeqCst);
    }
    fn down(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn reset() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "the fake API server is down")
}

/// A TCP listener whose connections fail while its [`Outage`] is on.
pub struct OutageListener {
    inner: TcpListener,
    outage: Outage,
}

impl OutageListener {
    /// Wrap `inner`.
    pub fn new(inner: TcpListener, outage: Outage) -> Self {
        OutageListener { inner, outage }
    }
}

impl axum::serve::Listener for OutageListener {
    type Io = OutageStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                // Closed at once: the client's request fails on a dead connection.
                Ok((stream, _)) if self.outage.down() => drop(stream),
                Ok((stream, addr)) => return (OutageStream { inner: stream, outage: self.outage.clone() }, addr),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// A connection that fails its reads and writes while the outage is on.
pub struct OutageStream {
    inner: TcpStream,
    outage: Outage,
}

impl AsyncRead for OutageStream {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        if self.outage.down() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for OutageStream {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if self.outage.down() {
            return Poll::Ready(Err(reset()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
