//! Locations in a call against a real server (docs/calls.md, "Location"): the agent asks the
//! customer, who shares theirs; both see it with the address from a local Nominatim-compatible
//! fake (which checks the request as Nominatim documents it: `/reverse`, `format=jsonv2`,
//! `lat`, `lon`, an identifying `User-Agent`) and the map tile around it from a local tile
//! fake, kept with the call's files. The customer declines a second request; a customer may
//! not ask; bad positions and a second location within a second are refused; a server without
//! the services gives the link alone.

use std::sync::{Arc, Mutex};

use orbita_protocol::{ErrorCode, LocationRefusal, ServerMsg};
use orbita_server::RunningServer;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

/// A 1x1 PNG.
const TILE: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\xcf\xc0\xf0\x1f\0\x05\0\x01\xff\x89\x99=\x1d\0\0\0\0IEND\xaeB`\x82";
const ADDRESS: &str = "1, проспект Абая, Алмалинский район, Алматы, 050000, Казахстан";

/// A local stand-in for Nominatim and a tile server: the requests it was sent (request line
/// and `User-Agent`), its address.
async fn fake_services() -> (Arc<Mutex<Vec<(String, String)>>>, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16_384 {
                    if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let line = head.lines().next().unwrap_or_default().to_string();
                let agent = head
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("user-agent: ")
                            .or(l.strip_prefix("User-Agent: "))
                    })
                    .unwrap_or_default()
                    .to_string();
                log.lock().unwrap().push((line.clone(), agent));
                let target = line.split(' ').nth(1).unwrap_or_default();
                let (kind, body): (&str, Vec<u8>) = if let Some(query) =
                    target.strip_prefix("/reverse?")
                {
                    let query: Vec<&str> = query.split('&').collect();
                    let ok = query.contains(&"format=jsonv2")
                        && query.iter().any(|q| q.starts_with("lat=43.23"))
                        && query.iter().any(|q| q.starts_with("lon=76.88"));
                    let answer = if ok {
                        json!({"place_id": 1, "lat": "43.2389", "lon": "76.8897", "display_name": ADDRESS})
                    } else {
                        json!({"error": "Unable to geocode"})
                    };
                    ("application/json", answer.to_string().into_bytes())
                } else if target == "/tiles/16/46765/24021.png" {
                    ("image/png", TILE.to_vec())
                } else {
                    ("text/plain", b"not found".to_vec())
                };
                let status = if kind == "text/plain" {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.write_all(&body).await;
            });
        }
    });
    (seen, format!("http://{addr}"))
}

async fn join(server: &RunningServer, code: &str, name: &str, host_key: Option<&str>) -> Person {
    Person::join(server, code, name, host_key).await
}

/// What the tests ask of a participant.
trait Locations {
    async fn next(&mut self) -> ServerMsg;
    async fn nothing_pending(&mut self) -> bool;
}

impl Locations for Person {
    async fn next(&mut self) -> ServerMsg {
        // Others joining and their media are not what these wait for.
        self.next_of(|m| match m {
            ServerMsg::ParticipantJoined { .. } | ServerMsg::Quality { .. } => None,
            msg => Some(msg),
        })
        .await
    }

    /// Whether the server has sent nothing (a `ping` answered first proves it).
    async fn nothing_pending(&mut self) -> bool {
        self.send(json!({"type": "ping", "id": 77})).await;
        matches!(self.next().await, ServerMsg::Pong { id: Some(77) })
    }
}

/// A room with a host key: (code, key).
async fn room(server: &RunningServer) -> (String, String) {
    let answer: serde_json::Value = http()
        .post(format!("http://{}/api/rooms", server.http_addr()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        answer["code"].as_str().unwrap().to_string(),
        answer["host_key"].as_str().unwrap().to_string(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_asks_the_customer_shares_with_address_and_map_or_declines() {
    let (seen, services) = fake_services().await;
    let dir = TempDir::new("call-locations");
    let mut settings = test_settings();
    settings.files_dir = Some(dir.path().to_path_buf());
    settings.geocoder_url = Some(services.clone());
    settings.map_tile_url = Some(format!("{services}/tiles/{{z}}/{{x}}/{{y}}.png"));
    let server = start_server(settings).await;
    let (code, host_key) = room(&server).await;
    let mut agent = join(&server, &code, "Agent", Some(&host_key)).await;
    let mut customer = join(&server, &code, "Customer", None).await;

    // The agent asks; the customer is asked, the agent hears nothing of its own request.
    agent
        .send(json!({"type": "location_request", "to": customer.id}))
        .await;
    match customer.next().await {
        ServerMsg::LocationRequest { from, name } => {
            assert_eq!((from.as_str(), name.as_str()), (agent.id.as_str(), "Agent"))
        }
        other => panic!("expected the request, got {other:?}"),
    }
    assert!(agent.nothing_pending().await);

    // The customer shares it with the agent (and at once again: one a second at most).
    let shared = json!({"type": "location", "lat": 43.238949, "lon": 76.889709, "accuracy_m": 25.0, "to": agent.id});
    customer.send(shared.clone()).await;
    customer.send(shared).await;
    let location = match agent.next().await {
        ServerMsg::Location {
            from,
            location,
            private,
            ..
        } => {
            assert_eq!(from, customer.id);
            assert!(private);
            location
        }
        other => panic!("expected the location, got {other:?}"),
    };
    assert_eq!(location.address.as_deref(), Some(ADDRESS));
    assert_eq!(
        (location.lat, location.lon, location.accuracy_m),
        (43.238949, 76.889709, 25.0)
    );
    assert!(location
        .map_url
        .starts_with("https://www.openstreetmap.org/?mlat=43.238949&mlon=76.889709"));
    let preview = location.preview.expect("a map tile");
    assert_eq!(
        (preview.x, preview.y),
        (88, 144),
        "the place's pixel on the tile"
    );
    assert_eq!(preview.file.mime, "image/png");
    let tile = http()
        .get(format!(
            "http://{}{}?key={}",
            server.http_addr(),
            preview.file.url,
            agent.key
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(tile.status(), 200);
    assert_eq!(&tile.bytes().await.unwrap()[..], TILE);
    // The sender sees it too, and the second was refused (in either order).
    let (a, b) = (customer.next().await, customer.next().await);
    let seen_by_sender = [&a, &b];
    assert!(
        seen_by_sender
            .iter()
            .any(|m| matches!(m, ServerMsg::Location { .. })),
        "{a:?} {b:?}"
    );
    assert!(
        seen_by_sender.iter().any(|m| matches!(
            m,
            ServerMsg::Error {
                code: ErrorCode::RateLimited,
                ..
            }
        )),
        "{a:?} {b:?}"
    );

    // The services were asked as documented, identifying the server.
    let requests = seen.lock().unwrap().clone();
    let reverse = requests
        .iter()
        .find(|(line, _)| line.starts_with("GET /reverse?"))
        .expect("a reverse lookup");
    for part in [
        "format=jsonv2",
        "lat=43.2389490",
        "lon=76.8897090",
        "zoom=18",
    ] {
        assert!(reverse.0.contains(part), "{reverse:?} lacks {part}");
    }
    assert!(
        reverse.1.starts_with("Orbita/"),
        "User-Agent {:?}",
        reverse.1
    );
    assert!(
        requests
            .iter()
            .any(|(line, _)| line.starts_with("GET /tiles/16/46765/24021.png ")),
        "{requests:?}"
    );

    // Asked again, the customer declines: the agent is told why.
    agent
        .send(json!({"type": "location_request", "to": customer.id}))
        .await;
    assert!(matches!(
        customer.next().await,
        ServerMsg::LocationRequest { .. }
    ));
    customer
        .send(json!({"type": "location_declined", "to": agent.id, "reason": "declined"}))
        .await;
    match agent.next().await {
        ServerMsg::LocationDeclined { from, reason, .. } => {
            assert_eq!(from, customer.id);
            assert_eq!(reason, LocationRefusal::Declined);
        }
        other => panic!("expected the refusal, got {other:?}"),
    }

    // Only the agent asks; positions must be positions.
    customer
        .send(json!({"type": "location_request", "to": agent.id}))
        .await;
    assert!(matches!(
        customer.next().await,
        ServerMsg::Error {
            code: ErrorCode::NotAllowed,
            ..
        }
    ));
    for bad in [
        json!({"lat": 91.0, "lon": 0.0, "accuracy_m": 5.0}),
        json!({"lat": 0.0, "lon": 0.0, "accuracy_m": -1.0}),
    ] {
        let mut msg = bad.clone();
        msg["type"] = json!("location");
        customer.send(msg).await;
        assert!(
            matches!(
                customer.next().await,
                ServerMsg::Error {
                    code: ErrorCode::InvalidValue,
                    ..
                }
            ),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_services_configured_a_location_has_its_link_alone() {
    let dir = TempDir::new("call-locations-off");
    let mut settings = test_settings();
    settings.files_dir = Some(dir.path().to_path_buf());
    let server = start_server(settings).await;
    let (code, _) = room(&server).await;
    let mut ann = join(&server, &code, "Ann", None).await;
    ann.send(json!({"type": "location", "lat": 43.238949, "lon": 76.889709, "accuracy_m": 10.0}))
        .await;
    match ann.next().await {
        ServerMsg::Location {
            location, private, ..
        } => {
            assert!(!private, "to everyone");
            assert_eq!(location.address, None);
            assert!(location.preview.is_none());
            assert!(location.map_url.contains("mlat=43.238949"));
        }
        other => panic!("expected the location, got {other:?}"),
    }
}
