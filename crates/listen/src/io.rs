//! A served connection's stream: it holds the connection's place in the caps and tells the
//! connection's clock when bytes arrive.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use parking_lot::Mutex;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::caps::Permit;
use crate::deadlines::{ConnectionClock, Expiry};

/// A connection's clock, shared by its stream, its requests and its watchdog (which is woken
/// when a deadline appears or comes sooner).
#[derive(Debug)]
pub(crate) struct Activity {
    clock: Mutex<ConnectionClock>,
    pub(crate) changed: Notify,
}

impl Activity {
    pub(crate) fn new(clock: ConnectionClock) -> Arc<Activity> {
        Arc::new(Activity {
            clock: Mutex::new(clock),
            changed: Notify::new(),
        })
    }

    fn read(&self) {
        if self.clock.lock().on_read(Instant::now()) {
            self.changed.notify_one();
        }
    }

    pub(crate) fn request(&self) {
        self.clock.lock().on_request();
    }

    pub(crate) fn response_done(&self) {
        if self.clock.lock().on_response_done(Instant::now()) {
            self.changed.notify_one();
        }
    }

    pub(crate) fn finish(&self) {
        self.clock.lock().finish();
    }

    pub(crate) fn deadline(&self) -> Option<Instant> {
        self.clock.lock().deadline().map(|(at, _)| at)
    }

    pub(crate) fn expired(&self, now: Instant) -> Option<Expiry> {
        self.clock.lock().expired(now)
    }
}

/// The stream hyper serves (and a WebSocket keeps after its upgrade): `inner`, its place in
/// the caps (given back when the stream is dropped) and its clock.
pub(crate) struct TrackedIo<IO> {
    inner: IO,
    activity: Arc<Activity>,
    _permit: Permit,
}

impl<IO> TrackedIo<IO> {
    pub(crate) fn new(inner: IO, activity: Arc<Activity>, permit: Permit) -> TrackedIo<IO> {
        TrackedIo {
            inner,
            activity,
            _permit: permit,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for TrackedIo<IO> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for TrackedIo<IO> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
