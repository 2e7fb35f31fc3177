//! Files sent in a call's chat (docs/calls.md, "Files in the call"): where they are kept on
//! this server, the uploads in progress, the calls' keys, the quota and the retention.
//!
//! A participant asks over the signalling socket (`file_upload`: name and size); the server
//! checks the call's switches, the size limit (`max_file_bytes`), the call's count
//! ([`MAX_FILES_PER_CALL`]) and the storage quota (`files_max_bytes`, counting the uploads in
//! progress at their full size), and answers with an upload: a random id, the capability to
//! write the bytes (`PATCH`/`HEAD /api/uploads/{id}`, [`crate::call_files_http`]). Once all
//! bytes are there the server sniffs the type and hashes them, and the call's participants
//! (or the one it was sent to) get `file`.
//!
//! Each file is a folder, `{files_dir}/{id}/`: `file.json` ([`FileMeta`]) and `data`. A call
//! has a key (random, 128 bits) told to its participants at join (`call_info.files_key`);
//! a file is served only with its call's key (`GET /api/files/{id}?key=`), so a participant
//! of another call, or anyone with only the id, gets the same 404 as for no file. The files
//! are deleted with the recordings' retention (`recording_retention_days`); an upload that
//! was not finished when its call ended is deleted then.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use orbita_coordinator::logic::random_hex;

use crate::recording_store::now_ms;

/// Files one call may send at most (uploads asked for, finished or not).
pub const MAX_FILES_PER_CALL: usize = 100;
/// Uploads one participant may have unfinished at once.
pub const MAX_OPEN_UPLOADS_PER_PARTICIPANT: usize = 4;
/// The file with a file's description in its folder.
const META_FILE: &str = "file.json";
/// The file with a file's bytes in its folder.
const DATA_FILE: &str = "data";
const DAY_MS: u64 = 86_400_000;

/// SHA-256 of `bytes`, hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, bytes).as_ref())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `id` has the shape of a file's id (32 hex digits), so nothing else reaches the disk.
pub fn valid_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A file's description, kept beside its bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMeta {
    /// Its id (the folder's name).
    pub id: String,
    /// The call it was sent in.
    pub call_id: String,
    /// The room's code then.
    pub code: String,
    /// SHA-256 of the call's files key (hex): the key itself is not kept.
    pub key_hash: String,
    /// The name the sender gave.
    pub name: String,
    /// Its size in bytes.
    pub size: u64,
    /// The sender's participant id and name.
    pub from: String,
    /// The sender's display name.
    pub from_name: String,
    /// The participant it was sent to; everyone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// When the upload was asked for (ms since the epoch).
    pub created_ms: u64,
    /// A still of the call's video (the call's location goes into its EXIF).
    #[serde(default)]
    pub screenshot: bool,
    /// Set once all bytes are there: the sniffed type, the hash and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<Finished>,
}

/// What is known of a file once all its bytes are there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finished {
    /// The type sniffed from its first bytes.
    pub mime: String,
    /// SHA-256 of its bytes, hex.
    pub sha256: String,
    /// When the last byte arrived (ms since the epoch).
    pub at_ms: u64,
}

impl FileMeta {
    fn read(dir: &Path) -> Option<FileMeta> {
        let text = std::fs::read_to_string(dir.join(META_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    fn write(&self, dir: &Path) -> std::io::Result<()> {
        let tmp = dir.join("file.json.part");
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, dir.join(META_FILE))
    }

    /// The file as the protocol shows it (once finished).
    pub fn shared(&self) -> Option<orbita_protocol::SharedFile> {
        let done = self.done.as_ref()?;
        Some(orbita_protocol::SharedFile {
            id: self.id.clone(),
            name: self.name.clone(),
            size: self.size,
            mime: done.mime.clone(),
            sha256: done.sha256.clone(),
            url: format!("/api/files/{}", self.id),
            screenshot: self.screenshot,
        })
    }
}

/// Why a file could not be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Files are off on this server (`max_file_bytes = 0`).
    Off,
    /// Over the size limit.
    TooLarge {
        /// The file's size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// An empty file.
    Empty,
    /// A name that cannot be a file's.
    BadName,
    /// The storage quota would be passed.
    QuotaFull {
        /// Bytes taken (and reserved).
        used: u64,
        /// The quota.
        max: u64,
    },
    /// The call sent [`MAX_FILES_PER_CALL`] files.
    TooMany,
    /// The participant has [`MAX_OPEN_UPLOADS_PER_PARTICIPANT`] unfinished uploads.
    TooManyOpen,
    /// The call is not going on.
    NoCall,
    /// The folder could not be made.
    Io(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Off => write!(f, "files are off on this server"),
            Refused::TooLarge { size, max } => write!(
                f,
                "the file is {size} bytes; the limit is {max} bytes ({} MB)",
                max / (1024 * 1024)
            ),
            Refused::Empty => write!(f, "the file is empty"),
            Refused::BadName => write!(
                f,
                "a file's name must be 1 to {} characters without control characters, / or \\",
                orbita_protocol::MAX_FILE_NAME_CHARS
            ),
            Refused::QuotaFull { used, max } => write!(
                f,
                "the server's storage for files is full ({used} of {max} bytes used); ask the operator"
            ),
            Refused::TooMany => write!(
                f,
                "this call sent {MAX_FILES_PER_CALL} files, the most one call may"
            ),
            Refused::TooManyOpen => write!(
                f,
                "{MAX_OPEN_UPLOADS_PER_PARTICIPANT} uploads are unfinished; finish or drop one first"
            ),
            Refused::NoCall => write!(f, "the call has ended"),
            Refused::Io(e) => write!(f, "the file could not be stored: {e}"),
        }
    }
}

/// A call going on, as its files see it.
struct Call {
    id: String,
    key: String,
    files: usize,
    /// The last location shared in it (screenshots carry it).
    location: Option<orbita_protocol::Position>,
}

/// An upload not finished yet.
struct Open {
    meta: FileMeta,
    /// A `PATCH` is writing it now.
    busy: bool,
}

#[derive(Default)]
struct Inner {
    /// Calls going on, by room code.
    calls: HashMap<String, Call>,
    /// Unfinished uploads by id.
    open: HashMap<String, Open>,
    /// Bytes of finished files on disk.
    stored: u64,
    /// Bytes the unfinished uploads will take.
    reserved: u64,
}

/// This server's call files.
pub struct CallFiles {
    dir: PathBuf,
    /// The largest file (0: files off).
    max_file_bytes: u64,
    /// The storage quota (0: none).
    max_bytes: u64,
    inner: Mutex<Inner>,
}

/// An upload's state, for `HEAD` and `PATCH`.
#[derive(Debug, Clone)]
pub struct UploadState {
    /// Bytes received.
    pub offset: u64,
    /// The file's size.
    pub size: u64,
    /// Its folder.
    pub dir: PathBuf,
}

/// Why an upload's bytes were not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UploadError {
    /// No such upload (never was, finished, or its call ended).
    Unknown,
    /// Another `PATCH` is writing it.
    Busy,
}

impl CallFiles {
    /// Files under `dir`; reads what is there (finished files count to the quota; unfinished
    /// ones are of calls that ended with the last run, and are deleted).
    pub fn open(dir: PathBuf, max_file_bytes: u64, max_bytes: u64) -> CallFiles {
        let mut stored = 0;
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries
                .take(crate::recording_store::MAX_SCAN_ENTRIES)
                .flatten()
            {
                let folder = entry.path();
                match FileMeta::read(&folder) {
                    Some(meta) if meta.done.is_some() => stored += meta.size,
                    _ if entry.file_name().to_str().is_some_and(valid_id) => {
                        let _ = std::fs::remove_dir_all(&folder);
                    }
                    _ => {}
                }
            }
        }
        CallFiles {
            dir,
            max_file_bytes,
            max_bytes,
            inner: Mutex::new(Inner {
                stored,
                ..Inner::default()
            }),
        }
    }

    /// The largest file (0: files are off).
    pub fn max_file_bytes(&self) -> u64 {
        self.max_file_bytes
    }

    /// Bytes of finished files, and bytes reserved by unfinished uploads.
    pub fn usage(&self) -> (u64, u64) {
        let inner = self.inner.lock();
        (inner.stored, inner.reserved)
    }

    /// A participant joined room `code`, in call `call_id`: the call's files key.
    pub fn joined(&self, code: &str, call_id: &str) -> String {
        let mut inner = self.inner.lock();
        let call = inner.calls.entry(code.to_string()).or_insert_with(|| Call {
            id: call_id.to_string(),
            key: random_hex(16),
            files: 0,
            location: None,
        });
        if call.id != call_id {
            // A new call in a reused room: a new key.
            *call = Call {
                id: call_id.to_string(),
                key: random_hex(16),
                files: 0,
                location: None,
            };
        }
        call.key.clone()
    }

    /// Room `code` closed: its call's unfinished uploads are deleted. The call's id.
    pub fn ended(&self, code: &str) -> Option<String> {
        let (call_id, dropped) = {
            let mut inner = self.inner.lock();
            let call = inner.calls.remove(code)?;
            let ids: Vec<String> = inner
                .open
                .iter()
                .filter(|(_, o)| o.meta.call_id == call.id)
                .map(|(id, _)| id.clone())
                .collect();
            let mut dropped = Vec::new();
            for id in ids {
                if let Some(open) = inner.open.remove(&id) {
                    inner.reserved = inner.reserved.saturating_sub(open.meta.size);
                    dropped.push(open.meta);
                }
            }
            (call.id, dropped)
        };
        for meta in dropped {
            let _ = std::fs::remove_dir_all(self.dir.join(&meta.id));
        }
        Some(call_id)
    }

    /// Participant `from` (`from_name`) of room `code` asks to send `name` of `size` bytes
    /// (to `to`): the upload's id.
    pub fn start(
        &self,
        code: &str,
        from: &str,
        from_name: &str,
        name: &str,
        size: u64,
        to: Option<String>,
    ) -> Result<String, Refused> {
        if self.max_file_bytes == 0 {
            return Err(Refused::Off);
        }
        if size == 0 {
            return Err(Refused::Empty);
        }
        if size > self.max_file_bytes {
            return Err(Refused::TooLarge {
                size,
                max: self.max_file_bytes,
            });
        }
        if !orbita_protocol::valid_file_name(name) {
            return Err(Refused::BadName);
        }
        let id = random_hex(16);
        let meta = {
            let mut inner = self.inner.lock();
            let open_of_sender = inner
                .open
                .values()
                .filter(|o| o.meta.from == from && o.meta.code == code)
                .count();
            let used = inner.stored + inner.reserved;
            let call = inner.calls.get_mut(code).ok_or(Refused::NoCall)?;
            if call.files >= MAX_FILES_PER_CALL {
                return Err(Refused::TooMany);
            }
            if open_of_sender >= MAX_OPEN_UPLOADS_PER_PARTICIPANT {
                return Err(Refused::TooManyOpen);
            }
            if self.max_bytes > 0 && used.saturating_add(size) > self.max_bytes {
                return Err(Refused::QuotaFull {
                    used,
                    max: self.max_bytes,
                });
            }
            call.files += 1;
            let meta = FileMeta {
                id: id.clone(),
                call_id: call.id.clone(),
                code: code.to_string(),
                key_hash: sha256_hex(call.key.as_bytes()),
                name: name.to_string(),
                size,
                from: from.to_string(),
                from_name: from_name.to_string(),
                to,
                created_ms: now_ms(),
                screenshot: false,
                done: None,
            };
            inner.reserved += size;
            inner.open.insert(
                id.clone(),
                Open {
                    meta: meta.clone(),
                    busy: false,
                },
            );
            meta
        };
        let dir = self.dir.join(&id);
        let made = std::fs::create_dir_all(&dir)
            .and_then(|()| std::fs::File::create(dir.join(DATA_FILE)).map(drop))
            .and_then(|()| meta.write(&dir));
        if let Err(e) = made {
            self.drop_upload(&id);
            return Err(Refused::Io(e.to_string()));
        }
        Ok(id)
    }

    fn drop_upload(&self, id: &str) {
        let mut inner = self.inner.lock();
        if let Some(open) = inner.open.remove(id) {
            inner.reserved = inner.reserved.saturating_sub(open.meta.size);
        }
        drop(inner);
        let _ = std::fs::remove_dir_all(self.dir.join(id));
    }

    /// Marks upload `id` (just started) as a still of the call's video.
    pub fn mark_screenshot(&self, id: &str) -> std::io::Result<()> {
        let meta = {
            let mut inner = self.inner.lock();
            let Some(open) = inner.open.get_mut(id) else {
                return Ok(());
            };
            open.meta.screenshot = true;
            open.meta.clone()
        };
        meta.write(&self.dir.join(id))
    }

    /// A file the server makes for the call (a map tile), stored at once, as if participant
    /// `from` had sent it; `None` when the call's limits or the disk do not allow it.
    pub fn store(
        &self,
        code: &str,
        from: &str,
        from_name: &str,
        name: &str,
        bytes: &[u8],
    ) -> Option<FileMeta> {
        let id = self
            .start(code, from, from_name, name, bytes.len() as u64, None)
            .ok()?;
        if std::fs::write(self.dir.join(&id).join(DATA_FILE), bytes).is_err() {
            self.drop_upload(&id);
            return None;
        }
        self.finish(&id).ok()
    }

    /// Room `code`'s call was told this location.
    pub fn set_location(&self, code: &str, position: orbita_protocol::Position) {
        if let Some(call) = self.inner.lock().calls.get_mut(code) {
            call.location = Some(position);
        }
    }

    /// The last location shared in room `code`'s call.
    pub fn location(&self, code: &str) -> Option<orbita_protocol::Position> {
        self.inner.lock().calls.get(code)?.location
    }

    /// Upload `id`'s state (its offset is its data file's length).
    pub fn upload_state(&self, id: &str) -> Result<UploadState, UploadError> {
        if !valid_id(id) {
            return Err(UploadError::Unknown);
        }
        let size = self
            .inner
            .lock()
            .open
            .get(id)
            .map(|o| o.meta.size)
            .ok_or(UploadError::Unknown)?;
        let dir = self.dir.join(id);
        let offset = std::fs::metadata(dir.join(DATA_FILE))
            .map(|m| m.len())
            .map_err(|_| UploadError::Unknown)?;
        Ok(UploadState { offset, size, dir })
    }

    /// A `PATCH` takes upload `id` (one at a time): its state.
    pub fn take(&self, id: &str) -> Result<UploadState, UploadError> {
        {
            let mut inner = self.inner.lock();
            let open = inner.open.get_mut(id).ok_or(UploadError::Unknown)?;
            if open.busy {
                return Err(UploadError::Busy);
            }
            open.busy = true;
        }
        self.upload_state(id).inspect_err(|_| self.give_back(id))
    }

    /// The `PATCH` that took upload `id` is done with it.
    pub fn give_back(&self, id: &str) {
        if let Some(open) = self.inner.lock().open.get_mut(id) {
            open.busy = false;
        }
    }

    /// All of upload `id`'s bytes are there: sniff, hash, mark it finished (blocking: it
    /// reads the whole file). The finished file's description.
    pub fn finish(&self, id: &str) -> std::io::Result<FileMeta> {
        let Some(mut meta) = self.inner.lock().open.get(id).map(|o| o.meta.clone()) else {
            return Err(std::io::Error::other("no such upload"));
        };
        let dir = self.dir.join(id);
        let declared = meta.size;
        if meta.screenshot {
            self.write_location(&meta, &dir.join(DATA_FILE));
            // The EXIF block made it a little larger.
            meta.size = std::fs::metadata(dir.join(DATA_FILE))?.len();
        }
        let (mime, sha256) = sniff_and_hash(&dir.join(DATA_FILE))?;
        meta.done = Some(Finished {
            mime,
            sha256,
            at_ms: now_ms(),
        });
        meta.write(&dir)?;
        let mut inner = self.inner.lock();
        if inner.open.remove(id).is_some() {
            inner.reserved = inner.reserved.saturating_sub(declared);
            inner.stored += meta.size;
        }
        Ok(meta)
    }

    /// A screenshot's EXIF gets the call's last location, when it has one and the file is a
    /// JPEG (else it stays as sent).
    fn write_location(&self, meta: &FileMeta, path: &Path) {
        let Some(position) = self.location(&meta.code) else {
            return;
        };
        let Ok(bytes) = std::fs::read(path) else {
            return;
        };
        match crate::exif_gps::with_gps(&bytes, &position, chrono::Utc::now()) {
            Ok(tagged) => {
                let tmp = path.with_extension("exif");
                if std::fs::write(&tmp, &tagged)
                    .and_then(|()| std::fs::rename(&tmp, path))
                    .is_err()
                {
                    tracing::warn!(
                        file = meta.id,
                        "the screenshot's location could not be written"
                    );
                }
            }
            Err(e) => {
                tracing::info!(file = meta.id, error = %e, "a screenshot without a location in its EXIF")
            }
        }
    }

    /// Finished file `id` if `key` is its call's: its description and the path of its bytes.
    pub fn get(&self, id: &str, key: &str) -> Option<(FileMeta, PathBuf)> {
        if !valid_id(id) {
            return None;
        }
        let dir = self.dir.join(id);
        let meta = FileMeta::read(&dir)?;
        let key_hash = sha256_hex(key.as_bytes());
        let same = aws_lc_rs::constant_time::verify_slices_are_equal(
            key_hash.as_bytes(),
            meta.key_hash.as_bytes(),
        )
        .is_ok();
        (same && meta.done.is_some()).then(|| (meta, dir.join(DATA_FILE)))
    }

    /// Deletes the finished files older than `retention_days` (0: kept for ever); returns
    /// how many.
    pub fn sweep(&self, now_ms: u64, retention_days: u64) -> usize {
        if retention_days == 0 {
            return 0;
        }
        let keep_from = now_ms.saturating_sub(retention_days.saturating_mul(DAY_MS));
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return 0;
        };
        let mut deleted = 0;
        for entry in entries
            .take(crate::recording_store::MAX_SCAN_ENTRIES)
            .flatten()
        {
            let folder = entry.path();
            let Some(meta) = FileMeta::read(&folder) else {
                continue;
            };
            let Some(done) = &meta.done else { continue };
            if done.at_ms < keep_from && std::fs::remove_dir_all(&folder).is_ok() {
                let mut inner = self.inner.lock();
                inner.stored = inner.stored.saturating_sub(meta.size);
                deleted += 1;
            }
        }
        deleted
    }
}

/// The type of the file at `path` sniffed from its first bytes, and its SHA-256.
fn sniff_and_hash(path: &Path) -> std::io::Result<(String, String)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut context = digest::Context::new(&digest::SHA256);
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if head.len() < 8192 {
            head.extend_from_slice(&buf[..n.min(8192 - head.len())]);
        }
        context.update(&buf[..n]);
    }
    let mime = infer::get(&head)
        .map_or("application/octet-stream", |t| t.mime_type())
        .to_string();
    Ok((mime, hex(context.finish().as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(max_file: u64, quota: u64) -> (CallFiles, PathBuf) {
        let dir = std::env::temp_dir().join(format!("orbita-files-{}", random_hex(8)));
        (CallFiles::open(dir.clone(), max_file, quota), dir)
    }

    fn write(state: &UploadState, bytes: &[u8]) {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(state.dir.join(DATA_FILE))
            .unwrap();
        f.write_all(bytes).unwrap();
    }

    #[test]
    fn a_file_is_served_with_its_calls_key_only_and_sniffed() {
        let (files, dir) = files(1000, 0);
        let key = files.joined("1234", "call-a");
        let other_key = files.joined("5678", "call-b");
        assert_ne!(key, other_key);
        let id = files
            .start("1234", "p1", "Ann", "pic.png", 67, None)
            .unwrap();
        let state = files.take(&id).unwrap();
        assert_eq!(state.offset, 0);
        // A 1x1 PNG's first bytes, padded.
        let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0".to_vec();
        png.resize(67, 0);
        write(&state, &png);
        files.give_back(&id);
        let meta = files.finish(&id).unwrap();
        let done = meta.done.unwrap();
        assert_eq!(done.mime, "image/png");
        assert_eq!(done.sha256, sha256_hex(&png));
        assert!(files.get(&id, &key).is_some());
        assert!(files.get(&id, &other_key).is_none(), "another call's key");
        assert!(files.get(&id, "").is_none());
        assert_eq!(files.usage(), (67, 0));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn limits_size_name_quota_count_and_the_calls_end() {
        let (files, dir) = files(100, 150);
        assert_eq!(
            files.start("1234", "p1", "Ann", "a", 10, None),
            Err(Refused::NoCall)
        );
        files.joined("1234", "call-a");
        assert_eq!(
            files.start("1234", "p1", "Ann", "a", 101, None),
            Err(Refused::TooLarge {
                size: 101,
                max: 100
            })
        );
        assert_eq!(
            files.start("1234", "p1", "Ann", "a", 0, None),
            Err(Refused::Empty)
        );
        for bad in ["", "a/b", "a\\b", "..", "a\nb", &"x".repeat(256)] {
            assert_eq!(
                files.start("1234", "p1", "Ann", bad, 1, None),
                Err(Refused::BadName),
                "{bad:?}"
            );
        }
        let first = files.start("1234", "p1", "Ann", "a", 100, None).unwrap();
        // 100 reserved: 51 more would pass the quota of 150.
        assert_eq!(
            files.start("1234", "p2", "Bo", "b", 51, None),
            Err(Refused::QuotaFull {
                used: 100,
                max: 150
            })
        );
        for _ in 1..MAX_OPEN_UPLOADS_PER_PARTICIPANT {
            files.start("1234", "p1", "Ann", "c", 1, None).unwrap();
        }
        assert_eq!(
            files.start("1234", "p1", "Ann", "d", 1, None),
            Err(Refused::TooManyOpen)
        );
        // The call ends: its unfinished uploads go, with their reservation.
        files.ended("1234");
        assert_eq!(files.upload_state(&first).err(), Some(UploadError::Unknown));
        assert_eq!(files.usage(), (0, 0));
        assert!(!dir.join(&first).exists());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn one_patch_at_a_time_and_the_count_per_call() {
        let (files, dir) = files(10, 0);
        files.joined("1234", "call-a");
        let id = files.start("1234", "p1", "Ann", "a", 5, None).unwrap();
        files.take(&id).unwrap();
        assert_eq!(files.take(&id).err(), Some(UploadError::Busy));
        files.give_back(&id);
        files.take(&id).unwrap();
        files.ended("1234");
        files.joined("1234", "call-b");
        for i in 0..MAX_FILES_PER_CALL {
            let id = files
                .start("1234", &format!("p{i}"), "X", "a", 1, None)
                .unwrap();
            files.drop_upload(&id);
        }
        assert_eq!(
            files.start("1234", "p1", "Ann", "a", 1, None),
            Err(Refused::TooMany)
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}
