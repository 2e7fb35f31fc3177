//! A real SFU ([`orbita_sfu::Sfu`], bound to loopback ports, one worker thread) shared by the
//! targets of one fuzzing process, and a room with participants in it for one input.
//!
//! Messages go to the room's worker exactly as the signalling connection and WHIP hand them
//! over ([`Participant::handle`]). [`Session::settle`] waits until the worker has handled
//! everything sent so far (it sends `ping` and waits for its `pong`), so a panic on the
//! worker thread happens while libFuzzer still runs the input that caused it (libFuzzer turns
//! a panic on any thread into a crash report).

use std::sync::OnceLock;

use orbita_protocol::{ClientMsg, ServerMsg};
use orbita_sfu::{Participant, RoomId, Sfu, SfuConfig};
use tokio::sync::mpsc;

/// What the SFU may queue for one participant (as the server's `ws::SINK_CAPACITY`).
const SINK_CAPACITY: usize = orbita_server::ws::SINK_CAPACITY;

/// App input lines the room may queue for the attached "app".
const APP_INPUT_CAPACITY: usize = 1024;

/// The process's SFU, started on first use.
pub fn sfu() -> &'static Sfu {
    static SFU: OnceLock<Sfu> = OnceLock::new();
    SFU.get_or_init(|| {
        Sfu::start(SfuConfig {
            udp_bind: "127.0.0.1:0".parse().expect("an address"),
            tcp_bind: None,
            workers: 1,
            ..SfuConfig::default()
        })
        .expect("the SFU starts on loopback")
    })
}

/// One participant: its handle and what the SFU sends it.
struct Member {
    participant: Participant,
    events: mpsc::Receiver<ServerMsg>,
}

/// A room with an attached app (so app input and control are live) and its participants.
/// Dropping it removes the participants and closes the room.
pub struct Session {
    room: RoomId,
    members: Vec<Member>,
    app_input: mpsc::Receiver<String>,
    next_ping: u64,
}

impl Session {
    /// A new room on the shared SFU.
    pub fn new() -> Session {
        let sfu = sfu();
        let room = sfu.create_room("fuzz");
        let (tx, app_input) = mpsc::channel(APP_INPUT_CAPACITY);
        sfu.attach_app(room, tx);
        Session {
            room,
            members: Vec::new(),
            app_input,
            next_ping: 1,
        }
    }

    /// Join a participant (`ingest`: publish-only, as WHIP) and return its index.
    pub fn join(&mut self, name: &str, ingest: bool) -> usize {
        let (sink, events) = mpsc::channel(SINK_CAPACITY);
        let limits = orbita_server::Settings::default().limits();
        let participant = if ingest {
            sfu().join_ingest(self.room, name.to_string(), limits, sink)
        } else {
            sfu().join(self.room, name.to_string(), limits, sink)
        };
        self.members.push(Member {
            participant,
            events,
        });
        self.members.len() - 1
    }

    /// The wire id (`participant_id`) of participant `who`.
    pub fn id_of(&self, who: usize) -> String {
        self.members[who].participant.id()
    }

    /// Hand `msg` to participant `who`'s worker, as the signalling connection does.
    pub fn send(&self, who: usize, msg: ClientMsg) {
        self.members[who].participant.handle(msg);
    }

    /// Wait until the worker has handled everything `who` sent, and return what `who`
    /// received meanwhile (empty if the SFU dropped the participant). Other participants'
    /// and the app's queues are emptied, so they never fill.
    pub fn settle(&mut self, who: usize) -> Vec<ServerMsg> {
        let id = self.next_ping;
        self.next_ping += 1;
        self.send(who, ClientMsg::Ping { id: Some(id) });
        let mut got = Vec::new();
        while let Some(msg) = self.members[who].events.blocking_recv() {
            if msg == (ServerMsg::Pong { id: Some(id) }) {
                break;
            }
            got.push(msg);
        }
        for (i, m) in self.members.iter_mut().enumerate() {
            if i != who {
                while m.events.try_recv().is_ok() {}
            }
        }
        while self.app_input.try_recv().is_ok() {}
        got
    }
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.members.clear();
        sfu().close_room(self.room);
    }
}
