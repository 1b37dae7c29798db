//! Scenarios that cross crates live in `tests/`; this library holds what they share: fast
//! vaults and archives, the two archive back-ends, and views of what a user sees. Public APIs
//! of `testimony-core` and `testimony-archive` only.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use testimony_archive::{Archive, Backend};
use testimony_core::bundle::{ExportOptions, ExportReport};
use testimony_core::keys::{KdfParams, MIN_MEMORY_KIB};
use testimony_core::model::{ConsentMethod, ConsentScope, ConsentScopes};
use testimony_core::{CreateOptions, Vault};

pub const VAULT_PASS: &str = "vault passphrase for the scenarios";
pub const ARCHIVE_PASS: &str = "archive passphrase for the scenarios";

/// The cheapest key derivation a vault or an archive accepts (the memory floor, one pass).
pub fn fast_kdf() -> KdfParams {
    KdfParams {
        memory_kib: MIN_MEMORY_KIB,
        iterations: 1,
        parallelism: 1,
    }
}

/// A new vault at `dir` for the interviewer (or translator) `who`; closed again.
pub fn new_vault(dir: &Path, who: &str) -> PathBuf {
    Vault::create(
        dir,
        VAULT_PASS,
        CreateOptions {
            interviewer: who.into(),
            kdf: fast_kdf(),
        },
    )
    .unwrap();
    dir.to_path_buf()
}

pub fn open_vault(dir: &Path) -> Vault {
    Vault::open(dir, VAULT_PASS).unwrap()
}

/// Consent to record, transcribe and (if `share`) share with the archive.
pub fn consent(share: bool) -> ConsentScopes {
    let mut s = ConsentScopes::default();
    s.set(ConsentScope::RecordAudio, true);
    s.set(ConsentScope::Transcribe, true);
    s.set(ConsentScope::ShareArchive, share);
    s
}

/// Records `consent(share)` for the witness, taken orally by the vault's interviewer.
pub fn give_consent(v: &mut Vault, witness: &str, share: bool) {
    let who = v.interviewer().to_string();
    v.set_consent(witness, consent(share), &who, None, ConsentMethod::Oral)
        .unwrap();
}

/// `seconds` of 16 kHz mono 16-bit audio as a WAV file: a rising tone, neither silence nor
/// noise.
pub fn tone_wav(seconds: usize) -> Vec<u8> {
    let samples: Vec<i16> = (0..seconds * 16_000)
        .map(|i| ((i as f64 * (0.05 + i as f64 * 1e-7)).sin() * 8000.0) as i16)
        .collect();
    let mut out = testimony_core::audio::wav_header(16_000, 1, samples.len() as u32 * 2).to_vec();
    out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    out
}

/// An incremental (or `full`) bundle from the vault at `dir` to `recipient`.
pub fn export(dir: &Path, recipient: &str, out: &Path, full: bool) -> ExportReport {
    try_export(dir, recipient, out, full).unwrap()
}

pub fn try_export(
    dir: &Path,
    recipient: &str,
    out: &Path,
    full: bool,
) -> testimony_core::Result<ExportReport> {
    open_vault(dir).export_bundle(
        &ExportOptions {
            recipients: vec![recipient.into()],
            full,
            ..Default::default()
        },
        out,
    )
}

pub fn device_key(dir: &Path) -> String {
    open_vault(dir).device_public_key().unwrap()
}

/// `question#instance-or-None` → value, as the vault shows an interview's answers.
pub fn vault_answers(dir: &Path, interview: &str) -> BTreeMap<String, Value> {
    open_vault(dir)
        .interview_detail(interview)
        .unwrap()
        .answers
        .into_iter()
        .map(|a| (format!("{}#{:?}", a.question_id, a.instance_id), a.value))
        .collect()
}

/// The same, as the archive shows them.
pub fn archive_answers(a: &Archive, interview: &str) -> BTreeMap<String, Value> {
    a.interview_detail(interview).unwrap()["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                format!(
                    "{}#{:?}",
                    x["question_id"].as_str().unwrap(),
                    x["instance_id"].as_str()
                ),
                x["value"].clone(),
            )
        })
        .collect()
}

/// Texts of the interview's notes in the archive, sorted.
pub fn archive_notes(a: &Archive, interview: &str) -> Vec<String> {
    let mut notes: Vec<String> = a.interview_detail(interview).unwrap()["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_string())
        .collect();
    notes.sort();
    notes
}

/// A recording's audio as the archive plays it (WAV), or the error's code.
pub fn archive_wav(a: &Archive, recording: &str) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::new();
    a.recording_wav(recording, &mut out).map_err(|e| e.code())?;
    Ok(out)
}

/// A recording's audio as the vault plays it (WAV).
pub fn vault_wav(dir: &Path, recording: &str) -> Vec<u8> {
    let mut out = Vec::new();
    open_vault(dir).export_wav(recording, &mut out).unwrap();
    out
}

/// Everything a coordinator can see in the archive: every interview in full, the devices with
/// their bundles and gaps, conflicts and quarantine. Equal before and after means "changed
/// nothing a user could notice" on either back-end.
pub fn archive_view(a: &Archive) -> Value {
    let interviews: Vec<Value> = a
        .interviews()
        .unwrap()
        .iter()
        .map(|i| a.interview_detail(i["id"].as_str().unwrap()).unwrap())
        .collect();
    json!({
        "interviews": interviews,
        "devices": serde_json::to_value(a.devices().unwrap()).unwrap(),
        "conflicts": serde_json::to_value(a.conflicts(true).unwrap()).unwrap(),
        "quarantined": serde_json::to_value(a.quarantined().unwrap()).unwrap(),
    })
}

/// Where the archive keeps its records in a scenario.
pub enum Store {
    Embedded,
    /// A PostgreSQL server (`TESTIMONY_TEST_POSTGRES`, a libpq string for a role that may
    /// create databases); every archive gets a fresh database, dropped with the store.
    Postgres {
        admin: String,
        databases: RefCell<Vec<(PathBuf, String, String)>>,
    },
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// The PostgreSQL store; `None` (skip, with a note) when `TESTIMONY_TEST_POSTGRES` is not
    /// set, unless `TESTIMONY_REQUIRE_POSTGRES=1` or CI is set: then it panics.
    pub fn postgres() -> Option<Store> {
        let required = std::env::var("TESTIMONY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
            || std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        match std::env::var("TESTIMONY_TEST_POSTGRES") {
            Ok(admin) if !admin.trim().is_empty() => {
                postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
                    panic!("TESTIMONY_TEST_POSTGRES is set but the server cannot be reached: {e}")
                });
                Some(Store::Postgres {
                    admin,
                    databases: RefCell::new(Vec::new()),
                })
            }
            _ if required => panic!(
                "the PostgreSQL scenarios are required here (TESTIMONY_REQUIRE_POSTGRES=1 or CI) but TESTIMONY_TEST_POSTGRES is not set; `./run test` starts a throw-away server"
            ),
            _ => {
                eprintln!(
                    "note: TESTIMONY_TEST_POSTGRES is not set: the PostgreSQL variant of this scenario is SKIPPED"
                );
                None
            }
        }
    }

    fn backend(&self, dir: &Path) -> Backend {
        match self {
            Store::Embedded => Backend::Embedded,
            Store::Postgres { databases, .. } => Backend::Postgres(
                databases
                    .borrow()
                    .iter()
                    .find(|(d, ..)| d == dir)
                    .map(|(.., url)| url.clone())
                    .expect("an archive this store created"),
            ),
        }
    }

    /// A new, empty archive at `dir` (on PostgreSQL: in a database of its own).
    pub fn create(&self, dir: &Path) -> Archive {
        if let Store::Postgres { admin, databases } = self {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let name = format!(
                "testimony_s{}_{}_{nanos}",
                std::process::id(),
                COUNTER.fetch_add(1, Ordering::SeqCst)
            );
            postgres::Client::connect(admin, postgres::NoTls)
                .unwrap()
                .batch_execute(&format!("CREATE DATABASE \"{name}\""))
                .unwrap();
            let url = with_dbname(admin, &name);
            databases.borrow_mut().push((dir.to_path_buf(), name, url));
        }
        Archive::create_with_backend(dir, ARCHIVE_PASS, &self.backend(dir), fast_kdf()).unwrap()
    }

    /// Opens an archive this store created (a coordinator's next session).
    pub fn open(&self, dir: &Path) -> Archive {
        Archive::open_with_backend(dir, ARCHIVE_PASS, &self.backend(dir)).unwrap()
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        if let Store::Postgres { admin, databases } = self
            && let Ok(mut c) = postgres::Client::connect(admin, postgres::NoTls)
        {
            for (_, name, _) in databases.borrow().iter() {
                let _ =
                    c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
            }
        }
    }
}

/// The libpq connection string `admin` naming database `db` instead.
fn with_dbname(admin: &str, db: &str) -> String {
    match admin
        .strip_prefix("postgresql://")
        .or_else(|| admin.strip_prefix("postgres://"))
    {
        Some(rest) => {
            let (base, query) = rest.split_once('?').unwrap_or((rest, ""));
            let authority = base.split_once('/').map_or(base, |(a, _)| a);
            let query = if query.is_empty() {
                String::new()
            } else {
                format!("?{query}")
            };
            format!("postgresql://{authority}/{db}{query}")
        }
        None => format!("{admin} dbname={db}"),
    }
}

/// The stable code of a call's error (`"ok"` if it succeeded): `not_found`, `bad_bundle`, …
/// Works on the core's and the archive's errors alike.
#[macro_export]
macro_rules! code_of {
    ($call:expr) => {
        match $call {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    };
}

/// A call that must fail: its error's code and message (panics if it succeeded).
#[macro_export]
macro_rules! refused {
    ($call:expr) => {
        match $call {
            Ok(r) => panic!("expected a refusal, got {r:?}"),
            Err(e) => (e.code(), e.to_string()),
        }
    };
}

/// Runs each named scenario `fn(&Store)` once per back-end: `name::embedded`, `name::postgres`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn embedded() {
                super::$name(&$crate::Store::Embedded);
            }
            #[test]
            fn postgres() {
                if let Some(store) = $crate::Store::postgres() {
                    super::$name(&store);
                }
            }
        }
    )*};
}
