//! Transcripts of recordings, stored only inside the encrypted vault.
//!
//! ```text
//! transcripts          one per transcription run of a recording: model, language, window
//!                      length, status running → done, RecordMeta like every record
//! transcript_windows   (transcript, window): which windows of the audio are done (a window
//!                      may hold no segment, e.g. silence), so an interrupted run resumes
//! transcript_segments  the segments, records of their own (RecordMeta): times, the reviewed
//!                      `text`, the model's `machine_text` (never changed), translation,
//!                      speaker, reviewed flag, redaction spans
//! transcript_history   every version of every segment, with who, when and what was done
//! ```
//!
//! The engine (crates/transcribe) calls [`Vault::start_transcript`], then for each window of
//! `window_ms` of audio that [`Vault::transcript_windows_done`] does not list,
//! [`Vault::save_transcript_window`] (one durable transaction per window), and at the end
//! [`Vault::finish_transcript`]. Segment times are milliseconds from the start of the
//! recording.
//!
//! Consent: starting a transcript and saving each window need the witness's consent
//! `transcribe` (not withdrawn). After a withdrawal no further window is accepted, so a
//! running transcription stops there; what was saved before stays until someone deletes it
//! ([`Vault::delete_transcript`]), and can still be reviewed and exported, like every other
//! record made before a withdrawal.
//!
//! Every change to a segment is audited (record type `transcript_segment`; the entry's content
//! hash is that of the segment as it became, which is also what `transcript_history` keeps),
//! bumps the segment's `version` and `updated_at`, and keeps its search entry current (the
//! text and the translation, kind `transcript`). Deleting writes tombstones
//! (`transcript`, `transcript_segment`).

use std::collections::BTreeSet;

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use crate::audit;
use crate::error::{Error, Result};
use crate::model::{ConsentScope, RecordMeta, RecordingStatus};
use crate::reason::Reason;
use crate::records::{META, index, meta, unindex};
use crate::store::{Ctx, Vault, new_id};

mod export;
mod review;

pub use export::{TranscriptFormat, rendered};
pub use review::SegmentVersion;

/// Shortest and longest window the engine may work in.
pub const MIN_WINDOW_MS: u64 = 1_000;
pub const MAX_WINDOW_MS: u64 = 3_600_000;
/// Longest segment text or translation (characters).
pub const MAX_SEGMENT_CHARS: usize = 20_000;
/// Most segments one window may hold.
pub const MAX_SEGMENTS_PER_WINDOW: usize = 10_000;
/// Longest redaction label (characters, one line).
pub const MAX_LABEL_CHARS: usize = 40;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum TranscriptStatus {
    Running,
    Done,
}

impl TranscriptStatus {
    pub fn code(self) -> &'static str {
        match self {
            TranscriptStatus::Running => "running",
            TranscriptStatus::Done => "done",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Transcript {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub recording_id: String,
    pub interview_id: String,
    /// The model's name as the engine gave it (e.g. the GGML file name).
    pub model: String,
    /// The language forced for the run (ko, en), or None for automatic detection.
    pub language: Option<String>,
    /// Window `n` covers `[n × window_ms, (n + 1) × window_ms)` of the recording.
    pub window_ms: u64,
    pub status: TranscriptStatus,
    /// Windows saved so far (not stored: counted from `transcript_windows`).
    pub windows_done: u32,
    /// Known once finished.
    pub windows_total: Option<u32>,
}

/// A segment as the engine produced it; times in ms from the start of the recording.
#[derive(Debug, Clone, PartialEq)]
pub struct NewSegment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    pub language: Option<String>,
    pub confidence: Option<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Speaker {
    Interviewer,
    Witness,
    Interpreter,
}

impl Speaker {
    pub const ALL: [Speaker; 3] = [Speaker::Interviewer, Speaker::Witness, Speaker::Interpreter];
    pub fn code(self) -> &'static str {
        match self {
            Speaker::Interviewer => "interviewer",
            Speaker::Witness => "witness",
            Speaker::Interpreter => "interpreter",
        }
    }
    pub fn parse(s: &str) -> Option<Speaker> {
        Speaker::ALL.into_iter().find(|x| x.code() == s)
    }
}

/// Which text of a segment a redaction span marks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RedactionField {
    Text,
    Translation,
}

impl RedactionField {
    pub fn code(self) -> &'static str {
        match self {
            RedactionField::Text => "text",
            RedactionField::Translation => "translation",
        }
    }
}

/// A span of a segment's text or translation to hide in exports meant for publication:
/// characters `[start, end)` (Unicode scalar values, not bytes), replaced by `[label]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Redaction {
    pub id: String,
    pub field: RedactionField,
    pub start: u32,
    pub end: u32,
    /// What is hidden, e.g. name, place (lower-case letters, digits, `_`, `-`).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TranscriptSegment {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub transcript_id: String,
    pub interview_id: String,
    /// Creation order within the transcript; segments are ordered by (start_ms, end_ms, seq).
    pub seq: u32,
    pub start_ms: u64,
    pub end_ms: u64,
    /// The current text (the model's, or the reviewer's correction).
    pub text: String,
    /// What the model wrote, never changed. None for the second part of a split (which the
    /// model never wrote as such; its history starts with the split).
    pub machine_text: Option<String>,
    pub language: Option<String>,
    pub confidence: Option<f32>,
    pub translation: Option<String>,
    pub translation_language: Option<String>,
    pub speaker: Option<Speaker>,
    pub reviewed: bool,
    pub redactions: Vec<Redaction>,
}

pub(crate) const TRANSCRIPT_COLS: &str = "t.id, t.device_id, t.created_at, t.updated_at, t.version, t.recording_id, t.interview_id, t.model, t.language, t.window_ms, t.status, t.windows_total, (SELECT count(*) FROM transcript_windows w WHERE w.transcript_id = t.id)";

pub(crate) fn transcript_row(r: &Row) -> rusqlite::Result<Transcript> {
    Ok(Transcript {
        meta: meta(r, 0)?,
        recording_id: r.get(5)?,
        interview_id: r.get(6)?,
        model: r.get(7)?,
        language: r.get(8)?,
        window_ms: r.get::<_, i64>(9)? as u64,
        status: if r.get::<_, String>(10)? == "done" {
            TranscriptStatus::Done
        } else {
            TranscriptStatus::Running
        },
        windows_total: r.get::<_, Option<i64>>(11)?.map(|n| n as u32),
        windows_done: r.get::<_, i64>(12)? as u32,
    })
}

pub(crate) const SEGMENT_COLS: &str = "id, device_id, created_at, updated_at, version, transcript_id, interview_id, seq, start_ms, end_ms, text, machine_text, language, confidence, translation, translation_language, speaker, reviewed, redactions";

pub(crate) fn segment_row(r: &Row) -> rusqlite::Result<TranscriptSegment> {
    let redactions: String = r.get(18)?;
    Ok(TranscriptSegment {
        meta: meta(r, 0)?,
        transcript_id: r.get(5)?,
        interview_id: r.get(6)?,
        seq: r.get::<_, i64>(7)? as u32,
        start_ms: r.get::<_, i64>(8)? as u64,
        end_ms: r.get::<_, i64>(9)? as u64,
        text: r.get(10)?,
        machine_text: r.get(11)?,
        language: r.get(12)?,
        confidence: r.get::<_, Option<f64>>(13)?.map(|c| c as f32),
        translation: r.get(14)?,
        translation_language: r.get(15)?,
        speaker: r
            .get::<_, Option<String>>(16)?
            .and_then(|s| Speaker::parse(&s)),
        reviewed: r.get(17)?,
        redactions: serde_json::from_str(&redactions).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(18, rusqlite::types::Type::Text, Box::new(e))
        })?,
    })
}

/// Language codes as elsewhere in the vault: ko, en, zh, …
pub(crate) fn check_language(what: &str, l: &str) -> Result<()> {
    if l.len() < 2 || l.len() > 8 || !l.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
        return Err(Error::Invalid(Reason::NotALanguageCode {
            what: what.to_string(),
        }));
    }
    Ok(())
}

/// A segment's text or translation: not blank, not too long. Never repeats the text.
pub(crate) fn check_text(field: RedactionField, s: &str) -> Result<()> {
    let translation = field == RedactionField::Translation;
    if s.trim().is_empty() {
        return Err(Error::Invalid(if translation {
            Reason::TranslationEmpty
        } else {
            Reason::SegmentTextEmpty
        }));
    }
    if s.chars().count() > MAX_SEGMENT_CHARS {
        let max = MAX_SEGMENT_CHARS;
        return Err(Error::Invalid(if translation {
            Reason::TranslationTooLong { max }
        } else {
            Reason::SegmentTextTooLong { max }
        }));
    }
    Ok(())
}

fn get_transcript(conn: &Connection, id: &str) -> Result<Transcript> {
    conn.query_row(
        &format!("SELECT {TRANSCRIPT_COLS} FROM transcripts t WHERE t.id = ?1"),
        [id],
        transcript_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("transcript", id.to_string()))
}

pub(crate) fn get_segment(conn: &Connection, id: &str) -> Result<TranscriptSegment> {
    conn.query_row(
        &format!("SELECT {SEGMENT_COLS} FROM transcript_segments WHERE id = ?1"),
        [id],
        segment_row,
    )
    .optional()?
    .ok_or_else(|| Error::NotFound("transcript segment", id.to_string()))
}

/// What the search index holds for a segment: its text and, on the next line, its translation.
pub(crate) fn search_body(s: &TranscriptSegment) -> String {
    match &s.translation {
        Some(t) => format!("{}\n{}", s.text, t),
        None => s.text.clone(),
    }
}

fn insert_segment(tx: &Connection, s: &TranscriptSegment) -> Result<()> {
    tx.execute(
        &format!("INSERT INTO transcript_segments ({SEGMENT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"),
        params![
            s.meta.id,
            s.meta.device_id,
            s.meta.created_at,
            s.meta.updated_at,
            s.meta.version,
            s.transcript_id,
            s.interview_id,
            s.seq as i64,
            s.start_ms as i64,
            s.end_ms as i64,
            s.text,
            s.machine_text,
            s.language,
            s.confidence.map(f64::from),
            s.translation,
            s.translation_language,
            s.speaker.map(Speaker::code),
            s.reviewed,
            serde_json::to_string(&s.redactions).expect("serialisable"),
        ],
    )?;
    Ok(())
}

/// Records a segment as it now is: its history row and its audit entry (same content), and its
/// search entry. Inside the caller's transaction.
pub(crate) fn record_version(
    tx: &Connection,
    cx: &Ctx,
    s: &TranscriptSegment,
    action: &str,
    related: Option<&str>,
) -> Result<()> {
    tx.execute(
        "INSERT INTO transcript_history (id, segment_id, transcript_id, at, actor, device_id, action, related_segment, content)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![new_id(), s.meta.id, s.transcript_id, cx.now, cx.actor, cx.device_id, action, related, serde_json::to_string(s).expect("serialisable")],
    )?;
    unindex(tx, &s.meta.id)?;
    index(
        tx,
        &s.meta.id,
        &s.interview_id,
        "transcript",
        &search_body(s),
    )?;
    audit::append(tx, cx, "transcript_segment", &s.meta.id, action, s)
}

impl Vault {
    pub(crate) fn check_transcribe_consent(&self, interview_id: &str) -> Result<()> {
        let i = self.interview(interview_id)?;
        if !self.consent_allows(&i.witness_id, ConsentScope::Transcribe)? {
            return Err(Error::NotAllowed(Reason::NoTranscribeConsent {
                witness: i.witness_code,
            }));
        }
        Ok(())
    }

    /// Starts transcribing a stopped recording, or resumes: if a transcript of this recording
    /// by the same `model` is still running, that one is returned unchanged (its `window_ms`
    /// and `language` are what the caller must use, and `transcript_windows_done` says which
    /// windows to skip). Needs the witness's consent `transcribe`; without it the vault is
    /// left unchanged.
    pub fn start_transcript(
        &mut self,
        recording_id: &str,
        model: &str,
        language: Option<&str>,
        window_ms: u64,
    ) -> Result<Transcript> {
        let rec = self.recording(recording_id)?;
        self.check_transcribe_consent(&rec.interview_id)?;
        if rec.status == RecordingStatus::Recording {
            return Err(Error::NotAllowed(Reason::RecordingStillRunning {
                recording: recording_id.to_string(),
            }));
        }
        let model = model.trim();
        if model.is_empty() || model.chars().count() > 200 || model.contains(['\n', '\r']) {
            return Err(Error::invalid(
                "the model name must be one line of 1 to 200 characters".into(),
            ));
        }
        if let Some(l) = language {
            check_language("transcript language", l)?;
        }
        if !(MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&window_ms) {
            return Err(Error::invalid(format!(
                "window must be between {MIN_WINDOW_MS} and {MAX_WINDOW_MS} ms"
            )));
        }
        let running: Option<String> = self
            .conn
            .query_row("SELECT id FROM transcripts WHERE recording_id = ?1 AND model = ?2 AND status = 'running'", params![rec.meta.id, model], |r| r.get(0))
            .optional()?;
        if let Some(id) = running {
            return get_transcript(&self.conn, &id);
        }
        self.write(|tx, cx| {
            let t = Transcript {
                meta: RecordMeta { id: new_id(), device_id: cx.device_id.clone(), created_at: cx.now.clone(), updated_at: cx.now.clone(), version: 1 },
                recording_id: rec.meta.id.clone(),
                interview_id: rec.interview_id.clone(),
                model: model.to_string(),
                language: language.map(str::to_string),
                window_ms,
                status: TranscriptStatus::Running,
                windows_done: 0,
                windows_total: None,
            };
            tx.execute(
                &format!("INSERT INTO transcripts ({META}, recording_id, interview_id, model, language, window_ms, status) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,'running')"),
                params![t.meta.id, t.meta.device_id, t.meta.created_at, t.meta.updated_at, t.meta.version, t.recording_id, t.interview_id, t.model, t.language, t.window_ms as i64],
            )?;
            audit::append(tx, cx, "transcript", &t.meta.id, "create", &t)?;
            Ok(t)
        })
    }

    pub fn transcript(&self, transcript_id: &str) -> Result<Transcript> {
        get_transcript(&self.conn, transcript_id)
    }

    /// The windows saved so far, ascending.
    pub fn transcript_windows_done(&self, transcript_id: &str) -> Result<Vec<u32>> {
        get_transcript(&self.conn, transcript_id)?;
        let mut st = self.conn.prepare(
            "SELECT window FROM transcript_windows WHERE transcript_id = ?1 ORDER BY window",
        )?;
        let rows = st.query_map([transcript_id], |r| Ok(r.get::<_, i64>(0)? as u32))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves one window's segments (possibly none) in one durable transaction: the window is
    /// either saved with all its segments or not at all. Saving a window that is already saved
    /// is refused and changes nothing. Segments with blank text are skipped (the model wrote
    /// nothing there). Needs the witness's consent `transcribe` still in force.
    pub fn save_transcript_window(
        &mut self,
        transcript_id: &str,
        window: u32,
        segments: &[NewSegment],
    ) -> Result<()> {
        let t = get_transcript(&self.conn, transcript_id)?;
        if t.status != TranscriptStatus::Running {
            return Err(Error::not_allowed(format!(
                "transcript {transcript_id} is finished; start a new one to transcribe again"
            )));
        }
        self.check_transcribe_consent(&t.interview_id)?;
        let rec = self.recording(&t.recording_id)?;
        let window_start = window as u64 * t.window_ms;
        // One second of slack: decoders may round the length of the audio up.
        if window_start >= rec.duration_ms + 1_000 {
            return Err(Error::invalid(format!(
                "window {window} starts after the end of recording {}",
                rec.meta.id
            )));
        }
        if segments.len() > MAX_SEGMENTS_PER_WINDOW {
            return Err(Error::invalid(format!(
                "a window holds at most {MAX_SEGMENTS_PER_WINDOW} segments"
            )));
        }
        // Whisper's times can run a little past a window; they must stay inside the recording.
        let limit = rec.duration_ms + t.window_ms;
        for (n, s) in segments.iter().enumerate() {
            if s.end_ms < s.start_ms || s.end_ms > limit {
                return Err(Error::invalid(format!(
                    "segment {n} of window {window}: its times are out of order or past the end of the recording"
                )));
            }
            if s.text.chars().count() > MAX_SEGMENT_CHARS {
                return Err(Error::invalid(format!(
                    "segment {n} of window {window} is longer than {MAX_SEGMENT_CHARS} characters"
                )));
            }
            if let Some(l) = &s.language {
                check_language("segment language", l)?;
            }
            if s.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
                return Err(Error::invalid(format!(
                    "segment {n} of window {window}: confidence must be between 0 and 1"
                )));
            }
        }
        let done: bool = self
            .conn
            .query_row(
                "SELECT 1 FROM transcript_windows WHERE transcript_id = ?1 AND window = ?2",
                params![transcript_id, window],
                |_| Ok(true),
            )
            .optional()?
            .is_some();
        if done {
            return Err(Error::not_allowed(format!(
                "window {window} of transcript {transcript_id} is already saved"
            )));
        }
        self.write(|tx, cx| {
            let first: i64 = tx.query_row("SELECT ifnull(max(seq), -1) + 1 FROM transcript_segments WHERE transcript_id = ?1", [transcript_id], |r| r.get(0))?;
            let mut saved = 0i64;
            for (seq, s) in (first..).zip(segments.iter().filter(|s| !s.text.trim().is_empty())) {
                let text = s.text.trim().to_string();
                let seg = TranscriptSegment {
                    meta: RecordMeta { id: new_id(), device_id: cx.device_id.clone(), created_at: cx.now.clone(), updated_at: cx.now.clone(), version: 1 },
                    transcript_id: t.meta.id.clone(),
                    interview_id: t.interview_id.clone(),
                    seq: seq as u32,
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                    text: text.clone(),
                    machine_text: Some(text),
                    language: s.language.clone(),
                    confidence: s.confidence,
                    translation: None,
                    translation_language: None,
                    speaker: None,
                    reviewed: false,
                    redactions: Vec::new(),
                };
                insert_segment(tx, &seg)?;
                record_version(tx, cx, &seg, "create", None)?;
                saved += 1;
            }
            tx.execute(
                "INSERT INTO transcript_windows (transcript_id, window, segments, saved_at) VALUES (?1, ?2, ?3, ?4)",
                params![transcript_id, window, saved, cx.now],
            )?;
            Ok(())
        })
    }

    /// Marks a transcript done once every window `0..windows_total` is saved (and no other).
    pub fn finish_transcript(
        &mut self,
        transcript_id: &str,
        windows_total: u32,
    ) -> Result<Transcript> {
        let t = get_transcript(&self.conn, transcript_id)?;
        if t.status != TranscriptStatus::Running {
            return Err(Error::not_allowed(format!(
                "transcript {transcript_id} is already finished"
            )));
        }
        let done: BTreeSet<u32> = self
            .transcript_windows_done(transcript_id)?
            .into_iter()
            .collect();
        if let Some(extra) = done.iter().find(|w| **w >= windows_total) {
            return Err(Error::invalid(format!(
                "window {extra} is saved, but the transcript is said to have {windows_total} windows"
            )));
        }
        let missing: Vec<String> = (0..windows_total)
            .filter(|w| !done.contains(w))
            .take(10)
            .map(|w| w.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::invalid(format!(
                "windows not saved yet: {}{}",
                missing.join(", "),
                if missing.len() == 10 { ", …" } else { "" }
            )));
        }
        self.write(|tx, cx| {
            tx.execute(
                "UPDATE transcripts SET status = 'done', windows_total = ?2, version = version + 1, updated_at = ?3 WHERE id = ?1",
                params![transcript_id, windows_total, cx.now],
            )?;
            let t = get_transcript(tx, transcript_id)?;
            audit::append(tx, cx, "transcript", transcript_id, "finish", &t)?;
            Ok(t)
        })
    }

    /// The transcripts of a recording, oldest first.
    pub fn transcripts(&self, recording_id: &str) -> Result<Vec<Transcript>> {
        self.recording(recording_id)?;
        let mut st = self.conn.prepare(&format!("SELECT {TRANSCRIPT_COLS} FROM transcripts t WHERE t.recording_id = ?1 ORDER BY t.created_at, t.id"))?;
        let rows = st.query_map([recording_id], transcript_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A transcript's segments in order (start, end, then creation order).
    pub fn transcript_segments(&self, transcript_id: &str) -> Result<Vec<TranscriptSegment>> {
        get_transcript(&self.conn, transcript_id)?;
        let mut st = self
            .conn
            .prepare(&format!("SELECT {SEGMENT_COLS} FROM transcript_segments WHERE transcript_id = ?1 ORDER BY start_ms, end_ms, seq"))?;
        let rows = st.query_map([transcript_id], segment_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn transcript_segment(&self, segment_id: &str) -> Result<TranscriptSegment> {
        get_segment(&self.conn, segment_id)
    }

    /// Deletes a transcript with its segments and their history, in one transaction: each
    /// deletion audited and tombstoned (`transcript`, `transcript_segment`) so that it can
    /// travel like other deletions; search entries removed; rows overwritten (`secure_delete`).
    pub fn delete_transcript(&mut self, transcript_id: &str) -> Result<()> {
        get_transcript(&self.conn, transcript_id)?;
        self.write(|tx, cx| delete_transcript_in(tx, cx, transcript_id))?;
        if self.conn.is_autocommit() {
            // Best effort, as for recordings: old page images of the text leave the WAL.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(())
    }
}

fn tombstone(
    tx: &Connection,
    cx: &Ctx,
    record_type: &str,
    id: &str,
    interview_id: &str,
) -> Result<()> {
    tx.execute(
        "INSERT OR REPLACE INTO tombstones (record_id, record_type, interview_id, device_id, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![id, record_type, interview_id, cx.device_id, cx.now],
    )?;
    audit::append(
        tx,
        cx,
        record_type,
        id,
        "delete",
        &serde_json::json!({"id": id, "deleted": true}),
    )
}

pub(crate) fn delete_transcript_in(tx: &Connection, cx: &Ctx, transcript_id: &str) -> Result<()> {
    let t = get_transcript(tx, transcript_id)?;
    let ids: Vec<String> = {
        let mut st =
            tx.prepare("SELECT id FROM transcript_segments WHERE transcript_id = ?1 ORDER BY seq")?;
        st.query_map([transcript_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in &ids {
        unindex(tx, id)?;
        tx.execute("DELETE FROM transcript_segments WHERE id = ?1", [id])?;
        tombstone(tx, cx, "transcript_segment", id, &t.interview_id)?;
    }
    tx.execute(
        "DELETE FROM transcript_history WHERE transcript_id = ?1",
        [transcript_id],
    )?;
    tx.execute(
        "DELETE FROM transcript_windows WHERE transcript_id = ?1",
        [transcript_id],
    )?;
    tx.execute("DELETE FROM transcripts WHERE id = ?1", [transcript_id])?;
    tombstone(tx, cx, "transcript", transcript_id, &t.interview_id)
}

/// Deletes every transcript of a recording inside the caller's transaction (the recording is
/// being deleted: a transcript without its audio is not kept behind the user's back).
pub(crate) fn delete_transcripts_of_recording(
    tx: &Connection,
    cx: &Ctx,
    recording_id: &str,
) -> Result<()> {
    let ids: Vec<String> = {
        let mut st = tx.prepare("SELECT id FROM transcripts WHERE recording_id = ?1")?;
        st.query_map([recording_id], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    };
    for id in ids {
        delete_transcript_in(tx, cx, &id)?;
    }
    Ok(())
}
