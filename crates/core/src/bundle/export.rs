//! Writing a bundle from a vault: choose the records consent allows, describe them in a signed
//! manifest, and stream everything through tar → zstd → age into the output file. The
//! manifest lists every file's hash and must come first, so there are two passes: pass 1
//! serialises and hashes the records (keeping them zstd-compressed in memory, up to a budget,
//! for pass 2), takes attachments' and recordings' hashes from the vault (a recording's is
//! computed once after it stops), and pass 2 streams everything and checks every byte against
//! pass 1. Memory stays bounded: audio and attachments are streamed, the record cache has a
//! fixed budget beyond which pass 2 serialises again.

use std::collections::{HashMap, HashSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use rusqlite::{Connection, MAIN_DB, OptionalExtension, params};
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zstd::stream::raw::{Encoder as RawEncoder, InBuffer, Operation, OutBuffer};

use super::*;
use crate::audio::{
    ChunkFormat, REC_COLS, decompress_chunk, marker_row, recording_row, wav_header_of,
};
use crate::error::{Error, Result};
use crate::model::ConsentScope;
use crate::reason::Reason;
use crate::records::{
    CONSENT_COLS, INTERVIEW_SELECT, WITNESS_COLS, answer_row, consent_row, instance_row,
    interview_row, witness_row,
};
use crate::transcript::{SEGMENT_COLS, TRANSCRIPT_COLS, segment_row, transcript_row};
use crate::vault::{Vault, new_id, now};

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

    fn new(callback: &'a mut dyn FnMut(ExportProgress) -> ControlFlow<()>) -> Self {
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

    fn start(&mut self, phase: ExportPhase, total: u64) -> io::Result<()> {
        self.state = ExportProgress {
            phase,
            done_bytes: 0,
            total_bytes: total,
        };
        self.report()
    }

    /// `grow`: bytes whose size was not known when the phase started (records, while hashing).
    fn advance(&mut self, n: u64, grow: bool) -> io::Result<()> {
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

    fn report(&mut self) -> io::Result<()> {
        self.reported = self.state.done_bytes;
        if self.cancelled || (self.callback)(self.state).is_break() {
            self.cancelled = true;
            return Err(io::Error::other("export cancelled"));
        }
        Ok(())
    }

    fn finish_phase(&mut self) -> io::Result<()> {
        self.state.done_bytes = self.state.total_bytes;
        self.report()
    }

    /// The error to return: a cancellation wins over whatever error it caused.
    fn outcome<T>(&self, r: Result<T>) -> Result<T> {
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Share {
    /// Consent to share with the archive.
    Shared,
    /// Consent withdrawn.
    Withdrawn,
    /// Consent recorded, but not to share.
    NotShared,
    /// No consent recorded.
    NoConsent,
}

/// What goes into one bundle, decided before anything is written.
struct Plan {
    full: bool,
    from: i64,
    to: i64,
    /// Witness id → sharing status (every witness of the vault).
    share: HashMap<String, Share>,
    /// Witnesses whose identity may be exported.
    identity_ok: HashSet<String>,
    /// Records (by id) named by audit entries in the range.
    changed: HashSet<String>,
    /// Shared witnesses whose consent changed in the range: all their records go.
    all_of: HashSet<String>,
    /// Interview id → (witness id, codebook id, codebook version).
    interviews: HashMap<String, (String, String, String)>,
    /// Recording id → interview id, for stopped recordings only: a recording still being
    /// recorded waits for a later bundle (its stop is audited, so that bundle takes it), and
    /// so do its markers.
    stopped: HashMap<String, String>,
}

impl Plan {
    fn wanted(&self, id: &str, witness: &str) -> bool {
        self.share.get(witness) == Some(&Share::Shared)
            && (self.full || self.changed.contains(id) || self.all_of.contains(witness))
    }
    fn considered(&self, id: &str, witness: &str) -> bool {
        self.full || self.changed.contains(id) || self.all_of.contains(witness)
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

    fn plan_export(&self, opts: &ExportOptions) -> Result<Plan> {
        let conn = &self.conn;
        let last_to: i64 = conn.query_row(
            "SELECT ifnull(max(audit_to_seq), 0) FROM bundle_exports",
            [],
            |r| r.get(0),
        )?;
        let to: i64 = conn.query_row("SELECT ifnull(max(seq), 0) FROM audit_log", [], |r| {
            r.get(0)
        })?;
        let from = if opts.full { 1 } else { last_to + 1 };
        if !opts.full && from > to {
            return Err(Error::NothingToExport(
                "nothing changed since the last bundle; use --full to export everything again"
                    .into(),
            ));
        }
        let mut share = HashMap::new();
        let mut identity_ok = HashSet::new();
        let mut consent_witness = HashMap::new();
        {
            let mut consents = HashMap::new();
            let mut st = conn.prepare(&format!("SELECT {CONSENT_COLS} FROM consents"))?;
            for c in st.query_map([], consent_row)? {
                let c = c?;
                consents.insert(c.meta.id.clone(), c);
            }
            let mut st = conn.prepare(
                "SELECT w.id, c.id FROM witnesses w LEFT JOIN consents c ON c.witness_id = w.id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (w, c) = row?;
                let status = match c.as_ref().and_then(|cid| consents.get(cid)) {
                    None => Share::NoConsent,
                    Some(consent) => {
                        consent_witness.insert(consent.meta.id.clone(), w.clone());
                        if consent.withdrawn_at.is_some() {
                            Share::Withdrawn
                        } else if consent.allows(ConsentScope::ShareArchive) {
                            if opts.include_identity
                                && consent.allows(ConsentScope::PublishIdentified)
                            {
                                identity_ok.insert(w.clone());
                            }
                            Share::Shared
                        } else {
                            Share::NotShared
                        }
                    }
                };
                share.insert(w, status);
            }
        }
        let mut changed = HashSet::new();
        let mut all_of = HashSet::new();
        // A full export takes everything shareable: what changed does not matter.
        if !opts.full {
            // Records a return bundle brought (action 'return') came from the archive, which
            // has them: they are not sent back (a received recording's audio can be gigabytes).
            // Their audit entries still go, the chain is whole.
            let mut st = conn.prepare("SELECT DISTINCT record_type, record_id FROM audit_log WHERE seq BETWEEN ?1 AND ?2 AND action <> 'return'")?;
            let rows = st.query_map([from, to], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (t, id) = row?;
                if t == "consent"
                    && let Some(w) = consent_witness.get(&id)
                    && share.get(w) == Some(&Share::Shared)
                {
                    all_of.insert(w.clone());
                }
                changed.insert(id);
            }
        }
        let mut interviews = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT id, witness_id, codebook_id, codebook_version FROM interviews")?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in rows {
                let (id, v) = row?;
                interviews.insert(id, v);
            }
        }
        let mut stopped = HashMap::new();
        {
            let mut st =
                conn.prepare("SELECT id, interview_id FROM recordings WHERE status = 'stopped'")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, iv) = row?;
                stopped.insert(id, iv);
            }
        }
        Ok(Plan {
            full: opts.full,
            from,
            to,
            share,
            identity_ok,
            changed,
            all_of,
            interviews,
            stopped,
        })
    }
}

/// Streams a bundle into `out` as age(zstd(tar)): `body` writes the tar entries, this adds the
/// end-of-archive marker. The file is written beside `out` as `.NAME.partial`, synced and renamed
/// only when complete, so a crash or a full disk never leaves a half bundle under the real name.
/// Returns the size of the encrypted file.
pub(super) fn write_encrypted(
    out: &Path,
    recipients: &[age::x25519::Recipient],
    progress: Option<&mut Progress<'_>>,
    body: impl FnOnce(&mut TarOut<'_>) -> Result<()>,
) -> Result<u64> {
    if out.exists() {
        return Err(Error::AlreadyExists(out.to_path_buf()));
    }
    let tmp = temp_path(out);
    let written = (|| -> Result<u64> {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let enc =
            age::Encryptor::with_recipients(recipients.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::Invalid(format!("cannot encrypt to these recipients: {e}")))?;
        let age_w = enc.wrap_output(io::BufWriter::new(CountingFile { file, bytes: 0 }))?;
        let mut z = FrameEncoder::new(Encrypting::start(age_w)?, RECORD_LEVEL)?;
        {
            let mut sink = Compressing {
                buf: Vec::with_capacity(COMPRESS_BUF),
                z: &mut z,
                level: RECORD_LEVEL,
                progress,
            };
            let mut tar = TarOut { w: &mut sink };
            body(&mut tar)?;
            tar.finish()?;
            sink.drain()?;
        }
        z.finish()?.finish()
    })();
    let bytes = match written {
        Ok(b) => b,
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
    };
    // Refuse to replace a file that appeared meanwhile.
    if out.exists() {
        let _ = fs::remove_file(&tmp);
        return Err(Error::AlreadyExists(out.to_path_buf()));
    }
    fs::rename(&tmp, out)?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        File::open(dir)?.sync_all()?;
    }
    Ok(bytes)
}

/// Encrypts and writes on its own thread: zstd's output is handed over in blocks (a few
/// MiB in flight at most), so that encryption and file writes run beside reading, hashing and
/// compressing. `finish` returns the encrypted file's size once it is complete and synced.
struct Encrypting {
    tx: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
    buf: Vec<u8>,
    thread: Option<std::thread::JoinHandle<io::Result<u64>>>,
}

impl Encrypting {
    const BLOCK: usize = 1 << 20;

    fn start(
        mut age_w: age::stream::StreamWriter<io::BufWriter<CountingFile>>,
    ) -> io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(4);
        let thread = std::thread::Builder::new()
            .name("bundle-encrypt".into())
            .spawn(move || {
                for block in rx {
                    age_w.write_all(&block)?;
                }
                let counting = age_w.finish()?.into_inner().map_err(|e| e.into_error())?;
                counting.file.sync_all()?;
                Ok(counting.bytes)
            })?;
        Ok(Encrypting {
            tx: Some(tx),
            buf: Vec::with_capacity(Self::BLOCK),
            thread: Some(thread),
        })
    }

    fn send(&mut self) -> io::Result<()> {
        let block = std::mem::replace(&mut self.buf, Vec::with_capacity(Self::BLOCK));
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(block).is_ok());
        if sent {
            return Ok(());
        }
        // The thread stopped on an error: report that error.
        Err(self
            .join()
            .err()
            .unwrap_or_else(|| io::Error::other("the encrypting thread stopped")))
    }

    fn join(&mut self) -> io::Result<u64> {
        self.tx = None;
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("the encrypting thread panicked")),
            None => Err(io::Error::other("the encrypting thread stopped")),
        }
    }

    /// Hands over the rest, waits for the file to be complete and synced; its size.
    fn finish(mut self) -> Result<u64> {
        if !self.buf.is_empty() {
            self.send()?;
        }
        Ok(self.join()?)
    }
}

impl Write for Encrypting {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= Self::BLOCK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        // zstd flushes when the level changes; the file needs no flush before the end.
        Ok(())
    }
}

impl Drop for Encrypting {
    /// On an error path: stop the thread before the caller removes the partial file.
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.join();
        }
    }
}

pub(super) fn parse_recipients(list: &[String]) -> Result<Vec<age::x25519::Recipient>> {
    if list.is_empty() {
        return Err(Error::Invalid(
            "a bundle needs at least one recipient (the archive's age1… key)".into(),
        ));
    }
    list.iter()
        .map(|r| {
            r.trim().parse::<age::x25519::Recipient>().map_err(|_| {
                Error::Rejected(Reason::NotARecipient {
                    recipient: r.trim().to_string(),
                })
            })
        })
        .collect()
}

fn temp_path(out: &Path) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "bundle".into());
    out.with_file_name(format!(".{name}.partial"))
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
            return Err(Error::Invalid(format!(
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

/// Record files serialised in pass 1, kept zstd-compressed in memory for pass 2, so that
/// records are read and serialised once. The budget bounds memory whatever the vault's size:
/// files beyond it are serialised again in pass 2 (as every file was before). Plaintext in
/// memory only, as the records are anyway while they are written.
struct RecordCache {
    left: usize,
    kept: HashMap<&'static str, Vec<u8>>,
}

impl RecordCache {
    /// Compressed bytes kept at most (JSON lines compress about tenfold at level 1).
    const BUDGET: usize = 64 << 20;

    fn new(budget: usize) -> Self {
        RecordCache {
            left: budget,
            kept: HashMap::new(),
        }
    }

    /// A writer that passes everything to `inner` and keeps a compressed copy while it fits.
    fn writer<W: Write>(&self, inner: W) -> CacheWriter<W> {
        let copy = zstd::Encoder::new(Vec::new(), 1).ok();
        // Serialisers write a few bytes at a time: buffer before hashing and compressing.
        CacheWriter(io::BufWriter::with_capacity(
            1 << 16,
            Tee {
                inner,
                copy,
                limit: self.left,
            },
        ))
    }

    fn keep(&mut self, path: &'static str, kept: Option<Vec<u8>>) {
        if let Some(bytes) = kept.filter(|b| b.len() <= self.left) {
            self.left -= bytes.len();
            self.kept.insert(path, bytes);
        }
    }

    fn take(&mut self, path: &str) -> Option<Vec<u8>> {
        self.kept.remove(path)
    }

    fn replay(kept: &[u8], w: &mut dyn Write) -> Result<()> {
        io::copy(&mut zstd::Decoder::with_buffer(kept)?, w)?;
        Ok(())
    }
}

struct CacheWriter<W: Write>(io::BufWriter<Tee<W>>);

/// Passes what the buffer flushes to the real writer and to the compressed copy.
struct Tee<W> {
    inner: W,
    copy: Option<zstd::Encoder<'static, Vec<u8>>>,
    limit: usize,
}

impl<W: Write> Write for Tee<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        if let Some(c) = &mut self.copy
            && (c.write_all(&buf[..n]).is_err() || c.get_ref().len() > self.limit)
        {
            self.copy = None;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> Write for CacheWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<W: Write> CacheWriter<W> {
    /// The real writer, and the compressed copy if it stayed within the budget.
    fn finish(self) -> Result<(W, Option<Vec<u8>>)> {
        let tee = self.0.into_inner().map_err(|e| e.into_error())?;
        let kept = match tee.copy {
            Some(c) => Some(c.finish()?).filter(|b| b.len() <= tee.limit),
            None => None,
        };
        Ok((tee.inner, kept))
    }
}

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

struct CountingFile {
    file: File,
    bytes: u64,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// zstd level for records, codebooks and attachments.
const RECORD_LEVEL: i32 = 3;
/// zstd level for audio: PCM gains about 6 % at level 1 as at level 3, at about 70 % of the
/// time. (Negative levels gain nothing on it.)
const AUDIO_LEVEL: i32 = 1;
/// Bytes gathered before they go to zstd.
const COMPRESS_BUF: usize = 1 << 18;

/// zstd's streaming compressor over `w`, which can end a frame and start the next one in the
/// same context (same parameters, same worker), and put frames compressed elsewhere (stored
/// audio chunks) between them: a zstd stream is any sequence of frames. The `zstd` crate's
/// `Encoder` cannot go on once it has ended a frame.
struct FrameEncoder<W: Write> {
    cx: RawEncoder<'static>,
    out: Vec<u8>,
    w: W,
    /// Whether input went in since the current frame began (ending it otherwise would write an
    /// empty frame).
    open: bool,
}

impl<W: Write> FrameEncoder<W> {
    fn new(w: W, level: i32) -> io::Result<Self> {
        let mut cx = RawEncoder::new(level)?;
        // One compression worker: zstd runs beside this thread (tar, hashing, audio decoding),
        // and age on a third, as `zstd | age` runs as two processes.
        cx.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(1))?;
        Ok(FrameEncoder {
            cx,
            out: Vec::with_capacity(zstd::zstd_safe::CCtx::out_size()),
            w,
            open: false,
        })
    }

    /// Compresses `data` into the current frame.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let mut src = InBuffer::around(data);
        while src.pos < data.len() {
            self.cx
                .run(&mut src, &mut OutBuffer::around(&mut self.out))?;
            self.w.write_all(&self.out)?;
        }
        self.open |= !data.is_empty();
        Ok(())
    }

    /// Runs `step` (flush or end of frame) until zstd has nothing left to write.
    fn drain(
        &mut self,
        step: fn(&mut RawEncoder<'static>, &mut OutBuffer<'_, Vec<u8>>) -> io::Result<usize>,
    ) -> io::Result<()> {
        loop {
            let left = step(&mut self.cx, &mut OutBuffer::around(&mut self.out))?;
            self.w.write_all(&self.out)?;
            if left == 0 {
                return Ok(());
            }
        }
    }

    /// Flushes what the current frame holds so far. Nothing to flush writes nothing, so that
    /// no part of a frame is out while `open` is false (a stored frame may follow).
    fn flush(&mut self) -> io::Result<()> {
        if self.open {
            self.drain(|cx, out| cx.flush(out))
        } else {
            Ok(())
        }
    }

    fn set_level(&mut self, level: i32) -> io::Result<()> {
        self.cx
            .set_parameter(zstd::zstd_safe::CParameter::CompressionLevel(level))
    }

    /// Ends the current frame; the next input starts a new one with the same parameters.
    fn end_frame(&mut self) -> io::Result<()> {
        if self.open {
            self.drain(|cx, out| cx.finish(out, false))?;
            self.open = false;
        }
        Ok(())
    }

    /// Writes `frame`, a complete zstd frame, into the stream as it is.
    fn write_frame(&mut self, frame: &[u8]) -> io::Result<()> {
        self.end_frame()?;
        self.w.write_all(frame)
    }

    fn finish(mut self) -> io::Result<W> {
        self.end_frame()?;
        Ok(self.w)
    }
}

/// The tar stream's way into zstd: buffered (the tar and JSON writers write small pieces),
/// counted for progress, and able to change the compression level between entries. A level
/// change takes effect at zstd's next job, so it flushes the current one; the frame goes on
/// (zstd allows this in its multithreaded mode).
struct Compressing<'z, 'p, 'a, W: Write> {
    buf: Vec<u8>,
    z: &'z mut FrameEncoder<W>,
    level: i32,
    progress: Option<&'p mut Progress<'a>>,
}

impl<W: Write> Compressing<'_, '_, '_, W> {
    const BUF: usize = COMPRESS_BUF;

    fn drain(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.z.write_all(&self.buf)?;
            if let Some(p) = &mut self.progress {
                p.advance(self.buf.len() as u64, false)?;
            }
            self.buf.clear();
        }
        Ok(())
    }
}

impl<W: Write> Write for Compressing<'_, '_, '_, W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len() + data.len() > Self::BUF {
            self.drain()?;
        }
        if data.len() >= Self::BUF {
            self.z.write_all(data)?;
            if let Some(p) = &mut self.progress {
                p.advance(data.len() as u64, false)?;
            }
        } else {
            self.buf.extend_from_slice(data);
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.z.flush()
    }
}

/// What a tar entry is written into: plain bytes (through [`Write`]) are compressed; a stored
/// zstd frame goes in as it is.
trait CompressedOut: Write {
    fn set_level(&mut self, level: i32) -> io::Result<()>;
    /// Writes `frame`, a complete zstd frame holding `plain` bytes of the tar stream, as it is:
    /// the frame being compressed ends before it and a new one starts after it.
    fn frame(&mut self, frame: &[u8], plain: u64) -> io::Result<()>;
}

impl<W: Write> CompressedOut for Compressing<'_, '_, '_, W> {
    fn set_level(&mut self, level: i32) -> io::Result<()> {
        if level != self.level {
            self.flush()?;
            self.z.set_level(level)?;
            self.level = level;
        }
        Ok(())
    }

    fn frame(&mut self, frame: &[u8], plain: u64) -> io::Result<()> {
        self.drain()?;
        self.z.write_frame(frame)?;
        if let Some(p) = &mut self.progress {
            p.advance(plain, false)?;
        }
        Ok(())
    }
}

/// A tar stream written entry by entry, with the data streamed after a header whose size is
/// known in advance (from pass 1).
pub(super) struct TarOut<'a> {
    w: &'a mut dyn CompressedOut,
}

impl TarOut<'_> {
    fn header(&mut self, path: &str, size: u64) -> Result<()> {
        let mut h = tar::Header::new_ustar();
        h.set_path(path)?;
        h.set_size(size);
        h.set_mode(0o600);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mtime(0);
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        Ok(())
    }

    fn pad(&mut self, size: u64) -> Result<()> {
        let rem = (512 - size % 512) % 512;
        self.w.write_all(&[0u8; 512][..rem as usize])?;
        Ok(())
    }

    pub(super) fn entry(&mut self, path: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        self.header(path, size)?;
        let copied = io::copy(data, self.w)?;
        debug_assert_eq!(copied, size);
        self.pad(size)
    }

    /// Writes an entry whose size and hash were planned, and fails if the bytes differ (the
    /// vault changed between the passes, or an attachment or recording no longer matches its
    /// hash).
    pub(super) fn checked_entry(
        &mut self,
        planned: &FileEntry,
        path: &str,
        body: impl FnOnce(&mut EntryOut<'_>) -> Result<()>,
    ) -> Result<()> {
        debug_assert_eq!(planned.path, path);
        self.w.set_level(if path.starts_with("audio/") {
            AUDIO_LEVEL
        } else {
            RECORD_LEVEL
        })?;
        self.header(path, planned.size)?;
        let mut out = EntryOut(HashingWriter::new(&mut *self.w));
        body(&mut out)?;
        let (_, size, sha) = out.0.finish();
        if size != planned.size || sha != planned.sha256 {
            return Err(Error::Corrupt(format!(
                "{path} changed while the bundle was written, or does not match its recorded hash"
            )));
        }
        self.pad(size)
    }

    fn finish(&mut self) -> Result<()> {
        self.w.write_all(&[0u8; 1024])?;
        Ok(())
    }
}

/// A tar entry's body on its way into the bundle, hashed and counted as plain bytes.
pub(super) struct EntryOut<'w>(HashingWriter<&'w mut dyn CompressedOut>);

impl EntryOut<'_> {
    /// Puts `frame`, a complete zstd frame that decompresses to `plain_len` bytes, into the bundle
    /// as it is, and counts them. The caller hashes them (see `write_bundle_wav`).
    fn frame(&mut self, frame: &[u8], plain_len: u64) -> Result<()> {
        self.0.inner.frame(frame, plain_len)?;
        Ok(())
    }
}

impl Write for EntryOut<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full USB stick: the write fails on the encrypting thread, and the export gets that
    /// error (not a hang, not a vague one).
    #[test]
    fn a_full_disk_on_the_encrypting_thread_is_reported() {
        let file = OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .expect("/dev/full");
        let id = age::x25519::Identity::generate();
        let enc = age::Encryptor::with_recipients(std::iter::once(
            &id.to_public() as &dyn age::Recipient
        ))
        .unwrap();
        let age_w = enc
            .wrap_output(io::BufWriter::new(CountingFile { file, bytes: 0 }))
            .unwrap();
        let mut e = Encrypting::start(age_w).unwrap();
        let block = vec![7u8; Encrypting::BLOCK];
        let mut failed = None;
        for _ in 0..64 {
            if let Err(err) = e.write_all(&block) {
                failed = Some(err.to_string());
                break;
            }
        }
        let err = match failed {
            Some(err) => err,
            None => e.finish().unwrap_err().to_string(),
        };
        assert!(err.contains("No space left"), "{err}");
    }
}
