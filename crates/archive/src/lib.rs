//! The central archive: imports bundles from field devices (verified, idempotent, never half
//! applied), keeps conflicting versions side by side, quarantines bundles from devices that are
//! not trusted yet, and searches what was merged.
//!
//! Storage ([`Backend`]): the archive directory always holds an encrypted SQLCipher database
//! built exactly like a vault (header + Argon2id + wrapped key) with the archive's secrets (its
//! age identity) and settings. The records live either in that same database (embedded, the
//! default) or in a PostgreSQL database (`--postgres URL`), with the same tables; attachment
//! bytes are age-encrypted to the archive key on both. The merge rules (`merge.rs`) are written
//! once over the storage layer (`store.rs`).

mod error;
mod merge;
mod returns;
mod schema;
mod store;

use std::cell::RefCell;
use std::fs::{self, File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::Value;
use sha2::Digest as _;
use testimony_core::Error as CoreError;
use testimony_core::bundle::{self, ReadOutcome};
use testimony_core::keys::{self, ARCHIVE_HEADER, Header, KdfParams};
use testimony_core::vault::{configure_db, new_id, now, open_encrypted_db};
use zeroize::Zeroizing;

pub use error::{Error, Result};
pub use merge::ImportReport;
pub use returns::{ArchiveId, ReturnReport};
use store::{Db, PgStore, vals};

pub const DB_FILE: &str = "archive.db";
pub const LOCK_FILE: &str = "archive.lock";
pub const QUARANTINE_DIR: &str = "quarantine";

/// Where an archive keeps its records.
#[derive(Clone, PartialEq, Eq)]
pub enum Backend {
    /// In the archive directory's own SQLCipher database (`archive.db`).
    Embedded,
    /// In a PostgreSQL database, given as a libpq connection string
    /// (`host=… port=… user=… dbname=…` or `postgresql://user@host:port/dbname`). The
    /// database must be empty when the archive is created, and holds one archive. No TLS:
    /// use it on loopback or a trusted network.
    Postgres(String),
}

impl Backend {
    /// `--postgres URL` given or not.
    pub fn from_postgres_url(url: Option<&str>) -> Backend {
        url.map_or(Backend::Embedded, |u| Backend::Postgres(u.to_string()))
    }
}

impl std::fmt::Debug for Backend {
    // The connection string may carry a password: show only the non-secret parts.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Backend::Embedded => f.write_str("Embedded"),
            Backend::Postgres(url) => {
                let target = store::pg_config(url)
                    .map(|c| store::describe(&c))
                    .unwrap_or_else(|_| "unreadable connection string".into());
                write!(f, "Postgres({target})")
            }
        }
    }
}

/// Prepared statements kept per embedded connection (the merge uses a few dozen).
const STATEMENT_CACHE: usize = 64;

/// `meta` keys in the local SQLCipher database.
const META_BACKEND: &str = "backend";
const META_PG_TARGET: &str = "postgres_target";
const META_ARCHIVE_ID: &str = "archive_id";

pub struct Archive {
    /// The local SQLCipher database: secrets and settings always; the records too when
    /// embedded.
    conn: Connection,
    /// The PostgreSQL connection when the records live there. A `RefCell` because the client
    /// needs `&mut` for every statement, and reading methods take `&self`.
    pg: Option<RefCell<PgStore>>,
    dir: PathBuf,
    _lock: File,
    identity: age::x25519::Identity,
}

impl std::fmt::Debug for Archive {
    // Never print the identity.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Archive")
            .field("dir", &self.dir)
            .field("backend", &self.backend_description())
            .finish_non_exhaustive()
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
    /// `untrusted` (the device is not trusted yet) or `waiting` (for an earlier bundle).
    pub reason: String,
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
    Ok(testimony_core::vault::lock_dir(dir, LOCK_FILE)?)
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

/// Whether a PostgreSQL database already holds an archive.
fn pg_has_archive(pg: &mut PgStore) -> Result<bool> {
    let row = pg.query("SELECT to_regclass('archive_meta')::text", &[])?;
    Ok(row
        .first()
        .is_some_and(|r| r.opt_text(0).ok().flatten().is_some()))
}

/// Connects to an archive's PostgreSQL database: the right archive, not newer than this
/// program, not open elsewhere; then brings its schema up to date.
fn open_pg(dir: &Path, url: &str, archive_id: &str) -> Result<PgStore> {
    let mut pg = PgStore::connect(url)?;
    let wrong = |pg: &PgStore, what: &str| {
        Error::Core(CoreError::invalid(format!(
            "the PostgreSQL database ({}) {what}; check the --postgres connection string for {}",
            pg.target,
            dir.display()
        )))
    };
    if !pg_has_archive(&mut pg)? {
        return Err(wrong(&pg, "holds no Testimony archive"));
    }
    let get = |pg: &mut PgStore, k: &str| -> Result<Option<String>> {
        pg.query("SELECT value FROM archive_meta WHERE key = ?1", vals![k])?
            .first()
            .map(|r| r.text(0))
            .transpose()
    };
    if get(&mut pg, META_ARCHIVE_ID)?.as_deref() != Some(archive_id) {
        return Err(wrong(&pg, "holds a different archive"));
    }
    if !pg.try_lock()? {
        return Err(Error::Core(CoreError::Locked(dir.to_path_buf())));
    }
    let version: u64 = get(&mut pg, "schema_version")?
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| {
            Error::Core(CoreError::Corrupt(
                "the PostgreSQL schema version is missing".into(),
            ))
        })?;
    if version > schema::PG_LATEST {
        return Err(Error::Core(CoreError::NewerVersion {
            what: "archive schema (PostgreSQL)",
            found: version,
            supported: schema::PG_LATEST,
        }));
    }
    if version < schema::PG_LATEST {
        // Forward-only, all or nothing, like the embedded migrations.
        pg.batch("BEGIN")?;
        let done = (|| -> Result<()> {
            for m in &schema::PG_MIGRATIONS[version as usize..] {
                pg.batch(m)?;
            }
            pg.execute(
                "UPDATE archive_meta SET value = ?1 WHERE key = 'schema_version'",
                vals![schema::PG_LATEST.to_string()],
            )?;
            pg.batch("COMMIT")
        })();
        if let Err(e) = done {
            let _ = pg.batch("ROLLBACK");
            return Err(e);
        }
    }
    Ok(pg)
}

impl Archive {
    /// Creates a new embedded archive in `dir` (missing or empty) with a fresh age identity.
    pub fn create(dir: &Path, passphrase: &str) -> Result<Archive> {
        Self::create_with(dir, passphrase, KdfParams::default())
    }

    pub fn create_with(dir: &Path, passphrase: &str, kdf: KdfParams) -> Result<Archive> {
        Self::create_with_backend(dir, passphrase, &Backend::Embedded, kdf)
    }

    /// Creates a new archive whose records live in the (empty) PostgreSQL database `url`; the
    /// directory keeps the passphrase-protected identity.
    pub fn create_postgres(dir: &Path, passphrase: &str, url: &str) -> Result<Archive> {
        Self::create_with_backend(
            dir,
            passphrase,
            &Backend::Postgres(url.to_string()),
            KdfParams::default(),
        )
    }

    pub fn create_with_backend(
        dir: &Path,
        passphrase: &str,
        backend: &Backend,
        kdf: KdfParams,
    ) -> Result<Archive> {
        keys::check_passphrase_strength(passphrase)?;
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            return Err(Error::Core(CoreError::AlreadyExists(dir.to_path_buf())));
        }
        // The server is checked before anything is written: a wrong URL leaves no directory.
        let pg = match backend {
            Backend::Embedded => None,
            Backend::Postgres(url) => {
                let mut pg = PgStore::connect(url)?;
                if pg_has_archive(&mut pg)? {
                    return Err(Error::Core(CoreError::AlreadyExists(PathBuf::from(
                        format!("PostgreSQL database ({})", pg.target),
                    ))));
                }
                if !pg.try_lock()? {
                    return Err(Error::Core(CoreError::Locked(PathBuf::from(format!(
                        "PostgreSQL database ({})",
                        pg.target
                    )))));
                }
                Some(pg)
            }
        };
        let existed = dir.exists();
        fs::create_dir_all(dir.join(QUARANTINE_DIR))?;
        restrict(dir, 0o700)?;
        restrict(&dir.join(QUARANTINE_DIR), 0o700)?;
        // Locked: another process is creating an archive here; its files are left alone.
        let lock = lock(dir)?;
        // A second handle on the same lock, held until the clean-up below is done.
        let _guard = lock.try_clone()?;
        let result = Self::create_locked(dir, passphrase, pg, kdf, lock);
        if result.is_err() {
            // Leave the directory as it was (missing or empty) so that the command can be
            // repeated; it held nothing before.
            if existed {
                if let Ok(entries) = fs::read_dir(dir) {
                    for e in entries.flatten() {
                        let p = e.path();
                        let _ = if p.is_dir() {
                            fs::remove_dir_all(&p)
                        } else {
                            fs::remove_file(&p)
                        };
                    }
                }
            } else {
                let _ = fs::remove_dir_all(dir);
            }
        }
        result
    }

    fn create_locked(
        dir: &Path,
        passphrase: &str,
        mut pg: Option<PgStore>,
        kdf: KdfParams,
        lock: File,
    ) -> Result<Archive> {
        let key = keys::random_data_key();
        let header = Header::seal_for(ARCHIVE_HEADER, &key, passphrase, kdf)?;
        let mut conn = open_encrypted_db(&dir.join(DB_FILE), &key, true, header.page_hmac())?;
        drop(key);
        configure_db(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrations().to_latest(&mut conn)?;
        restrict(&dir.join(DB_FILE), 0o600)?;
        let identity = age::x25519::Identity::generate();
        let archive_id = new_id();
        let created_at = now();
        {
            use age::secrecy::ExposeSecret;
            let secret = Zeroizing::new(identity.to_string().expose_secret().to_string());
            let tx = conn.transaction()?;
            tx.execute(
                "INSERT INTO secrets (key, value) VALUES ('age_identity', ?1)",
                [secret.as_bytes()],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('created_at', ?1)",
                [&created_at],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                [META_ARCHIVE_ID, &archive_id],
            )?;
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                [
                    META_BACKEND,
                    if pg.is_some() { "postgres" } else { "embedded" },
                ],
            )?;
            if let Some(pg) = &pg {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    [META_PG_TARGET, &pg.target],
                )?;
            }
            tx.commit()?;
        }
        match pg.as_mut() {
            None => header.write_atomic_for(ARCHIVE_HEADER, dir)?,
            Some(pg) => {
                // The schema and the archive id in one transaction, committed only once the
                // header is written: either both sides exist or (after the clean-up) neither.
                pg.batch("BEGIN")?;
                let done = (|| -> Result<()> {
                    for m in schema::PG_MIGRATIONS {
                        pg.batch(m)?;
                    }
                    for (k, v) in [
                        ("schema_version", schema::PG_LATEST.to_string()),
                        (META_ARCHIVE_ID, archive_id.clone()),
                        ("created_at", created_at.clone()),
                    ] {
                        pg.execute(
                            "INSERT INTO archive_meta (key, value) VALUES (?1, ?2)",
                            vals![k, v],
                        )?;
                    }
                    // The header goes last: without it the directory is an unfinished archive.
                    header.write_atomic_for(ARCHIVE_HEADER, dir)?;
                    pg.batch("COMMIT")
                })();
                if let Err(e) = done {
                    let _ = pg.batch("ROLLBACK");
                    return Err(e);
                }
            }
        }
        Ok(Archive {
            conn,
            pg: pg.map(RefCell::new),
            dir: dir.to_path_buf(),
            _lock: lock,
            identity,
        })
    }

    /// Opens an embedded archive (see [`Archive::open_with_backend`]).
    pub fn open(dir: &Path, passphrase: &str) -> Result<Archive> {
        Self::open_with_backend(dir, passphrase, &Backend::Embedded)
    }

    /// Opens an archive. A wrong passphrase, a damaged or foreign directory and a lock held by
    /// another process are distinct errors, and none of them changes a byte. The back-end must
    /// be the one the archive was created with (its local database records which); for
    /// PostgreSQL the database must hold this very archive (same archive id).
    pub fn open_with_backend(dir: &Path, passphrase: &str, backend: &Backend) -> Result<Archive> {
        let header = Header::read_for(ARCHIVE_HEADER, dir)?;
        let db = dir.join(DB_FILE);
        if !db.is_file() {
            return Err(Error::Core(CoreError::NotAVault {
                path: dir.to_path_buf(),
                reason: "archive.db is missing".into(),
            }));
        }
        if !dir.join(LOCK_FILE).exists() {
            return Err(Error::Core(CoreError::NotAVault {
                path: dir.to_path_buf(),
                reason: "archive.lock is missing".into(),
            }));
        }
        let lock = lock(dir)?;
        let key = header.unseal(passphrase)?;
        let mut conn = open_encrypted_db(&db, &key, false, header.page_hmac())?;
        drop(key);
        let version: i64 = conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .map_err(|_| {
                Error::Core(CoreError::Corrupt(
                    "the archive database cannot be read".into(),
                ))
            })?;
        if version as u64 > schema::LATEST {
            return Err(Error::Core(CoreError::NewerVersion {
                what: "archive schema",
                found: version as u64,
                supported: schema::LATEST,
            }));
        }
        let check: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|_| Error::Core(CoreError::Corrupt("integrity check failed".into())))?;
        if check != "ok" {
            return Err(Error::Core(CoreError::Corrupt(
                "integrity check failed".into(),
            )));
        }
        configure_db(&conn)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        schema::migrations().to_latest(&mut conn)?;
        let secret: Zeroizing<Vec<u8>> = Zeroizing::new(conn.query_row(
            "SELECT value FROM secrets WHERE key = 'age_identity'",
            [],
            |r| r.get(0),
        )?);
        let identity = std::str::from_utf8(&secret)
            .ok()
            .and_then(|s| s.parse::<age::x25519::Identity>().ok())
            .ok_or_else(|| {
                Error::Core(CoreError::Corrupt("the archive identity is damaged".into()))
            })?;
        let meta = |k: &str| -> Result<Option<String>> {
            Ok(conn
                .query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?)
        };
        // Archives made before the PostgreSQL back-end existed have no `backend` entry.
        let stored = meta(META_BACKEND)?.unwrap_or_else(|| "embedded".into());
        let pg = match (stored.as_str(), backend) {
            ("embedded", Backend::Embedded) => None,
            ("embedded", Backend::Postgres(_)) => {
                return Err(Error::Core(CoreError::invalid(format!(
                    "the archive {} keeps its records in its own encrypted database, not in PostgreSQL; open it without --postgres",
                    dir.display()
                ))));
            }
            ("postgres", Backend::Embedded) => {
                return Err(Error::Core(CoreError::invalid(format!(
                    "the archive {} keeps its records in PostgreSQL ({}); open it with --postgres URL",
                    dir.display(),
                    meta(META_PG_TARGET)?.unwrap_or_default()
                ))));
            }
            ("postgres", Backend::Postgres(url)) => {
                let archive_id = meta(META_ARCHIVE_ID)?.ok_or_else(|| {
                    Error::Core(CoreError::Corrupt("the archive id is missing".into()))
                })?;
                Some(RefCell::new(open_pg(dir, url, &archive_id)?))
            }
            (other, _) => {
                return Err(Error::Core(CoreError::Corrupt(format!(
                    "unknown archive back-end '{other}'"
                ))));
            }
        };
        Ok(Archive {
            conn,
            pg,
            dir: dir.to_path_buf(),
            _lock: lock,
            identity,
        })
    }

    /// `embedded` or `postgres (host=… port=… user=… dbname=…)` (never a password).
    pub fn backend_description(&self) -> String {
        match &self.pg {
            None => "embedded".into(),
            Some(pg) => format!("postgres ({})", pg.borrow().target),
        }
    }

    /// The store the records live in.
    fn db(&self) -> Db<'_> {
        match &self.pg {
            Some(pg) => Db::Postgres(pg.borrow_mut()),
            None => Db::Embedded(&self.conn),
        }
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
            return Err(Error::Core(CoreError::invalid(
                "a device key is 64 hexadecimal characters (as printed by `testimony device id`)"
                    .into(),
            )));
        }
        let name = name.trim();
        if name.is_empty() || name.len() > 100 || name.contains('\n') {
            return Err(Error::Core(CoreError::invalid(
                "a device name is one line of at most 100 characters".into(),
            )));
        }
        let waiting = {
            let mut db = self.db();
            db.execute(
                "INSERT INTO devices (public_key, name, trusted_at) VALUES (?1, ?2, ?3) ON CONFLICT (public_key) DO UPDATE SET name = excluded.name",
                vals![&key, name, now()],
            )?;
            db.query("SELECT bundle_hash, file FROM quarantine WHERE public_key = ?1 AND reason = 'untrusted' ORDER BY sequence", vals![&key])?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect::<Result<Vec<(String, String)>>>()?
        };
        let mut merged = Vec::new();
        for (hash, file) in waiting {
            let path = self.dir.join(QUARANTINE_DIR).join(&file);
            let report = self.import(&path)?;
            // A bundle that now waits for an earlier one stays in quarantine (as `waiting`).
            if report.outcome != "waiting" {
                self.db().execute(
                    "DELETE FROM quarantine WHERE bundle_hash = ?1",
                    vals![&hash],
                )?;
                let _ = fs::remove_file(&path);
            }
            merged.push(report);
        }
        Ok(TrustReport {
            public_key: key,
            name: name.to_string(),
            merged,
        })
    }

    /// Stops trusting a device (a lost or seized laptop): its later bundles go to quarantine.
    /// What it sent before stays, with its audit chain, for the coordinator to judge.
    pub fn untrust_device(&mut self, public_key: &str) -> Result<()> {
        let key = public_key.trim().to_ascii_lowercase();
        let removed = self
            .db()
            .execute("DELETE FROM devices WHERE public_key = ?1", vals![&key])?;
        if removed == 0 {
            return Err(Error::Core(CoreError::NotFound("trusted device", key)));
        }
        Ok(())
    }

    pub fn devices(&self) -> Result<Vec<DeviceInfo>> {
        let mut db = self.db();
        let rows = db.query(
            "SELECT public_key, name, trusted_at FROM devices ORDER BY trusted_at",
            &[],
        )?;
        let mut out = Vec::new();
        for r in rows {
            let public_key = r.text(0)?;
            let seqs = db
                .query(
                    "SELECT sequence FROM bundles WHERE public_key = ?1 ORDER BY sequence",
                    vals![&public_key],
                )?
                .iter()
                .map(|r| r.int(0))
                .collect::<Result<Vec<i64>>>()?;
            let device_ids = db
                .query("SELECT DISTINCT device_id FROM bundles WHERE public_key = ?1 ORDER BY device_id", vals![&public_key])?
                .iter()
                .map(|r| r.text(0))
                .collect::<Result<Vec<String>>>()?;
            out.push(DeviceInfo {
                gaps: gaps(&seqs),
                bundles: seqs.len() as i64,
                last_sequence: seqs.last().copied(),
                public_key,
                name: r.text(1)?,
                trusted_at: r.text(2)?,
                device_ids,
            });
        }
        Ok(out)
    }

    /// Imports one bundle file: verified, merged in one transaction, or rejected with nothing
    /// changed. Importing the same bundle again changes nothing and says so. A bundle that
    /// refers to records of an earlier bundle of its device that has not arrived yet waits
    /// (outcome `waiting`) and is merged as soon as that bundle is imported.
    pub fn import(&mut self, path: &Path) -> Result<ImportReport> {
        let mut report = self.import_one(path)?;
        if report.outcome == "imported" {
            report.released = self.release_waiting(&report.public_key)?;
        }
        Ok(report)
    }

    fn import_one(&mut self, path: &Path) -> Result<ImportReport> {
        let meta = fs::metadata(path)?;
        if !meta.is_file() {
            return Err(Error::Core(CoreError::invalid(format!(
                "{} is not a file",
                path.display()
            ))));
        }
        let identities = [self.identity.clone()];
        let (mut report, stopped) = {
            let mut sink = merge::Merge::new(self.db(), self.identity.to_public());
            match bundle::read_bundle(BufReader::new(File::open(path)?), &identities, &mut sink) {
                Ok(ReadOutcome::Complete) => (sink.commit()?, false),
                Ok(ReadOutcome::Stopped) => (sink.stopped_report(), true),
                Err(e) => {
                    sink.rollback();
                    let needs_earlier = sink.needs_earlier;
                    let mut report = sink.stopped_report();
                    if needs_earlier && self.missing_before(&report.public_key, report.sequence)? {
                        report.outcome = "waiting".into();
                        report.message = format!(
                            "bundle {} refers to records from an earlier bundle of this device that has not arrived yet; it is kept and merged when that bundle is imported",
                            report.sequence
                        );
                        self.quarantine(path, &mut report, "waiting")?;
                        return Ok(report);
                    }
                    return Err(e.into());
                }
            }
        };
        if stopped && report.outcome == "quarantined" {
            self.quarantine(path, &mut report, "untrusted")?;
        }
        Ok(report)
    }

    /// Whether an earlier bundle of the device has not been imported.
    fn missing_before(&self, key: &str, sequence: i64) -> Result<bool> {
        let row = self.db().query_opt(
            "SELECT count(*) FROM bundles WHERE public_key = ?1 AND sequence < ?2",
            vals![key, sequence],
        )?;
        let have = match row {
            Some(r) => r.int(0)?,
            None => 0,
        };
        Ok(have < sequence - 1)
    }

    /// Merges the device's waiting bundles that can be merged now, in sequence order, until
    /// none moves. Returns their sequence numbers.
    fn release_waiting(&mut self, key: &str) -> Result<Vec<i64>> {
        let mut released = Vec::new();
        loop {
            let waiting = self
                .db()
                .query("SELECT bundle_hash, file, sequence FROM quarantine WHERE public_key = ?1 AND reason = 'waiting' ORDER BY sequence", vals![key])?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?, r.int(2)?)))
                .collect::<Result<Vec<(String, String, i64)>>>()?;
            let mut moved = false;
            for (hash, file, seq) in waiting {
                let path = self.dir.join(QUARANTINE_DIR).join(&file);
                // A waiting bundle that fails for another reason now stays where it is, listed.
                let Ok(r) = self.import_one(&path) else {
                    continue;
                };
                if r.outcome == "imported" || r.outcome == "already_imported" {
                    self.db().execute(
                        "DELETE FROM quarantine WHERE bundle_hash = ?1",
                        vals![&hash],
                    )?;
                    let _ = fs::remove_file(&path);
                    released.push(seq);
                    moved = true;
                }
            }
            if !moved {
                return Ok(released);
            }
        }
    }

    /// Keeps a bundle (still encrypted to the archive) until its device is trusted, or until
    /// the earlier bundle it needs arrives.
    fn quarantine(&self, path: &Path, report: &mut ImportReport, reason: &str) -> Result<()> {
        let mut db = self.db();
        if db
            .query_opt(
                "SELECT file FROM quarantine WHERE bundle_hash = ?1",
                vals![&report.bundle_hash],
            )?
            .is_some()
        {
            db.execute(
                "UPDATE quarantine SET reason = ?2 WHERE bundle_hash = ?1",
                vals![&report.bundle_hash, reason],
            )?;
            if reason == "untrusted" {
                report.message = "already in quarantine: the device is not trusted yet".into();
            }
            return Ok(());
        }
        let file = format!("{}.tbundle", &report.bundle_hash);
        let dest = self.dir.join(QUARANTINE_DIR).join(&file);
        let tmp = self
            .dir
            .join(QUARANTINE_DIR)
            .join(format!(".{file}.partial"));
        {
            let mut out = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            let mut input = File::open(path)?;
            std::io::copy(&mut input, &mut out)?;
            out.flush()?;
            out.sync_all()?;
        }
        fs::rename(&tmp, &dest)?;
        File::open(self.dir.join(QUARANTINE_DIR))?.sync_all()?;
        db.execute(
            "INSERT INTO quarantine (bundle_hash, public_key, device_id, sequence, received_at, file, counts, reason) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            vals![
                &report.bundle_hash, &report.public_key, &report.device_id, report.sequence, now(), file,
                serde_json::to_string(&report.counts).expect("serialisable"), reason
            ],
        )?;
        Ok(())
    }

    pub fn quarantined(&self) -> Result<Vec<QuarantinedBundle>> {
        let rows = self.db().query("SELECT bundle_hash, public_key, device_id, sequence, received_at, counts, reason FROM quarantine ORDER BY received_at, sequence", &[])?;
        rows.iter()
            .map(|r| {
                Ok(QuarantinedBundle {
                    bundle_hash: r.text(0)?,
                    public_key: r.text(1)?,
                    device_id: r.text(2)?,
                    sequence: r.int(3)?,
                    received_at: r.text(4)?,
                    counts: serde_json::from_str(&r.text(5)?).unwrap_or(Value::Null),
                    reason: r.text(6)?,
                })
            })
            .collect()
    }

    /// Interviews in the archive, newest first, with their witness code.
    pub fn interviews(&self) -> Result<Vec<Value>> {
        let rows = self.db().query(
            "SELECT body FROM records WHERE kind = 'interview' ORDER BY id DESC",
            &[],
        )?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.text(0)?).map_err(|_| {
                    Error::Core(CoreError::Corrupt("a stored record is not JSON".into()))
                })
            })
            .collect()
    }

    /// One interview with its witness (profile only unless identity was shared), consent,
    /// group instances, answers, notes and attachment list.
    pub fn interview_detail(&self, id: &str) -> Result<Value> {
        let mut db = self.db();
        let json = |b: Option<String>| b.and_then(|b| serde_json::from_str::<Value>(&b).ok());
        let interview = json(db.text_opt(
            "SELECT body FROM records WHERE kind = 'interview' AND id = ?1",
            vals![id],
        )?)
        .ok_or_else(|| Error::Core(CoreError::NotFound("interview", id.to_string())))?;
        let witness_id = interview["witness_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let witness = json(db.text_opt(
            "SELECT body FROM records WHERE kind = 'witness' AND id = ?1",
            vals![&witness_id],
        )?);
        let consent = json(db.text_opt(
            "SELECT body FROM records WHERE kind = 'consent' AND witness_id = ?1",
            vals![&witness_id],
        )?);
        let mut children = |kind: &str| -> Result<Vec<Value>> {
            let rows = db.query(
                "SELECT body FROM records WHERE kind = ?1 AND interview_id = ?2 ORDER BY id",
                vals![kind, id],
            )?;
            Ok(rows.iter().filter_map(|r| json(r.text(0).ok())).collect())
        };
        Ok(serde_json::json!({
            "interview": interview,
            "witness": witness,
            "consent": consent,
            "instances": children("group_instance")?,
            "answers": children("answer")?,
            "notes": children("note")?,
            "attachments": children("attachment")?,
            "recordings": children("recording")?,
            "audio_markers": children("audio_marker")?,
            "transcripts": children("transcript")?,
            "transcript_segments": children("transcript_segment")?,
        }))
    }

    /// Writes a recording's audio (WAV) to `out`, decrypting it part by part (memory stays
    /// flat however long the recording), and checks it against its hash at the end. THIS
    /// WRITES PLAINTEXT AUDIO: only where the coordinator asked. Returns the bytes written.
    pub fn recording_wav(&self, recording_id: &str, out: &mut dyn Write) -> Result<u64> {
        stream_audio(&mut self.db(), &self.identity, recording_id, out)
    }

    /// An attachment's bytes, decrypted and checked against their hash.
    pub fn attachment_data(&self, id: &str) -> Result<Vec<u8>> {
        let row = self
            .db()
            .query_opt(
                "SELECT sha256, data FROM attachments WHERE id = ?1",
                vals![id],
            )?
            .ok_or_else(|| Error::Core(CoreError::NotFound("attachment", id.to_string())))?;
        let (sha, data) = (row.text(0)?, row.blob(1)?);
        let mut plain = Vec::new();
        bundle::decrypt(&data[..], std::slice::from_ref(&self.identity))?
            .read_to_end(&mut plain)
            .map_err(|_| {
                Error::Core(CoreError::Corrupt(format!(
                    "attachment {id} cannot be decrypted"
                )))
            })?;
        use sha2::Digest;
        if hex::encode(sha2::Sha256::digest(&plain)) != sha {
            return Err(Error::Core(CoreError::Corrupt(format!(
                "attachment {id} does not match its hash"
            ))));
        }
        Ok(plain)
    }

    /// Full-text search over answers, notes and marker labels. Embedded: trigram index (LIKE for 1–2
    /// characters). PostgreSQL: ILIKE over the search table (no extension needed).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let q = query.trim();
        if q.is_empty() {
            return Err(Error::Core(CoreError::invalid("empty search".into())));
        }
        let limit = limit.clamp(1, 1000) as i64;
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let mut db = self.db();
        let rows = if db.is_postgres() {
            db.query(
                "SELECT record_id, interview_id, kind, body FROM search_index WHERE body ILIKE ?1 ESCAPE '\\' ORDER BY interview_id, record_id LIMIT ?2",
                vals![pattern, limit],
            )?
        } else if q.chars().count() >= 3 {
            let phrase = format!("\"{}\"", q.replace('"', "\"\""));
            db.query(
                "SELECT record_id, interview_id, kind, snippet(search_index, 3, '', '', '…', 12) FROM search_index WHERE search_index MATCH ?1 ORDER BY rank LIMIT ?2",
                vals![phrase, limit],
            )?
        } else {
            db.query("SELECT record_id, interview_id, kind, substr(body, 1, 80) FROM search_index WHERE body LIKE ?1 ESCAPE '\\' LIMIT ?2", vals![pattern, limit])?
        };
        let pg = db.is_postgres();
        rows.iter()
            .map(|r| {
                let text = r.text(3)?;
                Ok(SearchHit {
                    record_id: r.text(0)?,
                    interview_id: r.text(1)?,
                    kind: r.text(2)?,
                    snippet: if pg { snippet(&text, q) } else { text },
                })
            })
            .collect()
    }

    pub fn conflicts(&self, include_resolved: bool) -> Result<Vec<Conflict>> {
        let sql = format!(
            "SELECT id, kind, record_id, current_body, current_key, incoming_body, incoming_key, detected_at, resolved_at, resolution FROM conflicts {} ORDER BY id",
            if include_resolved {
                ""
            } else {
                "WHERE resolved_at IS NULL"
            }
        );
        let rows = self.db().query(&sql, &[])?;
        let j = |s: String| serde_json::from_str(&s).unwrap_or(Value::Null);
        rows.iter()
            .map(|r| {
                Ok(Conflict {
                    id: r.int(0)?,
                    kind: r.text(1)?,
                    record_id: r.text(2)?,
                    current: j(r.text(3)?),
                    current_key: r.text(4)?,
                    incoming: j(r.text(5)?),
                    incoming_key: r.text(6)?,
                    detected_at: r.text(7)?,
                    resolved_at: r.opt_text(8)?,
                    resolution: r.opt_text(9)?,
                })
            })
            .collect()
    }

    /// Settles a conflict: keep the archive's current version, or take the incoming one.
    pub fn resolve_conflict(&mut self, id: i64, take_incoming: bool) -> Result<Conflict> {
        let c = self
            .conflicts(true)?
            .into_iter()
            .find(|c| c.id == id)
            .ok_or_else(|| Error::Core(CoreError::NotFound("conflict", id.to_string())))?;
        if c.resolved_at.is_some() {
            return Err(Error::Core(CoreError::not_allowed(format!(
                "conflict {id} is already resolved"
            ))));
        }
        {
            let mut db = self.db();
            db.begin()?;
            let done = (|| -> Result<()> {
                if take_incoming {
                    merge::replace_with(
                        &mut db,
                        &c.kind,
                        &c.record_id,
                        &c.incoming,
                        &c.incoming_key,
                        false,
                    )?;
                }
                db.execute(
                    "UPDATE conflicts SET resolved_at = ?2, resolution = ?3 WHERE id = ?1",
                    vals![
                        id,
                        now(),
                        if take_incoming { "incoming" } else { "current" }
                    ],
                )?;
                db.commit()
            })();
            if let Err(e) = done {
                db.rollback();
                return Err(e);
            }
        }
        Ok(self
            .conflicts(true)?
            .into_iter()
            .find(|c| c.id == id)
            .expect("just resolved"))
    }
}

/// Up to about 80 characters of `text` around the first case-insensitive match of `q`, with
/// `…` where it was cut (PostgreSQL has no FTS5 `snippet`).
fn snippet(text: &str, q: &str) -> String {
    let fold = |c: char| c.to_lowercase().next().unwrap_or(c);
    let chars: Vec<char> = text.chars().collect();
    let needle: Vec<char> = q.chars().map(fold).collect();
    let at = (0..chars.len().saturating_sub(needle.len() - 1))
        .find(|&i| {
            chars[i..i + needle.len()]
                .iter()
                .zip(&needle)
                .all(|(&c, &n)| fold(c) == n)
        })
        .unwrap_or(0);
    let start = at.saturating_sub(30);
    let end = (at + needle.len() + 50).min(chars.len());
    let mut s = String::new();
    if start > 0 {
        s.push('…');
    }
    s.extend(&chars[start..end]);
    if end < chars.len() {
        s.push('…');
    }
    s
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

/// Writes a recording's audio (WAV) to `out`, decrypting it part by part, and checks it
/// against its hash at the end. Over the caller's `Db`, so that a return bundle can stream
/// audio inside the transaction that records what it sent.
pub(crate) fn stream_audio(
    db: &mut Db<'_>,
    identity: &age::x25519::Identity,
    recording_id: &str,
    out: &mut dyn Write,
) -> Result<u64> {
    let row = db
        .query_opt(
            "SELECT sha256, size, parts FROM audio WHERE recording_id = ?1",
            vals![recording_id],
        )?
        .ok_or_else(|| {
            Error::Core(CoreError::NotFound(
                "recording audio",
                recording_id.to_string(),
            ))
        })?;
    let (sha, size, parts) = (row.text(0)?, row.int(1)? as u64, row.int(2)?);
    let reader = AudioParts {
        db,
        recording_id: recording_id.to_string(),
        next: 0,
        parts,
        buf: Vec::new(),
        pos: 0,
    };
    let mut plain = bundle::decrypt(reader, std::slice::from_ref(identity)).map_err(|_| {
        Error::Core(CoreError::Corrupt(format!(
            "the audio of recording {recording_id} cannot be decrypted"
        )))
    })?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        let n = plain.read(&mut buf).map_err(|_| {
            Error::Core(CoreError::Corrupt(format!(
                "the audio of recording {recording_id} is damaged"
            )))
        })?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        written += n as u64;
    }
    if written != size || hex::encode(hasher.finalize()) != sha {
        return Err(Error::Core(CoreError::Corrupt(format!(
            "the audio of recording {recording_id} does not match its hash"
        ))));
    }
    Ok(written)
}

/// Reads a recording's encrypted audio from its parts, one part (about 1 MiB) at a time.
struct AudioParts<'a, 'c> {
    db: &'a mut Db<'c>,
    recording_id: String,
    next: i64,
    parts: i64,
    buf: Vec<u8>,
    pos: usize,
}

impl Read for AudioParts<'_, '_> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            if self.next == self.parts {
                return Ok(0);
            }
            let row = self
                .db
                .query_opt(
                    "SELECT data FROM audio_parts WHERE recording_id = ?1 AND part = ?2",
                    vals![&self.recording_id, self.next],
                )
                .map_err(std::io::Error::other)?
                .ok_or_else(|| std::io::Error::other("an audio part is missing"))?;
            self.buf = row.blob(0).map_err(std::io::Error::other)?;
            self.pos = 0;
            self.next += 1;
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}
