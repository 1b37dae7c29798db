//! Return bundles: from the archive back to one device (docs/bundle-format.md, "Return
//! bundles"). Same container, reader and limits as a device's bundle, but signed by the
//! archive's key, encrypted to the device's own age key, and applied by the vault in one
//! transaction: all of it, or nothing.
//!
//! What the vault does with each record (the rule, also in the spec):
//! - a record it does not have is added;
//! - a record it has and has not changed since its last export is replaced by the archive's;
//! - a record it changed after its last export keeps the local change ("kept_local"): that
//!   change has not reached the archive yet, and will meet the archive's version there as a
//!   conflict for a coordinator. The device never drops its own unsent work.
//!
//! Recordings come with their audio (`audio/<id>.wav`, as in device bundles): a recording the
//! vault does not have is created with the same id and metadata, its audio stored in the
//! vault's own chunks inside the same transaction; one it already has is never replaced.

use std::collections::HashMap;
use std::fs::File;
use std::io::BufReader;
use std::io::{Read, Write};
use std::path::Path;
use std::rc::Rc;

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use super::export::audio_path;
use super::writers::{parse_recipients, write_encrypted};
use super::*;
use crate::audio::{
    MARKER_COLS, Marker, REC_COLS, Recording, RecordingStatus, marker_row, recording_row,
};
use crate::audit;
use crate::codebook::{Codebook, searchable_text, validate_value};
use crate::error::{Error, Result};
use crate::model::*;
use crate::records::{
    CONSENT_COLS, INTERVIEW_SELECT, WITNESS_COLS, answer_row, consent_row, instance_row,
    interview_row, witness_row,
};
use crate::store::{Ctx, Vault, new_id, now};
use crate::transcript::{
    SEGMENT_COLS, Speaker, TRANSCRIPT_COLS, Transcript, TranscriptSegment, search_body,
    segment_row, transcript_row,
};

/// The record types a return bundle may carry, in the order they are written. Identities and
/// attachments never travel back; deletions do not yet (see the spec). Recordings travel with
/// their audio.
pub const RETURN_KINDS: [RecordKind; 10] = [
    RecordKind::Witness,
    RecordKind::Consent,
    RecordKind::Interview,
    RecordKind::GroupInstance,
    RecordKind::Answer,
    RecordKind::Note,
    RecordKind::Recording,
    RecordKind::AudioMarker,
    RecordKind::Transcript,
    RecordKind::TranscriptSegment,
];

/// A recording's audio in a return bundle: its WAV file, as the archive holds it (size and
/// SHA-256 of the file, known before it is written, so the manifest can list it).
#[derive(Debug, Clone)]
pub struct ReturnAudio {
    pub recording_id: String,
    pub size: u64,
    pub sha256: String,
}

/// What the archive puts into one return bundle.
pub struct ReturnBundle<'a> {
    /// The archive's Ed25519 signing key.
    pub signing_key: &'a SigningKey,
    /// The archive's id (in the manifest's `device_id` field).
    pub archive_id: String,
    /// The target device's signing key (hex), as the archive trusts it.
    pub target_device: String,
    /// The target device's age recipient (`age1…`), from its signed bundles.
    pub recipient: String,
    pub sequence: i64,
    pub previous_bundle_hash: Option<String>,
    /// (id, version, source) of each codebook to deliver.
    pub codebooks: Vec<(String, String, String)>,
    /// Records, any order; they are written grouped by type.
    pub records: Vec<(RecordKind, Value)>,
    /// The audio of every recording among `records`, written after the records by the
    /// callback `write_return_bundle` takes.
    pub audio: Vec<ReturnAudio>,
}

#[derive(Debug, Clone)]
pub struct WrittenBundle {
    pub manifest: Manifest,
    pub bundle_hash: String,
    pub bytes: u64,
}

fn records_file(kind: RecordKind) -> String {
    kind.file().to_string()
}

/// Writes a return bundle to `out` (which must not exist), atomically. Records files are built
/// in memory (a few MB for a device's interviews); each recording's WAV file is streamed by
/// `audio(recording_id, writer)`, never held whole, and must match the size and hash given in
/// `b.audio` (the entry is checked as it is written; a mismatch fails the whole bundle).
pub fn write_return_bundle(
    b: &ReturnBundle<'_>,
    out: &Path,
    audio: &mut dyn FnMut(&str, &mut dyn Write) -> Result<()>,
) -> Result<WrittenBundle> {
    let recipients = parse_recipients(std::slice::from_ref(&b.recipient))?;
    let mut files = Vec::new();
    let mut payload: Vec<(String, Vec<u8>)> = Vec::new();
    let mut codebooks = Vec::new();
    for (id, version, source) in &b.codebooks {
        if !safe_component(id) || !safe_component(version) {
            return Err(Error::invalid(format!(
                "codebook id or version '{id}@{version}' cannot be used as a file name"
            )));
        }
        let sha = hex::encode(Sha256::digest(source.as_bytes()));
        codebooks.push(CodebookRef {
            id: id.clone(),
            version: version.clone(),
            sha256: sha,
        });
        payload.push((
            format!("codebooks/{id}@{version}.toml"),
            source.as_bytes().to_vec(),
        ));
    }
    let mut counts = Counts::default();
    for kind in RETURN_KINDS {
        let mut buf = Vec::new();
        for (k, v) in &b.records {
            if *k == kind {
                serde_json::to_writer(&mut buf, v).map_err(std::io::Error::from)?;
                buf.push(b'\n');
                counts.add(kind);
            }
        }
        if !buf.is_empty() {
            payload.push((records_file(kind), buf));
        }
    }
    if let Some((k, _)) = b.records.iter().find(|(k, _)| !RETURN_KINDS.contains(k)) {
        return Err(Error::invalid(format!(
            "a return bundle cannot carry {} records",
            k.code()
        )));
    }
    for (path, data) in &payload {
        files.push(FileEntry {
            path: path.clone(),
            size: data.len() as u64,
            sha256: hex::encode(Sha256::digest(data)),
        });
    }
    // Every recording with its audio, and no audio without its recording: the reader refuses
    // anything else, so refuse to write it.
    let recordings: std::collections::HashSet<&str> = b
        .records
        .iter()
        .filter(|(k, _)| *k == RecordKind::Recording)
        .map(|(_, v)| v["id"].as_str().unwrap_or_default())
        .collect();
    let with_audio: std::collections::HashSet<&str> =
        b.audio.iter().map(|a| a.recording_id.as_str()).collect();
    if recordings != with_audio || with_audio.len() != b.audio.len() {
        return Err(Error::invalid(
            "a return bundle carries each recording with its audio, once".into(),
        ));
    }
    for a in &b.audio {
        if !safe_component(&a.recording_id) || a.size > MAX_AUDIO_BYTES {
            return Err(Error::invalid(format!(
                "recording {} cannot travel in a bundle (id or size)",
                a.recording_id
            )));
        }
        files.push(FileEntry {
            path: audio_path(&a.recording_id),
            size: a.size,
            sha256: a.sha256.clone(),
        });
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        bundle_id: new_id(),
        kind: KIND_RETURN.into(),
        device_id: b.archive_id.clone(),
        device_public_key: hex::encode(b.signing_key.verifying_key().to_bytes()),
        sequence: b.sequence,
        previous_bundle_hash: b.previous_bundle_hash.clone(),
        created_at: now(),
        // No audit entries: the empty range 1..=0.
        audit_from_seq: 1,
        audit_to_seq: 0,
        audit_head_hash: hex::encode([0u8; 32]),
        codebooks,
        counts,
        withheld: Withheld::default(),
        files,
        device_recipient: None,
        target_device: Some(b.target_device.clone()),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("serialisable");
    let signature = sign_manifest(b.signing_key, &manifest_bytes);
    let bytes = write_encrypted(out, &recipients, None, |tar| {
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
        for ((path, data), f) in payload.iter().zip(&manifest.files) {
            tar.checked_entry(f, path, |w| Ok(w.write_all(data)?))?;
        }
        for (a, f) in b.audio.iter().zip(&manifest.files[payload.len()..]) {
            tar.checked_entry(f, &f.path, |w| audio(&a.recording_id, w))?;
        }
        Ok(())
    })?;
    Ok(WrittenBundle {
        bundle_hash: manifest_hash(&manifest_bytes),
        manifest,
        bytes,
    })
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ReturnImportReport {
    /// "applied" or "already_applied".
    pub outcome: String,
    pub message: String,
    pub bundle_hash: String,
    pub sequence: i64,
    pub codebooks_added: u64,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    /// Records changed here since the last export: the local change is kept.
    pub kept_local: u64,
    /// Transcripts, segments and markers of recordings this device does not hold (nor receives
    /// in this bundle): left out here.
    #[serde(default)]
    pub skipped_without_recording: u64,
    /// Recordings created here from the bundle, audio included.
    #[serde(default)]
    pub recordings_added: u64,
    /// Recordings the bundle carried that this vault already has: never replaced (audio does
    /// not change once a recording stops); their audio in the bundle is verified and skipped.
    #[serde(default)]
    pub recordings_already_here: u64,
    /// Recordings not stored because this vault's consent for the witness does not allow
    /// audio recording (scope `record_audio`), or was withdrawn here.
    #[serde(default)]
    pub recordings_refused_consent: u64,
    pub warnings: Vec<String>,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadBundle(m.into())
}

impl Vault {
    /// This device's age identity, which return bundles are encrypted to. Made on first use
    /// (vaults created before return bundles existed have none yet) and kept in the vault.
    fn device_age_identity(&self) -> Result<age::x25519::Identity> {
        let stored: Option<Zeroizing<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT value FROM secrets WHERE key = 'device_age_identity'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .map(Zeroizing::new);
        let text = match stored {
            Some(b) => b,
            None => {
                use age::secrecy::ExposeSecret;
                let id = age::x25519::Identity::generate();
                let secret = Zeroizing::new(id.to_string().expose_secret().as_bytes().to_vec());
                self.conn.execute(
                    "INSERT INTO secrets (key, value) VALUES ('device_age_identity', ?1)",
                    params![&secret[..]],
                )?;
                secret
            }
        };
        std::str::from_utf8(&text)
            .ok()
            .and_then(|s| s.parse::<age::x25519::Identity>().ok())
            .ok_or_else(|| Error::Corrupt("the device's encryption key is unreadable".into()))
    }

    /// The `age1…` recipient for return bundles to this device. Every bundle the device makes
    /// carries it in its signed manifest.
    pub fn device_recipient(&self) -> Result<String> {
        Ok(self.device_age_identity()?.to_public().to_string())
    }

    /// The archive recipients (`age1…`) saved for exports.
    pub fn archive_recipients(&self) -> Result<Vec<String>> {
        let saved: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'archive_recipients'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(saved
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or_default())
    }

    /// Saves the archive recipients once, so that exports need not repeat them (the CLI's
    /// `recipient set` and the app's settings). An empty list forgets them.
    pub fn set_archive_recipients(&mut self, recipients: &[String]) -> Result<()> {
        if recipients.is_empty() {
            self.conn
                .execute("DELETE FROM meta WHERE key = 'archive_recipients'", [])?;
            return Ok(());
        }
        parse_recipients(recipients)?;
        let list: Vec<String> = recipients.iter().map(|r| r.trim().to_string()).collect();
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('archive_recipients', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [serde_json::to_string(&list).expect("serialisable")],
        )?;
        Ok(())
    }

    /// The archive signing key (hex) whose return bundles this vault accepts, if set.
    pub fn trusted_archive(&self) -> Result<Option<String>> {
        Ok(self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'archive_signing_key'",
                [],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Sets the archive signing key (`testimony archive id` prints it). Replacing a different
    /// key needs `replace`, so that a mistyped command cannot silently switch archives.
    pub fn trust_archive(&mut self, public_key: &str, replace: bool) -> Result<()> {
        let key = public_key.trim().to_ascii_lowercase();
        let bytes: [u8; 32] = hex::decode(&key)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                Error::invalid("an archive signing key is 64 hexadecimal characters".into())
            })?;
        ed25519_dalek::VerifyingKey::from_bytes(&bytes)
            .map_err(|_| Error::invalid("not a valid Ed25519 public key".into()))?;
        match self.trusted_archive()? {
            Some(k) if k == key => return Ok(()),
            Some(_) if !replace => {
                return Err(Error::not_allowed("this vault already trusts a different archive key; pass --replace to change it".into()));
            }
            _ => {}
        }
        self.conn.execute("INSERT INTO meta (key, value) VALUES ('archive_signing_key', ?1) ON CONFLICT (key) DO UPDATE SET value = excluded.value", [&key])?;
        Ok(())
    }

    /// Verifies and applies a return bundle from the trusted archive, in one transaction.
    /// Applying the same bundle again changes nothing and says so.
    pub fn import_return_bundle(&mut self, path: &Path) -> Result<ReturnImportReport> {
        let archive_key = self.trusted_archive()?.ok_or_else(|| {
            Error::not_allowed("this vault does not trust an archive key yet; run `testimony trust-archive KEY` with the key `testimony archive id` prints".into())
        })?;
        let identity = self.device_age_identity()?;
        let own_key = self.device_public_key()?;
        let file = File::open(path)?;
        let last_export: i64 = self.conn.query_row(
            "SELECT ifnull(max(audit_to_seq), 0) FROM bundle_exports",
            [],
            |r| r.get(0),
        )?;
        let device_id = self.device_id.clone();
        let outcome = self.write(|tx, cx| {
            // Entries for applied records name the archive as the actor.
            let cx = Ctx { device_id: device_id.clone(), actor: "archive".into(), now: cx.now.clone() };
            let mut sink = ReturnSink {
                tx,
                cx: &cx,
                archive_key: &archive_key,
                own_key: &own_key,
                last_export,
                codebooks: HashMap::new(),
                pending_audio: HashMap::new(),
                report: ReturnImportReport::default(),
            };
            let read = read_bundle(BufReader::new(file), std::slice::from_ref(&identity), &mut sink)?;
            let mut report = sink.report;
            if read == ReadOutcome::Complete {
                report.outcome = "applied".into();
                report.message = format!(
                    "applied return bundle {}: {} codebooks, {} added, {} updated, {} unchanged, {} kept because they changed here since the last export",
                    report.sequence, report.codebooks_added, report.added, report.updated, report.unchanged, report.kept_local
                );
                if report.recordings_added + report.recordings_already_here + report.recordings_refused_consent > 0 {
                    report.message.push_str(&format!(
                        "; recordings: {} added with their audio, {} already here (not replaced), {} refused (no consent to record audio here)",
                        report.recordings_added, report.recordings_already_here, report.recordings_refused_consent
                    ));
                }
                tx.execute(
                    "INSERT INTO return_imports (sequence, bundle_hash, archive_key, imported_at, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![report.sequence, report.bundle_hash, archive_key, now(), serde_json::to_string(&report).expect("serialisable")],
                )?;
            }
            Ok(report)
        })?;
        Ok(outcome)
    }
}

struct ReturnSink<'a> {
    tx: &'a Connection,
    cx: &'a Ctx,
    archive_key: &'a str,
    own_key: &'a str,
    /// The last audit entry exported: later entries are changes the archive has not seen.
    last_export: i64,
    codebooks: HashMap<(String, String), Rc<Codebook>>,
    /// Recordings created from this bundle whose audio has not arrived yet (it follows the
    /// records; the reader refuses a bundle where it does not).
    pending_audio: HashMap<String, Recording>,
    report: ReturnImportReport,
}

impl ReturnSink<'_> {
    fn codebook_for(&mut self, interview_id: &str) -> Result<Rc<Codebook>> {
        let (id, version): (String, String) = self
            .tx
            .query_row(
                "SELECT codebook_id, codebook_version FROM interviews WHERE id = ?1",
                [interview_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| {
                bad("the bundle carries a record of an interview this vault does not have")
            })?;
        if let Some(cb) = self.codebooks.get(&(id.clone(), version.clone())) {
            return Ok(cb.clone());
        }
        let source: String = self.tx.query_row(
            "SELECT source FROM codebooks WHERE id = ?1 AND version = ?2",
            [&id, &version],
            |r| r.get(0),
        )?;
        let cb = Rc::new(
            Codebook::parse(&source, &format!("{id}@{version}"))
                .map_err(|_| Error::Corrupt("a stored codebook no longer parses".into()))?,
        );
        self.codebooks.insert((id, version), cb.clone());
        Ok(cb)
    }

    /// Whether this vault changed the record after its last export (not counting records that
    /// earlier return bundles wrote).
    fn changed_here(&self, id: &str) -> Result<bool> {
        Ok(self
            .tx
            .query_row("SELECT 1 FROM audit_log WHERE record_id = ?1 AND seq > ?2 AND action <> 'return' LIMIT 1", params![id, self.last_export], |_| Ok(()))
            .optional()?
            .is_some())
    }

    /// Applies one typed record: `current` is the vault's version, `write` stores the incoming.
    fn apply<T: PartialEq + Serialize>(
        &mut self,
        kind: RecordKind,
        id: &str,
        incoming: &T,
        current: Option<T>,
        write: impl FnOnce(&Connection) -> Result<()>,
    ) -> Result<()> {
        match current {
            Some(cur) if cur == *incoming => {
                self.report.unchanged += 1;
                return Ok(());
            }
            Some(_) if self.changed_here(id)? => {
                self.report.kept_local += 1;
                return Ok(());
            }
            Some(_) => self.report.updated += 1,
            None => self.report.added += 1,
        }
        write(self.tx)?;
        audit::append(self.tx, self.cx, kind.code(), id, "return", incoming)
    }
}

fn parse<T: serde::de::DeserializeOwned>(kind: RecordKind, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|_| bad(format!("a {} record is malformed", kind.code())))
}

/// Replaces a record's search entry (none when `text` is None), as local saves do.
fn index_text(
    tx: &Connection,
    id: &str,
    interview_id: &str,
    kind: &str,
    text: Option<&str>,
) -> Result<()> {
    crate::records::unindex(tx, id)?;
    match text {
        Some(t) => crate::records::index(tx, id, interview_id, kind, t),
        None => Ok(()),
    }
}

impl BundleSink for ReturnSink<'_> {
    fn manifest(&mut self, m: &Manifest, bundle_hash: &str) -> Result<bool> {
        if m.kind != KIND_RETURN {
            return Err(bad(
                "this is a device's bundle for the archive, not a return bundle; import it with `testimony archive import`",
            ));
        }
        if m.device_public_key != self.archive_key {
            return Err(bad(
                "the return bundle is signed by an archive key this vault does not trust",
            ));
        }
        if m.target_device.as_deref() != Some(self.own_key) {
            return Err(bad("the return bundle was made for another device"));
        }
        self.report.bundle_hash = bundle_hash.to_string();
        self.report.sequence = m.sequence;
        let seen: Option<i64> = self
            .tx
            .query_row(
                "SELECT sequence FROM return_imports WHERE bundle_hash = ?1",
                [bundle_hash],
                |r| r.get(0),
            )
            .optional()?;
        if seen.is_some() {
            self.report.outcome = "already_applied".into();
            self.report.message = format!(
                "return bundle {} was already applied; nothing changed",
                m.sequence
            );
            return Ok(false);
        }
        let same_seq: Option<String> = self
            .tx
            .query_row(
                "SELECT bundle_hash FROM return_imports WHERE sequence = ?1",
                [m.sequence],
                |r| r.get(0),
            )
            .optional()?;
        if same_seq.is_some() {
            return Err(bad(format!(
                "a different return bundle numbered {} was already applied here; not applied",
                m.sequence
            )));
        }
        let last: i64 = self.tx.query_row(
            "SELECT ifnull(max(sequence), 0) FROM return_imports",
            [],
            |r| r.get(0),
        )?;
        if m.sequence != last + 1 {
            self.report.warnings.push(format!(
                "return bundle {} applied after {}: the ones between have not been applied here",
                m.sequence, last
            ));
        }
        // Consents come before the witnesses they name (bundle order); check at commit.
        self.tx.execute_batch("PRAGMA defer_foreign_keys = ON")?;
        Ok(true)
    }

    fn codebook(&mut self, id: &str, version: &str, source: &str) -> Result<()> {
        let cb = Codebook::parse(source, &format!("{id}@{version}"))
            .map_err(|e| bad(format!("codebook {id}@{version} has errors: {e}")))?;
        if cb.id != id || cb.version != version {
            return Err(bad(format!(
                "codebook file {id}@{version} declares a different id or version"
            )));
        }
        let existing: Option<String> = self
            .tx
            .query_row(
                "SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2",
                params![id, version],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(h) if h == cb.sha256 => Ok(()),
            Some(_) => Err(bad(format!(
                "codebook {id}@{version} differs from the one this vault has under that version"
            ))),
            None => {
                self.tx.execute(
                    "INSERT INTO codebooks (id, version, sha256, source, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![cb.id, cb.version, cb.sha256, cb.source, self.cx.now],
                )?;
                self.report.codebooks_added += 1;
                Ok(())
            }
        }
    }

    fn record(&mut self, kind: RecordKind, v: Value) -> Result<()> {
        let tx = self.tx;
        match kind {
            RecordKind::Witness => {
                let w: Witness = parse(kind, v)?;
                let taken: Option<String> = tx
                    .query_row(
                        "SELECT id FROM witnesses WHERE code = ?1 AND id <> ?2",
                        params![w.code, w.meta.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if taken.is_some() {
                    return Err(Error::not_allowed(format!(
                        "witness code {} is already used by a different witness in this vault; not applied",
                        w.code
                    )));
                }
                let cur = tx
                    .query_row(
                        &format!("SELECT {WITNESS_COLS} FROM witnesses WHERE id = ?1"),
                        [&w.meta.id],
                        witness_row,
                    )
                    .optional()?;
                let id = w.meta.id.clone();
                self.apply(kind, &id, &w, cur, |tx| {
                    let (m, p) = (&w.meta, &w.profile);
                    tx.execute(
                        &format!("INSERT INTO witnesses ({WITNESS_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, created_at = excluded.created_at, updated_at = excluded.updated_at,
                           version = excluded.version, code = excluded.code, gender = excluded.gender, birth_year = excluded.birth_year,
                           home_province = excluded.home_province, songbun = excluded.songbun, year_left = excluded.year_left, repatriations = excluded.repatriations"),
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, w.code, p.gender, p.birth_year, p.home_province, p.songbun, p.year_left, p.repatriations],
                    )?;
                    Ok(())
                })
            }
            RecordKind::Consent => {
                let c: Consent = parse(kind, v)?;
                let cur = tx
                    .query_row(
                        &format!("SELECT {CONSENT_COLS} FROM consents WHERE id = ?1"),
                        [&c.meta.id],
                        consent_row,
                    )
                    .optional()?;
                let other: Option<String> = tx
                    .query_row(
                        "SELECT id FROM consents WHERE witness_id = ?1 AND id <> ?2",
                        params![c.witness_id, c.meta.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if other.is_some() {
                    return Err(bad(
                        "the bundle carries a second consent record for a witness",
                    ));
                }
                let id = c.meta.id.clone();
                self.apply(kind, &id, &c, cur, |tx| {
                    let (m, s) = (&c.meta, &c.scopes);
                    let method = match c.method {
                        ConsentMethod::Oral => "oral",
                        ConsentMethod::Written => "written",
                    };
                    tx.execute(
                        &format!("INSERT INTO consents ({CONSENT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                           record_audio = excluded.record_audio, transcribe = excluded.transcribe, share_archive = excluded.share_archive,
                           quote_anonymously = excluded.quote_anonymously, publish_identified = excluded.publish_identified,
                           taken_by = excluded.taken_by, taken_at = excluded.taken_at, method = excluded.method, withdrawn_at = excluded.withdrawn_at"),
                        params![
                            m.id, m.device_id, m.created_at, m.updated_at, m.version, c.witness_id, s.record_audio, s.transcribe, s.share_archive,
                            s.quote_anonymously, s.publish_identified, c.taken_by, c.taken_at, method, c.withdrawn_at
                        ],
                    )?;
                    Ok(())
                })
            }
            RecordKind::Interview => {
                let i: Interview = parse(kind, v)?;
                let known: Option<String> = tx
                    .query_row(
                        "SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2",
                        params![i.codebook_id, i.codebook_version],
                        |r| r.get(0),
                    )
                    .optional()?;
                if known.is_none() {
                    return Err(bad(format!(
                        "an interview uses codebook {}@{}, which neither this vault nor the bundle has",
                        i.codebook_id, i.codebook_version
                    )));
                }
                let cur = tx
                    .query_row(
                        &format!("{INTERVIEW_SELECT} WHERE i.id = ?1"),
                        [&i.meta.id],
                        interview_row,
                    )
                    .optional()?;
                let id = i.meta.id.clone();
                self.apply(kind, &id, &i, cur, |tx| {
                    let m = &i.meta;
                    tx.execute(
                        "INSERT INTO interviews (id, device_id, created_at, updated_at, version, witness_id, interviewer, interpreter, languages, place,
                           started_at, ended_at, codebook_id, codebook_version, status) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                           interviewer = excluded.interviewer, interpreter = excluded.interpreter, languages = excluded.languages, place = excluded.place,
                           started_at = excluded.started_at, ended_at = excluded.ended_at, status = excluded.status",
                        params![
                            m.id, m.device_id, m.created_at, m.updated_at, m.version, i.witness_id, i.interviewer, i.interpreter, i.languages.join(","),
                            i.place, i.started_at, i.ended_at, i.codebook_id, i.codebook_version, i.status.code()
                        ],
                    )?;
                    Ok(())
                })
            }
            RecordKind::GroupInstance => {
                let g: GroupInstance = parse(kind, v)?;
                let cb = self.codebook_for(&g.interview_id)?;
                if cb.question(&g.group_id).is_none() {
                    return Err(bad(format!(
                        "a group instance names question '{}', which its codebook does not have",
                        g.group_id
                    )));
                }
                let cur = tx
                    .query_row(
                        "SELECT id, device_id, created_at, updated_at, version, interview_id, group_id, parent_id, ordinal, deleted FROM group_instances WHERE id = ?1",
                        [&g.meta.id],
                        instance_row,
                    )
                    .optional()?;
                let id = g.meta.id.clone();
                self.apply(kind, &id, &g, cur, |tx| {
                    let m = &g.meta;
                    tx.execute(
                        "INSERT INTO group_instances (id, device_id, created_at, updated_at, version, interview_id, group_id, parent_id, ordinal, deleted)
                         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                           ordinal = excluded.ordinal, deleted = excluded.deleted",
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, g.interview_id, g.group_id, g.parent_id, g.ordinal, g.deleted],
                    )?;
                    Ok(())
                })
            }
            RecordKind::Answer => {
                let a: Answer = parse(kind, v)?;
                let cb = self.codebook_for(&a.interview_id)?;
                let q = cb.question(&a.question_id).ok_or_else(|| {
                    bad(format!(
                        "an answer names question '{}', which its codebook does not have",
                        a.question_id
                    ))
                })?;
                // The same rules as typing it in: a return bundle cannot put an invalid value here.
                validate_value(&cb, q, &a.value).map_err(|reason| {
                    bad(format!(
                        "an answer to '{}' is invalid: {reason}",
                        a.question_id
                    ))
                })?;
                let text = searchable_text(q, &a.value);
                let slot: Option<String> = tx
                    .query_row(
                        "SELECT id FROM answers WHERE interview_id = ?1 AND ifnull(instance_id, '') = ifnull(?2, '') AND question_id = ?3 AND id <> ?4",
                        params![a.interview_id, a.instance_id, a.question_id, a.meta.id],
                        |r| r.get(0),
                    )
                    .optional()?;
                if slot.is_some() {
                    // This device answered the same question under another record: keep ours;
                    // the archive holds both and a coordinator sees them.
                    self.report.kept_local += 1;
                    self.report.warnings.push(format!(
                        "question '{}' already has an answer here; kept this device's",
                        a.question_id
                    ));
                    return Ok(());
                }
                let cur = tx
                    .query_row(
                        "SELECT id, device_id, created_at, updated_at, version, interview_id, instance_id, question_id, value FROM answers WHERE id = ?1",
                        [&a.meta.id],
                        answer_row,
                    )
                    .optional()?;
                let id = a.meta.id.clone();
                self.apply(kind, &id, &a, cur, |tx| {
                    let m = &a.meta;
                    tx.execute(
                        "INSERT INTO answers (id, device_id, created_at, updated_at, version, interview_id, instance_id, question_id, value)
                         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version, value = excluded.value",
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, a.interview_id, a.instance_id, a.question_id, a.value.to_string()],
                    )?;
                    index_text(tx, &a.meta.id, &a.interview_id, "answer", text.as_deref())
                })
            }
            RecordKind::Note => {
                let n: Note = parse(kind, v)?;
                self.codebook_for(&n.interview_id)?;
                if n.text.trim().is_empty()
                    || n.text.chars().count() > crate::records::MAX_NOTE_CHARS
                {
                    return Err(bad("a note is empty or too long"));
                }
                let cur = tx
                    .query_row(
                        "SELECT id, device_id, created_at, updated_at, version, interview_id, question_id, instance_id, text FROM notes WHERE id = ?1",
                        [&n.meta.id],
                        |r| Ok(Note { meta: crate::records::meta(r, 0)?, interview_id: r.get(5)?, question_id: r.get(6)?, instance_id: r.get(7)?, text: r.get(8)? }),
                    )
                    .optional()?;
                let id = n.meta.id.clone();
                self.apply(kind, &id, &n, cur, |tx| {
                    let m = &n.meta;
                    tx.execute(
                        "INSERT INTO notes (id, device_id, created_at, updated_at, version, interview_id, question_id, instance_id, text)
                         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version, text = excluded.text",
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, n.interview_id, n.question_id, n.instance_id, n.text],
                    )?;
                    index_text(tx, &n.meta.id, &n.interview_id, "note", Some(&n.text))
                })
            }
            RecordKind::Recording => {
                let r: Recording = parse(kind, v)?;
                let well_formed = r.status == RecordingStatus::Stopped
                    && r.format == BUNDLE_AUDIO_FORMAT
                    && r.stopped_at.is_some()
                    && crate::audio::check_format(r.sample_rate, r.channels).is_ok()
                    && r.duration_ms == crate::audio::ms_of(r.samples, r.sample_rate)
                    && r.samples
                        .checked_mul(r.channels as u64 * 2)
                        .is_some_and(|n| n <= MAX_AUDIO_BYTES - 44);
                if !well_formed {
                    return Err(bad("a recording record is malformed"));
                }
                let witness: String = tx
                    .query_row("SELECT witness_id FROM interviews WHERE id = ?1", [&r.interview_id], |row| row.get(0))
                    .optional()?
                    .ok_or_else(|| bad("the bundle carries a recording of an interview this vault does not have"))?;
                if tx
                    .query_row(
                        "SELECT 1 FROM recordings WHERE id = ?1",
                        [&r.meta.id],
                        |_| Ok(()),
                    )
                    .optional()?
                    .is_some()
                {
                    // Audio never changes once a recording stops: what is here stays.
                    self.report.recordings_already_here += 1;
                    return Ok(());
                }
                // The rule of `start_recording` and `import_wav`, against this vault's consent
                // (after any consent record of this bundle): no audio of a witness who did not
                // agree to it, or withdrew here.
                let consent = tx
                    .query_row(
                        &format!("SELECT {CONSENT_COLS} FROM consents WHERE witness_id = ?1"),
                        [&witness],
                        consent_row,
                    )
                    .optional()?;
                if !consent.is_some_and(|c| c.allows(crate::model::ConsentScope::RecordAudio)) {
                    self.report.recordings_refused_consent += 1;
                    self.report.warnings.push(format!("recording {} not stored: the witness's consent here does not allow audio recording", r.meta.id));
                    return Ok(());
                }
                let m = &r.meta;
                tx.execute(
                    &format!("INSERT INTO recordings ({REC_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,'stopped',?12,?13,0,NULL,?14)"),
                    params![
                        m.id, m.device_id, m.created_at, m.updated_at, m.version, r.interview_id, r.started_at, r.stopped_at, r.sample_rate, r.channels,
                        crate::audio::FORMAT, r.samples as i64, r.duration_ms as i64, r.recovered
                    ],
                )?;
                self.report.added += 1;
                self.report.recordings_added += 1;
                self.pending_audio.insert(m.id.clone(), r);
                Ok(())
            }
            RecordKind::AudioMarker => {
                let mk: Marker = parse(kind, v.clone())?;
                let rec = tx
                    .query_row(
                        "SELECT interview_id, duration_ms FROM recordings WHERE id = ?1",
                        [&mk.recording_id],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                    )
                    .optional()?;
                let Some((interview_id, duration_ms)) = rec else {
                    self.report.skipped_without_recording += 1;
                    return Ok(());
                };
                if v.get("interview_id")
                    .and_then(Value::as_str)
                    .is_some_and(|i| i != interview_id)
                {
                    return Err(bad("a marker names another interview than its recording's"));
                }
                // The rules of `add_marker`, for a stopped recording.
                let label_ok = !mk.label.trim().is_empty()
                    && !mk.label.contains(['\n', '\r'])
                    && mk.label.chars().count() <= crate::audio::MAX_MARKER_LABEL_CHARS;
                if !label_ok || mk.at_ms > duration_ms as u64 {
                    return Err(bad(
                        "a marker is malformed or lies past the end of its recording",
                    ));
                }
                if let Some(q) = &mk.question_id {
                    let cb = self.codebook_for(&interview_id)?;
                    if cb.question(q).is_none() {
                        return Err(bad(format!(
                            "a marker names question '{q}', which its codebook does not have"
                        )));
                    }
                }
                let cur = tx
                    .query_row(
                        &format!("SELECT {MARKER_COLS} FROM audio_markers WHERE id = ?1"),
                        [&mk.meta.id],
                        marker_row,
                    )
                    .optional()?;
                if cur
                    .as_ref()
                    .is_some_and(|c| c.recording_id != mk.recording_id)
                {
                    return Err(bad("a marker moved to another recording"));
                }
                let id = mk.meta.id.clone();
                self.apply(kind, &id, &mk, cur, |tx| {
                    let m = &mk.meta;
                    tx.execute(
                        &format!("INSERT INTO audio_markers ({MARKER_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                           at_ms = excluded.at_ms, question_id = excluded.question_id, label = excluded.label"),
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, mk.recording_id, mk.at_ms as i64, mk.question_id, mk.label],
                    )?;
                    Ok(())
                })
            }
            RecordKind::Transcript => {
                let t: Transcript = parse(kind, v)?;
                let has_recording: bool = tx.query_row(
                    "SELECT count(*) FROM recordings WHERE id = ?1 AND interview_id = ?2",
                    params![t.recording_id, t.interview_id],
                    |r| r.get::<_, i64>(0),
                )? > 0;
                if !has_recording {
                    self.report.skipped_without_recording += 1;
                    return Ok(());
                }
                if t.window_ms == 0 {
                    return Err(bad("a transcript is malformed"));
                }
                let cur = tx
                    .query_row(
                        &format!("SELECT {TRANSCRIPT_COLS} FROM transcripts t WHERE t.id = ?1"),
                        [&t.meta.id],
                        transcript_row,
                    )
                    .optional()?;
                // Windows are this device's own bookkeeping of a run; compare without them.
                let cur = cur.map(|mut c| {
                    c.windows_done = t.windows_done;
                    c
                });
                let id = t.meta.id.clone();
                self.apply(kind, &id, &t, cur, |tx| {
                    let m = &t.meta;
                    tx.execute(
                        "INSERT INTO transcripts (id, device_id, created_at, updated_at, version, recording_id, interview_id, model, language, window_ms, status, windows_total)
                         VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)
                         ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                           language = excluded.language, status = excluded.status, windows_total = excluded.windows_total",
                        params![m.id, m.device_id, m.created_at, m.updated_at, m.version, t.recording_id, t.interview_id, t.model, t.language, t.window_ms as i64, t.status.code(), t.windows_total.map(i64::from)],
                    )?;
                    Ok(())
                })
            }
            RecordKind::TranscriptSegment => {
                let s: TranscriptSegment = parse(kind, v)?;
                let has_transcript: bool = tx.query_row(
                    "SELECT count(*) FROM transcripts WHERE id = ?1 AND interview_id = ?2",
                    params![s.transcript_id, s.interview_id],
                    |r| r.get::<_, i64>(0),
                )? > 0;
                if !has_transcript {
                    self.report.skipped_without_recording += 1;
                    return Ok(());
                }
                if s.end_ms < s.start_ms
                    || s.text.chars().count() > crate::transcript::MAX_SEGMENT_CHARS
                    || s.translation
                        .as_ref()
                        .is_some_and(|t| t.chars().count() > crate::transcript::MAX_SEGMENT_CHARS)
                {
                    return Err(bad("a transcript segment is malformed or too long"));
                }
                let cur = tx
                    .query_row(
                        &format!("SELECT {SEGMENT_COLS} FROM transcript_segments WHERE id = ?1"),
                        [&s.meta.id],
                        segment_row,
                    )
                    .optional()?;
                let id = s.meta.id.clone();
                let cx = self.cx;
                self.apply(kind, &id, &s, cur, |tx| {
                    let m = &s.meta;
                    tx.execute(
                        &format!(
                            "INSERT INTO transcript_segments ({SEGMENT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)
                             ON CONFLICT (id) DO UPDATE SET device_id = excluded.device_id, updated_at = excluded.updated_at, version = excluded.version,
                               seq = excluded.seq, start_ms = excluded.start_ms, end_ms = excluded.end_ms, text = excluded.text, language = excluded.language,
                               confidence = excluded.confidence, translation = excluded.translation, translation_language = excluded.translation_language,
                               speaker = excluded.speaker, reviewed = excluded.reviewed, redactions = excluded.redactions"
                        ),
                        params![
                            m.id, m.device_id, m.created_at, m.updated_at, m.version, s.transcript_id, s.interview_id, s.seq as i64, s.start_ms as i64,
                            s.end_ms as i64, s.text, s.machine_text, s.language, s.confidence.map(f64::from), s.translation, s.translation_language,
                            s.speaker.map(Speaker::code), s.reviewed, serde_json::to_string(&s.redactions).expect("serialisable")
                        ],
                    )?;
                    // The returned version joins the segment's history like a local edit.
                    tx.execute(
                        "INSERT INTO transcript_history (id, segment_id, transcript_id, at, actor, device_id, action, related_segment, content)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'return', NULL, ?7)",
                        params![new_id(), s.meta.id, s.transcript_id, cx.now, cx.actor, s.meta.device_id, serde_json::to_string(&s).expect("serialisable")],
                    )?;
                    index_text(tx, &s.meta.id, &s.interview_id, "transcript", Some(&search_body(&s)))
                })
            }
            other => Err(bad(format!(
                "a return bundle may not carry {} records",
                other.code()
            ))),
        }
    }

    fn attachment(&mut self, _id: &str, _data: &[u8]) -> Result<()> {
        Err(bad("a return bundle may not carry attachments"))
    }

    fn audio(&mut self, recording_id: &str, size: u64, wav: &mut dyn Read) -> Result<()> {
        // Recordings already here, or refused for consent, were not created: their audio is
        // left to the reader, which still checks it against the manifest.
        let Some(r) = self.pending_audio.remove(recording_id) else {
            return Ok(());
        };
        let mut header = [0u8; 44];
        wav.read_exact(&mut header)
            .map_err(|_| bad("a recording's audio is shorter than a WAV header"))?;
        check_wav_header(
            &header,
            size,
            r.sample_rate as u64,
            r.channels as u64,
            r.samples,
        )?;
        crate::audio::store_pcm_chunks(
            self.tx,
            recording_id,
            r.sample_rate,
            r.channels,
            r.samples,
            wav,
            || bad("the bundle is damaged or truncated (a recording's audio ends early)"),
        )?;
        // Audited once its audio is in, so that the entry's hash covers the stored totals.
        let stored = self.tx.query_row(
            &format!("SELECT {REC_COLS} FROM recordings WHERE id = ?1"),
            [recording_id],
            recording_row,
        )?;
        audit::append(
            self.tx,
            self.cx,
            RecordKind::Recording.code(),
            recording_id,
            "return",
            &stored,
        )
    }

    fn audit_entry(&mut self, _e: &BundleAuditEntry) -> Result<()> {
        Err(bad("a return bundle may not carry audit entries"))
    }
}
