//! The HTTP side of the files sent in a call's chat ([`crate::call_files`]):
//!
//! | route | answer |
//! |---|---|
//! | `HEAD /api/uploads/{id}` | 200 with `Upload-Offset` (bytes received) and `Upload-Length`; 404 `unknown_upload` (never was, finished, or its call ended) |
//! | `PATCH /api/uploads/{id}` | `Content-Type: application/offset+octet-stream`, `Upload-Offset` = the bytes received so far; the body is appended as it streams (never held whole). 204 with the new `Upload-Offset`; the last byte finishes the file and the call gets `file`. 409 `offset_mismatch` (with the right `Upload-Offset`) or `busy` (another `PATCH` writes it); 413 `too_large` past the file's size (nothing of that request is kept); 415; 404 `unknown_upload` |
//! | `GET /api/files/{id}?key=` | the file, with the call's `files_key`; images inline (so chat shows a thumbnail), anything else as a download; `Range`; 404 `not_found` for a wrong key as for no file |
//!
//! The upload's id (128 random bits, given only to its sender over the signalling socket) is
//! the capability to write it; tus 1.0's core protocol (`Tus-Resumable: 1.0.0`), so a tus
//! client can resume it.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use orbita_protocol::ServerMsg;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use crate::call_files::UploadError;
use crate::http::ApiError;
use crate::room_bus::BusMsg;
use crate::state::AppState;

const TUS_VERSION: &str = "1.0.0";
const OFFSET_TYPE: &str = "application/offset+octet-stream";

fn unknown_upload() -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_upload",
        "no such upload: it finished, or its call ended",
    )
    .into_response()
}

fn with_offset(mut response: Response, offset: u64) -> Response {
    let headers = response.headers_mut();
    headers.insert("upload-offset", HeaderValue::from(offset));
    headers.insert("tus-resumable", HeaderValue::from_static(TUS_VERSION));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `HEAD /api/uploads/{id}`.
pub async fn head(State(state): State<AppState>, UrlPath(id): UrlPath<String>) -> Response {
    match state.files.upload_state(&id) {
        Ok(upload) => {
            let mut response = with_offset(StatusCode::OK.into_response(), upload.offset);
            response
                .headers_mut()
                .insert("upload-length", HeaderValue::from(upload.size));
            response
        }
        Err(_) => unknown_upload(),
    }
}

/// `PATCH /api/uploads/{id}`.
pub async fn patch(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    request: Request,
) -> Response {
    let headers = request.headers();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !content_type.eq_ignore_ascii_case(OFFSET_TYPE) {
        return ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "bad_content_type",
            format!("send the bytes as {OFFSET_TYPE}"),
        )
        .into_response();
    }
    let Some(claimed) = offset_header(headers) else {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_offset",
            "Upload-Offset must be the number of bytes already sent (HEAD tells it)",
        )
        .into_response();
    };
    let upload = match state.files.take(&id) {
        Ok(upload) => upload,
        Err(UploadError::Unknown) => return unknown_upload(),
        Err(UploadError::Busy) => {
            return ApiError::new(
                StatusCode::CONFLICT,
                "busy",
                "another request is sending this upload's bytes",
            )
            .into_response()
        }
    };
    let written = append(&upload, claimed, request.into_body()).await;
    // The last byte finishes the file while this request still holds the upload (so a second
    // request cannot finish it too).
    if let Ok(offset) = &written {
        if *offset == upload.size && *offset > upload.offset {
            let files = std::sync::Arc::clone(&state.files);
            let finish_id = id.clone();
            match tokio::task::spawn_blocking(move || files.finish(&finish_id)).await {
                Ok(Ok(meta)) => announce(&state, &meta),
                Ok(Err(e)) => {
                    tracing::warn!(upload = id, error = %e, "a finished upload could not be read back")
                }
                Err(e) => tracing::warn!(upload = id, error = %e, "finishing an upload failed"),
            }
        }
    }
    state.files.give_back(&id);
    let offset = match written {
        Ok(offset) => offset,
        Err(Appended::Mismatch(at)) => {
            return with_offset(
                ApiError::new(
                    StatusCode::CONFLICT,
                    "offset_mismatch",
                    format!("the upload has {at} bytes; send from there"),
                )
                .into_response(),
                at,
            )
        }
        Err(Appended::TooLarge(at)) => {
            return with_offset(
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too_large",
                    format!("more bytes than the file's {} bytes", upload.size),
                )
                .into_response(),
                at,
            )
        }
        Err(Appended::Io(e)) => {
            return ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                format!("the bytes could not be stored: {e}"),
            )
            .into_response()
        }
    };
    with_offset(StatusCode::NO_CONTENT.into_response(), offset)
}

/// Tells the file's call (or its recipient) and puts it in the call's record.
fn announce(state: &AppState, meta: &crate::call_files::FileMeta) {
    let Some(file) = meta.shared() else { return };
    tracing::info!(
        file = meta.id,
        call = meta.call_id,
        bytes = meta.size,
        mime = file.mime,
        "file sent in chat"
    );
    if meta.to.is_none() {
        state.call_log.chat(
            &meta.code,
            &meta.from,
            &format!(
                "[file] {} ({} bytes, {}, sha256 {})",
                file.name, file.size, file.mime, file.sha256
            ),
        );
    }
    let msg = ServerMsg::File {
        from: meta.from.clone(),
        name: meta.from_name.clone(),
        file: Box::new(file),
        private: meta.to.is_some(),
        ts: crate::recording_store::now_ms(),
    };
    state.bus.send(
        &meta.call_id,
        BusMsg {
            from: meta.from.clone(),
            echo: true,
            to: meta.to.clone(),
            msg,
        },
    );
}

fn offset_header(headers: &HeaderMap) -> Option<u64> {
    headers
        .get("upload-offset")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

enum Appended {
    /// The upload has this many bytes, not the claimed offset.
    Mismatch(u64),
    /// More bytes than the size came: none of them kept, the upload stays at this offset.
    TooLarge(u64),
    Io(std::io::Error),
}

/// Appends `body` to `upload` from `claimed` on, as it streams: the new offset. A dropped
/// connection keeps what arrived (the client asks `HEAD` and goes on from there).
async fn append(
    upload: &crate::call_files::UploadState,
    claimed: u64,
    body: Body,
) -> Result<u64, Appended> {
    if claimed != upload.offset {
        return Err(Appended::Mismatch(upload.offset));
    }
    let path = upload.dir.join("data");
    let mut file = tokio::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .await
        .map_err(Appended::Io)?;
    let mut offset = upload.offset;
    let mut stream = body.into_data_stream();
    let mut result = Ok(());
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client went away: keep what came.
            break;
        };
        let room = upload.size - offset;
        let take = usize::try_from(room).unwrap_or(usize::MAX).min(chunk.len());
        if let Err(e) = file.write_all(&chunk[..take]).await {
            result = Err(Appended::Io(e));
            break;
        }
        offset += take as u64;
        if take < chunk.len() {
            // Nothing of a request with more bytes than the file's is kept.
            file.flush().await.map_err(Appended::Io)?;
            file.set_len(upload.offset).await.map_err(Appended::Io)?;
            return Err(Appended::TooLarge(upload.offset));
        }
    }
    file.flush().await.map_err(Appended::Io)?;
    result.map(|()| offset)
}

/// `?key=`: the call's files key.
#[derive(Deserialize)]
pub struct KeyQuery {
    #[serde(default)]
    key: String,
}

/// `GET /api/files/{id}?key=`.
pub async fn download(
    State(state): State<AppState>,
    UrlPath(id): UrlPath<String>,
    Query(query): Query<KeyQuery>,
    request: Request,
) -> Response {
    let Some((meta, path)) = state.files.get(&id, &query.key) else {
        return ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such file").into_response();
    };
    let mime = meta.done.as_ref().map_or("", |d| d.mime.as_str());
    // Only plain pictures are shown by the browser; anything else (HTML, SVG, scripts) is a
    // download of opaque bytes, so a file never runs as a page of this server.
    let image = matches!(
        mime,
        "image/png" | "image/jpeg" | "image/gif" | "image/webp"
    );
    let mut response = match crate::recording_files::serve_file(&path, request).await {
        Ok(response) => response,
        Err(refused) => return refused,
    };
    let headers = response.headers_mut();
    let shown = if image {
        mime
    } else {
        "application/octet-stream"
    };
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(static_mime(shown)),
    );
    let disposition = if image { "inline" } else { "attachment" };
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{disposition}; filename=\"{}\"; filename*=UTF-8''{}",
        ascii_name(&meta.name),
        percent_encode(&meta.name)
    )) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=3600"),
    );
    response
}

fn static_mime(mime: &str) -> &'static str {
    match mime {
        "image/png" => "image/png",
        "image/jpeg" => "image/jpeg",
        "image/gif" => "image/gif",
        "image/webp" => "image/webp",
        _ => "application/octet-stream",
    }
}

/// The name with anything but printable ASCII (and `"`, `\`) as `_`, for old browsers.
fn ascii_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// RFC 8187's encoding of `name` for `filename*`.
fn percent_encode(name: &str) -> String {
    name.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_in_the_header_cannot_break_it() {
        assert_eq!(ascii_name("a\"b\\c\nd é.pdf"), "a_b_c_d _.pdf");
        assert_eq!(
            percent_encode("отчёт 1.pdf"),
            "%D0%BE%D1%82%D1%87%D1%91%D1%82%201.pdf"
        );
    }
}
