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

use crate::audio::RecordingStatus;
use crate::audit;
use crate::error::{Error, Result};
use crate::model::{ConsentScope, RecordMeta};
use crate::reason::Reason;
use crate::records::{META, index, meta, unindex};
use crate::vault::{Ctx, Vault, new_id};

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
pub struct Redaction {
    pub id: String,
    pub field: RedactionField,
    pub start: u32,
    pub end: u32,
    /// What is hidden, e.g. name, place (lower-case letters, digits, `_`, `-`).
    pub label: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
        return Err(Error::Rejected(Reason::NotALanguageCode {
            what: what.to_string(),
        }));
    }
    Ok(())
}

/// A segment's text or translation: not blank, not too long. Never repeats the text.
pub(crate) fn check_text(field: RedactionField, s: &str) -> Result<()> {
    let translation = field == RedactionField::Translation;
    if s.trim().is_empty() {
        return Err(Error::Rejected(if translation {
            Reason::TranslationEmpty
        } else {
            Reason::SegmentTextEmpty
        }));
    }
    if s.chars().count() > MAX_SEGMENT_CHARS {
        let max = MAX_SEGMENT_CHARS;
        return Err(Error::Rejected(if translation {
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
    fn check_transcribe_consent(&self, interview_id: &str) -> Result<()> {
        let i = self.interview(interview_id)?;
        if !self.consent_allows(&i.witness_id, ConsentScope::Transcribe)? {
            return Err(Error::Refused(Reason::NoTranscribeConsent {
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
            return Err(Error::Refused(Reason::RecordingStillRunning {
                recording: recording_id.to_string(),
            }));
        }
        let model = model.trim();
        if model.is_empty() || model.chars().count() > 200 || model.contains(['\n', '\r']) {
            return Err(Error::Invalid(
                "the model name must be one line of 1 to 200 characters".into(),
            ));
        }
        if let Some(l) = language {
            check_language("transcript language", l)?;
        }
        if !(MIN_WINDOW_MS..=MAX_WINDOW_MS).contains(&window_ms) {
            return Err(Error::Invalid(format!(
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
            return Err(Error::NotAllowed(format!(
                "transcript {transcript_id} is finished; start a new one to transcribe again"
            )));
        }
        self.check_transcribe_consent(&t.interview_id)?;
        let rec = self.recording(&t.recording_id)?;
        let window_start = window as u64 * t.window_ms;
        // One second of slack: decoders may round the length of the audio up.
        if window_start >= rec.duration_ms + 1_000 {
            return Err(Error::Invalid(format!(
                "window {window} starts after the end of recording {}",
                rec.meta.id
            )));
        }
        if segments.len() > MAX_SEGMENTS_PER_WINDOW {
            return Err(Error::Invalid(format!(
                "a window holds at most {MAX_SEGMENTS_PER_WINDOW} segments"
            )));
        }
        // Whisper's times can run a little past a window; they must stay inside the recording.
        let limit = rec.duration_ms + t.window_ms;
        for (n, s) in segments.iter().enumerate() {
            if s.end_ms < s.start_ms || s.end_ms > limit {
                return Err(Error::Invalid(format!(
                    "segment {n} of window {window}: its times are out of order or past the end of the recording"
                )));
            }
            if s.text.chars().count() > MAX_SEGMENT_CHARS {
                return Err(Error::Invalid(format!(
                    "segment {n} of window {window} is longer than {MAX_SEGMENT_CHARS} characters"
                )));
            }
            if let Some(l) = &s.language {
                check_language("segment language", l)?;
            }
            if s.confidence.is_some_and(|c| !(0.0..=1.0).contains(&c)) {
                return Err(Error::Invalid(format!(
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
            return Err(Error::NotAllowed(format!(
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
            return Err(Error::NotAllowed(format!(
                "transcript {transcript_id} is already finished"
            )));
        }
        let done: BTreeSet<u32> = self
            .transcript_windows_done(transcript_id)?
            .into_iter()
            .collect();
        if let Some(extra) = done.iter().find(|w| **w >= windows_total) {
            return Err(Error::Invalid(format!(
                "window {extra} is saved, but the transcript is said to have {windows_total} windows"
            )));
        }
        let missing: Vec<String> = (0..windows_total)
            .filter(|w| !done.contains(w))
            .take(10)
            .map(|w| w.to_string())
            .collect();
        if !missing.is_empty() {
            return Err(Error::Invalid(format!(
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

// ---- the translator's review ---------------------------------------------------------------

/// One version of a segment, as [`Vault::segment_history`] shows it: who made it, when, by
/// which action, and the segment as it was right after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentVersion {
    pub at: String,
    pub actor: String,
    pub device_id: String,
    /// `create` (the model's text), `edit`, `translate`, `clear_translation`, `speaker`,
    /// `review`, `unreview`, `redact`, `unredact`, `split`, `merge`, `merged_into`.
    pub action: String,
    /// For split and merge: the other segment.
    pub related_segment: Option<String>,
    pub segment: TranscriptSegment,
}

fn chars_len(s: &str) -> u32 {
    s.chars().count() as u32
}

/// Characters `[from, to)` of `s`.
fn char_slice(s: &str, from: u32, to: u32) -> String {
    s.chars()
        .skip(from as usize)
        .take(to.saturating_sub(from) as usize)
        .collect()
}

/// Moves a field's redaction spans from `old` to `new` text. Spans before and after the
/// changed stretch (found as the common prefix and suffix) keep covering the same characters;
/// a span that overlaps or touches the changed stretch grows to cover all of it, because a
/// corrected name must stay hidden ("Kim" → "Kimm", "Kim" → "Mr Kim"): the rule over-redacts
/// rather than leaks. A span whose text was deleted with nothing in its place goes.
fn carry_redactions(redactions: &mut Vec<Redaction>, field: RedactionField, old: &str, new: &str) {
    let (o, n): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    let p = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    let max_s = o.len().min(n.len()) - p;
    let s = o
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take(max_s)
        .take_while(|(a, b)| a == b)
        .count();
    let (old_end, new_end) = ((o.len() - s) as u32, (n.len() - s) as u32);
    let (p, delta) = (p as u32, n.len() as i64 - o.len() as i64);
    redactions.retain_mut(|r| {
        if r.field != field {
            return true;
        }
        if r.end < p {
            // before the change
        } else if r.start > old_end {
            r.start = (r.start as i64 + delta) as u32;
            r.end = (r.end as i64 + delta) as u32;
        } else {
            r.start = r.start.min(p);
            r.end = if r.end > old_end {
                (r.end as i64 + delta) as u32
            } else {
                new_end
            };
        }
        r.start < r.end
    });
}

/// Splits a field's spans at character `at` of a text whose second part loses `lead` leading
/// whitespace characters and whose first part is `first_len` characters long.
fn split_redactions(
    rs: &[Redaction],
    field: RedactionField,
    at: u32,
    first_len: u32,
    lead: u32,
) -> (Vec<Redaction>, Vec<Redaction>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in rs.iter().filter(|r| r.field == field) {
        if r.start < first_len {
            a.push(Redaction {
                end: r.end.min(first_len),
                ..r.clone()
            });
        }
        let from = at + lead;
        if r.end > from {
            b.push(Redaction {
                id: new_id(),
                start: r.start.max(from) - from,
                end: r.end - from,
                ..r.clone()
            });
        }
    }
    (a, b)
}

fn join_text(a: &str, b: &str) -> String {
    format!("{a} {b}")
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(Error::Rejected(Reason::RedactionLabel {
            max: MAX_LABEL_CHARS,
        }));
    }
    Ok(())
}

fn update_columns(tx: &Connection, s: &TranscriptSegment) -> Result<()> {
    tx.execute(
        "UPDATE transcript_segments SET version = ?2, updated_at = ?3, start_ms = ?4, end_ms = ?5, text = ?6, translation = ?7,
         translation_language = ?8, speaker = ?9, reviewed = ?10, redactions = ?11, confidence = ?12 WHERE id = ?1",
        params![
            s.meta.id,
            s.meta.version,
            s.meta.updated_at,
            s.start_ms as i64,
            s.end_ms as i64,
            s.text,
            s.translation,
            s.translation_language,
            s.speaker.map(Speaker::code),
            s.reviewed,
            serde_json::to_string(&s.redactions).expect("serialisable"),
            s.confidence.map(f64::from),
        ],
    )?;
    Ok(())
}

impl Vault {
    /// Applies `change` to a segment and saves the result as a new version (audited, in the
    /// history, search entry updated). `change` validates; on error nothing is written. A
    /// change that leaves the segment as it was writes nothing.
    fn update_segment(
        &mut self,
        segment_id: &str,
        action: &str,
        change: impl FnOnce(&mut TranscriptSegment) -> Result<()>,
    ) -> Result<TranscriptSegment> {
        let mut s = get_segment(&self.conn, segment_id)?;
        let before = s.clone();
        change(&mut s)?;
        if s == before {
            return Ok(s);
        }
        self.write(|tx, cx| {
            s.meta.version += 1;
            s.meta.updated_at = cx.now.clone();
            update_columns(tx, &s)?;
            record_version(tx, cx, &s, action, None)?;
            Ok(s)
        })
    }

    /// Replaces a segment's text (a correction). `machine_text` keeps what the model wrote.
    /// Redaction spans on the text follow it (see the rule on spans that touch the change).
    pub fn edit_segment_text(&mut self, segment_id: &str, text: &str) -> Result<TranscriptSegment> {
        check_text(RedactionField::Text, text)?;
        self.update_segment(segment_id, "edit", |s| {
            carry_redactions(&mut s.redactions, RedactionField::Text, &s.text, text);
            s.text = text.to_string();
            Ok(())
        })
    }

    /// Writes or replaces a segment's translation (one per segment, in `language`: en, ko, …).
    pub fn set_segment_translation(
        &mut self,
        segment_id: &str,
        text: &str,
        language: &str,
    ) -> Result<TranscriptSegment> {
        check_text(RedactionField::Translation, text)?;
        check_language("translation language", language)?;
        self.update_segment(segment_id, "translate", |s| {
            carry_redactions(
                &mut s.redactions,
                RedactionField::Translation,
                s.translation.as_deref().unwrap_or(""),
                text,
            );
            s.translation = Some(text.to_string());
            s.translation_language = Some(language.to_string());
            Ok(())
        })
    }

    /// Removes a segment's translation (and the redaction spans on it).
    pub fn clear_segment_translation(&mut self, segment_id: &str) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "clear_translation", |s| {
            if s.translation.is_none() {
                return Err(Error::Rejected(Reason::NoTranslation {
                    segment: s.meta.id.clone(),
                }));
            }
            s.translation = None;
            s.translation_language = None;
            s.redactions
                .retain(|r| r.field != RedactionField::Translation);
            Ok(())
        })
    }

    /// Who speaks in a segment (None: not said).
    pub fn set_segment_speaker(
        &mut self,
        segment_id: &str,
        speaker: Option<Speaker>,
    ) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "speaker", |s| {
            s.speaker = speaker;
            Ok(())
        })
    }

    /// Marks a segment reviewed (or not).
    pub fn set_segment_reviewed(
        &mut self,
        segment_id: &str,
        reviewed: bool,
    ) -> Result<TranscriptSegment> {
        self.update_segment(
            segment_id,
            if reviewed { "review" } else { "unreview" },
            |s| {
                s.reviewed = reviewed;
                Ok(())
            },
        )
    }

    /// Marks characters `[start, end)` of the segment's text or translation to be hidden in
    /// exports made with `redact` (shown as `[label]`). Spans of one field may not overlap.
    pub fn add_redaction(
        &mut self,
        segment_id: &str,
        field: RedactionField,
        start: u32,
        end: u32,
        label: &str,
    ) -> Result<Redaction> {
        check_label(label)?;
        let id = new_id();
        let s = self.update_segment(segment_id, "redact", |s| {
            let len = match field {
                RedactionField::Text => chars_len(&s.text),
                RedactionField::Translation => {
                    chars_len(s.translation.as_deref().ok_or_else(|| {
                        Error::Rejected(Reason::RedactNoTranslation {
                            segment: s.meta.id.clone(),
                        })
                    })?)
                }
            };
            if start >= end || end > len {
                return Err(Error::Rejected(Reason::RedactionRange {
                    field: field.code().to_string(),
                    len,
                }));
            }
            if let Some(o) = s
                .redactions
                .iter()
                .find(|r| r.field == field && r.start < end && start < r.end)
            {
                return Err(Error::Rejected(Reason::RedactionOverlap {
                    redaction: o.id.clone(),
                    start: o.start,
                    end: o.end,
                }));
            }
            s.redactions.push(Redaction {
                id: id.clone(),
                field,
                start,
                end,
                label: label.to_string(),
            });
            s.redactions.sort_by_key(|r| (r.field.code(), r.start));
            Ok(())
        })?;
        Ok(s.redactions
            .into_iter()
            .find(|r| r.id == id)
            .expect("just added"))
    }

    pub fn remove_redaction(
        &mut self,
        segment_id: &str,
        redaction_id: &str,
    ) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "unredact", |s| {
            let before = s.redactions.len();
            s.redactions.retain(|r| r.id != redaction_id);
            if s.redactions.len() == before {
                return Err(Error::NotFound("redaction", redaction_id.to_string()));
            }
            Ok(())
        })
    }

    /// Splits a segment in two at `at_ms` (strictly inside it) and at character `text_at` of
    /// its text (and `translation_at` of its translation, required when it has one). The first
    /// part keeps the id, history and `machine_text`; the second is a new segment starting at
    /// `at_ms`. Both keep speaker and language and become unreviewed; redaction spans go with
    /// the characters they cover. Returns both parts.
    pub fn split_segment(
        &mut self,
        segment_id: &str,
        at_ms: u64,
        text_at: u32,
        translation_at: Option<u32>,
    ) -> Result<(TranscriptSegment, TranscriptSegment)> {
        let s = get_segment(&self.conn, segment_id)?;
        if at_ms <= s.start_ms || at_ms >= s.end_ms {
            return Err(Error::Rejected(Reason::SplitTimeOutside {
                start_ms: s.start_ms,
                end_ms: s.end_ms,
            }));
        }
        // (first part, second part, characters trimmed at the start of the second part)
        let cut = |field: RedactionField, text: &str, at: u32| -> Result<(String, String, u32)> {
            let len = chars_len(text);
            let (a, b) = (char_slice(text, 0, at), char_slice(text, at, len));
            if at == 0 || at >= len || a.trim().is_empty() || b.trim().is_empty() {
                let max = len.saturating_sub(1);
                return Err(Error::Rejected(match field {
                    RedactionField::Text => Reason::SplitTextPosition { max },
                    RedactionField::Translation => Reason::SplitTranslationPosition { max },
                }));
            }
            let lead = chars_len(&b) - chars_len(b.trim_start());
            Ok((a.trim_end().to_string(), b.trim_start().to_string(), lead))
        };
        let (t1, t2, lead) = cut(RedactionField::Text, &s.text, text_at)?;
        let translation = match (&s.translation, translation_at) {
            (Some(tr), Some(at)) => Some(cut(RedactionField::Translation, tr, at)?),
            (Some(_), None) => {
                return Err(Error::Rejected(Reason::SplitNeedsTranslationPosition));
            }
            (None, Some(_)) => {
                return Err(Error::Rejected(Reason::SplitNoTranslation));
            }
            (None, None) => None,
        };
        let (mut r1, mut r2) = split_redactions(
            &s.redactions,
            RedactionField::Text,
            text_at,
            chars_len(&t1),
            lead,
        );
        if let (Some((tr1, _, lead)), Some(at)) = (&translation, translation_at) {
            let (a, b) = split_redactions(
                &s.redactions,
                RedactionField::Translation,
                at,
                chars_len(tr1),
                *lead,
            );
            r1.extend(a);
            r2.extend(b);
        }
        self.write(|tx, cx| {
            let seq: i64 = tx.query_row(
                "SELECT ifnull(max(seq), -1) + 1 FROM transcript_segments WHERE transcript_id = ?1",
                [&s.transcript_id],
                |r| r.get(0),
            )?;
            let mut first = s.clone();
            first.meta.version += 1;
            first.meta.updated_at = cx.now.clone();
            first.end_ms = at_ms;
            first.text = t1;
            first.reviewed = false;
            first.redactions = r1;
            let second = TranscriptSegment {
                meta: RecordMeta {
                    id: new_id(),
                    device_id: cx.device_id.clone(),
                    created_at: cx.now.clone(),
                    updated_at: cx.now.clone(),
                    version: 1,
                },
                seq: seq as u32,
                start_ms: at_ms,
                end_ms: s.end_ms,
                text: t2,
                machine_text: None,
                translation: translation.as_ref().map(|t| t.1.clone()),
                reviewed: false,
                redactions: r2,
                ..s.clone()
            };
            first.translation = translation.map(|t| t.0);
            update_columns(tx, &first)?;
            insert_segment(tx, &second)?;
            record_version(tx, cx, &first, "split", Some(&second.meta.id))?;
            record_version(tx, cx, &second, "split", Some(&first.meta.id))?;
            Ok((first, second))
        })
    }

    /// Merges two neighbouring segments of one transcript (in either order) into the earlier
    /// one: times from the first start to the last end, texts and translations joined with a
    /// space, redaction spans kept, unreviewed. The later segment is deleted (tombstone) and its
    /// history kept. Refused for segments that are not neighbours, that name different
    /// speakers, or whose translations are in different languages.
    pub fn merge_segments(&mut self, first_id: &str, second_id: &str) -> Result<TranscriptSegment> {
        if first_id == second_id {
            return Err(Error::Rejected(Reason::MergeSameSegment));
        }
        let x = get_segment(&self.conn, first_id)?;
        let y = get_segment(&self.conn, second_id)?;
        if x.transcript_id != y.transcript_id {
            return Err(Error::Rejected(Reason::MergeDifferentTranscripts));
        }
        let order: Vec<String> = self
            .transcript_segments(&x.transcript_id)?
            .into_iter()
            .map(|s| s.meta.id)
            .collect();
        let (px, py) = (
            order.iter().position(|i| *i == x.meta.id),
            order.iter().position(|i| *i == y.meta.id),
        );
        let (Some(px), Some(py)) = (px, py) else {
            return Err(Error::Corrupt(
                "a segment is missing from its transcript".into(),
            ));
        };
        if px.abs_diff(py) != 1 {
            return Err(Error::Rejected(Reason::MergeNotNeighbours {
                between: px.abs_diff(py) - 1,
            }));
        }
        let (a, b) = if px < py { (x, y) } else { (y, x) };
        if let (Some(sa), Some(sb)) = (a.speaker, b.speaker)
            && sa != sb
        {
            return Err(Error::Rejected(Reason::MergeDifferentSpeakers {
                first: sa.code().to_string(),
                second: sb.code().to_string(),
            }));
        }
        if let (Some(la), Some(lb)) = (&a.translation_language, &b.translation_language)
            && la != lb
        {
            return Err(Error::Rejected(Reason::MergeTranslationLanguages {
                first: la.clone(),
                second: lb.clone(),
            }));
        }
        let mut m = a.clone();
        m.start_ms = a.start_ms.min(b.start_ms);
        m.end_ms = a.end_ms.max(b.end_ms);
        m.text = join_text(&a.text, &b.text);
        let text_shift = chars_len(&a.text) + 1;
        let tr_shift = a.translation.as_deref().map_or(0, |t| chars_len(t) + 1);
        m.translation = match (&a.translation, &b.translation) {
            (Some(ta), Some(tb)) => Some(join_text(ta, tb)),
            (Some(t), None) | (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        m.translation_language = a
            .translation_language
            .clone()
            .or(b.translation_language.clone());
        m.speaker = a.speaker.or(b.speaker);
        m.confidence = match (a.confidence, b.confidence) {
            (Some(ca), Some(cb)) => Some(ca.min(cb)),
            (c, d) => c.or(d),
        };
        m.reviewed = false;
        for r in &b.redactions {
            let shift = if r.field == RedactionField::Text {
                text_shift
            } else {
                tr_shift
            };
            m.redactions.push(Redaction {
                start: r.start + shift,
                end: r.end + shift,
                ..r.clone()
            });
        }
        m.redactions.sort_by_key(|r| (r.field.code(), r.start));
        self.write(|tx, cx| {
            m.meta.version += 1;
            m.meta.updated_at = cx.now.clone();
            update_columns(tx, &m)?;
            record_version(tx, cx, &m, "merge", Some(&b.meta.id))?;
            // The later segment's last version stays in the history, then it goes.
            tx.execute(
                "INSERT INTO transcript_history (id, segment_id, transcript_id, at, actor, device_id, action, related_segment, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'merged_into', ?7, ?8)",
                params![new_id(), b.meta.id, b.transcript_id, cx.now, cx.actor, cx.device_id, m.meta.id, serde_json::to_string(&b).expect("serialisable")],
            )?;
            unindex(tx, &b.meta.id)?;
            tx.execute("DELETE FROM transcript_segments WHERE id = ?1", [&b.meta.id])?;
            tombstone(tx, cx, "transcript_segment", &b.meta.id, &b.interview_id)?;
            Ok(m)
        })
    }

    /// Every version of a segment, oldest first: the model's text, each correction, each
    /// translation, with who and when. Also for a segment merged into another (its versions
    /// up to the merge).
    pub fn segment_history(&self, segment_id: &str) -> Result<Vec<SegmentVersion>> {
        let mut st = self.conn.prepare(
            "SELECT at, actor, device_id, action, related_segment, content FROM transcript_history WHERE segment_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map([segment_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, actor, device_id, action, related_segment, content) = row?;
            let segment = serde_json::from_str(&content).map_err(|_| {
                Error::Corrupt(format!(
                    "a history entry of segment {segment_id} cannot be read"
                ))
            })?;
            out.push(SegmentVersion {
                at,
                actor,
                device_id,
                action,
                related_segment,
                segment,
            });
        }
        if out.is_empty() {
            return Err(Error::NotFound(
                "transcript segment",
                segment_id.to_string(),
            ));
        }
        Ok(out)
    }
}

// ---- exports -------------------------------------------------------------------------------

/// Export formats. All are UTF-8 text written to a writer the caller chose; they are plaintext
/// on purpose (see docs/threat-model.md): the caller decides where they go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TranscriptFormat {
    /// One line per segment: `[HH:MM:SS] Speaker: text`.
    Text,
    /// SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`.
    Srt,
    /// WebVTT: `WEBVTT` header, cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`, speaker as a `<v>` tag.
    Vtt,
    /// A self-contained HTML5 document with one table row per segment (time, speaker,
    /// original, translation): opens in any browser and in word processors, which import it
    /// for reports; text is escaped, and the file has no scripts and loads nothing.
    Bilingual,
}

impl TranscriptFormat {
    pub fn parse(s: &str) -> Option<TranscriptFormat> {
        match s {
            "txt" | "text" => Some(TranscriptFormat::Text),
            "srt" => Some(TranscriptFormat::Srt),
            "vtt" => Some(TranscriptFormat::Vtt),
            "bilingual" | "html" => Some(TranscriptFormat::Bilingual),
            _ => None,
        }
    }
}

/// The segment's text or translation, with its redaction spans replaced by `[label]` when
/// `redact` is set.
pub fn rendered(s: &TranscriptSegment, field: RedactionField, redact: bool) -> Option<String> {
    let text = match field {
        RedactionField::Text => s.text.as_str(),
        RedactionField::Translation => s.translation.as_deref()?,
    };
    if !redact {
        return Some(text.to_string());
    }
    let mut spans: Vec<&Redaction> = s.redactions.iter().filter(|r| r.field == field).collect();
    spans.sort_by_key(|r| r.start);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::new();
    let mut at = 0usize;
    for r in spans {
        let (start, end) = (
            (r.start as usize).clamp(at, chars.len()),
            (r.end as usize).min(chars.len()),
        );
        out.extend(&chars[at..start]);
        if end > start {
            out.push_str(&format!("[{}]", r.label));
        }
        at = at.max(end);
    }
    out.extend(&chars[at.min(chars.len())..]);
    Some(out)
}

fn clock(ms: u64, sep: char) -> String {
    format!(
        "{:02}:{:02}:{:02}{sep}{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    )
}

fn speaker_label(s: Option<Speaker>) -> &'static str {
    match s {
        Some(Speaker::Interviewer) => "Interviewer",
        Some(Speaker::Witness) => "Witness",
        Some(Speaker::Interpreter) => "Interpreter",
        None => "",
    }
}

/// Cue text for SRT and WebVTT: no empty line (it would end the cue).
fn cue_lines(t: &str) -> String {
    t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn html_escape(t: &str) -> String {
    let mut out = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '\n' => out.push_str("<br>"),
            c => out.push(c),
        }
    }
    out
}

impl Vault {
    /// Writes a transcript to `out` in `format`. With `redact`, every marked span is replaced
    /// by `[label]` (e.g. `[name]`). Returns the number of segments written. Nothing is written
    /// anywhere else; the caller picks the writer (a file, stdout, a buffer).
    pub fn export_transcript(
        &self,
        transcript_id: &str,
        format: TranscriptFormat,
        redact: bool,
        mut out: impl std::io::Write,
    ) -> Result<usize> {
        let t = self.transcript(transcript_id)?;
        let segs = self.transcript_segments(transcript_id)?;
        let text =
            |s: &TranscriptSegment| rendered(s, RedactionField::Text, redact).unwrap_or_default();
        let translation = |s: &TranscriptSegment| rendered(s, RedactionField::Translation, redact);
        match format {
            TranscriptFormat::Text => {
                for s in &segs {
                    let who = speaker_label(s.speaker);
                    let body = cue_lines(&text(s)).replace('\n', " ");
                    if who.is_empty() {
                        writeln!(out, "[{}] {body}", &clock(s.start_ms, '.')[..8])?;
                    } else {
                        writeln!(out, "[{}] {who}: {body}", &clock(s.start_ms, '.')[..8])?;
                    }
                }
            }
            TranscriptFormat::Srt => {
                for (n, s) in segs.iter().enumerate() {
                    let who = speaker_label(s.speaker);
                    let prefix = if who.is_empty() {
                        String::new()
                    } else {
                        format!("{who}: ")
                    };
                    write!(
                        out,
                        "{}\r\n{} --> {}\r\n{prefix}{}\r\n\r\n",
                        n + 1,
                        clock(s.start_ms, ','),
                        clock(s.end_ms, ','),
                        cue_lines(&text(s)).replace('\n', "\r\n")
                    )?;
                }
            }
            TranscriptFormat::Vtt => {
                write!(out, "WEBVTT\n\n")?;
                for s in &segs {
                    let who = speaker_label(s.speaker);
                    let voice = if who.is_empty() {
                        String::new()
                    } else {
                        format!("<v {who}>")
                    };
                    write!(
                        out,
                        "{} --> {}\n{voice}{}\n\n",
                        clock(s.start_ms, '.'),
                        clock(s.end_ms, '.'),
                        html_escape(&cue_lines(&text(s))).replace("<br>", "\n")
                    )?;
                }
            }
            TranscriptFormat::Bilingual => {
                let lang = t
                    .language
                    .as_deref()
                    .or_else(|| segs.iter().find_map(|s| s.language.as_deref()))
                    .unwrap_or("und");
                let tr_lang = segs
                    .iter()
                    .find_map(|s| s.translation_language.as_deref())
                    .unwrap_or("und");
                write!(
                    out,
                    "<!DOCTYPE html>\n<html>\n<head>\n<meta charset=\"utf-8\">\n<title>Transcript {}</title>\n\
                     <style>table{{border-collapse:collapse}}td,th{{border:1px solid #888;padding:4px;vertical-align:top}}</style>\n\
                     </head>\n<body>\n<table>\n<thead><tr><th>Time</th><th>Speaker</th><th>Original ({})</th><th>Translation ({})</th></tr></thead>\n<tbody>\n",
                    html_escape(&t.meta.id),
                    html_escape(lang),
                    html_escape(tr_lang)
                )?;
                for s in &segs {
                    writeln!(
                        out,
                        "<tr><td>{} – {}</td><td>{}</td><td lang=\"{}\">{}</td><td lang=\"{}\">{}</td></tr>",
                        clock(s.start_ms, '.'),
                        clock(s.end_ms, '.'),
                        speaker_label(s.speaker),
                        html_escape(s.language.as_deref().unwrap_or(lang)),
                        html_escape(&text(s)),
                        html_escape(s.translation_language.as_deref().unwrap_or(tr_lang)),
                        html_escape(&translation(s).unwrap_or_default()),
                    )?;
                }
                write!(out, "</tbody>\n</table>\n</body>\n</html>\n")?;
            }
        }
        out.flush()?;
        Ok(segs.len())
    }
}
