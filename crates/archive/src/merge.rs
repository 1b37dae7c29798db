//! Merging a verified bundle into the archive. The rules (docs/bundle-format.md, "Archive
//! merge rules"):
//! - a record the archive does not have is added;
//! - a newer version from the device that sent the current one replaces it;
//! - an equal or older version from that device changes nothing (replay, out of order);
//! - a different body from another device is a conflict: the current version stays, the
//!   incoming one is kept beside it until a coordinator resolves it. Nothing is overwritten
//!   silently.
//! Everything happens in one transaction that `commit` ends; any error rolls it all back.

use std::io::Write;

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testimony_core::bundle::{BundleAuditEntry, BundleSink, Counts, Manifest, RecordKind};
use testimony_core::vault::now;
use testimony_core::{Error, Result};

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
    /// Sequence numbers from this device that have not arrived (after this import).
    pub gaps: Vec<i64>,
    /// The bundle does not continue the chain the archive holds for this device.
    pub warnings: Vec<String>,
}

pub(crate) struct Merge<'c> {
    conn: &'c Connection,
    in_tx: bool,
    manifest: Option<Manifest>,
    report: ImportReport,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadBundle(m.into())
}

/// Text that search should find in a record.
fn searchable(kind: RecordKind, v: &Value) -> Option<String> {
    match kind {
        RecordKind::Answer => match &v["value"] {
            Value::String(s) => Some(s.clone()),
            Value::Object(o) => o.get("locality").and_then(Value::as_str).map(str::to_string),
            _ => None,
        },
        RecordKind::Note => v["text"].as_str().map(str::to_string),
        _ => None,
    }
    .filter(|s| !s.trim().is_empty())
}

fn kind_of(code: &str) -> Result<RecordKind> {
    RecordKind::parse(code).ok_or_else(|| bad(format!("unknown record type '{code}'")))
}

/// Writes `body` as the current version of a record (insert or replace) and its search entry.
pub(crate) fn replace_with(conn: &Connection, kind: &str, id: &str, body: &Value, key: &str) -> Result<()> {
    let k = kind_of(kind)?;
    let version = body["version"].as_i64().unwrap_or(0);
    let interview_id = match k {
        RecordKind::Interview => Some(id.to_string()),
        _ => body["interview_id"].as_str().map(str::to_string),
    };
    let witness_id = match k {
        RecordKind::Witness | RecordKind::WitnessIdentity => Some(id.to_string()),
        RecordKind::Consent | RecordKind::Interview => body["witness_id"].as_str().map(str::to_string),
        _ => match &interview_id {
            Some(i) => conn.query_row("SELECT witness_id FROM records WHERE kind = 'interview' AND id = ?1", [i], |r| r.get(0)).optional()?.flatten(),
            None => None,
        },
    };
    conn.execute(
        "INSERT INTO records (kind, id, version, source_key, interview_id, witness_id, updated_at, body, bundle_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, '')
         ON CONFLICT (kind, id) DO UPDATE SET version = ?3, source_key = ?4, interview_id = ?5, witness_id = ?6, updated_at = ?7, body = ?8",
        params![kind, id, version, key, interview_id, witness_id, body["updated_at"].as_str(), body.to_string()],
    )?;
    conn.execute("DELETE FROM search_index WHERE record_id = ?1", [id])?;
    if let Some(text) = searchable(k, body) {
        conn.execute(
            "INSERT INTO search_index (record_id, interview_id, kind, body) VALUES (?1, ?2, ?3, ?4)",
            params![id, interview_id.unwrap_or_default(), kind, text],
        )?;
    }
    Ok(())
}

impl<'c> Merge<'c> {
    pub fn new(conn: &'c Connection) -> Self {
        Merge { conn, in_tx: false, manifest: None, report: ImportReport::default() }
    }

    fn key(&self) -> &str {
        &self.report.public_key
    }

    pub fn stopped_report(self) -> ImportReport {
        self.report
    }

    pub fn rollback(&mut self) {
        if self.in_tx {
            let _ = self.conn.execute_batch("ROLLBACK");
            self.in_tx = false;
        }
    }

    /// Records the bundle and commits everything. Called only after the reader verified the
    /// whole bundle.
    pub fn commit(mut self) -> Result<ImportReport> {
        let m = self.manifest.take().expect("manifest seen");
        let key = self.report.public_key.clone();
        let done = (|| -> Result<()> {
            self.conn.execute("UPDATE records SET bundle_hash = ?1 WHERE bundle_hash = ''", [&self.report.bundle_hash])?;
            self.report.outcome = "imported".into();
            self.conn.execute(
                "INSERT INTO bundles (bundle_hash, bundle_id, public_key, device_id, sequence, previous_bundle_hash, kind, created_at, imported_at, manifest, summary)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    self.report.bundle_hash, m.bundle_id, key, m.device_id, m.sequence, m.previous_bundle_hash, m.kind, m.created_at, now(),
                    serde_json::to_string(&m).expect("serialisable"), serde_json::to_string(&self.report).expect("serialisable")
                ],
            )?;
            let seqs: Vec<i64> = self
                .conn
                .prepare("SELECT sequence FROM bundles WHERE public_key = ?1 ORDER BY sequence")?
                .query_map([&key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            self.report.gaps = super::gaps(&seqs);
            self.conn.execute_batch("COMMIT")?;
            self.in_tx = false;
            Ok(())
        })();
        if let Err(e) = done {
            self.rollback();
            return Err(e);
        }
        self.report.message = format!(
            "imported bundle {} from device {}: {} added, {} updated, {} unchanged, {} deleted, {} conflicts",
            m.sequence, m.device_id, self.report.added, self.report.updated, self.report.unchanged, self.report.deleted, self.report.conflicts
        );
        Ok(self.report)
    }

    fn witness_consent(&self, witness: &str) -> Result<Option<Value>> {
        let body: Option<String> = self.conn.query_row("SELECT body FROM records WHERE kind = 'consent' AND witness_id = ?1", [witness], |r| r.get(0)).optional()?;
        Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
    }

    /// The archive checks consent again: a device must never be able to push records the
    /// witness did not agree to share.
    fn check_consent(&self, kind: RecordKind, witness: Option<&str>) -> Result<()> {
        if matches!(kind, RecordKind::Consent | RecordKind::Tombstone) {
            return Ok(());
        }
        let witness = witness.ok_or_else(|| bad(format!("a {} record belongs to no known interview or witness", kind.code())))?;
        let consent = self.witness_consent(witness)?;
        let allowed = consent.as_ref().is_some_and(|c| c["withdrawn_at"].is_null() && c["scopes"]["share_archive"] == Value::Bool(true));
        if !allowed {
            return Err(bad("the bundle carries records of a witness whose consent does not allow sharing with the archive"));
        }
        if kind == RecordKind::WitnessIdentity && consent.as_ref().is_none_or(|c| c["scopes"]["publish_identified"] != Value::Bool(true)) {
            return Err(bad("the bundle carries identifying details the witness did not consent to"));
        }
        Ok(())
    }

    /// Removes everything but the witness and consent records of a witness who withdrew.
    fn purge_witness(&mut self, witness: &str) -> Result<()> {
        let ids: Vec<(String, String)> = self
            .conn
            .prepare("SELECT kind, id FROM records WHERE witness_id = ?1 AND kind NOT IN ('witness', 'consent')")?
            .query_map([witness], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        for (kind, id) in ids {
            self.conn.execute("DELETE FROM records WHERE kind = ?1 AND id = ?2", [&kind, &id])?;
            self.conn.execute("DELETE FROM search_index WHERE record_id = ?1", [&id])?;
            if kind == "attachment" {
                self.conn.execute("DELETE FROM attachments WHERE id = ?1", [&id])?;
            }
            self.report.purged_for_withdrawal += 1;
        }
        Ok(())
    }

    fn merge_record(&mut self, kind: RecordKind, id: &str, body: &Value) -> Result<()> {
        let deleted: Option<String> =
            self.conn.query_row("SELECT source_key FROM tombstones WHERE kind = ?1 AND id = ?2", [kind.code(), id], |r| r.get(0)).optional()?;
        if deleted.is_some_and(|k| k == self.report.public_key) {
            // Deleted by a later bundle that arrived first.
            self.report.unchanged += 1;
            return Ok(());
        }
        let current: Option<(String, String)> = self
            .conn
            .query_row("SELECT body, source_key FROM records WHERE kind = ?1 AND id = ?2", [kind.code(), id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        let key = self.key().to_string();
        match current {
            None => {
                replace_with(self.conn, kind.code(), id, body, &key)?;
                self.report.added += 1;
            }
            Some((cur_body, cur_key)) => {
                let cur: Value = serde_json::from_str(&cur_body).map_err(|_| Error::Corrupt("a stored record is not JSON".into()))?;
                if cur == *body {
                    self.report.unchanged += 1;
                } else if cur_key == key {
                    let (cv, nv) = (cur["version"].as_i64().unwrap_or(0), body["version"].as_i64().unwrap_or(0));
                    if nv > cv {
                        replace_with(self.conn, kind.code(), id, body, &key)?;
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

    fn conflict(&mut self, kind: &str, id: &str, cur_body: &str, cur_key: &str, incoming: &Value) -> Result<()> {
        let incoming = incoming.to_string();
        let known: Option<i64> = self
            .conn
            .query_row("SELECT id FROM conflicts WHERE kind = ?1 AND record_id = ?2 AND incoming_body = ?3", [kind, id, &incoming], |r| r.get(0))
            .optional()?;
        if known.is_none() {
            self.conn.execute(
                "INSERT INTO conflicts (kind, record_id, current_body, current_key, incoming_body, incoming_key, bundle_hash, detected_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![kind, id, cur_body, cur_key, incoming, self.report.public_key, self.report.bundle_hash, now()],
            )?;
            self.report.conflicts += 1;
        }
        Ok(())
    }
}

impl BundleSink for Merge<'_> {
    fn manifest(&mut self, m: &Manifest, bundle_hash: &str) -> Result<bool> {
        self.report = ImportReport {
            bundle_hash: bundle_hash.to_string(),
            public_key: m.device_public_key.clone(),
            device_id: m.device_id.clone(),
            sequence: m.sequence,
            kind: m.kind.clone(),
            counts: m.counts.clone(),
            ..Default::default()
        };
        let seen: Option<i64> = self.conn.query_row("SELECT sequence FROM bundles WHERE bundle_hash = ?1", [bundle_hash], |r| r.get(0)).optional()?;
        if seen.is_some() {
            self.report.outcome = "already_imported".into();
            self.report.message = format!("bundle {} from device {} was already imported; nothing changed", m.sequence, m.device_id);
            return Ok(false);
        }
        let trusted: Option<String> = self.conn.query_row("SELECT name FROM devices WHERE public_key = ?1", [&m.device_public_key], |r| r.get(0)).optional()?;
        if trusted.is_none() {
            self.report.outcome = "quarantined".into();
            self.report.message = format!(
                "the bundle is validly signed by a device the archive does not trust yet (key {}); it is kept in quarantine until `archive device trust`",
                m.device_public_key
            );
            return Ok(false);
        }
        let same_seq: Option<String> = self
            .conn
            .query_row("SELECT bundle_hash FROM bundles WHERE public_key = ?1 AND sequence = ?2", params![m.device_public_key, m.sequence], |r| r.get(0))
            .optional()?;
        if same_seq.is_some() {
            return Err(bad(format!(
                "a different bundle numbered {} from this device was already imported (a restored or copied vault?); not merged",
                m.sequence
            )));
        }
        if let Some(prev) = &m.previous_bundle_hash {
            let known: Option<i64> = self.conn.query_row("SELECT sequence FROM bundles WHERE bundle_hash = ?1", [prev], |r| r.get(0)).optional()?;
            let expected: Option<String> = self
                .conn
                .query_row("SELECT bundle_hash FROM bundles WHERE public_key = ?1 AND sequence = ?2", params![m.device_public_key, m.sequence - 1], |r| r.get(0))
                .optional()?;
            if known.is_none() && expected.is_some() {
                self.report.warnings.push(format!("bundle {} does not continue the chain of bundle {} held here", m.sequence, m.sequence - 1));
            }
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        self.in_tx = true;
        self.manifest = Some(m.clone());
        Ok(true)
    }

    fn codebook(&mut self, id: &str, version: &str, source: &str) -> Result<()> {
        let sha = hex::encode(Sha256::digest(source.as_bytes()));
        let known: Option<String> = self.conn.query_row("SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2", [id, version], |r| r.get(0)).optional()?;
        match known {
            Some(s) if s != sha => Err(bad(format!("codebook {id}@{version} differs from the one the archive already has under that version"))),
            Some(_) => Ok(()),
            None => {
                self.conn.execute("INSERT INTO codebooks (id, version, sha256, source) VALUES (?1, ?2, ?3, ?4)", params![id, version, sha, source])?;
                Ok(())
            }
        }
    }

    fn record(&mut self, kind: RecordKind, v: Value) -> Result<()> {
        if kind == RecordKind::Tombstone {
            let id = v["record_id"].as_str().unwrap_or_default().to_string();
            let target = kind_of(v["record_type"].as_str().unwrap_or_default())?;
            let current: Option<String> = self
                .conn
                .query_row("SELECT source_key FROM records WHERE kind = ?1 AND id = ?2", [target.code(), &id], |r| r.get(0))
                .optional()?;
            if current.as_deref().is_none_or(|k| k == self.report.public_key) {
                self.conn.execute(
                    "INSERT OR IGNORE INTO tombstones (kind, id, source_key, deleted_at) VALUES (?1, ?2, ?3, ?4)",
                    params![target.code(), id, self.report.public_key, v["deleted_at"].as_str().unwrap_or_default()],
                )?;
            }
            match current {
                Some(k) if k == self.report.public_key => {
                    self.conn.execute("DELETE FROM records WHERE kind = ?1 AND id = ?2", [target.code(), &id])?;
                    self.conn.execute("DELETE FROM search_index WHERE record_id = ?1", [&id])?;
                    self.report.deleted += 1;
                }
                Some(k) => {
                    let cur: String = self.conn.query_row("SELECT body FROM records WHERE kind = ?1 AND id = ?2", [target.code(), &id], |r| r.get(0))?;
                    self.conflict(target.code(), &id, &cur, &k, &v)?;
                }
                None => self.report.unchanged += 1,
            }
            return Ok(());
        }
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let witness = match kind {
            RecordKind::Witness | RecordKind::WitnessIdentity => Some(id.clone()),
            RecordKind::Consent | RecordKind::Interview => v["witness_id"].as_str().map(str::to_string),
            _ => match v["interview_id"].as_str() {
                Some(i) => self.conn.query_row("SELECT witness_id FROM records WHERE kind = 'interview' AND id = ?1", [i], |r| r.get(0)).optional()?.flatten(),
                None => None,
            },
        };
        self.check_consent(kind, witness.as_deref())?;
        self.merge_record(kind, &id, &v)?;
        if kind == RecordKind::Consent && !v["withdrawn_at"].is_null() {
            if let Some(w) = &witness {
                self.purge_witness(w)?;
            }
        }
        Ok(())
    }

    fn attachment(&mut self, id: &str, data: &[u8]) -> Result<()> {
        let known: Option<i64> = self.conn.query_row("SELECT 1 FROM attachments WHERE id = ?1", [id], |r| r.get(0)).optional()?;
        if known.is_none() {
            // Encrypted to the archive's own key so that the bytes stay encrypted at rest on
            // every back-end.
            let recipient: age::x25519::Recipient = {
                let secret: Vec<u8> = self.conn.query_row("SELECT value FROM secrets WHERE key = 'age_identity'", [], |r| r.get(0))?;
                let s = zeroize::Zeroizing::new(secret);
                let identity: age::x25519::Identity =
                    std::str::from_utf8(&s).ok().and_then(|s| s.parse().ok()).ok_or_else(|| Error::Corrupt("archive identity".into()))?;
                identity.to_public()
            };
            let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient)).expect("one recipient");
            let mut out = Vec::with_capacity(data.len() + 256);
            let mut w = enc.wrap_output(&mut out)?;
            w.write_all(data)?;
            w.finish()?;
            let sha = hex::encode(Sha256::digest(data));
            self.conn.execute("INSERT INTO attachments (id, sha256, size, data) VALUES (?1, ?2, ?3, ?4)", params![id, sha, data.len() as i64, out])?;
        }
        self.report.attachments += 1;
        Ok(())
    }

    fn audit_entry(&mut self, e: &BundleAuditEntry) -> Result<()> {
        let key = self.report.public_key.clone();
        let stored: Option<String> = self.conn.query_row("SELECT hash FROM device_audit WHERE public_key = ?1 AND seq = ?2", params![key, e.seq], |r| r.get(0)).optional()?;
        match stored {
            Some(h) if h != e.hash => Err(bad(format!("the device's audit chain differs from the one the archive holds at entry {}", e.seq))),
            Some(_) => Ok(()),
            None => {
                if e.seq > 1 {
                    let prev: Option<String> =
                        self.conn.query_row("SELECT hash FROM device_audit WHERE public_key = ?1 AND seq = ?2", params![key, e.seq - 1], |r| r.get(0)).optional()?;
                    if prev.is_some_and(|p| p != e.prev_hash) {
                        return Err(bad(format!("audit entry {} does not continue the device's chain held by the archive", e.seq)));
                    }
                }
                self.conn.execute(
                    "INSERT INTO device_audit (public_key, seq, entry, hash) VALUES (?1, ?2, ?3, ?4)",
                    params![key, e.seq, serde_json::to_string(e).expect("serialisable"), e.hash],
                )?;
                Ok(())
            }
        }
    }
}
