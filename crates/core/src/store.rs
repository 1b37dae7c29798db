//! The vault's storage, the bottom layer: a directory holding one SQLCipher database and a
//! small plaintext header, its keys, its lock and its transactions. The layers above (records,
//! audio, transcripts, bundles) add their tables' rules; `vault` opens it for the front-ends.
//!
//! ```text
//! VAULT/vault.json   header: KDF parameters, salt, wrapped data key (see keys.rs)
//! VAULT/vault.db     SQLCipher database (+ -wal, -shm while open): everything else
//! VAULT/vault.lock   empty; an exclusive OS lock on it keeps a second process out
//! ```
//! Opening checks, in order and without writing anything: the header, the lock, the
//! passphrase, the database, the schema version. Only then are migrations applied.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use ed25519_dalek::SigningKey;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use zeroize::Zeroizing;

use crate::codebook::Codebook;
use crate::error::{Error, Result};
use crate::keys::{self, DataKey, Header, KdfParams, PageHmac};
use crate::schema;

pub const DB_FILE: &str = "vault.db";
pub const LOCK_FILE: &str = "vault.lock";

pub struct Vault {
    pub(crate) conn: Connection,
    dir: PathBuf,
    // Held for the vault's lifetime; the OS releases the lock when the file closes.
    _lock: File,
    pub(crate) device_id: String,
    pub(crate) actor: String,
    codebooks: RefCell<HashMap<(String, String), Rc<Codebook>>>,
    // Kept (zeroized on drop) only so that a recording writer can open its own connection to
    // this database (audio.rs); SQLCipher holds the same key for as long as `conn` is open.
    key: DataKey,
    keying: Keying,
    /// How this vault's pages are authenticated (from its header), for further connections.
    hmac: PageHmac,
}

impl std::fmt::Debug for Vault {
    // Deliberately minimal: a Debug print must never reveal content or keys.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// What `Vault::create` needs besides the passphrase.
#[derive(Debug, Clone)]
pub struct CreateOptions {
    /// Interviewer profile recorded as the actor in the audit log.
    pub interviewer: String,
    pub kdf: KdfParams,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions {
            interviewer: "interviewer".into(),
            kdf: KdfParams::default(),
        }
    }
}

pub fn now() -> String {
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    time::OffsetDateTime::now_utc()
        .format(&f)
        .expect("formattable")
}

pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn lock(dir: &Path) -> Result<File> {
    lock_dir(dir, LOCK_FILE)
}

/// Takes the advisory lock `dir/lock_name` for as long as the returned file is open: one
/// process at a time per vault (or archive). The OS releases it if the process dies.
pub fn lock_dir(dir: &Path, lock_name: &str) -> Result<File> {
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(lock_name))?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked(dir.to_path_buf())),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// Whether the database file is keyed. Normal builds have only `Encrypted`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keying {
    Encrypted,
    /// BENCHMARK ONLY (feature `bench-plaintext`, off by default): everything as for an
    /// encrypted vault except that `sqlite3_key` is never called, so the database is plain
    /// SQLite. Exists so `benches/vault.rs` can measure what encryption costs.
    #[cfg(feature = "bench-plaintext")]
    PlaintextForBench,
}

/// Opens the SQLCipher file with the raw key and its page MAC. `create` allows a new file.
fn open_db(
    path: &Path,
    key: &DataKey,
    create: bool,
    keying: Keying,
    hmac: PageHmac,
) -> Result<Connection> {
    let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    if create {
        flags |= OpenFlags::SQLITE_OPEN_CREATE;
    }
    let conn = Connection::open_with_flags(path, flags)?;
    // SQLCipher logs decryption failures to stderr by default; we report errors ourselves.
    let _ = conn.execute_batch("PRAGMA cipher_log_level = NONE;");
    match keying {
        Keying::Encrypted => {}
        #[cfg(feature = "bench-plaintext")]
        Keying::PlaintextForBench => return Ok(conn),
    }
    // Raw key form x'…' skips SQLCipher's own PBKDF2: the key already comes from Argon2id.
    let key_text = Zeroizing::new(format!("x'{}'", hex::encode(key.as_ref())));
    let rc = unsafe {
        rusqlite::ffi::sqlite3_key(
            conn.handle(),
            key_text.as_ptr().cast(),
            key_text.len() as std::os::raw::c_int,
        )
    };
    if rc != rusqlite::ffi::SQLITE_OK {
        return Err(Error::Corrupt("the database refused the key".into()));
    }
    // Must come after the key and before the first read. SHA-512 is SQLCipher's default.
    if hmac == PageHmac::Sha256 {
        conn.execute_batch("PRAGMA cipher_hmac_algorithm = HMAC_SHA256;")?;
    }
    Ok(conn)
}

/// Opens (or with `create`, makes) a SQLCipher database keyed with `key` and configured as the
/// vault's is (WAL, synchronous=FULL, secure_delete, temp store in memory). For other stores
/// built on the same design, such as the archive. The caller checks the key with a first read.
pub fn open_encrypted_db(
    path: &Path,
    key: &DataKey,
    create: bool,
    hmac: PageHmac,
) -> Result<Connection> {
    let conn = open_db(path, key, create, Keying::Encrypted, hmac)?;
    Ok(conn)
}

/// Applies the durability and hygiene settings to an open, keyed database.
pub fn configure_db(conn: &Connection) -> Result<()> {
    configure(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    // WAL + synchronous=FULL: a commit that returned is on disk, and a crash never corrupts.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Error::Corrupt(format!("could not enable WAL (got {mode})")));
    }
    conn.execute_batch(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA busy_timeout = 5000;",
    )?;
    // Deleted rows (an erased identity, a replaced answer) are overwritten, not left in free
    // pages where anyone who later learns the passphrase could still read them.
    conn.execute_batch("PRAGMA secure_delete = ON;")?;
    Ok(())
}

fn schema_version(conn: &Connection) -> Result<u64> {
    Ok(conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))? as u64)
}

impl Vault {
    /// Creates a new vault in `dir`, which must not exist or be empty.
    pub fn create(dir: &Path, passphrase: &str, opts: CreateOptions) -> Result<Vault> {
        Self::create_with(dir, passphrase, opts, Keying::Encrypted)
    }

    fn create_with(
        dir: &Path,
        passphrase: &str,
        opts: CreateOptions,
        keying: Keying,
    ) -> Result<Vault> {
        keys::check_passphrase_strength(passphrase)?;
        if opts.kdf.memory_kib < keys::MIN_MEMORY_KIB {
            return Err(Error::invalid("Argon2id memory below 64 MiB".into()));
        }
        if opts.interviewer.trim().is_empty() {
            return Err(Error::invalid(
                "an interviewer profile name is required".into(),
            ));
        }
        if dir.exists() && fs::read_dir(dir)?.next().is_some() {
            return Err(Error::AlreadyExists(dir.to_path_buf()));
        }
        fs::create_dir_all(dir)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
        }
        let lock = lock(dir)?;
        let key = keys::random_data_key();
        let header = Header::seal(&key, passphrase, opts.kdf)?;
        let hmac = header.page_hmac();
        let mut conn = open_db(&dir.join(DB_FILE), &key, true, keying, hmac)?;
        configure(&conn)?;
        schema::migrations().to_latest(&mut conn)?;
        restrict_permissions(dir)?;
        let device_id = new_id();
        let signing = SigningKey::generate(&mut rand::rngs::OsRng);
        {
            let tx = conn.transaction()?;
            let created = now();
            for (k, v) in [
                ("device_id", device_id.as_str()),
                ("interviewer", opts.interviewer.trim()),
                ("created_at", created.as_str()),
                ("audit_head_seq", "0"),
                ("audit_head_hash", &hex::encode([0u8; 32])),
            ] {
                tx.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                    params![k, v],
                )?;
            }
            let secret = Zeroizing::new(signing.to_bytes());
            tx.execute(
                "INSERT INTO secrets (key, value) VALUES ('device_signing_key', ?1)",
                params![&secret[..]],
            )?;
            tx.commit()?;
        }
        // The header goes last: a directory without one is an unfinished vault, not a vault.
        header.write_atomic(dir)?;
        let v = Vault {
            conn,
            dir: dir.to_path_buf(),
            _lock: lock,
            device_id,
            actor: opts.interviewer.trim().to_string(),
            codebooks: RefCell::new(HashMap::new()),
            key,
            keying,
            hmac,
        };
        v.ensure_codebook(&Codebook::default_codebook())?;
        Ok(v)
    }

    /// Opens an existing vault's storage, without the repairs of the layers above
    /// ([`Vault::open`] runs them). Every failure leaves the directory untouched.
    pub(crate) fn open_storage(dir: &Path, passphrase: &str) -> Result<Vault> {
        Self::open_with(dir, passphrase, Keying::Encrypted)
    }

    fn open_with(dir: &Path, passphrase: &str, keying: Keying) -> Result<Vault> {
        let header = Header::read(dir)?;
        let db_path = dir.join(DB_FILE);
        if !db_path.is_file() {
            return Err(Error::NotAVault {
                path: dir.to_path_buf(),
                reason: "vault.db is missing".into(),
            });
        }
        let lock_file = if dir.join(LOCK_FILE).exists() {
            lock(dir)?
        } else {
            return Err(Error::NotAVault {
                path: dir.to_path_buf(),
                reason: "vault.lock is missing".into(),
            });
        };
        let key = header.unseal(passphrase)?;
        let hmac = header.page_hmac();
        let mut conn = open_db(&db_path, &key, false, keying, hmac)?;
        // First real read: with the right key, failure here means damage, not a bad passphrase.
        let version = match schema_version(&conn).and_then(|v| {
            conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| {
                r.get::<_, i64>(0)
            })?;
            Ok(v)
        }) {
            Ok(v) => v,
            Err(Error::Db(e)) => {
                return Err(Error::Corrupt(format!(
                    "the database cannot be read ({})",
                    db_error_kind(&e)
                )));
            }
            Err(e) => return Err(e),
        };
        if version > schema::LATEST {
            return Err(Error::NewerVersion {
                what: "database schema",
                found: version,
                supported: schema::LATEST,
            });
        }
        check_integrity_on_open(&conn)?;
        configure(&conn)?;
        schema::migrations().to_latest(&mut conn)?;
        let get = |k: &str| -> Result<String> {
            conn.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))
                .optional()?
                .ok_or_else(|| Error::Corrupt(format!("vault metadata '{k}' is missing")))
        };
        let device_id = get("device_id")?;
        let actor = get("interviewer")?;
        let v = Vault {
            conn,
            dir: dir.to_path_buf(),
            _lock: lock_file,
            device_id,
            actor,
            codebooks: RefCell::new(HashMap::new()),
            key,
            keying,
            hmac,
        };
        v.ensure_codebook(&Codebook::default_codebook())?;
        Ok(v)
    }

    /// BENCHMARK ONLY (feature `bench-plaintext`, never enabled by default): like
    /// [`Vault::create`] — same header and Argon2id, migrations, WAL, `synchronous = FULL`,
    /// `secure_delete` — but the database is NOT encrypted. For `benches/vault.rs` only; a
    /// vault made this way keeps testimony in plaintext. `Vault::open` refuses it.
    #[cfg(feature = "bench-plaintext")]
    pub fn create_plaintext_for_bench(
        dir: &Path,
        passphrase: &str,
        opts: CreateOptions,
    ) -> Result<Vault> {
        Self::create_with(dir, passphrase, opts, Keying::PlaintextForBench)
    }

    /// BENCHMARK ONLY (feature `bench-plaintext`): opens a vault made by
    /// [`Vault::create_plaintext_for_bench`] through the same path as [`Vault::open`].
    #[cfg(feature = "bench-plaintext")]
    pub(crate) fn open_plaintext_storage_for_bench(dir: &Path, passphrase: &str) -> Result<Vault> {
        Self::open_with(dir, passphrase, Keying::PlaintextForBench)
    }

    /// Replaces the database connection with a fresh one, keyed with the key this open vault
    /// holds (no passphrase, no Argon2id). After SQLCipher has refused a damaged page
    /// ([`Error::DamagedAudio`]) it answers every later read on that connection with an error;
    /// a new connection reads the rest of the vault again. Everything committed stays; the
    /// vault's lock is kept throughout.
    pub fn reconnect(&mut self) -> Result<()> {
        let conn = open_db(
            &self.dir.join(DB_FILE),
            &self.key,
            false,
            self.keying,
            self.hmac,
        )?;
        configure(&conn)?;
        self.conn = conn;
        Ok(())
    }

    /// Changes the passphrase of the vault at `dir`. Only the header changes, and it is replaced
    /// atomically: after a crash either the old or the new passphrase opens the vault.
    pub fn change_passphrase(dir: &Path, old: &str, new: &str) -> Result<()> {
        keys::check_passphrase_strength(new)?;
        let header = Header::read(dir)?;
        let _lock = lock(dir)?;
        let key = header.unseal(old)?;
        let params = header.kdf.params;
        // Same format: the database's pages keep the MAC they were written with.
        let fresh = Header::seal_format(
            keys::VAULT_HEADER,
            &key,
            new,
            KdfParams {
                memory_kib: params.memory_kib.max(keys::MIN_MEMORY_KIB),
                ..params
            },
            header.format,
        )?;
        // Prove the new header really unwraps the same key before replacing the old one.
        if *fresh.unseal(new)? != *key {
            return Err(Error::Corrupt("re-wrapped key does not match".into()));
        }
        fresh.write_atomic(dir)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn device_id(&self) -> &str {
        &self.device_id
    }
    pub fn interviewer(&self) -> &str {
        &self.actor
    }

    /// The device's Ed25519 public key (hex), generated with the vault; it signs bundles.
    pub fn device_public_key(&self) -> Result<String> {
        let sk = self.device_signing_key()?;
        Ok(hex::encode(sk.verifying_key().to_bytes()))
    }

    pub(crate) fn device_signing_key(&self) -> Result<SigningKey> {
        let bytes: Zeroizing<Vec<u8>> = Zeroizing::new(self.conn.query_row(
            "SELECT value FROM secrets WHERE key = 'device_signing_key'",
            [],
            |r| r.get(0),
        )?);
        let arr: [u8; 32] = bytes
            .as_slice()
            .try_into()
            .map_err(|_| Error::Corrupt("device signing key".into()))?;
        Ok(SigningKey::from_bytes(&arr))
    }

    /// Stores a codebook version the first time it is used; the same id and version with
    /// different content is refused, because old interviews must keep meaning what they meant.
    pub fn ensure_codebook(&self, cb: &Codebook) -> Result<()> {
        let existing: Option<String> = self
            .conn
            .query_row(
                "SELECT sha256 FROM codebooks WHERE id = ?1 AND version = ?2",
                params![cb.id, cb.version],
                |r| r.get(0),
            )
            .optional()?;
        match existing {
            Some(h) if h == cb.sha256 => Ok(()),
            Some(_) => Err(Error::not_allowed(format!(
                "codebook {} version {} is already in the vault with different content; give the changed codebook a new version",
                cb.id, cb.version
            ))),
            None => {
                self.conn.execute(
                    "INSERT INTO codebooks (id, version, sha256, source, added_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![cb.id, cb.version, cb.sha256, cb.source, now()],
                )?;
                Ok(())
            }
        }
    }

    /// Validates and stores a codebook file's text; returns the parsed codebook.
    pub fn add_codebook(&self, source: &str, file: &str) -> Result<Rc<Codebook>> {
        let cb = Codebook::parse(source, file)?;
        self.ensure_codebook(&cb)?;
        self.codebook(&cb.id, &cb.version)
    }

    /// The codebook an interview was taken with, from the vault's own copy.
    pub fn codebook(&self, id: &str, version: &str) -> Result<Rc<Codebook>> {
        let k = (id.to_string(), version.to_string());
        if let Some(cb) = self.codebooks.borrow().get(&k) {
            return Ok(cb.clone());
        }
        let src: String = self
            .conn
            .query_row(
                "SELECT source FROM codebooks WHERE id = ?1 AND version = ?2",
                params![id, version],
                |r| r.get(0),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("codebook", format!("{id} {version}")))?;
        let cb = Rc::new(Codebook::parse(
            &src,
            &format!("vault codebook {id} {version}"),
        )?);
        self.codebooks.borrow_mut().insert(k, cb.clone());
        Ok(cb)
    }

    /// Every codebook version stored in the vault, newest first.
    pub fn codebooks(&self) -> Result<Vec<(String, String, String)>> {
        let mut st = self
            .conn
            .prepare("SELECT id, version, added_at FROM codebooks ORDER BY added_at DESC")?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A second connection to this vault's database, configured like the first, with a handle
    /// on the vault's lock (the lock is held while either is open). For a writer that runs on
    /// its own thread, such as a recording's chunk writer.
    pub(crate) fn second_connection(&self) -> Result<(Connection, File)> {
        let conn = open_db(
            &self.dir.join(DB_FILE),
            &self.key,
            false,
            self.keying,
            self.hmac,
        )?;
        configure(&conn)?;
        if schema_version(&conn)? != schema::LATEST {
            return Err(Error::Corrupt(
                "the database schema changed while the vault was open".into(),
            ));
        }
        Ok((conn, self._lock.try_clone()?))
    }

    /// Runs `f` atomically. Outside a batch this is its own durable commit; inside `batch` it
    /// is a savepoint that the batch commits.
    pub(crate) fn write<T>(&mut self, f: impl FnOnce(&Connection, &Ctx) -> Result<T>) -> Result<T> {
        let ctx = Ctx {
            device_id: self.device_id.clone(),
            actor: self.actor.clone(),
            now: now(),
        };
        let sp = self.conn.savepoint()?;
        let out = f(&sp, &ctx)?;
        sp.commit()?;
        Ok(out)
    }

    /// Runs several writes as one transaction: all of them are committed, or none. Used for
    /// bulk work (demo data, imports) where one fsync per record would be needlessly slow.
    pub fn batch<T>(&mut self, f: impl FnOnce(&mut Vault) -> Result<T>) -> Result<T> {
        if !self.conn.is_autocommit() {
            return Err(Error::not_allowed("batches do not nest".into()));
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        match f(self) {
            Ok(v) => {
                self.conn.execute_batch("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                Err(e)
            }
        }
    }
}

/// Who and when, for one write.
pub(crate) struct Ctx {
    pub device_id: String,
    pub actor: String,
    pub now: String,
}

/// Owner-only files: the directory is 0700 already; this keeps copies made elsewhere tight too.
fn restrict_permissions(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    for name in [DB_FILE, LOCK_FILE, "vault.db-wal", "vault.db-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        if p.exists() {
            fs::set_permissions(&p, fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}

/// SQLite's `quick_check` on every table and its indexes, except the audio chunks, before the
/// vault is used. The audio is nearly all of a vault's size (about 110 MB per hour), and checking
/// it on every unlock made unlocking take about 0.2 s per hour of audio with the file cached and
/// 0.7 s per hour from disk (2.4 s for three hours, right after a reboot). Audio is still
/// verified whenever it is read: SQLCipher authenticates every page it reads, each chunk is
/// checked against its SHA-256, and an export reads every chunk. Damage there is then reported
/// for that recording, and the rest of the vault stays usable instead of refusing to open.
fn check_integrity_on_open(conn: &Connection) -> Result<()> {
    let failed = |e: rusqlite::Error| {
        Error::Corrupt(format!("integrity check failed ({})", db_error_kind(&e)))
    };
    let tables: Vec<String> = conn
        .prepare(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name <> 'audio_chunks' \
             AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name",
        )
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(failed)?;
    for table in tables {
        // Names come from the vault's own schema; quoted all the same.
        let check: String = conn
            .query_row(
                &format!("PRAGMA quick_check('{}')", table.replace('\'', "''")),
                [],
                |r| r.get(0),
            )
            .map_err(failed)?;
        if check != "ok" {
            return Err(Error::Corrupt("integrity check failed".into()));
        }
    }
    Ok(())
}

fn db_error_kind(e: &rusqlite::Error) -> String {
    match e.sqlite_error_code() {
        Some(code) => format!("{code:?}"),
        None => "unreadable".into(),
    }
}
