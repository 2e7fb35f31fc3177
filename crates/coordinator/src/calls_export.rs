//! The call history exported (docs/calls.md, "Export"): the calls a filter lets through, as
//! CSV (one row a call) or as an Excel workbook (a sheet of calls and one of their
//! participants, with real date and duration cells and an autofilter). Both are streamed: the
//! calls are read a batch at a time, and the workbook's sheets are kept in temporary files by
//! `rust_xlsxwriter`'s constant-memory mode and zipped straight into the response, so a large
//! export takes no more memory than a small one.

use std::io::{self, Write};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{TimeZone, Utc};
use chrono_tz::Tz;
use futures_util::stream;
use rust_xlsxwriter::{Format, Workbook, Worksheet, XlsxError};
use tokio::sync::mpsc;
use tracing::warn;

use crate::clock::Millis;
use crate::store::{CallFilter, CallParticipant, CallSummary, Registry, StoreError};

/// Calls read from the database at a time.
pub const EXPORT_BATCH: usize = 500;
/// The most calls one export holds (an Excel sheet holds 1,048,576 rows).
pub const MAX_EXPORT_CALLS: usize = 1_000_000;
/// The most participant rows one workbook holds.
pub const MAX_EXPORT_PARTICIPANTS: usize = 1_048_575;

/// A call with its participants.
struct Exported {
    summary: CallSummary,
    participants: Vec<CallParticipant>,
}

/// Reads the export a batch at a time.
struct Batches {
    registry: Registry,
    filter: CallFilter,
    cursor: Option<(Millis, String)>,
    sent: usize,
    done: bool,
}

impl Batches {
    fn new(registry: Registry, filter: CallFilter) -> Batches {
        Batches {
            registry,
            filter,
            cursor: None,
            sent: 0,
            done: false,
        }
    }

    /// The next batch; empty when all was read.
    async fn next(&mut self) -> Result<Vec<Exported>, StoreError> {
        if self.done {
            return Ok(Vec::new());
        }
        let limit = EXPORT_BATCH.min(MAX_EXPORT_CALLS - self.sent);
        let calls = self
            .registry
            .list_calls(&self.filter, self.cursor.take(), limit)
            .await?;
        self.sent += calls.len();
        self.done = calls.len() < limit || self.sent >= MAX_EXPORT_CALLS;
        self.cursor = calls.last().map(|s| (s.call.started_ms, s.call.id.clone()));
        let ids: Vec<String> = calls.iter().map(|s| s.call.id.clone()).collect();
        let mut people = self
            .registry
            .participants_of(&ids)
            .await?
            .into_iter()
            .peekable();
        Ok(calls
            .into_iter()
            .map(|summary| {
                let mut participants = Vec::new();
                while let Some((_, p)) = people.next_if(|(call, _)| *call == summary.call.id) {
                    participants.push(p);
                }
                Exported {
                    summary,
                    participants,
                }
            })
            .collect())
    }
}

/// A moment in time zone `tz`, as `2026-12-07 15:04:05`.
fn local_text(ms: Millis, tz: Tz) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// A moment in time zone `tz` as an Excel date (days since 1899-12-30, local time).
fn excel_date(ms: Millis, tz: Tz) -> Option<f64> {
    let local = Utc
        .timestamp_millis_opt(ms)
        .single()?
        .with_timezone(&tz)
        .naive_local();
    let epoch = chrono::NaiveDate::from_ymd_opt(1899, 12, 30)?.and_hms_opt(0, 0, 0)?;
    Some((local - epoch).num_milliseconds() as f64 / 86_400_000.0)
}

fn duration_ms(s: &CallSummary) -> Option<Millis> {
    s.ended_ms.map(|e| (e - s.call.started_ms).max(0))
}

/// The customers' names, `; ` between.
fn customers(e: &Exported) -> String {
    e.participants
        .iter()
        .filter(|p| p.role == "customer")
        .map(|p| p.name.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

/// A text cell that a spreadsheet must not take for a formula (`=`, `+`, `-`, `@` first):
/// a name like `=HYPERLINK(...)` stays text.
fn inert(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

/// The CSV's columns.
const CSV_HEADER: [&str; 12] = [
    "call_id",
    "code",
    "app",
    "started",
    "ended",
    "duration_s",
    "agent",
    "customers",
    "participants",
    "devices",
    "recordings",
    "end_reason",
];

fn csv_rows(batch: &[Exported], tz: Tz, header: bool) -> Result<Bytes, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::with_capacity(batch.len() * 200));
    if header {
        w.write_record(CSV_HEADER)?;
    }
    for e in batch {
        let s = &e.summary;
        let devices: Vec<String> = e
            .participants
            .iter()
            .map(|p| {
                let what = [p.browser.as_str(), p.os.as_str(), p.device.as_str()]
                    .into_iter()
                    .filter(|x| !x.is_empty())
                    .collect::<Vec<_>>()
                    .join(", ");
                format!("{}: {what}", p.name)
            })
            .collect();
        w.write_record([
            s.call.id.clone(),
            s.call.code.clone(),
            inert(&s.call.rc_name),
            local_text(s.call.started_ms, tz),
            s.ended_ms.map(|e| local_text(e, tz)).unwrap_or_default(),
            duration_ms(s)
                .map(|d| (d / 1000).to_string())
                .unwrap_or_default(),
            inert(s.owner_name.as_deref().unwrap_or("")),
            inert(&customers(e)),
            s.participants.to_string(),
            inert(&devices.join("; ")),
            s.recordings.to_string(),
            s.end_reason.clone().unwrap_or_default(),
        ])?;
    }
    w.into_inner()
        .map(Bytes::from)
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// A download of `bytes` of type `mime` named `file`.
fn download(body: Body, mime: &'static str, file: &str) -> Response {
    (
        [
            (header::CONTENT_TYPE, mime.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response()
}

fn file_name(ext: &str) -> String {
    format!("calls-{}.{ext}", Utc::now().format("%Y%m%d-%H%M%S"))
}

/// The calls `filter` lets through as CSV (times in `tz`), streamed.
pub fn csv_response(registry: Registry, filter: CallFilter, tz: Tz) -> Response {
    let batches = Batches::new(registry, filter);
    let body = stream::unfold((batches, true), move |(mut batches, first)| async move {
        if batches.done && !first {
            return None;
        }
        let out = match batches.next().await {
            Ok(batch) => csv_rows(&batch, tz, first).map_err(io::Error::other),
            Err(e) => {
                warn!(error = %e, "call export failed");
                batches.done = true;
                Err(io::Error::other(e.to_string()))
            }
        };
        Some((out, (batches, false)))
    });
    download(
        Body::from_stream(body),
        "text/csv; charset=utf-8",
        &file_name("csv"),
    )
}

/// Hands what the workbook writes to the response, a chunk at a time (blocking: the writer
/// runs on a thread of its own).
struct ChunkWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
    buf: Vec<u8>,
}

const CHUNK: usize = 64 * 1024;

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::take(&mut self.buf));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the download was dropped"))
    }
}

/// The workbook's two sheets and their formats.
struct Sheets {
    workbook: Workbook,
    date: Format,
    duration: Format,
    calls_row: u32,
    people_row: u32,
}

const CALL_COLUMNS: [(&str, f64); 11] = [
    ("Call", 30.0),
    ("Code", 8.0),
    ("App", 14.0),
    ("Started", 19.0),
    ("Ended", 19.0),
    ("Duration", 10.0),
    ("Agent", 20.0),
    ("Customers", 24.0),
    ("Participants", 12.0),
    ("Recordings", 11.0),
    ("End reason", 14.0),
];

const PEOPLE_COLUMNS: [(&str, f64); 9] = [
    ("Call", 30.0),
    ("Started", 19.0),
    ("Name", 20.0),
    ("Role", 10.0),
    ("Account", 9.0),
    ("Browser", 14.0),
    ("OS", 16.0),
    ("Device", 9.0),
    ("User agent", 60.0),
];

fn headings(sheet: &mut Worksheet, columns: &[(&str, f64)], f: &Format) -> Result<(), XlsxError> {
    for (col, (title, width)) in (0u16..).zip(columns) {
        sheet.write_string_with_format(0, col, *title, f)?;
        sheet.set_column_width(col, *width)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    Ok(())
}

impl Sheets {
    fn new() -> Result<Sheets, XlsxError> {
        let mut workbook = Workbook::new();
        let header = Format::new().set_bold();
        let calls = workbook.add_worksheet_with_constant_memory()?;
        calls.set_name("Calls")?;
        headings(calls, &CALL_COLUMNS, &header)?;
        let people = workbook.add_worksheet_with_constant_memory()?;
        people.set_name("Participants")?;
        headings(people, &PEOPLE_COLUMNS, &header)?;
        Ok(Sheets {
            workbook,
            date: Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            duration: Format::new().set_num_format("[h]:mm:ss"),
            calls_row: 0,
            people_row: 0,
        })
    }

    fn add(&mut self, batch: &[Exported], tz: Tz) -> Result<(), XlsxError> {
        let (date, duration) = (self.date.clone(), self.duration.clone());
        for e in batch {
            let s = &e.summary;
            self.calls_row += 1;
            let r = self.calls_row;
            let sheet = self.workbook.worksheet_from_index(0)?;
            sheet.write_string(r, 0, &s.call.id)?;
            sheet.write_string(r, 1, &s.call.code)?;
            sheet.write_string(r, 2, &s.call.rc_name)?;
            if let Some(d) = excel_date(s.call.started_ms, tz) {
                sheet.write_number_with_format(r, 3, d, &date)?;
            }
            if let Some(d) = s.ended_ms.and_then(|e| excel_date(e, tz)) {
                sheet.write_number_with_format(r, 4, d, &date)?;
            }
            if let Some(d) = duration_ms(s) {
                sheet.write_number_with_format(r, 5, d as f64 / 86_400_000.0, &duration)?;
            }
            sheet.write_string(r, 6, s.owner_name.as_deref().unwrap_or(""))?;
            sheet.write_string(r, 7, customers(e))?;
            sheet.write_number(r, 8, s.participants as f64)?;
            sheet.write_number(r, 9, s.recordings as f64)?;
            sheet.write_string(r, 10, s.end_reason.as_deref().unwrap_or(""))?;
            for p in &e.participants {
                if self.people_row as usize >= MAX_EXPORT_PARTICIPANTS {
                    break;
                }
                self.people_row += 1;
                let r = self.people_row;
                let sheet = self.workbook.worksheet_from_index(1)?;
                sheet.write_string(r, 0, &s.call.id)?;
                if let Some(d) = excel_date(s.call.started_ms, tz) {
                    sheet.write_number_with_format(r, 1, d, &date)?;
                }
                sheet.write_string(r, 2, &p.name)?;
                sheet.write_string(r, 3, &p.role)?;
                if let Some(a) = p.account_id {
                    sheet.write_number(r, 4, a as f64)?;
                }
                sheet.write_string(r, 5, &p.browser)?;
                sheet.write_string(r, 6, &p.os)?;
                sheet.write_string(r, 7, &p.device)?;
                sheet.write_string(r, 8, &p.user_agent)?;
            }
        }
        Ok(())
    }

    fn finish(mut self, out: ChunkWriter) -> Result<(), XlsxError> {
        let (calls, people) = (self.calls_row, self.people_row);
        self.workbook.worksheet_from_index(0)?.autofilter(
            0,
            0,
            calls,
            CALL_COLUMNS.len() as u16 - 1,
        )?;
        self.workbook.worksheet_from_index(1)?.autofilter(
            0,
            0,
            people,
            PEOPLE_COLUMNS.len() as u16 - 1,
        )?;
        let mut out = out;
        self.workbook.save_to_writer(&mut out)?;
        out.flush()?;
        Ok(())
    }
}

/// The calls `filter` lets through as an Excel workbook (times in `tz`), streamed.
pub fn xlsx_response(registry: Registry, filter: CallFilter, tz: Tz) -> Response {
    let (out_tx, mut out_rx) = mpsc::channel::<io::Result<Bytes>>(4);
    let (batch_tx, mut batch_rx) = mpsc::channel::<Result<Vec<Exported>, StoreError>>(2);
    tokio::spawn(async move {
        let mut batches = Batches::new(registry, filter);
        loop {
            let batch = batches.next().await;
            let last = batch.as_ref().map_or(true, |b| b.is_empty()) || batches.done;
            if batch_tx.send(batch).await.is_err() || last {
                return;
            }
        }
    });
    let errors = out_tx.clone();
    tokio::task::spawn_blocking(move || {
        let written = (|| -> Result<(), String> {
            let mut sheets = Sheets::new().map_err(|e| e.to_string())?;
            while let Some(batch) = batch_rx.blocking_recv() {
                let batch = batch.map_err(|e| e.to_string())?;
                sheets.add(&batch, tz).map_err(|e| e.to_string())?;
            }
            sheets
                .finish(ChunkWriter {
                    tx: out_tx,
                    buf: Vec::with_capacity(CHUNK),
                })
                .map_err(|e| e.to_string())
        })();
        if let Err(e) = written {
            warn!(error = %e, "call export failed");
            let _ = errors.blocking_send(Err(io::Error::other(e)));
        }
    });
    let body = stream::poll_fn(move |cx| out_rx.poll_recv(cx));
    download(
        Body::from_stream(body),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        &file_name("xlsx"),
    )
}
