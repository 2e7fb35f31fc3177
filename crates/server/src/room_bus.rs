//! Messages for a call's participants that do not come from the SFU: a file whose upload (over
//! HTTP) finished, a location once its address is known, a request for a location and its
//! refusal reach the signalling connections of its call through here.
//!
//! One bounded broadcast channel per call, made at its first join and dropped when its room
//! closes. A connection that falls [`CAPACITY`] messages behind loses the oldest (and the
//! loss is logged); nothing waits for a slow reader.

use std::collections::HashMap;
use std::sync::Arc;

use orbita_protocol::ServerMsg;
use parking_lot::Mutex;
use tokio::sync::broadcast;

/// Messages a call's channel holds for its slowest reader.
pub const CAPACITY: usize = 256;

/// A message for a call's participants.
#[derive(Debug, Clone)]
pub struct BusMsg {
    /// Who sent it (participant id).
    pub from: String,
    /// Whether the sender gets it too (a file or location: their own line in the chat).
    pub echo: bool,
    /// Only this participant (and the sender) get it; everyone when absent.
    pub to: Option<String>,
    /// The message.
    pub msg: ServerMsg,
}

impl BusMsg {
    /// Whether participant `me` gets it.
    pub fn is_for(&self, me: &str) -> bool {
        if self.from == me {
            return self.echo;
        }
        self.to.as_deref().is_none_or(|to| to == me)
    }
}

/// The calls' channels, by call id.
#[derive(Default)]
pub struct RoomBus {
    calls: Mutex<HashMap<String, broadcast::Sender<Arc<BusMsg>>>>,
}

impl RoomBus {
    /// Listen to call `call_id`'s messages (from now on).
    pub fn subscribe(&self, call_id: &str) -> broadcast::Receiver<Arc<BusMsg>> {
        self.calls
            .lock()
            .entry(call_id.to_string())
            .or_insert_with(|| broadcast::channel(CAPACITY).0)
            .subscribe()
    }

    /// Send `msg` to call `call_id`'s participants; false when nobody listens.
    pub fn send(&self, call_id: &str, msg: BusMsg) -> bool {
        let calls = self.calls.lock();
        calls
            .get(call_id)
            .is_some_and(|tx| tx.send(Arc::new(msg)).is_ok())
    }

    /// Call `call_id` ended: its channel goes.
    pub fn ended(&self, call_id: &str) {
        self.calls.lock().remove(call_id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_message_reaches_its_recipient_and_sender_only() {
        let request = BusMsg {
            from: "p1".into(),
            echo: false,
            to: Some("p2".into()),
            msg: ServerMsg::Left,
        };
        assert!(request.is_for("p2") && !request.is_for("p1") && !request.is_for("p3"));
        let bus = RoomBus::default();
        let mut a = bus.subscribe("c1");
        let mut other_call = bus.subscribe("c2");
        let msg = BusMsg {
            from: "p1".into(),
            echo: true,
            to: Some("p2".into()),
            msg: ServerMsg::Left,
        };
        assert!(bus.send("c1", msg));
        let got = a.try_recv().unwrap();
        assert!(got.is_for("p1") && got.is_for("p2") && !got.is_for("p3"));
        assert!(other_call.try_recv().is_err());
        bus.ended("c1");
        assert!(!bus.send(
            "c1",
            BusMsg {
                from: "p1".into(),
                echo: false,
                to: None,
                msg: ServerMsg::Left
            }
        ));
    }
}
