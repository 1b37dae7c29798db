//! The central archive: imports bundles from field devices (verified, idempotent, never half
//! applied), keeps conflicting versions side by side, quarantines bundles from devices that are
//! not trusted yet, and searches what was merged. Storage: an encrypted SQLCipher database in
//! the archive directory, built exactly like a vault (header + Argon2id + wrapped key).

mod merge;
mod schema;

use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::Serialize;
use serde_json::Value;
use testimony_core::bundle::{self, ReadOutcome};
use testimony_core::keys::{self, ARCHIVE_HEADER, Header, KdfParams};
use testimony_core::vault::{configure_db, now, open_encrypted_db};
use testimony_core::{Error, Result};
use zeroize::Zeroizing;

pub use merge::ImportReport;

pub const DB_FILE: &str = "archive.db";
pub const LOCK_FILE: &str = "archive.lock";
pub const QUARANTINE_DIR: &str = "quarantine";

pub struct Archive {
    conn: Connection,
    dir: PathBuf,
    _lock: File,
    identity: age::x25519::Identity,
}

impl std::fmt::Debug for Archive {
    // Never print the identity.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive").field("dir", &self.dir).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct DeviceInfo {
    pub public_key: String,
    pub name: String,
    pub trusted_at: String,
    pub device_ids: Vec<String>,
    pub bundles: i64,
    pub last_sequence: Option<i64>,
    /// Sequence numbers below the highest received that never arrived.
    pub gaps: Vec<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuarantinedBundle {
    pub bundle_hash: String,
    pub public_key: String,
    pub device_id: String,
    pub sequence: i64,
    pub received_at: String,
    pub counts: Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Conflict {
    pub id: i64,
    pub kind: String,
    pub record_id: String,
    pub current: Value,
    pub current_key: String,
    pub incoming: Value,
    pub incoming_key: String,
    pub detected_at: String,
    pub resolved_at: Option<String>,
    pub resolution: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct SearchHit {
    pub interview_id: String,
    pub record_id: String,
    pub kind: String,
    pub snippet: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TrustReport {
    pub public_key: String,
    pub name: String,
    /// Bundles released from quarantine and merged, in sequence order.
    pub merged: Vec<ImportReport>,
}

fn lock(dir: &Path) -> Result<File> {
    let f = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(dir.join(LOCK_FILE))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

fn restrict(path: &Path, mode: u32) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
    }
    let _ = (path, mode);
    Ok(())
}

impl Archive {
    /// Creates a new archive in `dir` (missing or empty) with a fresh age identity.
    pub fn create(dir: &Path, passphrase: &str) -> Result<Archive> {
        Self::create_with(dir, passphrase, KdfParams::default())
    }

    pub fn create_with(dir: &Path, passphrase: &str, kdf: KdfParams) -> Result<Archive> {
        keys::check_passphrase_strength(passphrase)?;
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            return Err(Error::AlreadyExists(dir.to_path_buf()));
        }
        fs::create_dir_all(dir.join(QUARANTINE_DIR))?;
        restrict(dir, 0o700)?;
        restrict(&dir.join(QUARANTINE_DIR), 0o700)?;
        let lock = lock(dir)?;
        let key = keys::random_data_key();
        let header = Header::seal_for(ARCHIVE_HEADER, &key, passphrase, kdf)?;
        let mut conn = open_encrypted_db(&dir.join(DB_FILE), &key, true)?;
        drop(key);
        configure_db(&conn)?;
        schema::migrations().to_latest(&mut conn)?;
        restrict(&dir.join(DB_FILE), 0o600)?;
        let identity = age::x25519::Identity::generate();
        {
            use age::secrecy::ExposeSecret;
            let secret = Zeroizing::new(identity.to_string().expose_secret().to_string());
            let tx = conn.transaction()?;
            tx.execute("INSERT INTO secrets (key, value) VALUES ('age_identity', ?1)", [secret.as_bytes()])?;
            tx.execute("INSERT INTO meta (key, value) VALUES ('created_at', ?1)", [now()])?;
            tx.commit()?;
        }
        // The header goes last: without it the directory is an unfinished archive.
        header.write_atomic_for(ARCHIVE_HEADER, dir)?;
        Ok(Archive { conn, dir: dir.to_path_buf(), _lock: lock, identity })
    }

    /// Opens an archive. A wrong passphrase, a damaged or foreign directory and a lock held by
    /// another process are distinct errors, and none of them changes a byte.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Archive> {
        let header = Header::read_for(ARCHIVE_HEADER, dir)?;
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(Error::NotAVault { path: dir.to_path_buf(), reason: "archive.db is missing".into() });
        }
        if !dir.join(LOCK_FILE).exists() {
            return Err(Error::NotAVault { path: dir.to_path_buf(), reason: "archive.lock is missing".into() });
        }
        let lock = lock(dir)?;
        let key = header.unseal(passphrase)?;
        let mut conn = open_encrypted_db(&db, &key, false)?;
        drop(key);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|_| Error::Corrupt("the archive database cannot be read".into()))?;
        if version as u64 > schema::LATEST {
            return Err(Error::NewerVersion { what: "archive schema", found: version as u64, supported: schema::LATEST });
        }
        let check: String = conn.query_row("PRAGMA quick_check", [], |r| r.get(0)).map_err(|_| Error::Corrupt("integrity check failed".into()))?;
        if check != "ok" {
            return Err(Error::Corrupt("integrity check failed".into()));
        }
        configure_db(&conn)?;
        schema::migrations().to_latest(&mut conn)?;
        let secret: Zeroizing<Vec<u8>> =
            Zeroizing::new(conn.query_row("SELECT value FROM secrets WHERE key = 'age_identity'", [], |r| r.get(0))?);
        let identity = std::str::from_utf8(&secret)
            .ok()
            .and_then(|s| s.parse::<age::x25519::Identity>().ok())
            .ok_or_else(|| Error::Corrupt("the archive identity is damaged".into()))?;
        Ok(Archive { conn, dir: dir.to_path_buf(), _lock: lock, identity })
    }

    /// The `age1…` recipient field devices encrypt their bundles to.
    pub fn recipient(&self) -> String {
        self.identity.to_public().to_string()
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Trusts a device's signing key, then merges its quarantined bundles in sequence order.
    pub fn trust_device(&mut self, public_key: &str, name: &str) -> Result<TrustReport> {
        let key = public_key.trim().to_ascii_lowercase();
        if key.len() != 64 || !key.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::Invalid("a device key is 64 hexadecimal characters (as printed by `testimony device id`)".into()));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.contains('\n') {
            return Err(Error::Invalid("a device name is one line of at most 100 characters".into()));
        }
        self.conn.execute(
            "INSERT INTO devices (public_key, name, trusted_at) VALUES (?1, ?2, ?3) ON CONFLICT (public_key) DO UPDATE SET name = ?2",
            params![key, name, now()],
        )?;
        let waiting: Vec<(String, String)> = {
            let mut st = self.conn.prepare("SELECT bundle_hash, file FROM quarantine WHERE public_key = ?1 ORDER BY sequence")?;
            st.query_map([&key], |r| Ok((r.get(0)?, r.get(1)?)))?.collect::<rusqlite::Result<_>>()?
        };
        let mut merged = Vec::new();
        for (hash, file) in waiting {
            let path = self.dir.join(QUARANTINE_DIR).join(&file);
            let report = self.import(&path)?;
            self.conn.execute("DELETE FROM quarantine WHERE bundle_hash = ?1", [&hash])?;
            let _ = fs::remove_file(&path);
            merged.push(report);
        }
        Ok(TrustReport { public_key: key, name: name.to_string(), merged })
    }

    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let mut st = self.conn.prepare("SELECT public_key, name, trusted_at FROM devices ORDER BY trusted_at")?;
        let rows: Vec<(String, String, String)> = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?.collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for (public_key, name, trusted_at) in rows {
            let seqs: Vec<i64> = self
                .conn
                .prepare("SELECT sequence FROM bundles WHERE public_key = ?1 ORDER BY sequence")?
                .query_map([&public_key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let device_ids: Vec<String> = self
                .conn
                .prepare("SELECT DISTINCT device_id FROM bundles WHERE public_key = ?1 ORDER BY device_id")?
                .query_map([&public_key], |r| r.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            out.push(DeviceInfo {
                gaps: gaps(&seqs),
                bundles: seqs.len() as i64,
                last_sequence: seqs.last().copied(),
                public_key,
                name,
                trusted_at,
                device_ids,
            });
        }
        Ok(out)
    }

    /// Imports one bundle file: verified, merged in one transaction, or rejected with nothing
    /// changed. Importing the same bundle again changes nothing and says so.
    pub fn import(&mut self, path: &Path) -> Result<ImportReport> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(Error::Invalid(format!("{} is not a file", path.display())));
        }
        let identities = [self.identity.clone()];
        let mut sink = merge::Merge::new(&self.conn);
        let result = bundle::read_bundle(BufReader::new(File::open(path)?), &identities, &mut sink);
        match result {
            Ok(ReadOutcome::Complete) => {
                let report = sink.commit()?;
                Ok(report)
            }
            Ok(ReadOutcome::Stopped) => {
                let mut report = sink.stopped_report();
                if report.outcome == "quarantined" {
                    self.quarantine(path, &mut report)?;
                }
                Ok(report)
            }
            Err(e) => {
                sink.rollback();
                Err(e)
            }
        }
    }

    /// Keeps an untrusted bundle (still encrypted to the archive) until its device is trusted.
    fn quarantine(&self, path: &Path, report: &mut ImportReport) -> Result<()> {
        let known: Option<String> = self.conn.query_row("SELECT file FROM quarantine WHERE bundle_hash = ?1", [&report.bundle_hash], |r| r.get(0)).optional()?;
        if known.is_some() {
            report.message = "already in quarantine: the device is not trusted yet".into();
            return Ok(());
        }
        let file = format!("{}.tbundle", &report.bundle_hash);
        let dest = self.dir.join(QUARANTINE_DIR).join(&file);
        let tmp = self.dir.join(QUARANTINE_DIR).join(format!(".{file}.partial"));
        {
            let mut out = OpenOptions::new().write(true).create(true).truncate(true).open(&tmp)?;
            let mut input = File::open(path)?;
            std::io::copy(&mut input, &mut out)?;
            out.flush()?;
            out.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        File::open(self.dir.join(QUARANTINE_DIR))?.sync_all()?;
        self.conn.execute(
            "INSERT INTO quarantine (bundle_hash, public_key, device_id, sequence, received_at, file, counts) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![report.bundle_hash, report.public_key, report.device_id, report.sequence, now(), file, serde_json::to_string(&report.counts).expect("serialisable")],
        )?;
        Ok(())
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantinedBundle>> {
        let mut st = self.conn.prepare("SELECT bundle_hash, public_key, device_id, sequence, received_at, counts FROM quarantine ORDER BY received_at")?;
        let rows = st.query_map([], |r| {
            Ok(QuarantinedBundle {
                bundle_hash: r.get(0)?,
                public_key: r.get(1)?,
                device_id: r.get(2)?,
                sequence: r.get(3)?,
                received_at: r.get(4)?,
                counts: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or(Value::Null),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Interviews in the archive, newest first, with their witness code.
    pub fn interviews(&self) -> Result<Vec<Value>> {
        let mut st = self.conn.prepare("SELECT body FROM records WHERE kind = 'interview' ORDER BY id DESC")?;
        let rows = st.query_map([], |r| r.get::<_, String>(0))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(serde_json::from_str(&r?).map_err(|_| Error::Corrupt("a stored record is not JSON".into()))?);
        }
        Ok(out)
    }

    /// One interview with its witness (profile only unless identity was shared), consent,
    /// group instances, answers, notes and attachment list.
    pub fn interview_detail(&self, id: &str) -> Result<Value> {
        let get = |kind: &str, id: &str| -> Result<Option<Value>> {
            let body: Option<String> = self.conn.query_row("SELECT body FROM records WHERE kind = ?1 AND id = ?2", [kind, id], |r| r.get(0)).optional()?;
            Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
        };
        let interview = get("interview", id)?.ok_or_else(|| Error::NotFound("interview", id.to_string()))?;
        let witness_id = interview["witness_id"].as_str().unwrap_or_default().to_string();
        let children = |kind: &str| -> Result<Vec<Value>> {
            let mut st = self.conn.prepare("SELECT body FROM records WHERE kind = ?1 AND interview_id = ?2 ORDER BY id")?;
            let rows = st.query_map([kind, id], |r| r.get::<_, String>(0))?;
            Ok(rows.filter_map(|r| r.ok().and_then(|b| serde_json::from_str(&b).ok())).collect())
        };
        let consent: Option<String> = self.conn.query_row("SELECT body FROM records WHERE kind = 'consent' AND witness_id = ?1", [&witness_id], |r| r.get(0)).optional()?;
        Ok(serde_json::json!({
            "interview": interview,
            "witness": get("witness", &witness_id)?,
            "consent": consent.and_then(|b| serde_json::from_str::<Value>(&b).ok()),
            "instances": children("group_instance")?,
            "answers": children("answer")?,
            "notes": children("note")?,
            "attachments": children("attachment")?,
        }))
    }

    /// An attachment's bytes, decrypted and checked against their hash.
    pub fn attachment_data(&self, id: &str) -> Result<Vec<u8>> {
        let (sha, data): (String, Vec<u8>) = self
            .conn
            .query_row("SELECT sha256, data FROM attachments WHERE id = ?1", [id], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?
            .ok_or_else(|| Error::NotFound("attachment", id.to_string()))?;
        let mut plain = Vec::new();
        bundle::decrypt(&data[..], std::slice::from_ref(&self.identity))?
            .read_to_end(&mut plain)
            .map_err(|_| Error::Corrupt(format!("attachment {id} cannot be decrypted")))?;
        use sha2::Digest;
        if hex::encode(sha2::Sha256::digest(&plain)) != sha {
            return Err(Error::Corrupt(format!("attachment {id} does not match its hash")));
        }
        Ok(plain)
    }

    /// Full-text search over answers and notes (trigram index; LIKE for 1–2 characters).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let q = query.trim();
        if q.is_empty() {
            return Err(Error::Invalid("empty search".into()));
        }
        let limit = limit.clamp(1, 1000) as i64;
        let map = |r: &rusqlite::Row| Ok(SearchHit { record_id: r.get(0)?, interview_id: r.get(1)?, kind: r.get(2)?, snippet: r.get(3)? });
        let hits = if q.chars().count() >= 3 {
            let phrase = format!("\"{}\"", q.replace('"', "\"\""));
            let mut st = self.conn.prepare(
                "SELECT record_id, interview_id, kind, snippet(search_index, 3, '', '', '…', 12) FROM search_index WHERE search_index MATCH ?1 ORDER BY rank LIMIT ?2",
            )?;
            st.query_map(params![phrase, limit], map)?.collect::<rusqlite::Result<Vec<_>>>()?
        } else {
            let pattern = format!("%{}%", q.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_"));
            let mut st = self.conn.prepare(
                "SELECT record_id, interview_id, kind, substr(body, 1, 80) FROM search_index WHERE body LIKE ?1 ESCAPE '\\' LIMIT ?2",
            )?;
            st.query_map(params![pattern, limit], map)?.collect::<rusqlite::Result<Vec<_>>>()?
        };
        Ok(hits)
    }

    pub fn conflicts(&self, include_resolved: bool) -> Result<Vec<Conflict>> {
        let sql = format!(
            "SELECT id, kind, record_id, current_body, current_key, incoming_body, incoming_key, detected_at, resolved_at, resolution FROM conflicts {} ORDER BY id",
            if include_resolved { "" } else { "WHERE resolved_at IS NULL" }
        );
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map([], |r| {
            let j = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
            Ok(Conflict {
                id: r.get(0)?,
                kind: r.get(1)?,
                record_id: r.get(2)?,
                current: j(r.get(3)?),
                current_key: r.get(4)?,
                incoming: j(r.get(5)?),
                incoming_key: r.get(6)?,
                detected_at: r.get(7)?,
                resolved_at: r.get(8)?,
                resolution: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Settles a conflict: keep the archive's current version, or take the incoming one.
    pub fn resolve_conflict(&mut self, id: i64, take_incoming: bool) -> Result<Conflict> {
        let c = self
            .conflicts(true)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::NotFound("conflict", id.to_string()))?;
        if c.resolved_at.is_some() {
            return Err(Error::NotAllowed(format!("conflict {id} is already resolved")));
        }
        let tx = self.conn.transaction()?;
        if take_incoming {
            merge::replace_with(&tx, &c.kind, &c.record_id, &c.incoming, &c.incoming_key)?;
        }
        tx.execute(
            "UPDATE conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1",
            params![id, now(), if take_incoming { "incoming" } else { "current" }],
        )?;
        tx.commit()?;
        Ok(self.conflicts(true)?.into_iter().find(|c| c.id == id).expect("just resolved"))
    }
}

fn gaps(sorted: &[i64]) -> Vec<i64> {
    let mut out = Vec::new();
    let mut expect = 1;
    for &s in sorted {
        while expect < s {
            out.push(expect);
            expect += 1;
        }
        expect = s + 1;
    }
    out
}
