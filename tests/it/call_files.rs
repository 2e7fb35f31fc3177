//! Files in a call's chat against a real server (docs/calls.md, "Files in the call"): a
//! participant asks to send one over the signalling socket, uploads its bytes (tus 1.0), the
//! connection is cut halfway and the upload resumes from what arrived; everyone in the call
//! gets `file` with the SHA-256 of the bytes, and downloads them with the call's key, which a
//! participant of another call does not have. Too large, over the quota, a wrong offset, too
//! many bytes, an HTML file and an upload outliving its call are refused or defused.

use std::path::Path;
use std::time::{Duration, Instant};

use orbita_protocol::{ErrorCode, ServerMsg, SharedFile};
use orbita_server::call_files::sha256_hex;
use orbita_server::RunningServer;
use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::support::*;

const MAX_FILE: u64 = 1024 * 1024;
const QUOTA: u64 = 3 * 1024 * 1024;

async fn join(server: &RunningServer, code: &str, name: &str) -> Person {
    let person = Person::join(server, code, name, None).await;
    assert_eq!(
        person.limits.max_file_bytes, MAX_FILE,
        "joined tells the limit"
    );
    person
}

/// What the tests ask of a participant.
trait Files {
    async fn ask(&mut self, name: &str, size: u64) -> Result<String, (ErrorCode, String)>;
    async fn file(&mut self) -> (String, SharedFile);
}

impl Files for Person {
    /// Asks to send `name` of `size` bytes: the upload's address, or the refusal.
    async fn ask(&mut self, name: &str, size: u64) -> Result<String, (ErrorCode, String)> {
        self.send(json!({"type": "file_upload", "name": name, "size": size}))
            .await;
        self.next_of(|m| match m {
            ServerMsg::FileUpload { url, .. } => Some(Ok(url)),
            ServerMsg::Error { code, message } => Some(Err((code, message))),
            _ => None,
        })
        .await
    }

    async fn file(&mut self) -> (String, SharedFile) {
        self.next_of(|m| match m {
            ServerMsg::File { from, file, .. } => Some((from, *file)),
            _ => None,
        })
        .await
    }
}

async fn patch(base: &str, url: &str, offset: u64, bytes: &[u8]) -> reqwest::Response {
    http()
        .patch(format!("{base}{url}"))
        .header("content-type", "application/offset+octet-stream")
        .header("upload-offset", offset.to_string())
        .header("tus-resumable", "1.0.0")
        .body(bytes.to_vec())
        .send()
        .await
        .expect("PATCH")
}

/// `HEAD`: the upload's offset, or the status when it is not 200.
async fn head(base: &str, url: &str) -> Result<u64, u16> {
    let answer = http()
        .head(format!("{base}{url}"))
        .send()
        .await
        .expect("HEAD");
    if answer.status() != 200 {
        return Err(answer.status().as_u16());
    }
    Ok(answer.headers()["upload-offset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap())
}

/// A `PATCH` of all `bytes` whose connection is cut after `sent` of them.
async fn cut_patch(addr: std::net::SocketAddr, url: &str, bytes: &[u8], sent: usize) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request = format!(
        "PATCH {url} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/offset+octet-stream\r\n\
         Upload-Offset: 0\r\nTus-Resumable: 1.0.0\r\nContent-Length: {}\r\n\r\n",
        bytes.len()
    );
    socket.write_all(request.as_bytes()).await.unwrap();
    socket.write_all(&bytes[..sent]).await.unwrap();
    socket.flush().await.unwrap();
    drop(socket);
}

fn bytes_of(len: usize, head: &[u8]) -> Vec<u8> {
    let mut bytes: Vec<u8> = (0..len).map(|i| (i * 7 + i / 251) as u8).collect();
    bytes[..head.len()].copy_from_slice(head);
    bytes
}

async fn get(base: &str, file: &SharedFile, key: &str) -> reqwest::Response {
    http()
        .get(format!("{base}{}?key={key}", file.url))
        .send()
        .await
        .expect("GET")
}

fn settings(files: &Path) -> orbita_server::Settings {
    let mut settings = test_settings();
    settings.files_dir = Some(files.to_path_buf());
    settings.max_file_bytes = MAX_FILE;
    settings.files_max_bytes = QUOTA;
    settings.messages_per_second = 1000;
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_file_goes_to_the_call_resumes_after_a_cut_and_stays_in_it() {
    let dir = TempDir::new("call-files");
    let server = start_server(settings(dir.path())).await;
    let base = format!("http://{}", server.http_addr());
    let (code, other_code) = (create_room(&server).await, create_room(&server).await);
    let mut ann = join(&server, &code, "Ann").await;
    let mut bob = join(&server, &code, "Bob").await;
    let carol = join(&server, &other_code, "Carol").await;
    assert_eq!(ann.key, bob.key, "one key per call");
    assert_ne!(ann.key, carol.key, "another call, another key");

    // A PDF of 700 kB, cut after 300 kB.
    let pdf = bytes_of(700_000, b"%PDF-1.7\n");
    let url = ann
        .ask("отчёт.pdf", pdf.len() as u64)
        .await
        .expect("granted");
    cut_patch(server.http_addr(), &url, &pdf, 300_000).await;
    // What arrived is kept: HEAD tells it once the server saw the cut.
    let deadline = Instant::now() + Duration::from_secs(10);
    let offset = loop {
        let offset = head(&base, &url).await.expect("the upload is there");
        let answer = patch(&base, &url, offset, &pdf[offset as usize..]).await;
        if answer.status() == 204 {
            assert_eq!(
                answer.headers()["upload-offset"],
                pdf.len().to_string().as_str()
            );
            break offset;
        }
        // The cut request may still hold the upload for a moment.
        assert_eq!(answer.status(), 409, "{:?}", answer.text().await);
        assert!(Instant::now() < deadline, "the cut request never let go");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(
        offset > 0 && offset <= 300_000,
        "resumed at {offset}, not from 0"
    );

    // Both get it, with the bytes' hash and the sniffed type.
    let (from, file) = bob.file().await;
    assert_eq!(from, ann.id);
    assert_eq!(file.name, "отчёт.pdf");
    assert_eq!(file.size, 700_000);
    assert_eq!(file.mime, "application/pdf");
    assert_eq!(file.sha256, sha256_hex(&pdf));
    assert_eq!(ann.file().await.1, file);

    // Downloads: the call's key only; a download, never shown as a page.
    let answer = get(&base, &file, &bob.key).await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["content-type"], "application/octet-stream");
    let disposition = answer.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(disposition.contains("UTF-8''%D0%BE%D1%82"), "{disposition}");
    assert_eq!(sha256_hex(&answer.bytes().await.unwrap()), file.sha256);
    for key in [carol.key.as_str(), "", "0123456789abcdef0123456789abcdef"] {
        let answer = get(&base, &file, key).await;
        assert_eq!(answer.status(), 404, "key {key:?}");
    }
    let ranged = http()
        .get(format!("{base}{}?key={}", file.url, ann.key))
        .header("range", "bytes=0-8")
        .send()
        .await
        .unwrap();
    assert_eq!(ranged.status(), 206);
    assert_eq!(&ranged.bytes().await.unwrap()[..], b"%PDF-1.7\n");
    // The finished upload takes no more bytes.
    assert_eq!(patch(&base, &url, 700_000, b"x").await.status(), 404);

    // A picture is shown inline (the chat's thumbnail); an HTML file is opaque bytes.
    let png = bytes_of(
        2_000,
        b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0",
    );
    let url = ann.ask("photo.png", png.len() as u64).await.unwrap();
    assert_eq!(patch(&base, &url, 0, &png).await.status(), 204);
    let (_, picture) = bob.file().await;
    assert_eq!(picture.mime, "image/png");
    assert_eq!(ann.file().await.1, picture, "the sender gets it too");
    let answer = get(&base, &picture, &bob.key).await;
    assert_eq!(answer.headers()["content-type"], "image/png");
    assert!(answer.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("inline;"));
    let html = b"<!doctype html><html><script>alert(document.cookie)</script></html>";
    let url = bob.ask("page.html", html.len() as u64).await.unwrap();
    assert_eq!(patch(&base, &url, 0, html).await.status(), 204);
    let (_, page) = ann.file().await;
    let answer = get(&base, &page, &ann.key).await;
    assert_eq!(answer.headers()["content-type"], "application/octet-stream");
    assert!(answer.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("sandbox"));
    drop(carol);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_size_quota_offsets_and_the_calls_end() {
    let dir = TempDir::new("call-files-refused");
    let server = start_server(settings(dir.path())).await;
    let base = format!("http://{}", server.http_addr());
    let code = create_room(&server).await;
    let mut ann = join(&server, &code, "Ann").await;

    // One byte over the limit: refused before any byte is sent, saying the limit.
    let (error, message) = ann.ask("big.bin", MAX_FILE + 1).await.unwrap_err();
    assert_eq!(error, ErrorCode::TooLarge);
    assert!(message.contains(&MAX_FILE.to_string()), "{message}");
    let (error, _) = ann.ask("../etc/passwd", 10).await.unwrap_err();
    assert_eq!(error, ErrorCode::InvalidValue);
    let (error, _) = ann.ask("empty", 0).await.unwrap_err();
    assert_eq!(error, ErrorCode::InvalidValue);

    // Exactly the limit is fine; three of them reserve the quota of three.
    let mut urls = Vec::new();
    for i in 0..3 {
        urls.push(
            ann.ask(&format!("f{i}"), MAX_FILE)
                .await
                .expect("within the quota"),
        );
    }
    let (error, message) = ann.ask("one-more", 1).await.unwrap_err();
    assert_eq!(error, ErrorCode::QuotaFull, "{message}");

    // Wrong offsets, wrong type, too many bytes.
    let url = &urls[0];
    let answer = patch(&base, url, 5, b"abc").await;
    assert_eq!(answer.status(), 409);
    assert_eq!(answer.headers()["upload-offset"], "0");
    let answer = http()
        .patch(format!("{base}{url}"))
        .header("content-type", "application/json")
        .header("upload-offset", "0")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 415);
    let too_many = vec![1u8; MAX_FILE as usize + 10];
    let answer = patch(&base, url, 0, &too_many).await;
    assert_eq!(answer.status(), 413);
    assert_eq!(
        head(&base, url).await,
        Ok(0),
        "nothing of a request with too many bytes is kept"
    );
    // Unknown uploads, and ids that are not ids.
    for bad in [
        "/api/uploads/0123456789abcdef0123456789abcdef",
        "/api/uploads/..%2f..%2fetc",
    ] {
        assert_eq!(head(&base, bad).await, Err(404), "{bad}");
    }

    // The call ends (its last participant leaves): its unfinished uploads go.
    let second = urls[1].clone();
    ann.send(json!({"type": "leave"})).await;
    drop(ann);
    let deadline = Instant::now() + Duration::from_secs(15);
    while head(&base, &second).await != Err(404) {
        assert!(Instant::now() < deadline, "the upload outlived its call");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(patch(&base, &second, 0, b"late").await.status(), 404);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "unfinished uploads deleted: {left:?}");
}
