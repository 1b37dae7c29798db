//! Writing a bundle from a vault: choose the records consent allows, describe them in a signed
//! manifest, and stream everything through tar → zstd → age into the output file. The
//! manifest lists every file's hash and must come first, so there are two passes: pass 1
//! serialises and hashes the records (keeping them zstd-compressed in memory, up to a budget,
//! for pass 2), takes attachments' and recordings' hashes from the vault (a recording's is
//! computed once after it stops), and pass 2 streams everything and checks every byte against
//! pass 1. Memory stays bounded: audio and attachments are streamed, the record cache has a
//! fixed budget beyond which pass 2 serialises again.

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::plan::{Plan, Share};
use super::writers::*;
use super::*;
use crate::audio::{
    ChunkFormat, REC_COLS, decompress_chunk, marker_row, recording_row, wav_header_of,
};
use crate::error::{Error, Result};
use crate::records::{
    CONSENT_COLS, INTERVIEW_SELECT, WITNESS_COLS, answer_row, consent_row, instance_row,
    interview_row, witness_row,
};
use crate::store::{Vault, new_id, now};
use crate::transcript::{SEGMENT_COLS, TRANSCRIPT_COLS, segment_row, transcript_row};

#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    /// age X25519 recipients (`age1…`): the archive's key, optionally a coordinator's.
    pub recipients: Vec<String>,
    /// Everything shareable, not only what changed since the last export.
    pub full: bool,
    /// Also export identifying details of witnesses whose consent allows `publish_identified`.
    pub include_identity: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExportReport {
    pub path: PathBuf,
    pub bundle_id: String,
    pub bundle_hash: String,
    pub sequence: i64,
    pub kind: String,
    pub counts: Counts,
    pub withheld: Withheld,
    pub bytes: u64,
}

/// How far an export has come. An export has two phases: checking hashes the records (and any
/// recording whose hash is not stored yet) for the signed manifest, which lists every hash and
/// must come first in the bundle; writing compresses and encrypts everything. Sizes are of the
/// payload before compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ExportProgress {
    pub phase: ExportPhase,
    pub done_bytes: u64,
    pub total_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ExportPhase {
    /// Hashing records, attachments and audio for the manifest.
    Checking,
    /// Writing the encrypted bundle.
    Writing,
}

impl ExportProgress {
    /// The whole export as a fraction from 0 to 1 (checking counts for the first 30 %).
    pub fn fraction(&self) -> f64 {
        // Nothing known to do yet counts as not started; a writing phase with nothing to
        // write is done.
        let part = match (self.total_bytes, self.phase) {
            (0, ExportPhase::Checking) => 0.0,
            (0, ExportPhase::Writing) => 1.0,
            (t, _) => (self.done_bytes as f64 / t as f64).min(1.0),
        };
        match self.phase {
            ExportPhase::Checking => 0.3 * part,
            ExportPhase::Writing => 0.3 + 0.7 * part,
        }
    }
}

/// Reports progress at most every [`Progress::STEP`] bytes and remembers a cancellation, so
/// that whatever error the cancelled write turns into on its way up, the export ends as
/// [`Error::Cancelled`].
pub(super) struct Progress<'a> {
    callback: &'a mut dyn FnMut(ExportProgress) -> ControlFlow<()>,
    state: ExportProgress,
    reported: u64,
    cancelled: bool,
}

impl<'a> Progress<'a> {
    const STEP: u64 = 1 << 20;

    pub(super) fn new(callback: &'a mut dyn FnMut(ExportProgress) -> ControlFlow<()>) -> Self {
        Progress {
            callback,
            state: ExportProgress {
                phase: ExportPhase::Checking,
                done_bytes: 0,
                total_bytes: 0,
            },
            reported: 0,
            cancelled: false,
        }
    }

    pub(super) fn start(&mut self, phase: ExportPhase, total: u64) -> io::Result<()> {
        self.state = ExportProgress {
            phase,
            done_bytes: 0,
            total_bytes: total,
        };
        self.report()
    }

    /// `grow`: bytes whose size was not known when the phase started (records, while hashing).
    pub(super) fn advance(&mut self, n: u64, grow: bool) -> io::Result<()> {
        self.state.done_bytes += n;
        if grow {
            self.state.total_bytes += n;
        }
        if self.state.done_bytes - self.reported >= Self::STEP {
            self.report()
        } else {
            Ok(())
        }
    }

    pub(super) fn report(&mut self) -> io::Result<()> {
        self.reported = self.state.done_bytes;
        if self.cancelled || (self.callback)(self.state).is_break() {
            self.cancelled = true;
            return Err(io::Error::other("export cancelled"));
        }
        Ok(())
    }

    pub(super) fn finish_phase(&mut self) -> io::Result<()> {
        self.state.done_bytes = self.state.total_bytes;
        self.report()
    }

    /// The error to return: a cancellation wins over whatever error it caused.
    pub(super) fn outcome<T>(&self, r: Result<T>) -> Result<T> {
        if self.cancelled {
            Err(Error::Cancelled)
        } else {
            r
        }
    }
}

/// A writer that reports the bytes passing through it.
pub(super) struct Ticking<'p, 'a, W> {
    inner: W,
    progress: &'p mut Progress<'a>,
    grow: bool,
}

impl<W: Write> Write for Ticking<'_, '_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.advance(n as u64, self.grow)?;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// In this order: consent first, because an importer checks every other record of a witness
/// against it; interviews before the records inside them.
const RECORD_FILES: [(RecordKind, &str); 13] = [
    (RecordKind::Consent, "records/consents.jsonl"),
    (RecordKind::Witness, "records/witnesses.jsonl"),
    (
        RecordKind::WitnessIdentity,
        "records/witness_identities.jsonl",
    ),
    (RecordKind::Interview, "records/interviews.jsonl"),
    (RecordKind::GroupInstance, "records/group_instances.jsonl"),
    (RecordKind::Answer, "records/answers.jsonl"),
    (RecordKind::Note, "records/notes.jsonl"),
    (RecordKind::Recording, "records/recordings.jsonl"),
    (RecordKind::AudioMarker, "records/audio_markers.jsonl"),
    (RecordKind::Transcript, "records/transcripts.jsonl"),
    (
        RecordKind::TranscriptSegment,
        "records/transcript_segments.jsonl",
    ),
    (RecordKind::Attachment, "records/attachments.jsonl"),
    (RecordKind::Tombstone, "records/tombstones.jsonl"),
];

impl Vault {
    /// Writes a bundle to `out` (which must not exist) and records it as this device's next
    /// bundle. The file appears only when complete: it is written beside `out` and renamed.
    pub fn export_bundle(&mut self, opts: &ExportOptions, out: &Path) -> Result<ExportReport> {
        self.export_bundle_with_progress(opts, out, &mut |_| ControlFlow::Continue(()))
    }

    /// [`Vault::export_bundle`], reporting progress to `progress` about every megabyte. When
    /// `progress` returns `Break`, the export stops with [`Error::Cancelled`]: no file is left
    /// behind (not even the partial one) and no bundle is recorded, so the next export covers
    /// the same changes.
    pub fn export_bundle_with_progress(
        &mut self,
        opts: &ExportOptions,
        out: &Path,
        progress: &mut dyn FnMut(ExportProgress) -> ControlFlow<()>,
    ) -> Result<ExportReport> {
        let mut progress = Progress::new(progress);
        let r = self.export_inner(opts, out, &mut progress);
        progress.outcome(r)
    }

    fn export_inner(
        &mut self,
        opts: &ExportOptions,
        out: &Path,
        progress: &mut Progress<'_>,
    ) -> Result<ExportReport> {
        let recipients = parse_recipients(&opts.recipients)?;
        if out.exists() {
            return Err(Error::AlreadyExists(out.to_path_buf()));
        }
        let plan = self.plan_export(opts)?;
        let conn = &self.conn;
        let (last_seq, last_hash): (i64, Option<String>) = conn
            .query_row(
                "SELECT sequence, bundle_hash FROM bundle_exports ORDER BY sequence DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, Some(r.get(1)?))),
            )
            .optional()?
            .unwrap_or((0, None));
        let head_hash: String = conn
            .query_row(
                "SELECT hash FROM audit_log WHERE seq = ?1",
                [plan.to],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or_else(|| hex::encode([0u8; 32]));

        // Pass 1: count, size and hash every payload file. Attachments and recordings are not
        // read here (their sizes and hashes are stored; pass 2 checks them), except a recording
        // whose WAV hash is not cached yet.
        let attachments = attachment_list(conn, &plan)?;
        let recordings = recording_list(conn, &plan)?;
        progress.start(
            ExportPhase::Checking,
            recordings
                .iter()
                .filter(|r| r.2.is_none())
                .map(|r| r.1)
                .sum(),
        )?;
        let mut cache = RecordCache::new(RecordCache::BUDGET);
        let mut counts = Counts::default();
        let mut withheld = Withheld::default();
        let mut withheld_witnesses = HashSet::new();
        let mut files = Vec::new();
        let codebooks = used_codebooks(conn, &plan)?;
        for (id, version, sha, source) in &codebooks {
            files.push(FileEntry {
                path: format!("codebooks/{id}@{version}.toml"),
                size: source.len() as u64,
                sha256: sha.clone(),
            });
        }
        for (kind, path) in RECORD_FILES {
            let mut w = cache.writer(HashingWriter::new(Ticking {
                inner: io::sink(),
                progress: &mut *progress,
                grow: true,
            }));
            let mut n = 0u64;
            write_records(conn, &plan, opts, kind, &mut w, &mut |k, witness| match k {
                Some(k) => {
                    counts.add(k);
                    n += 1;
                }
                None => {
                    withheld.records += 1;
                    if withheld_witnesses.insert(witness.to_string()) {
                        match plan.share.get(witness) {
                            Some(Share::Withdrawn) => withheld.reasons.consent_withdrawn += 1,
                            Some(Share::NotShared) => withheld.reasons.no_share_consent += 1,
                            _ => withheld.reasons.no_consent_recorded += 1,
                        }
                    }
                }
            })?;
            let (w, kept) = w.finish()?;
            let (_, size, sha256) = w.finish();
            if n > 0 {
                cache.keep(path, kept);
                files.push(FileEntry {
                    path: path.into(),
                    size,
                    sha256,
                });
            }
        }
        withheld.witnesses = withheld_witnesses.len() as u64;
        for (id, _, size, sha) in &attachments {
            files.push(FileEntry {
                path: format!("attachments/{id}"),
                size: *size,
                sha256: sha.clone(),
            });
        }
        for (id, size, cached) in &recordings {
            let sha256 = match cached {
                Some(sha) => sha.clone(),
                None => {
                    let (written, sha) = self.wav_sha256(
                        id,
                        Ticking {
                            inner: io::sink(),
                            progress: &mut *progress,
                            grow: false,
                        },
                    )?;
                    debug_assert_eq!(written, *size);
                    sha
                }
            };
            files.push(FileEntry {
                path: audio_path(id),
                size: *size,
                sha256,
            });
        }
        let mut w = cache.writer(HashingWriter::new(io::sink()));
        counts.audit_entries = write_audit(conn, &plan, opts, &mut w)?;
        let (w, kept) = w.finish()?;
        let (_, size, sha256) = w.finish();
        if counts.audit_entries > 0 {
            cache.keep(AUDIT_FILE, kept);
            files.push(FileEntry {
                path: AUDIT_FILE.into(),
                size,
                sha256,
            });
        }

        let manifest = Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            bundle_id: new_id(),
            kind: if plan.full { "full" } else { "incremental" }.into(),
            device_id: self.device_id.clone(),
            device_public_key: self.device_public_key()?,
            sequence: last_seq + 1,
            previous_bundle_hash: last_hash,
            created_at: now(),
            audit_from_seq: plan.from,
            audit_to_seq: plan.to,
            audit_head_hash: head_hash,
            codebooks: codebooks
                .iter()
                .map(|(id, v, sha, _)| CodebookRef {
                    id: id.clone(),
                    version: v.clone(),
                    sha256: sha.clone(),
                })
                .collect(),
            counts: counts.clone(),
            withheld: withheld.clone(),
            files,
            device_recipient: Some(self.device_recipient()?),
            target_device: None,
        };
        let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialisable");
        let signature = sign_manifest(&self.device_signing_key()?, &manifest_bytes);

        // Pass 2: stream everything into the encrypted file, then check it matched pass 1.
        progress.finish_phase()?;
        let planned: u64 = manifest.files.iter().map(|f| f.size).sum::<u64>()
            + manifest_bytes.len() as u64
            + signature.len() as u64;
        progress.start(ExportPhase::Writing, planned)?;
        let bytes = write_encrypted(out, &recipients, Some(&mut *progress), |tar| {
            tar.entry(
                "manifest.json",
                manifest_bytes.len() as u64,
                &mut &manifest_bytes[..],
            )?;
            tar.entry(
                "manifest.sig",
                signature.len() as u64,
                &mut signature.as_bytes(),
            )?;
            let mut files = manifest.files.iter();
            for (id, version, _, source) in &codebooks {
                let f = files.next().expect("planned");
                tar.checked_entry(f, &format!("codebooks/{id}@{version}.toml"), |w| {
                    Ok(w.write_all(source.as_bytes())?)
                })?;
            }
            for (kind, path) in RECORD_FILES {
                if manifest.files.iter().any(|f| f.path == path) {
                    let f = files.next().expect("planned");
                    tar.checked_entry(f, path, |w| match cache.take(path) {
                        Some(kept) => RecordCache::replay(&kept, w),
                        None => write_records(conn, &plan, opts, kind, w, &mut |_, _| {}),
                    })?;
                }
            }
            for (id, rowid, _, _) in &attachments {
                let f = files.next().expect("planned");
                tar.checked_entry(f, &format!("attachments/{id}"), |w| {
                    let mut blob = conn.blob_open(MAIN_DB, "attachments", "data", *rowid, true)?;
                    io::copy(&mut blob, w)?;
                    Ok(())
                })?;
            }
            for (id, _, _) in &recordings {
                let f = files.next().expect("planned");
                tar.checked_entry(f, &audio_path(id), |w| self.write_bundle_wav(id, w))?;
            }
            if let Some(f) = files.next() {
                tar.checked_entry(f, AUDIT_FILE, |w| match cache.take(AUDIT_FILE) {
                    Some(kept) => RecordCache::replay(&kept, w),
                    None => write_audit(conn, &plan, opts, w).map(drop),
                })?;
            }
            Ok(())
        })?;
        progress.finish_phase()?;

        let hash = manifest_hash(&manifest_bytes);
        let report = ExportReport {
            path: out.to_path_buf(),
            bundle_id: manifest.bundle_id.clone(),
            bundle_hash: hash.clone(),
            sequence: manifest.sequence,
            kind: manifest.kind.clone(),
            counts,
            withheld,
            bytes,
        };
        self.conn.execute(
            "INSERT INTO bundle_exports (sequence, bundle_id, bundle_hash, kind, created_at, audit_from_seq, audit_to_seq, summary)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![manifest.sequence, manifest.bundle_id, hash, manifest.kind, manifest.created_at, plan.from, plan.to, serde_json::to_string(&report).expect("serialisable")],
        )?;
        Ok(report)
    }
}

/// Codebooks used by interviews that contribute records: (id, version, sha256, source).
fn used_codebooks(conn: &Connection, plan: &Plan) -> Result<Vec<(String, String, String, String)>> {
    let mut used: Vec<(String, String)> = plan
        .interviews
        .values()
        .filter(|(w, _, _)| plan.share.get(w) == Some(&Share::Shared))
        .map(|(_, id, v)| (id.clone(), v.clone()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    used.sort();
    let mut out = Vec::new();
    for (id, version) in used {
        if !safe_component(&id) || !safe_component(&version) {
            return Err(Error::invalid(format!(
                "codebook id or version '{id}@{version}' cannot be used as a file name"
            )));
        }
        let source: String = conn.query_row(
            "SELECT source FROM codebooks WHERE id = ?1 AND version = ?2",
            [&id, &version],
            |r| r.get(0),
        )?;
        let sha = hex::encode(Sha256::digest(source.as_bytes()));
        out.push((id, version, sha, source));
    }
    // Only what this bundle needs: skip codebooks when no interview record travels.
    if !plan.full && plan.changed.is_empty() && plan.all_of.is_empty() {
        out.clear();
    }
    Ok(out)
}

/// Writes the JSON lines of one record type, calling `seen(Some(kind), witness)` for each record
/// written and `seen(None, witness)` for each record withheld.
fn write_records(
    conn: &Connection,
    plan: &Plan,
    opts: &ExportOptions,
    kind: RecordKind,
    w: &mut dyn Write,
    seen: &mut dyn FnMut(Option<RecordKind>, &str),
) -> Result<()> {
    let witness_of = |interview: &str| {
        plan.interviews
            .get(interview)
            .map(|(w, _, _)| w.as_str())
            .unwrap_or("")
    };
    let emit = |id: &str,
                witness: &str,
                value: &dyn erased::Ser,
                w: &mut dyn Write,
                seen: &mut dyn FnMut(Option<RecordKind>, &str)|
     -> Result<()> {
        if plan.wanted(id, witness) {
            value.write_line(w)?;
            seen(Some(kind), witness);
        } else if plan.considered(id, witness) && plan.share.get(witness) != Some(&Share::Shared) {
            seen(None, witness);
        }
        Ok(())
    };
    match kind {
        RecordKind::Witness => {
            let mut st =
                conn.prepare(&format!("SELECT {WITNESS_COLS} FROM witnesses ORDER BY id"))?;
            for r in st.query_map([], witness_row)? {
                let r = r?;
                emit(&r.meta.id.clone(), &r.meta.id, &r, w, seen)?;
            }
        }
        RecordKind::WitnessIdentity => {
            if !opts.include_identity {
                return Ok(());
            }
            let mut st = conn.prepare(
                "SELECT witness_id, device_id, created_at, updated_at, version, real_name, contact, notes FROM witness_identities ORDER BY witness_id",
            )?;
            let rows = st.query_map([], |r| {
                Ok(json!({"id": r.get::<_, String>(0)?, "witness_id": r.get::<_, String>(0)?, "device_id": r.get::<_, String>(1)?,
                    "created_at": r.get::<_, String>(2)?, "updated_at": r.get::<_, String>(3)?, "version": r.get::<_, i64>(4)?,
                    "real_name": r.get::<_, Option<String>>(5)?, "contact": r.get::<_, Option<String>>(6)?, "notes": r.get::<_, Option<String>>(7)?}))
            })?;
            for r in rows {
                let r = r?;
                let wid = r["witness_id"].as_str().unwrap_or_default().to_string();
                // Identity needs both the option and the publish_identified scope.
                if plan.identity_ok.contains(&wid) && plan.wanted(&wid, &wid) {
                    r.write_line(w)?;
                    seen(Some(kind), &wid);
                }
            }
        }
        RecordKind::Consent => {
            let mut st =
                conn.prepare(&format!("SELECT {CONSENT_COLS} FROM consents ORDER BY id"))?;
            for r in st.query_map([], consent_row)? {
                let r = r?;
                // A withdrawal travels on its own so that the archive learns of it.
                let withdrawn = plan.share.get(&r.witness_id) == Some(&Share::Withdrawn)
                    && (plan.full || plan.changed.contains(&r.meta.id));
                if withdrawn {
                    r.write_line(w)?;
                    seen(Some(kind), &r.witness_id);
                } else {
                    emit(&r.meta.id.clone(), &r.witness_id.clone(), &r, w, seen)?;
                }
            }
        }
        RecordKind::Interview => {
            let mut st = conn.prepare(&format!("{INTERVIEW_SELECT} ORDER BY i.id"))?;
            for r in st.query_map([], interview_row)? {
                let r = r?;
                emit(&r.meta.id.clone(), &r.witness_id.clone(), &r, w, seen)?;
            }
        }
        RecordKind::GroupInstance => {
            let mut st = conn.prepare("SELECT id, device_id, created_at, updated_at, version, interview_id, group_id, parent_id, ordinal, deleted FROM group_instances ORDER BY id")?;
            for r in st.query_map([], instance_row)? {
                let r = r?;
                emit(&r.meta.id.clone(), witness_of(&r.interview_id), &r, w, seen)?;
            }
        }
        RecordKind::Answer => {
            let mut st = conn.prepare("SELECT id, device_id, created_at, updated_at, version, interview_id, instance_id, question_id, value FROM answers ORDER BY id")?;
            for r in st.query_map([], answer_row)? {
                let r = r?;
                emit(&r.meta.id.clone(), witness_of(&r.interview_id), &r, w, seen)?;
            }
        }
        RecordKind::Note => {
            let mut st = conn.prepare("SELECT id, device_id, created_at, updated_at, version, interview_id, question_id, instance_id, text FROM notes ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(json!({"id": r.get::<_, String>(0)?, "device_id": r.get::<_, String>(1)?, "created_at": r.get::<_, String>(2)?,
                    "updated_at": r.get::<_, String>(3)?, "version": r.get::<_, i64>(4)?, "interview_id": r.get::<_, String>(5)?,
                    "question_id": r.get::<_, Option<String>>(6)?, "instance_id": r.get::<_, Option<String>>(7)?, "text": r.get::<_, String>(8)?}))
            })?;
            for r in rows {
                let r = r?;
                let (id, iv) = (str_field(&r, "id"), str_field(&r, "interview_id"));
                emit(&id, witness_of(&iv), &r, w, seen)?;
            }
        }
        RecordKind::Recording => {
            let mut st = conn.prepare(&format!(
                "SELECT {REC_COLS} FROM recordings WHERE status = 'stopped' ORDER BY id"
            ))?;
            for r in st.query_map([], recording_row)? {
                let r = r?;
                let mut v = serde_json::to_value(&r).expect("serialisable");
                // Where its audio is in the bundle (the vault's own chunk format stays inside).
                v["audio"] = Value::String(audio_path(&r.meta.id));
                v["format"] = Value::String(BUNDLE_AUDIO_FORMAT.into());
                emit(&r.meta.id, witness_of(&r.interview_id), &v, w, seen)?;
            }
        }
        RecordKind::AudioMarker => {
            let mut st = conn.prepare(&format!(
                "SELECT {} FROM audio_markers ORDER BY id",
                crate::audio::MARKER_COLS
            ))?;
            for m in st.query_map([], marker_row)? {
                let m = m?;
                // Markers wait for their recording to stop, and travel with it.
                let Some(iv) = plan.stopped.get(&m.recording_id) else {
                    continue;
                };
                let witness = witness_of(iv);
                let mut v = serde_json::to_value(&m).expect("serialisable");
                v["interview_id"] = Value::String(iv.clone());
                if plan.wanted(&m.recording_id, witness) && !plan.wanted(&m.meta.id, witness) {
                    v.write_line(w)?;
                    seen(Some(kind), witness);
                } else {
                    emit(&m.meta.id, witness, &v, w, seen)?;
                }
            }
        }
        RecordKind::Transcript => {
            let mut st = conn.prepare(&format!(
                "SELECT {TRANSCRIPT_COLS} FROM transcripts t ORDER BY t.id"
            ))?;
            for t in st.query_map([], transcript_row)? {
                let t = t?;
                emit(&t.meta.id, witness_of(&t.interview_id), &t, w, seen)?;
            }
        }
        RecordKind::TranscriptSegment => {
            let mut st = conn.prepare(&format!(
                "SELECT {SEGMENT_COLS} FROM transcript_segments ORDER BY id"
            ))?;
            for s in st.query_map([], segment_row)? {
                let s = s?;
                emit(&s.meta.id, witness_of(&s.interview_id), &s, w, seen)?;
            }
        }
        RecordKind::Attachment => {
            let mut st = conn.prepare("SELECT id, device_id, created_at, updated_at, version, interview_id, name, media_type, size, sha256 FROM attachments ORDER BY id")?;
            let rows = st.query_map([], |r| {
                Ok(json!({"id": r.get::<_, String>(0)?, "device_id": r.get::<_, String>(1)?, "created_at": r.get::<_, String>(2)?,
                    "updated_at": r.get::<_, String>(3)?, "version": r.get::<_, i64>(4)?, "interview_id": r.get::<_, String>(5)?,
                    "name": r.get::<_, String>(6)?, "media_type": r.get::<_, String>(7)?, "size": r.get::<_, i64>(8)?, "sha256": r.get::<_, String>(9)?}))
            })?;
            for r in rows {
                let r = r?;
                let (id, iv) = (str_field(&r, "id"), str_field(&r, "interview_id"));
                emit(&id, witness_of(&iv), &r, w, seen)?;
            }
        }
        RecordKind::Tombstone => {
            let mut st = conn.prepare("SELECT record_id, record_type, interview_id, device_id, deleted_at FROM tombstones ORDER BY record_id")?;
            let rows = st.query_map([], |r| {
                Ok(json!({"record_id": r.get::<_, String>(0)?, "record_type": r.get::<_, String>(1)?, "interview_id": r.get::<_, String>(2)?,
                    "device_id": r.get::<_, String>(3)?, "deleted_at": r.get::<_, String>(4)?}))
            })?;
            for r in rows {
                let r = r?;
                // Deletions of records that do not travel in bundles stay local.
                if RecordKind::parse(r["record_type"].as_str().unwrap_or_default()).is_none() {
                    continue;
                }
                let (id, iv) = (str_field(&r, "record_id"), str_field(&r, "interview_id"));
                emit(&id, witness_of(&iv), &r, w, seen)?;
            }
        }
    }
    Ok(())
}

fn str_field(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_string()
}

/// Attachments to send: (id, rowid, size, sha256).
fn attachment_list(conn: &Connection, plan: &Plan) -> Result<Vec<(String, i64, u64, String)>> {
    let mut st =
        conn.prepare("SELECT id, rowid, size, sha256, interview_id FROM attachments ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, i64>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, rowid, size, sha, iv) = r?;
        let witness = plan
            .interviews
            .get(&iv)
            .map(|(w, _, _)| w.as_str())
            .unwrap_or("");
        if plan.wanted(&id, witness) {
            if !safe_component(&id) {
                return Err(Error::Corrupt(format!(
                    "attachment id {id} is not a plain name"
                )));
            }
            out.push((id, rowid, size as u64, sha));
        }
    }
    Ok(out)
}

impl Vault {
    /// A recording's canonical WAV file into a bundle. Chunks stored as `pcm16-zstd` are
    /// zstd frames of exactly the WAV's data bytes: they go into the bundle as they are, after
    /// the header, instead of being decoded and compressed again (most of an export's CPU
    /// time otherwise). Older `pcm16-delta-zstd` recordings are decoded into plain bytes.
    fn write_bundle_wav(&self, recording_id: &str, w: &mut EntryOut<'_>) -> Result<()> {
        let rec = self.recording(recording_id)?;
        if rec.chunk_format()? != ChunkFormat::Pcm16Zstd {
            return self.export_wav(recording_id, w).map(drop);
        }
        w.write_all(&wav_header_of(&rec)?)?;
        let frame_bytes = rec.channels as usize * 2;
        // Each frame is decompressed once so that the entry's SHA-256 covers the bytes a reader
        // will get; checked against the manifest's, it covers every sample, so the chunk's own
        // PCM hash is not checked here. The length is checked per frame: the header promised it.
        // The check runs on its own thread, beside this one reading the chunks from SQLCipher
        // and the encrypting thread (the three took 8.2 s of CPU for 7.1 s on 10 h of audio
        // when the check ran here; docs/performance.md). Frames are written before they are
        // checked: a failed check fails the export, whose unfinished file is deleted.
        let hasher = std::mem::take(&mut w.0.hasher);
        let (tx, rx) = mpsc::sync_channel::<(Vec<u8>, usize, u64)>(CHECK_QUEUE);
        std::thread::scope(|s| {
            let checker = s.spawn(move || -> Result<(Sha256, u64)> {
                let (mut hasher, mut size, mut plain) = (hasher, 0u64, Vec::new());
                for (frame, len, seq) in rx {
                    decompress_chunk(&frame, len, &mut plain).map_err(|e| match e {
                        Error::Corrupt(m) => {
                            Error::Corrupt(format!("recording {recording_id}, chunk {seq}: {m}"))
                        }
                        e => e,
                    })?;
                    hasher.update(&plain);
                    size += len as u64;
                }
                Ok((hasher, size))
            });
            let sent = (|| -> Result<()> {
                for chunk in self.encoded_chunks(recording_id)? {
                    let chunk = chunk?;
                    let len = chunk.info.samples as usize * frame_bytes;
                    w.frame(&chunk.data, len as u64)?;
                    if tx.send((chunk.data, len, chunk.info.seq)).is_err() {
                        break; // the checker stopped on an error, reported below
                    }
                }
                Ok(())
            })();
            drop(tx);
            let (hasher, size) = checker.join().map_err(|_| {
                Error::Corrupt(format!(
                    "recording {recording_id}: its audio could not be checked"
                ))
            })??;
            sent?;
            w.0.hasher = hasher;
            w.0.size += size;
            Ok(())
        })
    }
}

/// Stored frames waiting for the check (each about a second of audio).
const CHECK_QUEUE: usize = 16;

/// Where a recording's audio sits in a bundle.
pub(crate) fn audio_path(recording_id: &str) -> String {
    format!("audio/{recording_id}.wav")
}

/// Stopped recordings to send: (id, size of their WAV file, its SHA-256 if cached).
fn recording_list(conn: &Connection, plan: &Plan) -> Result<Vec<(String, u64, Option<String>)>> {
    let mut st = conn.prepare("SELECT id, interview_id, samples, channels, wav_sha256 FROM recordings WHERE status = 'stopped' ORDER BY id")?;
    let rows = st.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, Option<String>>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for r in rows {
        let (id, iv, samples, channels, wav_sha256) = r?;
        let witness = plan
            .interviews
            .get(&iv)
            .map(|(w, _, _)| w.as_str())
            .unwrap_or("");
        if plan.wanted(&id, witness) {
            if !safe_component(&id) {
                return Err(Error::Corrupt(format!(
                    "recording id {id} is not a plain name"
                )));
            }
            out.push((id, 44 + samples as u64 * channels as u64 * 2, wav_sha256));
        }
    }
    Ok(out)
}

/// Writes the audit entries of the plan's range, redacting those about records that do not
/// travel; returns how many entries were written.
fn write_audit(
    conn: &Connection,
    plan: &Plan,
    opts: &ExportOptions,
    w: &mut dyn Write,
) -> Result<u64> {
    // Which witness each record belongs to, for the redaction rule.
    let mut owner: HashMap<String, String> = HashMap::new();
    for (iv, (wid, _, _)) in &plan.interviews {
        owner.insert(iv.clone(), wid.clone());
    }
    for w_id in plan.share.keys() {
        owner.insert(w_id.clone(), w_id.clone());
    }
    for sql in [
        "SELECT id, witness_id FROM consents",
        "SELECT g.id, i.witness_id FROM group_instances g JOIN interviews i ON i.id = g.interview_id",
        "SELECT a.id, i.witness_id FROM answers a JOIN interviews i ON i.id = a.interview_id",
        "SELECT n.id, i.witness_id FROM notes n JOIN interviews i ON i.id = n.interview_id",
        "SELECT a.id, i.witness_id FROM attachments a JOIN interviews i ON i.id = a.interview_id",
        "SELECT t.record_id, i.witness_id FROM tombstones t JOIN interviews i ON i.id = t.interview_id",
        "SELECT r.id, i.witness_id FROM recordings r JOIN interviews i ON i.id = r.interview_id",
        "SELECT m.id, i.witness_id FROM audio_markers m JOIN recordings r ON r.id = m.recording_id JOIN interviews i ON i.id = r.interview_id",
        "SELECT t.id, i.witness_id FROM transcripts t JOIN interviews i ON i.id = t.interview_id",
        "SELECT s.id, i.witness_id FROM transcript_segments s JOIN interviews i ON i.id = s.interview_id",
    ] {
        let mut st = conn.prepare(sql)?;
        for r in st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (id, wid) = r?;
            owner.insert(id, wid);
        }
    }
    let mut st = conn.prepare(
        "SELECT seq, at, actor, device_id, record_type, record_id, action, content_hash, prev_hash, hash FROM audit_log WHERE seq BETWEEN ?1 AND ?2 ORDER BY seq",
    )?;
    let mut rows = st.query([plan.from, plan.to])?;
    let mut n = 0;
    while let Some(r) = rows.next()? {
        let record_type: String = r.get(4)?;
        let record_id: String = r.get(5)?;
        let witness = owner.get(&record_id).map(String::as_str).unwrap_or("");
        let visible = plan.share.get(witness) == Some(&Share::Shared)
            && (record_type != "witness_identity"
                || (opts.include_identity && plan.identity_ok.contains(witness)));
        let e = if visible {
            BundleAuditEntry {
                seq: r.get(0)?,
                redacted: false,
                at: Some(r.get(1)?),
                actor: Some(r.get(2)?),
                device_id: Some(r.get(3)?),
                record_type: Some(record_type),
                record_id: Some(record_id),
                action: Some(r.get(6)?),
                content_hash: Some(r.get(7)?),
                prev_hash: r.get(8)?,
                hash: r.get(9)?,
            }
        } else {
            BundleAuditEntry {
                seq: r.get(0)?,
                redacted: true,
                at: None,
                actor: None,
                device_id: None,
                record_type: None,
                record_id: None,
                action: None,
                content_hash: None,
                prev_hash: r.get(8)?,
                hash: r.get(9)?,
            }
        };
        e.write_line(w)?;
        n += 1;
    }
    Ok(n)
}

const AUDIT_FILE: &str = "audit/entries.jsonl";

/// Serialising one record as a JSON line, for any record type.
mod erased {
    use std::io::Write;

    pub trait Ser {
        fn write_line(&self, w: &mut dyn Write) -> crate::error::Result<()>;
    }
    impl<T: serde::Serialize> Ser for T {
        fn write_line(&self, w: &mut dyn Write) -> crate::error::Result<()> {
            serde_json::to_writer(&mut *w, self).map_err(std::io::Error::from)?;
            w.write_all(b"\n")?;
            Ok(())
        }
    }
}
use erased::Ser as _;
