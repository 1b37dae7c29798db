//! Merging a verified bundle into the archive. The rules (docs/bundle-format.md, "Archive
//! merge rules"):
//! - a record the archive does not have is added;
//! - a newer version from the device that sent the current one replaces it;
//! - an equal or older version from that device changes nothing (replay, out of order);
//! - a different body from another device is a conflict: the current version stays, the
//!   incoming one is kept beside it until a coordinator resolves it. Nothing is overwritten
//!   silently.
//!
//! Everything happens in one transaction that `commit` ends; any error rolls it all back.
//!
//! The rules are written once, against [`Db`], and hold for both back-ends.

use std::io::{self, Read, Write};

use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testimony_core::bundle::{BundleAuditEntry, BundleSink, Counts, Manifest, RecordKind};
use testimony_core::vault::now;
use testimony_core::{Error, Result};

use crate::store::{Db, vals};

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// "imported", "already_imported" or "quarantined".
    pub outcome: String,
    pub message: String,
    pub bundle_hash: String,
    pub public_key: String,
    pub device_id: String,
    pub sequence: i64,
    pub kind: String,
    pub counts: Counts,
    pub added: u64,
    pub updated: u64,
    pub unchanged: u64,
    pub deleted: u64,
    pub conflicts: u64,
    /// Records removed because the witness withdrew consent.
    pub purged_for_withdrawal: u64,
    pub attachments: u64,
    /// Recordings whose audio the bundle carried (stored, or checked against the copy held).
    pub recordings_audio: u64,
    /// Sequence numbers from this device that have not arrived (after this import).
    pub gaps: Vec<i64>,
    /// Bundles of this device that were waiting for this one and are now merged too.
    pub released: Vec<i64>,
    /// The bundle does not continue the chain the archive holds for this device.
    pub warnings: Vec<String>,
}

pub(crate) struct Merge<'c> {
    db: Db<'c>,
    /// The archive's own key: attachments are stored encrypted to it.
    recipient: age::x25519::Recipient,
    in_tx: bool,
    manifest: Option<Manifest>,
    report: ImportReport,
    /// A record referred to an interview or witness the archive does not have yet.
    pub(crate) needs_earlier: bool,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadBundle(m.into())
}

/// Text that search should find in a record.
fn searchable(kind: RecordKind, v: &Value) -> Option<String> {
    match kind {
        RecordKind::Answer => match &v["value"] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o
                .get("locality")
                .and_then(Value::as_str)
                .map(str::to_string),
            _ => None,
        },
        RecordKind::Note => v["text"].as_str().map(str::to_string),
        RecordKind::AudioMarker => v["label"].as_str().map(str::to_string),
        // A segment's current text and its translation (Korean and English both searchable).
        RecordKind::TranscriptSegment => {
            let text = v["text"].as_str().unwrap_or_default();
            Some(match v["translation"].as_str() {
                Some(t) => format!("{text}\n{t}"),
                None => text.to_string(),
            })
        }
        _ => None,
    }
    // PostgreSQL text cannot hold NUL; nobody searches for one.
    .map(|s| s.replace('\0', " "))
    .filter(|s| !s.trim().is_empty())
}

fn kind_of(code: &str) -> Result<RecordKind> {
    RecordKind::parse(code).ok_or_else(|| bad(format!("unknown record type '{code}'")))
}

/// Writes `body` as the current version of a record (insert or replace) and its search entry.
/// `fresh`: the caller knows the archive holds no record `id` yet (so no search entry either).
pub(crate) fn replace_with(
    db: &mut Db<'_>,
    kind: &str,
    id: &str,
    body: &Value,
    key: &str,
    fresh: bool,
) -> Result<()> {
    let k = kind_of(kind)?;
    let version = body["version"].as_i64().unwrap_or(0);
    let interview_id = match k {
        RecordKind::Interview => Some(id.to_string()),
        _ => body["interview_id"].as_str().map(str::to_string),
    };
    // Other records take their interview's witness, looked up in the same statement (one
    // round trip less per record on PostgreSQL).
    let (witness_id, witness_sql) = match k {
        RecordKind::Witness | RecordKind::WitnessIdentity => (Some(id.to_string()), "?6"),
        RecordKind::Consent | RecordKind::Interview => {
            (body["witness_id"].as_str().map(str::to_string), "?6")
        }
        _ => (
            None,
            "COALESCE(?6, (SELECT i.witness_id FROM records i WHERE i.kind = 'interview' AND i.id = ?5))",
        ),
    };
    let sql = format!(
        "INSERT INTO records (kind, id, version, source_key, interview_id, witness_id, updated_at, body, bundle_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, {witness_sql}, ?7, ?8, '')
         ON CONFLICT (kind, id) DO UPDATE SET version = excluded.version, source_key = excluded.source_key,
           interview_id = excluded.interview_id, witness_id = excluded.witness_id, updated_at = excluded.updated_at, body = excluded.body"
    );
    db.execute(
        &sql,
        vals![
            kind,
            id,
            version,
            key,
            interview_id.clone(),
            witness_id,
            body["updated_at"].as_str(),
            body.to_string()
        ],
    )?;
    if !fresh {
        unindex(db, id)?;
    }
    if let Some(text) = searchable(k, body) {
        db.execute(
            "INSERT INTO search_index (record_id, interview_id, kind, body) VALUES (?1, ?2, ?3, ?4)",
            vals![id, interview_id.unwrap_or_default(), kind, text],
        )?;
        if !db.is_postgres() {
            db.execute("INSERT OR REPLACE INTO search_rowids (record_id, fts_rowid) VALUES (?1, last_insert_rowid())", vals![id])?;
        }
    }
    Ok(())
}

/// Removes a record's search entry. FTS5 cannot look a row up by an UNINDEXED column (a
/// `DELETE … WHERE record_id` scans the whole index, so imports slowed quadratically:
/// docs/performance.md); the embedded store finds the row by rowid through `search_rowids`.
/// PostgreSQL's plain table has an index on `record_id`.
pub(crate) fn unindex(db: &mut Db<'_>, id: &str) -> Result<()> {
    if db.is_postgres() {
        db.execute("DELETE FROM search_index WHERE record_id = ?1", vals![id])?;
        return Ok(());
    }
    let row = db.query_opt(
        "SELECT fts_rowid FROM search_rowids WHERE record_id = ?1",
        vals![id],
    )?;
    if let Some(r) = row {
        db.execute(
            "DELETE FROM search_index WHERE rowid = ?1",
            vals![r.int(0)?],
        )?;
        db.execute("DELETE FROM search_rowids WHERE record_id = ?1", vals![id])?;
    }
    Ok(())
}

/// Deletes the bytes that belong to a deleted record: an attachment's, a recording's audio.
fn drop_bytes(db: &mut Db<'_>, kind: &str, id: &str) -> Result<()> {
    match kind {
        "attachment" => {
            db.execute("DELETE FROM attachments WHERE id = ?1", vals![id])?;
        }
        "recording" => {
            db.execute("DELETE FROM audio_parts WHERE recording_id = ?1", vals![id])?;
            db.execute("DELETE FROM audio WHERE recording_id = ?1", vals![id])?;
        }
        _ => {}
    }
    Ok(())
}

/// Feeds a hasher as a writer.
struct HashTo<'h>(&'h mut Sha256);

impl Write for HashTo<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Size of the parts a recording's encrypted audio is stored in.
pub(crate) const AUDIO_PART_BYTES: usize = 1 << 20;

/// Stores an encrypted stream as numbered rows of `audio_parts`. A database error is kept
/// aside (the age writer would only pass on an `io::Error`) and returned by `finish`.
struct PartWriter<'d, 'c> {
    db: &'d mut Db<'c>,
    recording_id: String,
    buf: Vec<u8>,
    parts: i64,
    failed: Option<Error>,
}

impl PartWriter<'_, '_> {
    fn flush_part(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let data = std::mem::replace(&mut self.buf, Vec::with_capacity(AUDIO_PART_BYTES));
        match self.db.execute(
            "INSERT INTO audio_parts (recording_id, part, data) VALUES (?1, ?2, ?3)",
            vals![&self.recording_id, self.parts, data],
        ) {
            Ok(_) => {
                self.parts += 1;
                Ok(())
            }
            Err(e) => {
                self.failed = Some(e.into());
                Err(io::Error::other("storing audio failed"))
            }
        }
    }
}

impl Write for PartWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = buf.len().min(AUDIO_PART_BYTES - self.buf.len());
        self.buf.extend_from_slice(&buf[..n]);
        if self.buf.len() == AUDIO_PART_BYTES {
            self.flush_part()?;
        }
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Checks a bundle's WAV header against the recording record it belongs to (the rule is the
/// core's, shared with vaults applying return bundles).
fn check_wav_header(h: &[u8; 44], size: u64, recording: &Value) -> Result<()> {
    let field = |k: &str| recording[k].as_u64().unwrap_or(u64::MAX);
    testimony_core::bundle::check_wav_header(
        h,
        size,
        field("sample_rate"),
        field("channels"),
        field("samples"),
    )
}

/// Whether two bodies are the same record apart from fields that describe one vault's own
/// storage, which a device that received the record in a return bundle cannot reproduce:
/// a recording's `chunks` and `audio_sha256` (that vault keeps the audio in chunks of its own;
/// the audio itself must be the same bytes, which `audio` checks against the copy held here),
/// and a transcript's `windows_done` (the windows the engine saved on the device that ran it).
fn same_apart_from_storage(kind: RecordKind, a: &Value, b: &Value) -> bool {
    let local: &[&str] = match kind {
        RecordKind::Recording => &["chunks", "audio_sha256"],
        RecordKind::Transcript => &["windows_done"],
        _ => return false,
    };
    let strip = |v: &Value| {
        let mut v = v.clone();
        if let Some(o) = v.as_object_mut() {
            for k in local {
                o.remove(*k);
            }
        }
        v
    };
    strip(a) == strip(b)
}

/// The witness an interview in the archive belongs to.
fn interview_witness(db: &mut Db<'_>, interview: &str) -> Result<Option<String>> {
    match db.query_opt(
        "SELECT witness_id FROM records WHERE kind = 'interview' AND id = ?1",
        vals![interview],
    )? {
        Some(r) => Ok(r.opt_text(0)?),
        None => Ok(None),
    }
}

impl<'c> Merge<'c> {
    pub fn new(db: Db<'c>, recipient: age::x25519::Recipient) -> Self {
        Merge {
            db,
            recipient,
            in_tx: false,
            manifest: None,
            report: ImportReport::default(),
            needs_earlier: false,
        }
    }

    fn key(&self) -> &str {
        &self.report.public_key
    }

    /// The report as far as it got (the manifest's facts), after a stop or an error.
    pub fn stopped_report(self) -> ImportReport {
        self.report
    }

    pub fn rollback(&mut self) {
        if self.in_tx {
            self.db.rollback();
            self.in_tx = false;
        }
    }

    /// Records the bundle and commits everything. Called only after the reader verified the
    /// whole bundle.
    pub fn commit(mut self) -> Result<ImportReport> {
        let m = self.manifest.take().expect("manifest seen");
        let key = self.report.public_key.clone();
        let done = (|| -> Result<()> {
            self.db.execute(
                "UPDATE records SET bundle_hash = ?1 WHERE bundle_hash = ''",
                vals![&self.report.bundle_hash],
            )?;
            // The device's age key, for return bundles: only from a signed manifest, and only
            // if it is a well-formed recipient.
            if let Some(r) = m
                .device_recipient
                .as_deref()
                .filter(|r| r.parse::<age::x25519::Recipient>().is_ok())
            {
                self.db.execute(
                    "UPDATE devices SET recipient = ?1 WHERE public_key = ?2",
                    vals![r, &key],
                )?;
            }
            self.report.outcome = "imported".into();
            self.db.execute(
                "INSERT INTO bundles (bundle_hash, bundle_id, public_key, device_id, sequence, previous_bundle_hash, kind, created_at, imported_at, manifest, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                vals![
                    &self.report.bundle_hash, &m.bundle_id, &key, &m.device_id, m.sequence, m.previous_bundle_hash.as_deref(), &m.kind, &m.created_at, now(),
                    serde_json::to_string(&m).expect("serialisable"), serde_json::to_string(&self.report).expect("serialisable")
                ],
            )?;
            let seqs = self
                .db
                .query(
                    "SELECT sequence FROM bundles WHERE public_key = ?1 ORDER BY sequence",
                    vals![&key],
                )?
                .iter()
                .map(|r| r.int(0))
                .collect::<crate::Result<Vec<i64>>>()?;
            self.report.gaps = super::gaps(&seqs);
            self.db.commit()?;
            self.in_tx = false;
            Ok(())
        })();
        if let Err(e) = done {
            self.rollback();
            return Err(e);
        }
        self.report.message = format!(
            "imported bundle {} from device {}: {} added, {} updated, {} unchanged, {} deleted, {} conflicts",
            m.sequence,
            m.device_id,
            self.report.added,
            self.report.updated,
            self.report.unchanged,
            self.report.deleted,
            self.report.conflicts
        );
        Ok(self.report)
    }

    fn witness_consent(&mut self, witness: &str) -> Result<Option<Value>> {
        let body = self.db.text_opt(
            "SELECT body FROM records WHERE kind = 'consent' AND witness_id = ?1",
            vals![witness],
        )?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// The archive checks consent again: a device must never be able to push records the
    /// witness did not agree to share.
    fn check_consent(&mut self, kind: RecordKind, witness: Option<&str>) -> Result<()> {
        if matches!(kind, RecordKind::Consent | RecordKind::Tombstone) {
            return Ok(());
        }
        let Some(witness) = witness else {
            self.needs_earlier = true;
            return Err(bad(format!(
                "a {} record belongs to no interview or witness the archive has",
                kind.code()
            )));
        };
        let consent = self.witness_consent(witness)?;
        let allowed = consent.as_ref().is_some_and(|c| {
            c["withdrawn_at"].is_null() && c["scopes"]["share_archive"] == Value::Bool(true)
        });
        if !allowed {
            return Err(bad(
                "the bundle carries records of a witness whose consent does not allow sharing with the archive",
            ));
        }
        if kind == RecordKind::WitnessIdentity
            && consent
                .as_ref()
                .is_none_or(|c| c["scopes"]["publish_identified"] != Value::Bool(true))
        {
            return Err(bad(
                "the bundle carries identifying details the witness did not consent to",
            ));
        }
        Ok(())
    }

    /// Removes everything but the witness and consent records of a witness who withdrew.
    fn purge_witness(&mut self, witness: &str) -> Result<()> {
        let ids = self
            .db
            .query("SELECT kind, id FROM records WHERE witness_id = ?1 AND kind NOT IN ('witness', 'consent') ORDER BY kind, id", vals![witness])?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect::<Result<Vec<(String, String)>>>()?;
        for (kind, id) in ids {
            self.db.execute(
                "DELETE FROM records WHERE kind = ?1 AND id = ?2",
                vals![&kind, &id],
            )?;
            unindex(&mut self.db, &id)?;
            drop_bytes(&mut self.db, &kind, &id)?;
            self.report.purged_for_withdrawal += 1;
        }
        Ok(())
    }

    fn merge_record(&mut self, kind: RecordKind, id: &str, body: &Value) -> Result<()> {
        // The tombstone and the current version in one round trip.
        let row = self.db.query_opt(
            "SELECT (SELECT t.source_key FROM tombstones t WHERE t.kind = ?1 AND t.id = ?2), r.body, r.source_key
             FROM (SELECT 1 AS one) AS one LEFT JOIN records r ON r.kind = ?1 AND r.id = ?2",
            vals![kind.code(), id],
        )?;
        let row =
            row.ok_or_else(|| Error::Corrupt("the archive answered no row for a lookup".into()))?;
        if row
            .opt_text(0)?
            .is_some_and(|k| k == self.report.public_key)
        {
            // Deleted by a later bundle that arrived first.
            self.report.unchanged += 1;
            return Ok(());
        }
        let current = match (row.opt_text(1)?, row.opt_text(2)?) {
            (Some(body), Some(key)) => Some((body, key)),
            _ => None,
        };
        let key = self.key().to_string();
        match current {
            None => {
                replace_with(&mut self.db, kind.code(), id, body, &key, true)?;
                self.report.added += 1;
            }
            Some((cur_body, cur_key)) => {
                let cur: Value = serde_json::from_str(&cur_body)
                    .map_err(|_| Error::Corrupt("a stored record is not JSON".into()))?;
                if cur == *body || same_apart_from_storage(kind, &cur, body) {
                    self.report.unchanged += 1;
                } else if cur_key == key {
                    let (cv, nv) = (
                        cur["version"].as_i64().unwrap_or(0),
                        body["version"].as_i64().unwrap_or(0),
                    );
                    if nv > cv {
                        replace_with(&mut self.db, kind.code(), id, body, &key, false)?;
                        self.report.updated += 1;
                    } else {
                        self.report.unchanged += 1;
                    }
                } else {
                    self.conflict(kind.code(), id, &cur_body, &cur_key, body)?;
                }
            }
        }
        Ok(())
    }

    /// The hash of the device's audit entry `seq`, if the archive holds it.
    fn held_audit_hash(&mut self, seq: i64) -> Result<Option<String>> {
        Ok(self.db.text_opt(
            "SELECT hash FROM device_audit WHERE public_key = ?1 AND seq = ?2",
            vals![&self.report.public_key, seq],
        )?)
    }

    /// The audit range (`audit_from_seq`, `audit_to_seq`) of the device's bundle numbered
    /// `sequence`, if the archive holds that bundle.
    fn held_bundle_audit(&mut self, sequence: i64) -> Result<Option<(i64, i64)>> {
        let manifest = self.db.text_opt(
            "SELECT manifest FROM bundles WHERE public_key = ?1 AND sequence = ?2",
            vals![&self.report.public_key, sequence],
        )?;
        let Some(manifest) = manifest else {
            return Ok(None);
        };
        let m: Value = serde_json::from_str(&manifest)
            .map_err(|_| Error::Corrupt("a stored bundle manifest is not JSON".into()))?;
        match (m["audit_from_seq"].as_i64(), m["audit_to_seq"].as_i64()) {
            (Some(from), Some(to)) => Ok(Some((from, to))),
            _ => Err(Error::Corrupt(
                "a stored bundle manifest has no audit range".into(),
            )),
        }
    }

    /// A restored or copied vault must not replace newer work (docs/bundle-format.md, "Audit
    /// chains"). `audit_entry` checks the bundle's entries where they meet the chain the
    /// archive holds for the device; this catches the bundles that do not meet it at all.
    /// Where the archive holds neither the bundle's first audit entry nor the one before, the
    /// link cannot be checked. That is expected only while the device's bundle carrying the
    /// entries in between has not arrived (bundles may come out of order). If the archive
    /// holds the device's bundle numbered one less, it holds the entries that bundle ends
    /// with, and a bundle that does not join them was made on another line of work under the
    /// same device key: a vault restored from an older backup (or a copy) that went on
    /// working past what the archive holds. Such a bundle is refused however far past the
    /// archive's entries it begins, since its records would otherwise replace newer ones
    /// from the same key without a conflict. The same at the end, for a bundle arriving after
    /// the one numbered one more.
    fn check_audit_meets_held_chain(&mut self, m: &Manifest) -> Result<()> {
        let (from, to, n) = (m.audit_from_seq, m.audit_to_seq, m.sequence);
        let advice = "It looks like a vault restored from an older backup, or a copy, that went on working apart from the one whose bundles the archive holds. Not merged, so that it cannot replace newer records; nothing in the archive changed. Keep the bundle file: its records are only in it and in that vault. (If the device was neither restored nor copied, a full export from it, `testimony export --full`, is checked entry by entry against the archive's chain instead.)";
        if from > 1
            && self.held_audit_hash(from)?.is_none()
            && self.held_audit_hash(from - 1)?.is_none()
            && let Some((_, before_to)) = self.held_bundle_audit(n - 1)?
        {
            return Err(bad(format!(
                "bundle {n} from device {} does not continue the audit chain the archive holds for this device: the archive has this device's bundle {}, whose audit entries end at {before_to}, but this bundle's entries begin at {from} and do not join them. {advice}",
                m.device_id,
                n - 1
            )));
        }
        if to >= from
            && self.held_audit_hash(to)?.is_none()
            && self.held_audit_hash(to + 1)?.is_none()
            && let Some((after_from, _)) = self.held_bundle_audit(n + 1)?
        {
            return Err(bad(format!(
                "bundle {n} from device {} does not lead into the audit chain the archive holds for this device: the archive has this device's bundle {}, whose audit entries begin at {after_from}, but this bundle's entries end at {to} and do not join them. {advice}",
                m.device_id,
                n + 1
            )));
        }
        Ok(())
    }

    fn conflict(
        &mut self,
        kind: &str,
        id: &str,
        cur_body: &str,
        cur_key: &str,
        incoming: &Value,
    ) -> Result<()> {
        let incoming = incoming.to_string();
        let known = self.db.query_opt(
            "SELECT id FROM conflicts WHERE kind = ?1 AND record_id = ?2 AND incoming_body = ?3",
            vals![kind, id, &incoming],
        )?;
        if known.is_none() {
            self.db.execute(
                "INSERT INTO conflicts (kind, record_id, current_body, current_key, incoming_body, incoming_key, bundle_hash, detected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                vals![kind, id, cur_body, cur_key, incoming, &self.report.public_key, &self.report.bundle_hash, now()],
            )?;
            self.report.conflicts += 1;
        }
        Ok(())
    }
}

impl BundleSink for Merge<'_> {
    fn manifest(&mut self, m: &Manifest, bundle_hash: &str) -> Result<bool> {
        if m.kind == testimony_core::bundle::KIND_RETURN {
            return Err(bad(
                "this is a return bundle for a device; apply it in that device's vault with `testimony import-return`",
            ));
        }
        self.report = ImportReport {
            bundle_hash: bundle_hash.to_string(),
            public_key: m.device_public_key.clone(),
            device_id: m.device_id.clone(),
            sequence: m.sequence,
            kind: m.kind.clone(),
            counts: m.counts.clone(),
            ..Default::default()
        };
        let seen = self.db.query_opt(
            "SELECT sequence FROM bundles WHERE bundle_hash = ?1",
            vals![bundle_hash],
        )?;
        if seen.is_some() {
            self.report.outcome = "already_imported".into();
            self.report.message = format!(
                "bundle {} from device {} was already imported; nothing changed",
                m.sequence, m.device_id
            );
            return Ok(false);
        }
        let trusted = self.db.text_opt(
            "SELECT name FROM devices WHERE public_key = ?1",
            vals![&m.device_public_key],
        )?;
        if trusted.is_none() {
            self.report.outcome = "quarantined".into();
            self.report.message = format!(
                "the bundle is validly signed by a device the archive does not trust yet (key {}); it is kept in quarantine until `archive device trust`",
                m.device_public_key
            );
            return Ok(false);
        }
        let same_seq = self.db.text_opt(
            "SELECT bundle_hash FROM bundles WHERE public_key = ?1 AND sequence = ?2",
            vals![&m.device_public_key, m.sequence],
        )?;
        if same_seq.is_some() {
            return Err(bad(format!(
                "a different bundle numbered {} from this device was already imported (a restored or copied vault?); not merged",
                m.sequence
            )));
        }
        if let Some(prev) = &m.previous_bundle_hash {
            let known = self.db.query_opt(
                "SELECT sequence FROM bundles WHERE bundle_hash = ?1",
                vals![prev],
            )?;
            let expected = self.db.text_opt(
                "SELECT bundle_hash FROM bundles WHERE public_key = ?1 AND sequence = ?2",
                vals![&m.device_public_key, m.sequence - 1],
            )?;
            if known.is_none() && expected.is_some() {
                self.report.warnings.push(format!(
                    "bundle {} does not continue the chain of bundle {} held here",
                    m.sequence,
                    m.sequence - 1
                ));
            }
        }
        self.check_audit_meets_held_chain(m)?;
        self.db.begin()?;
        self.in_tx = true;
        self.manifest = Some(m.clone());
        Ok(true)
    }

    fn codebook(&mut self, id: &str, version: &str, source: &str) -> Result<()> {
        let sha = hex::encode(Sha256::digest(source.as_bytes()));
        let known = self.db.text_opt(
            "SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2",
            vals![id, version],
        )?;
        match known {
            Some(s) if s != sha => Err(bad(format!(
                "codebook {id}@{version} differs from the one the archive already has under that version"
            ))),
            Some(_) => Ok(()),
            None => {
                self.db.execute(
                    "INSERT INTO codebooks (id, version, sha256, source) VALUES (?1, ?2, ?3, ?4)",
                    vals![id, version, sha, source],
                )?;
                Ok(())
            }
        }
    }

    fn record(&mut self, kind: RecordKind, v: Value) -> Result<()> {
        if kind == RecordKind::Tombstone {
            let id = v["record_id"].as_str().unwrap_or_default().to_string();
            let target = kind_of(v["record_type"].as_str().unwrap_or_default())?;
            let current = self.db.text_opt(
                "SELECT source_key FROM records WHERE kind = ?1 AND id = ?2",
                vals![target.code(), &id],
            )?;
            if current
                .as_deref()
                .is_none_or(|k| k == self.report.public_key)
            {
                self.db.execute(
                    "INSERT INTO tombstones (kind, id, source_key, deleted_at) VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
                    vals![target.code(), &id, &self.report.public_key, v["deleted_at"].as_str().unwrap_or_default()],
                )?;
            }
            match current {
                Some(k) if k == self.report.public_key => {
                    self.db.execute(
                        "DELETE FROM records WHERE kind = ?1 AND id = ?2",
                        vals![target.code(), &id],
                    )?;
                    unindex(&mut self.db, &id)?;
                    drop_bytes(&mut self.db, target.code(), &id)?;
                    self.report.deleted += 1;
                }
                Some(k) => {
                    let cur = self
                        .db
                        .text_opt(
                            "SELECT body FROM records WHERE kind = ?1 AND id = ?2",
                            vals![target.code(), &id],
                        )?
                        .ok_or_else(|| {
                            Error::Corrupt("a record vanished during the import".into())
                        })?;
                    self.conflict(target.code(), &id, &cur, &k, &v)?;
                }
                None => self.report.unchanged += 1,
            }
            return Ok(());
        }
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let witness = match kind {
            RecordKind::Witness | RecordKind::WitnessIdentity => Some(id.clone()),
            RecordKind::Consent | RecordKind::Interview => {
                v["witness_id"].as_str().map(str::to_string)
            }
            _ => match v["interview_id"].as_str() {
                Some(i) => interview_witness(&mut self.db, i)?,
                None => None,
            },
        };
        self.check_consent(kind, witness.as_deref())?;
        self.merge_record(kind, &id, &v)?;
        if kind == RecordKind::Consent
            && !v["withdrawn_at"].is_null()
            && let Some(w) = &witness
        {
            self.purge_witness(w)?;
        }
        Ok(())
    }

    fn attachment(&mut self, id: &str, data: &[u8]) -> Result<()> {
        let known = self
            .db
            .query_opt("SELECT sha256 FROM attachments WHERE id = ?1", vals![id])?;
        if known.is_none() {
            // Encrypted to the archive's own key so that the bytes stay encrypted at rest on
            // every back-end (PostgreSQL never sees them plain).
            let enc = age::Encryptor::with_recipients(std::iter::once(
                &self.recipient as &dyn age::Recipient,
            ))
            .expect("one recipient");
            let mut out = Vec::with_capacity(data.len() + 256);
            let mut w = enc.wrap_output(&mut out)?;
            w.write_all(data)?;
            w.finish()?;
            let sha = hex::encode(Sha256::digest(data));
            self.db.execute(
                "INSERT INTO attachments (id, sha256, size, data) VALUES (?1, ?2, ?3, ?4)",
                vals![id, sha, data.len() as i64, out],
            )?;
        }
        self.report.attachments += 1;
        Ok(())
    }

    fn audio(&mut self, recording_id: &str, size: u64, wav: &mut dyn Read) -> Result<()> {
        // The recording's record came earlier in this bundle (the reader checks that the
        // bundle carries it). If it is not here, a later bundle that already arrived deleted it.
        // Audio is kept once per recording id, whichever device sent it (a copied vault sends
        // the same recording); every later copy must be the same bytes.
        let Some(row) = self.db.query_opt(
            "SELECT body FROM records WHERE kind = 'recording' AND id = ?1",
            vals![recording_id],
        )?
        else {
            return Ok(());
        };
        let body = row.text(0)?;
        let recording: Value = serde_json::from_str(&body)
            .map_err(|_| Error::Corrupt("a stored record is not JSON".into()))?;
        let mut header = [0u8; 44];
        wav.read_exact(&mut header)
            .map_err(|_| bad("a recording's audio is shorter than a WAV header"))?;
        check_wav_header(&header, size, &recording)?;
        let known = self.db.query_opt(
            "SELECT sha256, size FROM audio WHERE recording_id = ?1",
            vals![recording_id],
        )?;
        let mut hasher = Sha256::new();
        hasher.update(header);
        if let Some(known) = known {
            // Sent again (a full bundle, a consent change): audio never changes once stopped,
            // so it must be the same bytes.
            io::copy(wav, &mut HashTo(&mut hasher))
                .map_err(|_| bad("the bundle is damaged or truncated"))?;
            let sha = hex::encode(hasher.finalize());
            if sha != known.text(0)? {
                return Err(bad(format!(
                    "recording {recording_id} arrives with audio different from the archive's copy"
                )));
            }
        } else {
            let enc = age::Encryptor::with_recipients(std::iter::once(
                &self.recipient as &dyn age::Recipient,
            ))
            .expect("one recipient");
            let mut parts = PartWriter {
                db: &mut self.db,
                recording_id: recording_id.to_string(),
                buf: Vec::with_capacity(AUDIO_PART_BYTES),
                parts: 0,
                failed: None,
            };
            let written = (|| -> io::Result<()> {
                let mut w = enc.wrap_output(&mut parts)?;
                w.write_all(&header)?;
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let n = wav.read(&mut buf)?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    w.write_all(&buf[..n])?;
                }
                w.finish()?;
                parts.flush_part()
            })();
            if let Some(e) = parts.failed.take() {
                return Err(e);
            }
            written.map_err(|_| bad("the bundle is damaged or truncated"))?;
            let sha = hex::encode(hasher.finalize());
            let n = parts.parts;
            self.db.execute(
                "INSERT INTO audio (recording_id, sha256, size, parts) VALUES (?1, ?2, ?3, ?4)",
                vals![recording_id, &sha, size as i64, n],
            )?;
        }
        self.report.recordings_audio += 1;
        Ok(())
    }

    fn audit_entry(&mut self, e: &BundleAuditEntry) -> Result<()> {
        let key = self.report.public_key.clone();
        let stored = self.db.text_opt(
            "SELECT hash FROM device_audit WHERE public_key = ?1 AND seq = ?2",
            vals![&key, e.seq],
        )?;
        match stored {
            Some(h) if h != e.hash => Err(bad(format!(
                "the device's audit chain differs from the one the archive holds at entry {}",
                e.seq
            ))),
            Some(_) => Ok(()),
            None => {
                if e.seq > 1 {
                    let prev = self.db.text_opt(
                        "SELECT hash FROM device_audit WHERE public_key = ?1 AND seq = ?2",
                        vals![&key, e.seq - 1],
                    )?;
                    if prev.is_some_and(|p| p != e.prev_hash) {
                        return Err(bad(format!(
                            "audit entry {} does not continue the device's chain held by the archive",
                            e.seq
                        )));
                    }
                }
                // The bundle's last entry, arriving after a later bundle of the device: the
                // entry after it, which the archive holds, must follow it. (Earlier entries
                // of the bundle meet a held successor as an entry of the same number, which
                // must be equal.)
                if self
                    .manifest
                    .as_ref()
                    .is_some_and(|m| m.audit_to_seq == e.seq)
                {
                    let next = self.db.text_opt(
                        "SELECT entry FROM device_audit WHERE public_key = ?1 AND seq = ?2",
                        vals![&key, e.seq + 1],
                    )?;
                    if let Some(next) = next {
                        let next: BundleAuditEntry = serde_json::from_str(&next).map_err(|_| {
                            Error::Corrupt("a stored audit entry is not readable".into())
                        })?;
                        if next.prev_hash != e.hash {
                            return Err(bad(format!(
                                "audit entry {} does not lead into entry {} of the device's chain held by the archive (a vault restored from an older backup, or a copy, that went on working?); not merged",
                                e.seq,
                                e.seq + 1
                            )));
                        }
                    }
                }
                self.db.execute(
                    "INSERT INTO device_audit (public_key, seq, entry, hash) VALUES (?1, ?2, ?3, ?4)",
                    vals![&key, e.seq, serde_json::to_string(e).expect("serialisable"), &e.hash],
                )?;
                Ok(())
            }
        }
    }
}
