//! Bookkeeping of open signalling connections, for metrics and for a clean shutdown.
//!
//! Shutdown has two phases: [`Connections::refuse_new`] turns away new connections and joins
//! while the SFU tells participants it is going away; then [`Connections::close_all`] asks
//! every connection to pass on what is left, say goodbye and close, and
//! [`Connections::wait_idle`] waits until they have.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{watch, Notify};

/// The open signalling connections.
pub struct Connections {
    open: AtomicUsize,
    refusing: AtomicBool,
    idle: Notify,
    close: watch::Sender<bool>,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            open: AtomicUsize::new(0),
            refusing: AtomicBool::new(false),
            idle: Notify::new(),
            close: watch::Sender::new(false),
        }
    }
}

impl Connections {
    /// Count a new connection; `None` when shutting down.
    pub fn open(self: &Arc<Self>) -> Option<ConnectionGuard> {
        if self.is_refusing() {
            return None;
        }
        self.open.fetch_add(1, Ordering::SeqCst);
        Some(ConnectionGuard {
            connections: Arc::clone(self),
        })
    }

    /// Open connections now.
    pub fn count(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }

    /// Whether new connections and joins are turned away.
    pub fn is_refusing(&self) -> bool {
        self.refusing.load(Ordering::SeqCst)
    }

    /// Turn away new connections and joins from now on.
    pub fn refuse_new(&self) {
        self.refusing.store(true, Ordering::SeqCst);
    }

    /// Ask every connection to close.
    pub fn close_all(&self) {
        self.refuse_new();
        self.close.send_replace(true);
    }

    /// A receiver that turns `true` when connections are asked to close.
    pub fn close_requested(&self) -> watch::Receiver<bool> {
        self.close.subscribe()
    }

    /// Wait until no connection is open.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a close between the check and the await is seen.
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Held by a connection's task while it runs.
pub struct ConnectionGuard {
    connections: Arc<Connections>,
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        if self.connections.open.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.connections.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn counts_refuses_and_waits_for_idle() {
        let conns = Arc::new(Connections::default());
        let a = conns.open().unwrap();
        let b = conns.open().unwrap();
        assert_eq!(conns.count(), 2);
        conns.close_all();
        assert!(conns.open().is_none());
        assert!(*conns.close_requested().borrow());
        let waiter = tokio::spawn({
            let conns = Arc::clone(&conns);
            async move { conns.wait_idle().await }
        });
        drop(a);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiter.is_finished());
        drop(b);
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("idle after the last connection closed")
            .unwrap();
    }
}
