//! Return bundles: what the archive sends back to one device (docs/bundle-format.md, "Return
//! bundles"). For a device, the archive collects
//! - codebook versions the device has not declared in its own bundles nor been sent yet
//!   (published here with `archive codebook add`), and any codebook an included interview uses;
//! - for the interviews the device made, or that were assigned to it (a translator's laptop),
//!   every record whose current version here did not come from that device and differs from
//!   what it was last sent: other devices' edits and notes (translations, reviews), and
//!   versions a coordinator chose when resolving a conflict.
//!
//! Recordings go with their markers and audio (`audio/<id>.wav`, streamed from the archive's
//! encrypted parts), to a device that does not have them: never to the device that sent the
//! recording, and once per device (what was sent is remembered; `--full` sends it again). A
//! recording's markers, transcripts and segments go only to a device that has the recording
//! or gets it in the same bundle; a recording sent now takes all of them along.
//!
//! Consent is checked again: nothing of a witness who did not consent to sharing, or withdrew,
//! is sent; no recording (nor its markers, transcripts or segments) unless the consent also
//! allows audio recording (`record_audio`). Identifying details and attachments never travel
//! back.
//!
//! The bundle is signed with the archive's own Ed25519 key and encrypted to the device's age
//! key, which the device announced in its signed bundles. What was sent is recorded in the
//! same transaction that numbers the bundle, committed only after the file is complete.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::Path;

use ed25519_dalek::SigningKey;
use rusqlite::OptionalExtension;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use testimony_core::Error as CoreError;
use testimony_core::bundle::{
    Counts, RETURN_KINDS, RecordKind, ReturnAudio, ReturnBundle, write_return_bundle,
};
use testimony_core::codebook::Codebook;
use testimony_core::vault::now;

use crate::error::{Error, Result};
use zeroize::Zeroizing;

use crate::store::vals;
use crate::{Archive, META_ARCHIVE_ID};

#[derive(Debug, Clone, Serialize)]
pub struct ReturnReport {
    pub path: std::path::PathBuf,
    pub device: String,
    pub sequence: i64,
    pub bundle_hash: String,
    pub codebooks: Vec<String>,
    pub counts: Counts,
    /// Interviews left out because the witness's consent does not allow sharing.
    pub withheld_interviews: u64,
    /// Recordings left out because the witness's consent does not allow audio recording.
    pub withheld_recordings: u64,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ArchiveId {
    pub archive_id: String,
    /// Devices encrypt their bundles to this.
    pub recipient: String,
    /// Devices check return bundles against this (`testimony trust-archive KEY`).
    pub signing_key: String,
}

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

impl Archive {
    /// The archive's Ed25519 signing key, for return bundles. Made on first use (archives
    /// created before return bundles have none) and kept with the age identity.
    fn signing_key(&self) -> Result<SigningKey> {
        let stored: Option<Zeroizing<Vec<u8>>> = self
            .conn
            .query_row(
                "SELECT value FROM secrets WHERE key = 'archive_signing_key'",
                [],
                |r| r.get(0),
            )
            .optional()?
            .map(Zeroizing::new);
        let bytes = match stored {
            Some(b) => b,
            None => {
                let key = SigningKey::generate(&mut rand::rngs::OsRng);
                let secret = Zeroizing::new(key.to_bytes().to_vec());
                self.conn.execute(
                    "INSERT INTO secrets (key, value) VALUES ('archive_signing_key', ?1)",
                    [&secret[..]],
                )?;
                secret
            }
        };
        let arr: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
            Error::Core(CoreError::Corrupt(
                "the archive signing key is damaged".into(),
            ))
        })?;
        Ok(SigningKey::from_bytes(&arr))
    }

    /// What a coordinator reads out when enrolling a device.
    pub fn id(&self) -> Result<ArchiveId> {
        let archive_id: String = self.conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_ARCHIVE_ID],
            |r| r.get(0),
        )?;
        Ok(ArchiveId {
            archive_id,
            recipient: self.recipient(),
            signing_key: hex::encode(self.signing_key()?.verifying_key().to_bytes()),
        })
    }

    /// Publishes a codebook version (checked like any codebook) for the next return bundles.
    pub fn add_codebook(&mut self, source: &str, file: &str) -> Result<(String, String, bool)> {
        let cb = Codebook::parse(source, file)?;
        let mut db = self.db();
        let known = db.text_opt(
            "SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2",
            vals![&cb.id, &cb.version],
        )?;
        match known {
            Some(s) if s == cb.sha256 => Ok((cb.id, cb.version, false)),
            Some(_) => Err(Error::Core(CoreError::not_allowed(format!(
                "the archive already has codebook {} version {} with different content; give the changed codebook a new version",
                cb.id, cb.version
            )))),
            None => {
                db.execute(
                    "INSERT INTO codebooks (id, version, sha256, source) VALUES (?1, ?2, ?3, ?4)",
                    vals![&cb.id, &cb.version, &cb.sha256, &cb.source],
                )?;
                Ok((cb.id, cb.version, true))
            }
        }
    }

    /// Sends an interview to a device (a translator's) with its next return bundles.
    pub fn assign(&mut self, public_key: &str, interview_id: &str) -> Result<()> {
        let key = public_key.trim().to_ascii_lowercase();
        let mut db = self.db();
        if db
            .text_opt(
                "SELECT name FROM devices WHERE public_key = ?1",
                vals![&key],
            )?
            .is_none()
        {
            return Err(Error::Core(CoreError::NotFound("trusted device", key)));
        }
        if db
            .text_opt(
                "SELECT id FROM records WHERE kind = 'interview' AND id = ?1",
                vals![interview_id],
            )?
            .is_none()
        {
            return Err(Error::Core(CoreError::NotFound(
                "interview",
                interview_id.to_string(),
            )));
        }
        db.execute(
            "INSERT INTO assignments (public_key, interview_id, assigned_at) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            vals![&key, interview_id, now()],
        )?;
        Ok(())
    }

    /// Writes the next return bundle for a device to `out` (which must not exist). `full`
    /// sends everything the device should have again, not only what changed since the last.
    pub fn export_return(
        &mut self,
        public_key: &str,
        out: &Path,
        full: bool,
    ) -> Result<ReturnReport> {
        let key = public_key.trim().to_ascii_lowercase();
        let signing_key = self.signing_key()?;
        let archive_id: String = self.conn.query_row(
            "SELECT value FROM meta WHERE key = ?1",
            [META_ARCHIVE_ID],
            |r| r.get(0),
        )?;
        let mut db = self.db();
        let device = db
            .query_opt(
                "SELECT name, recipient FROM devices WHERE public_key = ?1",
                vals![&key],
            )?
            .ok_or_else(|| Error::Core(CoreError::NotFound("trusted device", key.clone())))?;
        let recipient = device.opt_text(1)?.ok_or_else(|| {
            Error::Core(CoreError::not_allowed("the archive does not know this device's encryption key yet: import a bundle the device made with this version of Testimony first".into()))
        })?;

        // Codebooks the device has: declared in its bundles, or sent to it before.
        let mut has: HashSet<(String, String)> = HashSet::new();
        for r in db.query(
            "SELECT manifest FROM bundles WHERE public_key = ?1",
            vals![&key],
        )? {
            let m: Value = serde_json::from_str(&r.text(0)?).map_err(|_| {
                Error::Core(CoreError::Corrupt("a stored manifest is not JSON".into()))
            })?;
            for c in m["codebooks"].as_array().into_iter().flatten() {
                has.insert((
                    c["id"].as_str().unwrap_or_default().into(),
                    c["version"].as_str().unwrap_or_default().into(),
                ));
            }
        }
        let sent_codebooks: HashSet<(String, String)> = db
            .query(
                "SELECT id, version FROM return_codebooks WHERE public_key = ?1",
                vals![&key],
            )?
            .iter()
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .collect::<Result<_>>()?;

        // The device's interviews: those it made, and those assigned to it.
        let mut interviews: BTreeSet<String> = BTreeSet::new();
        for r in db.query(
            "SELECT id FROM records WHERE kind = 'interview' AND source_key = ?1",
            vals![&key],
        )? {
            interviews.insert(r.text(0)?);
        }
        for r in db.query(
            "SELECT interview_id FROM assignments WHERE public_key = ?1",
            vals![&key],
        )? {
            interviews.insert(r.text(0)?);
        }
        let sent: BTreeMap<(String, String), String> = db
            .query(
                "SELECT kind, id, sha256 FROM return_sent WHERE public_key = ?1",
                vals![&key],
            )?
            .iter()
            .map(|r| Ok(((r.text(0)?, r.text(1)?), r.text(2)?)))
            .collect::<Result<_>>()?;

        let mut records: Vec<(RecordKind, Value)> = Vec::new();
        let mut sent_now: Vec<(String, String, String)> = Vec::new();
        let mut needed_codebooks: BTreeSet<(String, String)> = BTreeSet::new();
        let mut withheld = 0u64;
        let mut withheld_recordings = 0u64;
        let mut audio: Vec<ReturnAudio> = Vec::new();
        let mut seen_witness = HashSet::new();
        for iv in &interviews {
            let row = db.query_opt(
                "SELECT body, witness_id FROM records WHERE kind = 'interview' AND id = ?1",
                vals![iv],
            )?;
            let Some(row) = row else { continue };
            let body: Value = serde_json::from_str(&row.text(0)?).map_err(|_| {
                Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
            })?;
            let witness = row.opt_text(1)?.unwrap_or_default();
            let consent = db
                .text_opt(
                    "SELECT body FROM records WHERE kind = 'consent' AND witness_id = ?1",
                    vals![&witness],
                )?
                .and_then(|c| serde_json::from_str::<Value>(&c).ok());
            let shared = consent.as_ref().is_some_and(|c| {
                c["withdrawn_at"].is_null() && c["scopes"]["share_archive"] == Value::Bool(true)
            });
            let audio_allowed = shared
                && consent
                    .as_ref()
                    .is_some_and(|c| c["scopes"]["record_audio"] == Value::Bool(true));
            if !shared {
                withheld += 1;
                continue;
            }
            let cb = (
                body["codebook_id"].as_str().unwrap_or_default().to_string(),
                body["codebook_version"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            );
            let mut rows = Vec::new();
            if seen_witness.insert(witness.clone()) {
                rows.extend(db.query("SELECT kind, id, body, source_key FROM records WHERE kind IN ('witness', 'consent') AND witness_id = ?1", vals![&witness])?);
            }
            let mut any = false;
            // Recordings first: which ones the device has (it made them, or was sent them) or
            // gets now decides what of their markers and transcripts can go.
            let mut with_device: HashSet<String> = HashSet::new();
            let mut sending_now: HashSet<String> = HashSet::new();
            for r in db.query("SELECT id, body, source_key FROM records WHERE kind = 'recording' AND interview_id = ?1 ORDER BY id", vals![iv])? {
                let (id, body, source) = (r.text(0)?, r.text(1)?, r.text(2)?);
                if source == key {
                    with_device.insert(id); // its own recording never goes back
                    continue;
                }
                if !audio_allowed {
                    withheld_recordings += 1;
                    continue;
                }
                if db.query_opt("SELECT id FROM conflicts WHERE kind = 'recording' AND record_id = ?1 AND resolved_at IS NULL", vals![&id])?.is_some() {
                    continue;
                }
                let h = sha(&body);
                if !full && sent.get(&("recording".to_string(), id.clone())) == Some(&h) {
                    with_device.insert(id); // sent before: audio never changes once stopped
                    continue;
                }
                let a = db
                    .query_opt("SELECT sha256, size FROM audio WHERE recording_id = ?1", vals![&id])?
                    .ok_or_else(|| Error::Core(CoreError::Corrupt(format!("the archive holds recording {id} without its audio"))))?;
                audio.push(ReturnAudio { recording_id: id.clone(), size: a.int(1)? as u64, sha256: a.text(0)? });
                records.push((RecordKind::Recording, serde_json::from_str(&body).map_err(|_| Error::Core(CoreError::Corrupt("a stored record is not JSON".into())))?));
                sent_now.push(("recording".into(), id.clone(), h));
                with_device.insert(id.clone());
                sending_now.insert(id);
                any = true;
            }
            rows.extend(db.query(
                "SELECT kind, id, body, source_key FROM records WHERE (kind = 'interview' AND id = ?1) OR (kind IN ('group_instance', 'answer', 'note', 'audio_marker', 'transcript', 'transcript_segment') AND interview_id = ?1) ORDER BY kind, id",
                vals![iv],
            )?);
            // Transcript id → its recording, for segments.
            let mut transcript_recording: BTreeMap<String, String> = BTreeMap::new();
            for r in &rows {
                if r.text(0)? == "transcript" {
                    let body: Value = serde_json::from_str(&r.text(2)?).map_err(|_| {
                        Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
                    })?;
                    transcript_recording.insert(
                        r.text(1)?,
                        body["recording_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string(),
                    );
                }
            }
            for r in rows {
                let (kind, id, body, source) = (r.text(0)?, r.text(1)?, r.text(2)?, r.text(3)?);
                if source == key {
                    continue; // the device sent this version itself
                }
                // What belongs to a recording goes only where the recording is.
                let recording = match kind.as_str() {
                    "audio_marker" | "transcript" => {
                        let b: Value = serde_json::from_str(&body).map_err(|_| {
                            Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
                        })?;
                        Some(b["recording_id"].as_str().unwrap_or_default().to_string())
                    }
                    "transcript_segment" => {
                        let b: Value = serde_json::from_str(&body).map_err(|_| {
                            Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
                        })?;
                        Some(
                            transcript_recording
                                .get(b["transcript_id"].as_str().unwrap_or_default())
                                .cloned()
                                .unwrap_or_default(),
                        )
                    }
                    _ => None,
                };
                if recording
                    .as_ref()
                    .is_some_and(|rid| !with_device.contains(rid))
                {
                    continue;
                }
                // Held back while a coordinator has not settled a conflict on it: the device
                // keeps its own version meanwhile.
                if db.query_opt("SELECT id FROM conflicts WHERE kind = ?1 AND record_id = ?2 AND resolved_at IS NULL", vals![&kind, &id])?.is_some() {
                    continue;
                }
                let h = sha(&body);
                // A recording sent now takes everything of it along, even what went before
                // (to a device that could not apply it without the recording).
                let fresh = recording
                    .as_ref()
                    .is_some_and(|rid| sending_now.contains(rid));
                if !full && !fresh && sent.get(&(kind.clone(), id.clone())) == Some(&h) {
                    continue;
                }
                let k = RecordKind::parse(&kind)
                    .filter(|k| RETURN_KINDS.contains(k))
                    .ok_or_else(|| {
                        Error::Core(CoreError::Corrupt(format!("unexpected record type {kind}")))
                    })?;
                records.push((
                    k,
                    serde_json::from_str(&body).map_err(|_| {
                        Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
                    })?,
                ));
                sent_now.push((kind, id, h));
                any = true;
            }
            if any && (full || !has.contains(&cb)) {
                needed_codebooks.insert(cb);
            }
        }
        // Codebooks: published ones the device lacks, plus those the records need.
        let mut codebooks = Vec::new();
        for r in db.query(
            "SELECT id, version, source FROM codebooks ORDER BY id, version",
            &[],
        )? {
            let (id, version, source) = (r.text(0)?, r.text(1)?, r.text(2)?);
            let pair = (id.clone(), version.clone());
            let lacking = !has.contains(&pair) && !sent_codebooks.contains(&pair);
            if needed_codebooks.contains(&pair) || lacking || (full && !has.contains(&pair)) {
                codebooks.push((id, version, source));
            }
        }
        if records.is_empty() && codebooks.is_empty() {
            return Err(Error::Core(CoreError::NothingToExport("the device already has everything the archive would send it; use --full to send it all again".into())));
        }
        let (last_seq, last_hash) = match db.query_opt("SELECT sequence, bundle_hash FROM return_bundles WHERE public_key = ?1 ORDER BY sequence DESC LIMIT 1", vals![&key])? {
            Some(r) => (r.int(0)?, Some(r.text(1)?)),
            None => (0, None),
        };
        let spec = ReturnBundle {
            signing_key: &signing_key,
            archive_id,
            target_device: key.clone(),
            recipient,
            sequence: last_seq + 1,
            previous_bundle_hash: last_hash,
            codebooks: codebooks.clone(),
            records,
            audio,
        };
        // Record what is sent in one transaction, committed only once the file is complete;
        // if the commit fails the file is removed, so numbering and content never diverge.
        db.begin()?;
        let done = (|| -> Result<ReturnReport> {
            let identity = &self.identity;
            let written = write_return_bundle(&spec, out, &mut |id, w| {
                crate::stream_audio(&mut db, identity, id, w)
                    .map(drop)
                    .map_err(CoreError::from)
            })?;
            let report = ReturnReport {
                path: out.to_path_buf(),
                device: key.clone(),
                sequence: spec.sequence,
                bundle_hash: written.bundle_hash.clone(),
                codebooks: codebooks
                    .iter()
                    .map(|(i, v, _)| format!("{i}@{v}"))
                    .collect(),
                counts: written.manifest.counts.clone(),
                withheld_interviews: withheld,
                withheld_recordings,
                bytes: written.bytes,
            };
            db.execute(
                "INSERT INTO return_bundles (public_key, sequence, bundle_hash, created_at, summary) VALUES (?1, ?2, ?3, ?4, ?5)",
                vals![&key, spec.sequence, &written.bundle_hash, now(), serde_json::to_string(&report).expect("serialisable")],
            )?;
            for (kind, id, h) in &sent_now {
                db.execute(
                    "INSERT INTO return_sent (public_key, kind, id, sha256) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (public_key, kind, id) DO UPDATE SET sha256 = excluded.sha256",
                    vals![&key, kind, id, h],
                )?;
            }
            for (id, version, _) in &codebooks {
                db.execute("INSERT INTO return_codebooks (public_key, id, version) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING", vals![&key, id, version])?;
            }
            db.commit()?;
            Ok(report)
        })();
        match done {
            Ok(r) => Ok(r),
            Err(e) => {
                db.rollback();
                if !matches!(e, Error::Core(CoreError::AlreadyExists(_))) {
                    let _ = std::fs::remove_file(out);
                }
                Err(e)
            }
        }
    }
}
