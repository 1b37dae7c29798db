//! The archive end to end with real vaults, real bundles and real SQLCipher files: an
//! interviewer's vault exported twice with edits in between, replays, gaps, quarantine,
//! conflicts between two devices, withdrawal of consent, and bad bundles that must leave the
//! archive byte-for-byte unchanged.
//!
//! Every test runs on both back-ends: `…::embedded` and `…::postgres`. The PostgreSQL variant
//! needs a server: `TESTIMONY_TEST_POSTGRES` is a libpq connection string for a role that may
//! create databases (e.g. `host=127.0.0.1 port=54329 user=testimony dbname=postgres`); each
//! archive gets a fresh database, dropped afterwards. `./run test` starts a throw-away cluster
//! and sets it. Without it the PostgreSQL variant is skipped with a note, except under CI
//! (`CI` set) or with `TESTIMONY_REQUIRE_POSTGRES=1`, where it fails.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};
use testimony_archive::{Archive, Backend, Error as AErr};
use testimony_core::bundle::ExportOptions;
use testimony_core::model::*;
use testimony_core::{CreateOptions, Error, Vault};

const VAULT_PASS: &str = "vault passphrase for archive tests";
const ARCHIVE_PASS: &str = "archive passphrase for tests";

/// The back-end a test runs on.
enum Store {
    Embedded,
    /// A PostgreSQL server; every archive created gets a database of its own.
    Postgres {
        admin: String,
        databases: RefCell<Vec<(PathBuf, String, String)>>,
    },
}

fn required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1")
}

/// Libpq connection string `admin` with another database name.
fn with_dbname(admin: &str, db: &str) -> String {
    if let Some(rest) = admin
        .strip_prefix("postgresql://")
        .or_else(|| admin.strip_prefix("postgres://"))
    {
        let (base, query) = rest
            .split_once('?')
            .map_or((rest, None), |(b, q)| (b, Some(q)));
        let authority = base.split_once('/').map_or(base, |(a, _)| a);
        format!(
            "postgresql://{authority}/{db}{}",
            query.map(|q| format!("?{q}")).unwrap_or_default()
        )
    } else {
        format!("{admin} dbname={db}")
    }
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Store {
    /// The PostgreSQL store, or `None` (skip) when no server is configured and none is
    /// required.
    fn postgres() -> Option<Store> {
        match std::env::var("TESTIMONY_TEST_POSTGRES") {
            Ok(admin) if !admin.trim().is_empty() => {
                // Fail now, clearly, if the server cannot be reached.
                postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
                    panic!("TESTIMONY_TEST_POSTGRES is set but the server cannot be reached: {e}")
                });
                Some(Store::Postgres {
                    admin,
                    databases: RefCell::new(Vec::new()),
                })
            }
            _ if required() => panic!(
                "the PostgreSQL tests are required here (CI or TESTIMONY_REQUIRE_POSTGRES=1) but TESTIMONY_TEST_POSTGRES is not set; \
                 run `./run test`, which starts a throw-away PostgreSQL cluster"
            ),
            _ => {
                eprintln!(
                    "note: TESTIMONY_TEST_POSTGRES is not set: the PostgreSQL variant of this test is SKIPPED (`./run test` starts a server)"
                );
                None
            }
        }
    }

    fn admin_client(admin: &str) -> postgres::Client {
        postgres::Client::connect(admin, postgres::NoTls).unwrap()
    }

    /// A fresh, empty database; its connection string.
    fn new_database(&self, dir: &Path) -> String {
        let Store::Postgres { admin, databases } = self else {
            panic!("not PostgreSQL")
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "testimony_t{}_{}_{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst),
            nanos
        );
        Self::admin_client(admin)
            .batch_execute(&format!("CREATE DATABASE \"{name}\""))
            .unwrap();
        let url = with_dbname(admin, &name);
        databases
            .borrow_mut()
            .push((dir.to_path_buf(), name, url.clone()));
        url
    }

    fn backend(&self, dir: &Path) -> Backend {
        match self {
            Store::Embedded => Backend::Embedded,
            Store::Postgres { databases, .. } => {
                let url = databases
                    .borrow()
                    .iter()
                    .find(|(d, ..)| d == dir)
                    .map(|(_, _, u)| u.clone())
                    .expect("archive created by this store");
                Backend::Postgres(url)
            }
        }
    }

    fn create(&self, dir: &Path) -> Archive {
        match self {
            Store::Embedded => Archive::create(dir, ARCHIVE_PASS).unwrap(),
            Store::Postgres { .. } => {
                Archive::create_postgres(dir, ARCHIVE_PASS, &self.new_database(dir)).unwrap()
            }
        }
    }

    fn open(&self, dir: &Path, passphrase: &str) -> testimony_archive::Result<Archive> {
        match self {
            // A directory this store did not create (a vault, say) is opened as embedded.
            Store::Postgres { databases, .. }
                if databases.borrow().iter().any(|(d, ..)| d == dir) =>
            {
                Archive::open_with_backend(dir, passphrase, &self.backend(dir))
            }
            _ => Archive::open(dir, passphrase),
        }
    }

    /// Everything the archive consists of: the directory's files byte for byte and, on
    /// PostgreSQL, every row of every table.
    fn state(&self, dir: &Path) -> (BTreeMap<PathBuf, Vec<u8>>, BTreeMap<String, Vec<String>>) {
        let tables = match self {
            Store::Embedded => BTreeMap::new(),
            Store::Postgres { .. } => {
                let Backend::Postgres(url) = self.backend(dir) else {
                    unreachable!()
                };
                pg_dump(&url)
            }
        };
        (snapshot(dir), tables)
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

/// Every row of every table in a PostgreSQL database, as text.
fn pg_dump(url: &str) -> BTreeMap<String, Vec<String>> {
    let mut c = postgres::Client::connect(url, postgres::NoTls).unwrap();
    let tables: Vec<String> = c
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        tables.len() >= 10,
        "the archive's tables are in PostgreSQL: {tables:?}"
    );
    tables
        .into_iter()
        .map(|t| {
            let rows = c
                .query(&format!("SELECT t::text FROM \"{t}\" t ORDER BY 1"), &[])
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            (t, rows)
        })
        .collect()
}

/// Runs each named test function once per back-end: `name::embedded`, `name::postgres`.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn embedded() {
                super::$name(&super::Store::Embedded);
            }
            #[test]
            fn postgres() {
                if let Some(store) = super::Store::postgres() {
                    super::$name(&store);
                }
            }
        }
    )*};
}

on_both_backends!(
    two_exports_with_edits_in_between_import_to_what_the_vault_holds,
    importing_the_same_bundle_twice_changes_nothing_and_says_so,
    bundles_out_of_order_report_the_gap_and_end_in_the_same_state,
    a_bundle_from_an_untrusted_device_waits_in_quarantine_until_trusted,
    bad_bundles_are_rejected_and_leave_the_archive_unchanged,
    a_wrong_archive_passphrase_is_reported_and_changes_nothing,
    the_same_record_changed_on_two_devices_is_kept_twice_until_resolved,
    withdrawing_consent_removes_the_witness_records_from_the_archive,
    search_finds_korean_and_english_short_terms_and_any_case,
    opening_with_the_wrong_back_end_is_a_clear_error,
    a_translators_note_comes_back_to_the_interviewer_in_a_return_bundle,
    a_resolved_conflict_returns_but_unsent_local_edits_are_kept,
    bad_return_bundles_are_rejected_and_change_nothing_in_the_vault,
    a_bundle_needing_an_earlier_one_waits_for_it,
    a_deleted_recording_is_deleted_in_the_archive_with_its_audio,
    a_translation_made_on_a_second_laptop_reaches_the_interviewer_through_the_archive,
    a_translator_gets_the_recording_with_its_audio_and_the_interviewer_gets_the_translation,
    returned_recordings_follow_consent_to_record_audio_and_withdrawal,
    bad_return_bundles_with_audio_change_nothing_in_the_translators_vault,
    recordings_in_the_old_and_the_new_chunk_format_arrive_as_the_vaults_wav_files,
);

struct Field {
    dir: PathBuf,
    shared_interview: String,
    private_interview: String,
    shared_recording: String,
    private_recording: String,
}

/// Two seconds of 16 kHz mono audio as a WAV file (a rising tone: not silence, not noise).
fn tone_wav(seconds: usize) -> Vec<u8> {
    let samples: Vec<i16> = (0..seconds * 16_000)
        .map(|i| ((i as f64 * (0.05 + i as f64 * 1e-7)).sin() * 8000.0) as i16)
        .collect();
    let mut out = testimony_core::audio::wav_header(16_000, 1, samples.len() as u32 * 2).to_vec();
    out.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    out
}

fn vault_wav(vault: &Path, recording: &str) -> Vec<u8> {
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    let mut out = Vec::new();
    v.export_wav(recording, &mut out).unwrap();
    out
}

fn archive_wav(a: &Archive, recording: &str) -> testimony_archive::Result<Vec<u8>> {
    let mut out = Vec::new();
    a.recording_wav(recording, &mut out)?;
    Ok(out)
}

fn consent(share: bool) -> ConsentScopes {
    let mut s = ConsentScopes::default();
    s.set(ConsentScope::RecordAudio, true);
    s.set(ConsentScope::Transcribe, true);
    s.set(ConsentScope::ShareArchive, share);
    s
}

/// A vault with one witness who consented to sharing and one who did not.
fn field_vault(dir: &Path) -> Field {
    let mut v = Vault::create(
        dir,
        VAULT_PASS,
        CreateOptions {
            interviewer: "interviewer A".into(),
            ..Default::default()
        },
    )
    .unwrap();
    let shared = v
        .add_witness(
            WitnessProfile::default(),
            Some(WitnessIdentity {
                real_name: Some("Secret Name".into()),
                contact: None,
                notes: None,
            }),
        )
        .unwrap();
    v.set_consent(
        &shared.code,
        consent(true),
        "interviewer A",
        None,
        ConsentMethod::Oral,
    )
    .unwrap();
    let private = v.add_witness(WitnessProfile::default(), None).unwrap();
    v.set_consent(
        &private.code,
        consent(false),
        "interviewer A",
        None,
        ConsentMethod::Oral,
    )
    .unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: shared.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    v.set_answer(&i.meta.id, None, "ever_detained", &json!("yes"))
        .unwrap();
    let ep = v
        .add_group_instance(&i.meta.id, "detention_episode", None)
        .unwrap();
    v.set_answer(
        &i.meta.id,
        Some(&ep.meta.id),
        "det_facility_name",
        &json!("전거리 교화소 (가상)"),
    )
    .unwrap();
    v.set_answer(
        &i.meta.id,
        None,
        "cl_anything_else",
        &json!("wigs and false eyelashes every day"),
    )
    .unwrap();
    v.add_note(&i.meta.id, None, None, "증언자가 피곤해 보였다")
        .unwrap();
    v.add_attachment(
        &i.meta.id,
        "sketch-map.png",
        "image/png",
        b"\x89PNG fictional sketch map bytes",
    )
    .unwrap();
    let rec = v.import_wav(&i.meta.id, &tone_wav(2)[..]).unwrap();
    v.add_marker(
        &rec.meta.id,
        700,
        Some("cl_anything_else"),
        "guard tower 감시탑",
    )
    .unwrap();
    let p = v
        .new_interview(NewInterview {
            witness: private.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    v.set_answer(
        &p.meta.id,
        None,
        "cl_anything_else",
        &json!("PRIVATE-ANSWER-MUST-NOT-TRAVEL"),
    )
    .unwrap();
    let private_rec = v.import_wav(&p.meta.id, &tone_wav(1)[..]).unwrap();
    Field {
        dir: dir.to_path_buf(),
        shared_interview: i.meta.id,
        private_interview: p.meta.id,
        shared_recording: rec.meta.id,
        private_recording: private_rec.meta.id,
    }
}

fn export(
    vault: &Path,
    archive_recipient: &str,
    out: &Path,
) -> testimony_core::bundle::ExportReport {
    let mut v = Vault::open(vault, VAULT_PASS).unwrap();
    v.export_bundle(
        &ExportOptions {
            recipients: vec![archive_recipient.into()],
            ..Default::default()
        },
        out,
    )
    .unwrap()
}

fn device_key(vault: &Path) -> String {
    Vault::open(vault, VAULT_PASS)
        .unwrap()
        .device_public_key()
        .unwrap()
}

/// Every file of a directory and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        out.insert(
            e.strip_prefix(dir).unwrap().to_path_buf(),
            fs::read(&e).unwrap(),
        );
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            v.extend(walk(&p))
        } else {
            v.push(p)
        }
    }
    v
}

/// question id (with instance) → value, as the vault has it.
fn vault_answers(vault: &Path, interview: &str) -> BTreeMap<String, Value> {
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    v.interview_detail(interview)
        .unwrap()
        .answers
        .into_iter()
        .map(|a| (format!("{}#{:?}", a.question_id, a.instance_id), a.value))
        .collect()
}

fn archive_answers(a: &Archive, interview: &str) -> BTreeMap<String, Value> {
    let d = a.interview_detail(interview).unwrap();
    d["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                format!(
                    "{}#{:?}",
                    x["question_id"].as_str().unwrap(),
                    x["instance_id"].as_str().map(str::to_string)
                ),
                x["value"].clone(),
            )
        })
        .collect()
}

fn setup(store: &Store) -> (tempfile::TempDir, Field, Archive) {
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let mut a = store.create(&tmp.path().join("archive"));
    a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    (tmp, field, a)
}

fn two_exports_with_edits_in_between_import_to_what_the_vault_holds(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    let r1 = export(&field.dir, &a.recipient(), &b1);
    assert_eq!(
        r1.withheld.witnesses, 1,
        "the witness without sharing consent is withheld"
    );
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("edited: 가발과 속눈썹"),
        )
        .unwrap();
        v.clear_answer(&field.shared_interview, None, "ever_detained")
            .unwrap_or_default();
        v.add_note(&field.shared_interview, None, None, "second visit")
            .unwrap();
    }
    let b2 = tmp.path().join("b2.tbundle");
    let r2 = export(&field.dir, &a.recipient(), &b2);
    assert_eq!(r2.sequence, 2);
    assert_eq!(r2.counts.tombstones, 1);

    let i1 = a.import(&b1).unwrap();
    assert_eq!(i1.outcome, "imported");
    let i2 = a.import(&b2).unwrap();
    assert_eq!(i2.outcome, "imported");
    assert_eq!((i2.updated, i2.deleted), (1, 1), "{i2:?}");
    assert!(i2.gaps.is_empty());

    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
    let notes = a.interview_detail(&field.shared_interview).unwrap()["notes"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(notes, 2);
    // The private witness's interview never reached the archive.
    assert!(matches!(
        a.interview_detail(&field.private_interview),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    assert!(a.search("PRIVATE-ANSWER", 10).unwrap().is_empty());
    // Identity is not exported by default.
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    assert!(!detail.to_string().contains("Secret Name"));
    // Search in Korean and English; the attachment arrived intact.
    assert!(!a.search("속눈썹", 10).unwrap().is_empty());
    assert!(!a.search("교화소", 10).unwrap().is_empty());
    assert!(
        a.search("eyelashes every day", 10).unwrap().is_empty(),
        "the old text was replaced"
    );
    let att = &detail["attachments"][0];
    assert_eq!(
        a.attachment_data(att["id"].as_str().unwrap()).unwrap(),
        b"\x89PNG fictional sketch map bytes"
    );
    // The recording, its marker (searchable) and its audio, exactly as the vault holds it; the
    // private witness's recording never arrived.
    assert_eq!(i1.recordings_audio, 1);
    assert_eq!(detail["recordings"].as_array().unwrap().len(), 1);
    assert_eq!(detail["audio_markers"][0]["at_ms"], json!(700));
    assert_eq!(
        archive_wav(&a, &field.shared_recording).unwrap(),
        vault_wav(&field.dir, &field.shared_recording)
    );
    assert!(matches!(
        archive_wav(&a, &field.private_recording),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    assert_eq!(a.search("감시탑", 10).unwrap().len(), 1);
}

/// A recording deleted on the laptop is deleted in the archive, audio and marker included.
fn a_deleted_recording_is_deleted_in_the_archive_with_its_audio(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    assert!(archive_wav(&a, &field.shared_recording).is_ok());
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .delete_recording(&field.shared_recording)
        .unwrap();
    let b2 = tmp.path().join("b2.tbundle");
    let r2 = export(&field.dir, &a.recipient(), &b2);
    assert_eq!((r2.counts.tombstones, r2.counts.recordings), (2, 0));
    let i2 = a.import(&b2).unwrap();
    assert_eq!(i2.deleted, 2, "{i2:?}");
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    assert!(
        detail["recordings"].as_array().unwrap().is_empty()
            && detail["audio_markers"].as_array().unwrap().is_empty()
    );
    assert!(matches!(
        archive_wav(&a, &field.shared_recording),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    assert!(a.search("감시탑", 10).unwrap().is_empty());
    // The first bundle again changes nothing: the deletion is final.
    assert_eq!(a.import(&b1).unwrap().outcome, "already_imported");
}

fn importing_the_same_bundle_twice_changes_nothing_and_says_so(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = store.state(&dir);
    let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
    let again = a.import(&b1).unwrap();
    assert_eq!(again.outcome, "already_imported");
    drop(a);
    assert_eq!(store.state(&dir), before);
}

fn bundles_out_of_order_report_the_gap_and_end_in_the_same_state(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let (b1, b2) = (tmp.path().join("b1.tbundle"), tmp.path().join("b2.tbundle"));
    export(&field.dir, &a.recipient(), &b1);
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.clear_answer(&field.shared_interview, None, "cl_anything_else")
            .unwrap();
    }
    export(&field.dir, &a.recipient(), &b2);
    let r = a.import(&b2).unwrap();
    assert_eq!(r.gaps, vec![1], "bundle 1 is reported missing");
    assert_eq!(a.devices().unwrap()[0].gaps, vec![1]);
    let r = a.import(&b1).unwrap();
    assert!(r.gaps.is_empty());
    // The answer deleted in bundle 2 does not come back with the older bundle 1.
    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
}

fn a_bundle_from_an_untrusted_device_waits_in_quarantine_until_trusted(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let mut a = store.create(&tmp.path().join("archive"));
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    let r = a.import(&b1).unwrap();
    assert_eq!(r.outcome, "quarantined");
    assert!(a.interviews().unwrap().is_empty(), "nothing merged");
    assert_eq!(a.quarantined().unwrap().len(), 1);
    assert_eq!(
        a.import(&b1).unwrap().message,
        "already in quarantine: the device is not trusted yet"
    );
    assert_eq!(a.quarantined().unwrap().len(), 1);
    let t = a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    assert_eq!(t.merged.len(), 1);
    assert!(a.quarantined().unwrap().is_empty());
    assert_eq!(a.interviews().unwrap().len(), 1);
    assert!(
        fs::read_dir(a.dir().join("quarantine"))
            .unwrap()
            .next()
            .is_none(),
        "the released file is removed"
    );
}

/// Embedded: the directory byte for byte. PostgreSQL: the directory byte for byte and no row
/// of any table changed.
fn bad_bundles_are_rejected_and_leave_the_archive_unchanged(store: &Store) {
    let (tmp, field, a) = setup(store);
    {
        // Large enough (several 64 KiB age chunks) that a damaged end is found only after the
        // records were merged: the transaction must be rolled back, not merely left open.
        use rand::RngCore;
        let mut noise = vec![0u8; 300 * 1024];
        rand::thread_rng().fill_bytes(&mut noise);
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.add_attachment(
            &field.shared_interview,
            "recording.bin",
            "application/octet-stream",
            &noise,
        )
        .unwrap();
    }
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    let good = fs::read(&b1).unwrap();
    // A bundle for another archive.
    let other = store.create(&tmp.path().join("other"));
    let foreign = tmp.path().join("foreign.tbundle");
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.export_bundle(
            &ExportOptions {
                recipients: vec![other.recipient()],
                full: true,
                ..Default::default()
            },
            &foreign,
        )
        .unwrap();
    }
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = store.state(&dir);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty file".into(), vec![]),
        (
            "not a bundle".into(),
            b"hello, this is not a bundle".to_vec(),
        ),
        ("wrong recipient".into(), fs::read(&foreign).unwrap()),
    ];
    for cut in [
        10,
        good.len() / 3,
        good.len() / 2,
        good.len() - 17,
        good.len() - 1,
    ] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    for pos in [40, 200, good.len() / 2, good.len() - 5] {
        let mut b = good.clone();
        b[pos] ^= 0x04;
        cases.push((format!("bit flipped at {pos}"), b));
    }
    for (name, bytes) in cases {
        let f = tmp.path().join("bad.tbundle");
        fs::write(&f, &bytes).unwrap();
        let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
        match a.import(&f) {
            Err(AErr::Core(Error::BadBundle(msg))) => assert!(!msg.is_empty(), "{name}"),
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
        // Rolled back, not merely left uncommitted: this session does not see the records.
        assert!(a.interviews().unwrap().is_empty(), "{name}");
        drop(a);
        assert_eq!(store.state(&dir), before, "{name}: the archive changed");
    }
}

fn a_wrong_archive_passphrase_is_reported_and_changes_nothing(store: &Store) {
    let (_tmp, field, a) = setup(store);
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = store.state(&dir);
    assert!(matches!(
        store.open(&dir, "not the archive passphrase"),
        Err(AErr::Core(Error::WrongPassphrase))
    ));
    assert_eq!(store.state(&dir), before);
    // A vault is not an archive.
    assert!(matches!(
        store.open(&field.dir, ARCHIVE_PASS),
        Err(AErr::Core(Error::NotAVault { .. }))
    ));
    // Open elsewhere: locked.
    let _held = store.open(&dir, ARCHIVE_PASS).unwrap();
    assert!(matches!(
        store.open(&dir, ARCHIVE_PASS),
        Err(AErr::Core(Error::Locked(_)))
    ));
}

/// Turns a copy of a vault into a second device (its own signing key and device id), as
/// when a vault is copied to a translator's laptop.
fn make_second_device(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for f in ["vault.json", "vault.db", "vault.lock"] {
        fs::copy(src.join(f), dst.join(f)).unwrap();
    }
    let header = testimony_core::keys::Header::read(dst).unwrap();
    let key = header.unseal(VAULT_PASS).unwrap();
    let conn = testimony_core::vault::open_encrypted_db(
        &dst.join("vault.db"),
        &key,
        false,
        header.page_hmac(),
    )
    .unwrap();
    let sk = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    conn.execute(
        "UPDATE secrets SET value = ?1 WHERE key = 'device_signing_key'",
        [&sk.to_bytes()[..]],
    )
    .unwrap();
    conn.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'device_id'",
        ["translator-laptop"],
    )
    .unwrap();
    conn.execute("DELETE FROM bundle_exports", []).unwrap();
    // A device of its own: its own encryption key for return bundles too.
    conn.execute("DELETE FROM secrets WHERE key = 'device_age_identity'", [])
        .unwrap();
}

fn the_same_record_changed_on_two_devices_is_kept_twice_until_resolved(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let second = tmp.path().join("vault2");
    make_second_device(&field.dir, &second);
    a.trust_device(&device_key(&second), "translator").unwrap();
    for (dir, text) in [
        (&field.dir, "interviewer's correction"),
        (&second, "translator's correction"),
    ] {
        let mut v = Vault::open(dir, VAULT_PASS).unwrap();
        v.set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!(text),
        )
        .unwrap();
    }
    let (b2, t1) = (tmp.path().join("b2.tbundle"), tmp.path().join("t1.tbundle"));
    export(&field.dir, &a.recipient(), &b2);
    export(&second, &a.recipient(), &t1);
    assert_eq!(a.import(&b2).unwrap().updated, 1);
    let r = a.import(&t1).unwrap();
    assert!(r.conflicts >= 1, "{r:?}");
    let conflicts = a.conflicts(false).unwrap();
    let c = conflicts
        .iter()
        .find(|c| c.kind == "answer" && c.current["value"] == json!("interviewer's correction"))
        .expect("answer conflict listed");
    assert_eq!(c.incoming["value"], json!("translator's correction"));
    // Nothing was overwritten silently.
    let current = archive_answers(&a, &field.shared_interview);
    assert_eq!(
        current["cl_anything_else#None"],
        json!("interviewer's correction")
    );
    a.resolve_conflict(c.id, true).unwrap();
    assert_eq!(
        archive_answers(&a, &field.shared_interview)["cl_anything_else#None"],
        json!("translator's correction")
    );
    assert!(a.conflicts(false).unwrap().iter().all(|x| x.id != c.id));
    assert!(
        !a.search("translator", 10).unwrap().is_empty(),
        "the search follows the resolution"
    );
    assert!(a.search("interviewer's correction", 10).unwrap().is_empty());
    let resolved = a
        .conflicts(true)
        .unwrap()
        .into_iter()
        .find(|x| x.id == c.id)
        .unwrap();
    assert_eq!(resolved.resolution.as_deref(), Some("incoming"));
    assert!(matches!(
        a.resolve_conflict(c.id, false),
        Err(AErr::Core(Error::NotAllowed(_)))
    ));
    // Importing the same bundle again does not list the conflict a second time.
    assert_eq!(a.import(&t1).unwrap().outcome, "already_imported");
    assert_eq!(a.conflicts(true).unwrap().len(), conflicts.len());
}

fn withdrawing_consent_removes_the_witness_records_from_the_archive(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    assert_eq!(a.interviews().unwrap().len(), 1);
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        let i = v.interview(&field.shared_interview).unwrap();
        v.withdraw_consent(&i.witness_code, None).unwrap();
    }
    let b2 = tmp.path().join("b2.tbundle");
    let r = export(&field.dir, &a.recipient(), &b2);
    assert_eq!(r.counts.consents, 1, "the withdrawal travels");
    assert_eq!(
        r.counts.answers, 0,
        "no content travels for a withdrawn witness"
    );
    let imp = a.import(&b2).unwrap();
    assert!(imp.purged_for_withdrawal > 0);
    assert!(a.interviews().unwrap().is_empty());
    assert!(a.search("교화소", 10).unwrap().is_empty());
}

fn search_finds_korean_and_english_short_terms_and_any_case(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let found = |q: &str| a.search(q, 10).unwrap();
    for q in [
        "교화소",
        "교화",
        "피곤",
        "증언자가 피곤해",
        "eyelashes",
        "EYELASHES",
        "False Eyelashes",
        "wi",
    ] {
        let hits = found(q);
        assert_eq!(hits.len(), 1, "{q}: {hits:?}");
        assert_eq!(hits[0].interview_id, field.shared_interview);
        assert!(!hits[0].snippet.is_empty());
    }
    assert_eq!(found("증언자가")[0].kind, "note");
    // LIKE wildcards and quotes are searched for literally.
    for q in ["%", "_", "e%s", "\\", "\"", "'", "교화소 (가상) 없음"] {
        assert!(found(q).is_empty(), "{q}");
    }
    assert!(matches!(
        a.search("  ", 10),
        Err(AErr::Core(Error::Invalid(_)))
    ));
    assert_eq!(a.search("a", 1).unwrap().len(), 1, "the limit holds");
}

fn opening_with_the_wrong_back_end_is_a_clear_error(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let a = store.create(&dir);
    let recipient = a.recipient();
    drop(a);
    let invalid = |r: testimony_archive::Result<Archive>| match r {
        Err(AErr::Core(Error::Invalid(m))) => m.to_string(),
        other => panic!("expected a back-end error, got {other:?}"),
    };
    match store {
        Store::Embedded => {
            // Refused before any connection is tried.
            let m = invalid(Archive::open_with_backend(
                &dir,
                ARCHIVE_PASS,
                &Backend::Postgres("host=127.0.0.1 port=1 user=nobody dbname=none".into()),
            ));
            assert!(m.contains("without --postgres"), "{m}");
        }
        Store::Postgres { .. } => {
            let m = invalid(Archive::open(&dir, ARCHIVE_PASS));
            assert!(
                m.contains("--postgres") && m.contains("dbname=testimony_t"),
                "{m}"
            );
            // An empty database, and one holding another archive.
            let empty = store.new_database(&tmp.path().join("unused"));
            let m = invalid(Archive::open_with_backend(
                &dir,
                ARCHIVE_PASS,
                &Backend::Postgres(empty),
            ));
            assert!(m.contains("holds no Testimony archive"), "{m}");
            let other = store.create(&tmp.path().join("other"));
            drop(other);
            let Backend::Postgres(other_url) = store.backend(&tmp.path().join("other")) else {
                unreachable!()
            };
            let m = invalid(Archive::open_with_backend(
                &dir,
                ARCHIVE_PASS,
                &Backend::Postgres(other_url.clone()),
            ));
            assert!(m.contains("holds a different archive"), "{m}");
            // A database already holding an archive is not reused, and nothing is left behind.
            let third = tmp.path().join("third");
            assert!(matches!(
                Archive::create_postgres(&third, ARCHIVE_PASS, &other_url),
                Err(AErr::Core(Error::AlreadyExists(_)))
            ));
            assert!(!third.exists());
        }
    }
    // The right back-end still opens it.
    assert_eq!(
        store.open(&dir, ARCHIVE_PASS).unwrap().recipient(),
        recipient
    );
}

#[test]
fn an_unreachable_postgres_server_leaves_nothing_behind_and_no_password_in_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("archive");
    let url = "host=127.0.0.1 port=1 user=archivist password=hunter2-secret dbname=testimony connect_timeout=5";
    match Archive::create_postgres(&dir, ARCHIVE_PASS, url) {
        Err(AErr::Server(m)) => {
            assert!(
                m.contains("cannot connect to PostgreSQL")
                    && m.contains("host=127.0.0.1 port=1 user=archivist dbname=testimony"),
                "{m}"
            );
            assert!(!m.contains("hunter2"), "{m}");
        }
        other => panic!("expected a server error, got {other:?}"),
    }
    assert!(
        !dir.exists(),
        "nothing is written before the server answered"
    );
    let dbg = format!("{:?}", Backend::Postgres(url.into()));
    assert!(!dbg.contains("hunter2") && dbg.contains("port=1"), "{dbg}");
    assert!(matches!(
        Archive::create_postgres(&dir, ARCHIVE_PASS, "port=notanumber"),
        Err(AErr::Core(Error::Invalid(_)))
    ));
}

#[test]
fn postgres_holds_attachments_only_encrypted_and_the_directory_no_password() {
    let Some(store) = Store::postgres() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let dir = tmp.path().join("archive");
    // Trust authentication ignores the password; it must not be stored anywhere.
    let url = format!(
        "{} password=never-stored-anywhere",
        store.new_database(&dir)
    );
    let mut a = Archive::create_postgres(&dir, ARCHIVE_PASS, &url).unwrap();
    assert!(
        a.backend_description().starts_with("postgres (")
            && !a.backend_description().contains("never-stored")
    );
    assert!(!format!("{a:?}").contains("never-stored"));
    a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();

    let Backend::Postgres(db_url) = store.backend(&dir) else {
        unreachable!()
    };
    let mut c = postgres::Client::connect(&db_url, postgres::NoTls).unwrap();
    let rows = c.query("SELECT data FROM attachments", &[]).unwrap();
    assert_eq!(rows.len(), 1);
    let data: Vec<u8> = rows[0].get(0);
    assert!(
        data.starts_with(b"age-encryption.org/v1\n"),
        "stored age-encrypted"
    );
    assert!(
        !data.windows(8).any(|w| w == b"fictiona"),
        "no plaintext bytes in PostgreSQL"
    );
    let dump = format!("{:?}", pg_dump(&db_url));
    assert!(!dump.contains(&hex_of(b"fictional sketch")));
    assert!(
        dump.contains("교화소"),
        "the records themselves are in PostgreSQL"
    );
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    assert_eq!(
        a.attachment_data(detail["attachments"][0]["id"].as_str().unwrap())
            .unwrap(),
        b"\x89PNG fictional sketch map bytes"
    );
    drop(a);

    // The local database records the back-end and where, without the password; its record
    // tables stay empty.
    let header =
        testimony_core::keys::Header::read_for(testimony_core::keys::ARCHIVE_HEADER, &dir).unwrap();
    let key = header.unseal(ARCHIVE_PASS).unwrap();
    let conn = testimony_core::vault::open_encrypted_db(
        &dir.join("archive.db"),
        &key,
        false,
        header.page_hmac(),
    )
    .unwrap();
    let meta: BTreeMap<String, String> = conn
        .prepare("SELECT key, value FROM meta")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(meta["backend"], "postgres");
    assert!(
        meta["postgres_target"].contains("host=")
            && meta["postgres_target"].contains("dbname=testimony_t"),
        "{meta:?}"
    );
    assert!(!format!("{meta:?}").contains("never-stored"));
    let local_records: i64 = conn
        .query_row("SELECT count(*) FROM records", [], |r| r.get(0))
        .unwrap();
    assert_eq!(local_records, 0);
    // Opened again without the password in the string (trust): the archive id decides.
    assert_eq!(
        Archive::open_with_backend(&dir, ARCHIVE_PASS, &Backend::Postgres(db_url))
            .unwrap()
            .interviews()
            .unwrap()
            .len(),
        1
    );
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

// ---- return bundles (archive → device) ---------------------------------------------------

fn new_vault(dir: &Path, who: &str) -> PathBuf {
    Vault::create(
        dir,
        VAULT_PASS,
        CreateOptions {
            interviewer: who.into(),
            ..Default::default()
        },
    )
    .unwrap();
    dir.to_path_buf()
}

/// Full export from a device that may hold nothing yet: it tells the archive the device's
/// encryption key.
fn export_full(vault: &Path, archive_recipient: &str, out: &Path) {
    let mut v = Vault::open(vault, VAULT_PASS).unwrap();
    v.export_bundle(
        &ExportOptions {
            recipients: vec![archive_recipient.into()],
            full: true,
            ..Default::default()
        },
        out,
    )
    .unwrap();
}

fn apply_return(
    vault: &Path,
    file: &Path,
) -> testimony_core::Result<testimony_core::bundle::ReturnImportReport> {
    Vault::open(vault, VAULT_PASS)
        .unwrap()
        .import_return_bundle(file)
}

fn trust_archive(vault: &Path, a: &Archive) {
    Vault::open(vault, VAULT_PASS)
        .unwrap()
        .trust_archive(&a.id().unwrap().signing_key, false)
        .unwrap();
}

/// Everything a vault shows of one interview: answers, notes, instances, status.
fn vault_view(vault: &Path, interview: &str) -> String {
    let answers = vault_answers(vault, interview);
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    let d = v.interview_detail(interview).unwrap();
    let mut notes: Vec<String> = d.notes.iter().map(|n| n.text.clone()).collect();
    notes.sort();
    format!(
        "{answers:?}|{notes:?}|{}|{:?}",
        d.instances.len(),
        d.interview.status
    )
}

fn a_translators_note_comes_back_to_the_interviewer_in_a_return_bundle(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();

    // A translator's laptop: enrolled, announces its key with an (empty) full bundle.
    let translator = new_vault(&tmp.path().join("translator"), "translator T");
    a.trust_device(&device_key(&translator), "translator")
        .unwrap();
    let t0 = tmp.path().join("t0.tbundle");
    export_full(&translator, &a.recipient(), &t0);
    assert_eq!(a.import(&t0).unwrap().outcome, "imported");
    let tkey = device_key(&translator);

    // The coordinator sends the interview to the translator.
    a.assign(&tkey, &field.shared_interview).unwrap();
    assert!(matches!(
        a.assign(&tkey, "no-such-interview"),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    let r1 = tmp.path().join("r1-translator.tbundle");
    let rep = a.export_return(&tkey, &r1, false).unwrap();
    assert_eq!(
        (
            rep.sequence,
            rep.counts.interviews,
            rep.counts.witnesses,
            rep.counts.consents
        ),
        (1, 1, 1, 1),
        "{rep:?}"
    );
    assert!(rep.counts.answers >= 3 && rep.counts.notes == 1, "{rep:?}");
    assert!(
        !fs::read(&r1).unwrap().windows(7).any(|w| w == b"eyelash"),
        "encrypted"
    );
    // Not before the vault trusts the archive's key.
    assert!(matches!(
        apply_return(&translator, &r1),
        Err(Error::NotAllowed(_))
    ));
    trust_archive(&translator, &a);
    let applied = apply_return(&translator, &r1).unwrap();
    assert_eq!(applied.outcome, "applied");
    assert_eq!(applied.kept_local, 0);
    assert_eq!(
        vault_view(&translator, &field.shared_interview),
        vault_view(&field.dir, &field.shared_interview),
        "the translator sees the interview as made"
    );
    // Identity and attachments never travel back.
    let tv = Vault::open(&translator, VAULT_PASS).unwrap();
    let w = tv.interview(&field.shared_interview).unwrap().witness_id;
    assert!(tv.witness_identity(&w).unwrap().is_none());
    assert!(
        tv.interview_detail(&field.shared_interview)
            .unwrap()
            .attachments
            .is_empty()
    );
    drop(tv);
    // Applying it again changes nothing and says so.
    let again = apply_return(&translator, &r1).unwrap();
    assert_eq!(again.outcome, "already_applied");
    assert!(matches!(
        a.export_return(&tkey, &tmp.path().join("r-none.tbundle"), false),
        Err(AErr::Core(Error::NothingToExport(_)))
    ));

    // The translator adds a translation; it reaches the archive without any conflict.
    Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .add_note(
            &field.shared_interview,
            Some("cl_anything_else"),
            None,
            "Translation: she made wigs and false eyelashes every day",
        )
        .unwrap();
    let t1 = tmp.path().join("t1.tbundle");
    export(&translator, &a.recipient(), &t1);
    let imp = a.import(&t1).unwrap();
    assert_eq!(
        (imp.added, imp.updated, imp.conflicts),
        (1, 0, 0),
        "records the translator only received come back unchanged: {imp:?}"
    );

    // The interviewer's laptop gets the translation back.
    let r2 = tmp.path().join("r1-interviewer.tbundle");
    let rep = a
        .export_return(&device_key(&field.dir), &r2, false)
        .unwrap();
    assert_eq!(
        (rep.counts.notes, rep.counts.answers, rep.counts.interviews),
        (1, 0, 0),
        "only what the interviewer lacks: {rep:?}"
    );
    // A return bundle for the translator cannot be applied by the interviewer's vault.
    trust_archive(&field.dir, &a);
    let wrong = apply_return(&field.dir, &r1).unwrap_err();
    assert!(matches!(wrong, Error::BadBundle(_)), "{wrong}");
    let applied = apply_return(&field.dir, &r2).unwrap();
    assert_eq!(applied.added, 1);
    let v = Vault::open(&field.dir, VAULT_PASS).unwrap();
    assert!(
        v.search("Translation: she made", 10)
            .unwrap()
            .iter()
            .any(|h| h.interview_id == field.shared_interview),
        "the translation is searchable"
    );
    drop(v);
    assert_eq!(
        vault_view(&translator, &field.shared_interview),
        vault_view(&field.dir, &field.shared_interview),
        "both laptops agree"
    );
    // The interviewer's next export carries the received note unchanged: no conflict, nothing new.
    let b2 = tmp.path().join("b2.tbundle");
    export(&field.dir, &a.recipient(), &b2);
    let imp = a.import(&b2).unwrap();
    assert_eq!(
        (imp.added, imp.updated, imp.conflicts),
        (0, 0, 0),
        "{imp:?}"
    );
}

fn a_resolved_conflict_returns_but_unsent_local_edits_are_kept(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let second = tmp.path().join("vault2");
    make_second_device(&field.dir, &second);
    a.trust_device(&device_key(&second), "second laptop")
        .unwrap();
    for (dir, text) in [
        (&field.dir, "interviewer's wording"),
        (&second, "reviewer's wording"),
    ] {
        let mut v = Vault::open(dir, VAULT_PASS).unwrap();
        v.set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!(text),
        )
        .unwrap();
        v.add_note(
            &field.shared_interview,
            None,
            None,
            &format!("note from {text}"),
        )
        .unwrap();
    }
    let (b2, s1) = (tmp.path().join("b2.tbundle"), tmp.path().join("s1.tbundle"));
    export(&field.dir, &a.recipient(), &b2);
    export(&second, &a.recipient(), &s1);
    a.import(&b2).unwrap();
    a.import(&s1).unwrap();
    let akey = device_key(&field.dir);
    trust_archive(&field.dir, &a);

    // While the conflict is open the answer is held back; the other laptop's new note goes.
    let r1 = tmp.path().join("r1.tbundle");
    let rep = a.export_return(&akey, &r1, false).unwrap();
    assert_eq!((rep.counts.answers, rep.counts.notes), (0, 1), "{rep:?}");
    apply_return(&field.dir, &r1).unwrap();

    // The coordinator takes the reviewer's wording; the interviewer's laptop follows.
    let c = a
        .conflicts(false)
        .unwrap()
        .into_iter()
        .find(|c| c.kind == "answer")
        .unwrap();
    a.resolve_conflict(c.id, true).unwrap();
    let r2 = tmp.path().join("r2.tbundle");
    assert_eq!(
        a.export_return(&akey, &r2, false).unwrap().counts.answers,
        1
    );
    let applied = apply_return(&field.dir, &r2).unwrap();
    assert_eq!((applied.updated, applied.kept_local), (1, 0), "{applied:?}");
    assert_eq!(
        vault_answers(&field.dir, &field.shared_interview)["cl_anything_else#None"],
        json!("reviewer's wording")
    );
    assert_eq!(
        vault_answers(&field.dir, &field.shared_interview),
        archive_answers(&a, &field.shared_interview)
    );

    // A local edit not exported yet is never overwritten by a return bundle.
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("typed after the last export"),
        )
        .unwrap();
    }
    let r3 = tmp.path().join("r3.tbundle");
    let rep = a.export_return(&akey, &r3, true).unwrap();
    assert!(
        rep.counts.answers >= 1,
        "--full sends the resolved answer again: {rep:?}"
    );
    let applied = apply_return(&field.dir, &r3).unwrap();
    assert!(applied.kept_local >= 1, "{applied:?}");
    assert_eq!(
        vault_answers(&field.dir, &field.shared_interview)["cl_anything_else#None"],
        json!("typed after the last export")
    );
    // And it reaches the archive as the interviewer's newer version.
    let b3 = tmp.path().join("b3.tbundle");
    export(&field.dir, &a.recipient(), &b3);
    let imp = a.import(&b3).unwrap();
    assert!(imp.conflicts >= 1 || imp.updated >= 1, "{imp:?}");
    assert!(
        a.conflicts(false)
            .unwrap()
            .iter()
            .any(|c| c.incoming["value"] == json!("typed after the last export"))
            || archive_answers(&a, &field.shared_interview)["cl_anything_else#None"]
                == json!("typed after the last export")
    );
}

/// The transcript a translator reviews: made on the interviewer's laptop (segments as the
/// engine saves them), corrected there, exported; translated on a second laptop; the archive
/// keeps both versions of the segment until the coordinator takes the translation, which then
/// returns to the interviewer's laptop, history included, and is found by search there.
fn a_translation_made_on_a_second_laptop_reaches_the_interviewer_through_the_archive(
    store: &Store,
) {
    use testimony_core::transcript::NewSegment;
    let (tmp, field, mut a) = setup(store);
    let (transcript, first, second_seg) = {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        let t = v
            .start_transcript(&field.shared_recording, "ggml-test.bin", Some("ko"), 30_000)
            .unwrap();
        let seg = |s: u64, e: u64, text: &str| NewSegment {
            start_ms: s,
            end_ms: e,
            text: text.into(),
            language: Some("ko".into()),
            confidence: Some(0.8),
        };
        v.save_transcript_window(
            &t.meta.id,
            0,
            &[
                seg(0, 900, "탄광에서 일했슴니다"),
                seg(900, 2000, "하루 열두 시간"),
            ],
        )
        .unwrap();
        v.finish_transcript(&t.meta.id, 1).unwrap();
        let segs = v.transcript_segments(&t.meta.id).unwrap();
        v.edit_segment_text(&segs[0].meta.id, "탄광에서 일했습니다")
            .unwrap();
        (t.meta.id, segs[0].meta.id.clone(), segs[1].meta.id.clone())
    };
    let b1 = tmp.path().join("b1.tbundle");
    let r1 = export(&field.dir, &a.recipient(), &b1);
    assert_eq!(
        (r1.counts.transcripts, r1.counts.transcript_segments),
        (1, 2),
        "{r1:?}"
    );
    a.import(&b1).unwrap();
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    assert_eq!(detail["transcripts"][0]["id"], json!(transcript));
    let segs = detail["transcript_segments"].as_array().unwrap();
    let corrected = segs.iter().find(|s| s["id"] == json!(first)).unwrap();
    assert_eq!(
        (
            corrected["text"].as_str(),
            corrected["machine_text"].as_str()
        ),
        (Some("탄광에서 일했습니다"), Some("탄광에서 일했슴니다"))
    );
    assert_eq!(a.search("탄광에서", 10).unwrap().len(), 1);

    // The translator's laptop (a copy of the vault: it holds the recording) translates.
    let second = tmp.path().join("vault2");
    make_second_device(&field.dir, &second);
    a.trust_device(&device_key(&second), "translator").unwrap();
    {
        let mut v = Vault::open(&second, VAULT_PASS).unwrap();
        v.set_segment_translation(&first, "I worked in the coal mine", "en")
            .unwrap();
        v.set_segment_reviewed(&first, true).unwrap();
    }
    let s1 = tmp.path().join("s1.tbundle");
    export(&second, &a.recipient(), &s1);
    let imp = a.import(&s1).unwrap();
    assert_eq!(
        imp.conflicts, 1,
        "the same segment changed on two laptops is kept twice: {imp:?}"
    );
    let c = a
        .conflicts(false)
        .unwrap()
        .into_iter()
        .find(|c| c.kind == "transcript_segment")
        .unwrap();
    assert_eq!(
        c.incoming["translation"],
        json!("I worked in the coal mine")
    );
    a.resolve_conflict(c.id, true).unwrap();
    assert_eq!(
        a.search("coal mine", 10).unwrap().len(),
        1,
        "the translation is searchable in the archive"
    );

    // Back to the interviewer.
    trust_archive(&field.dir, &a);
    let r = tmp.path().join("r1.tbundle");
    let rep = a.export_return(&device_key(&field.dir), &r, false).unwrap();
    assert_eq!(rep.counts.transcript_segments, 1, "{rep:?}");
    let applied = apply_return(&field.dir, &r).unwrap();
    assert_eq!(
        (
            applied.updated,
            applied.kept_local,
            applied.skipped_without_recording
        ),
        (1, 0, 0),
        "{applied:?}"
    );
    let v = Vault::open(&field.dir, VAULT_PASS).unwrap();
    let s = v.transcript_segment(&first).unwrap();
    assert_eq!(
        (s.text.as_str(), s.translation.as_deref(), s.reviewed),
        (
            "탄광에서 일했습니다",
            Some("I worked in the coal mine"),
            true
        )
    );
    assert_eq!(v.transcript_segment(&second_seg).unwrap().translation, None);
    let history = v.segment_history(&first).unwrap();
    assert!(
        history.len() >= 3,
        "machine text, correction, returned translation: {history:?}"
    );
    assert!(
        !v.search("coal mine", 10).unwrap().is_empty(),
        "the returned translation is searchable on the laptop"
    );
    v.audit_verify().unwrap();
}

/// All interview content of a vault, for "changed nothing" checks.
fn vault_state(vault: &Path) -> String {
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    let mut s = String::new();
    for i in v.interviews(None, None).unwrap() {
        s.push_str(&format!("{:?}\n", v.interview_detail(&i.meta.id).unwrap()));
    }
    s.push_str(&format!("{:?}", v.codebooks().unwrap()));
    s.push_str(&format!("{:?}", v.audit_verify().unwrap().entries));
    s
}

fn bad_return_bundles_are_rejected_and_change_nothing_in_the_vault(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    // A new codebook version published at the archive travels back.
    let cb = testimony_core::codebook::Codebook::default_codebook();
    let newer = cb.source.replacen(
        &format!("version = \"{}\"", cb.version),
        "version = \"9.9.9\"",
        1,
    );
    assert_ne!(newer, cb.source);
    let (_, version, added) = a.add_codebook(&newer, "newer.toml").unwrap();
    assert!(added && version == "9.9.9");
    assert!(
        !a.add_codebook(&newer, "newer.toml").unwrap().2,
        "publishing twice changes nothing"
    );
    assert!(a.add_codebook("id = 1\n", "broken.toml").is_err());
    let akey = device_key(&field.dir);
    let good = tmp.path().join("good.tbundle");
    let rep = a.export_return(&akey, &good, false).unwrap();
    assert_eq!(rep.codebooks, vec![format!("{}@9.9.9", cb.id)]);
    let bytes = fs::read(&good).unwrap();

    // Not trusted yet; then trusted, but a different archive's key.
    let before = vault_state(&field.dir);
    assert!(matches!(
        apply_return(&field.dir, &good),
        Err(Error::NotAllowed(_))
    ));
    let other = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .trust_archive(&hex_of(&other.verifying_key().to_bytes()), false)
        .unwrap();
    let e = apply_return(&field.dir, &good).unwrap_err();
    assert!(
        matches!(&e, Error::BadBundle(m) if m.contains("does not trust")),
        "{e}"
    );
    assert!(
        matches!(
            Vault::open(&field.dir, VAULT_PASS)
                .unwrap()
                .trust_archive(&a.id().unwrap().signing_key, false),
            Err(Error::NotAllowed(_))
        ),
        "switching archives needs --replace"
    );
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .trust_archive(&a.id().unwrap().signing_key, true)
        .unwrap();

    // Damaged anywhere, truncated, or a device's bundle instead of a return bundle.
    for at in [
        0,
        30,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 20,
        bytes.len() - 1,
    ] {
        let mut b = bytes.clone();
        b[at] ^= 0x10;
        let f = tmp.path().join(format!("flipped-{at}.tbundle"));
        fs::write(&f, &b).unwrap();
        assert!(
            matches!(apply_return(&field.dir, &f), Err(Error::BadBundle(_))),
            "bit flipped at {at}"
        );
    }
    for len in [0, 100, bytes.len() / 2, bytes.len() - 1] {
        let f = tmp.path().join(format!("short-{len}.tbundle"));
        fs::write(&f, &bytes[..len]).unwrap();
        assert!(
            matches!(apply_return(&field.dir, &f), Err(Error::BadBundle(_))),
            "truncated to {len}"
        );
    }
    let e = apply_return(&field.dir, &b1).unwrap_err();
    assert!(
        matches!(&e, Error::BadBundle(m) if m.contains("recipient")),
        "{e}"
    );
    assert_eq!(vault_state(&field.dir), before, "nothing changed");

    // The good one applies once; a different bundle under the same number is refused.
    let applied = apply_return(&field.dir, &good).unwrap();
    assert_eq!(applied.codebooks_added, 1);
    assert!(
        Vault::open(&field.dir, VAULT_PASS)
            .unwrap()
            .codebooks()
            .unwrap()
            .iter()
            .any(|(_, v, _)| v == "9.9.9")
    );
    let after = vault_state(&field.dir);
    assert_eq!(
        apply_return(&field.dir, &good).unwrap().outcome,
        "already_applied"
    );
    assert_eq!(vault_state(&field.dir), after);
}

/// What a coordinator can see of an archive, without timestamps of the import itself.
fn archive_view(a: &Archive) -> Value {
    let mut details = Vec::new();
    for i in a.interviews().unwrap() {
        details.push(a.interview_detail(i["id"].as_str().unwrap()).unwrap());
    }
    let devices: Vec<Value> = a
        .devices()
        .unwrap()
        .into_iter()
        .map(|d| {
            json!([
                d.public_key,
                d.name,
                d.bundles,
                d.last_sequence,
                d.gaps,
                d.device_ids
            ])
        })
        .collect();
    let conflicts: Vec<Value> = a
        .conflicts(true)
        .unwrap()
        .into_iter()
        .map(|c| json!([c.kind, c.record_id, c.current, c.incoming, c.resolution]))
        .collect();
    let mut search = Vec::new();
    for q in ["교화소", "속눈썹", "edited", "visit", "가발"] {
        let mut hits: Vec<String> = a
            .search(q, 50)
            .unwrap()
            .into_iter()
            .map(|h| format!("{} {} {}", h.record_id, h.kind, h.interview_id))
            .collect();
        hits.sort();
        search.push(json!([q, hits]));
    }
    json!({"interviews": a.interviews().unwrap(), "details": details, "devices": devices, "conflicts": conflicts, "search": search, "quarantine": a.quarantined().unwrap().len()})
}

/// The acceptance flow of the archive, run once into each back-end from the same bundles:
/// an interviewer's vault exported twice with edits in between, imported out of order and
/// twice, ends in identical archives.
#[test]
fn both_back_ends_end_in_identical_archives_after_the_same_bundles() {
    let Some(pg) = Store::postgres() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let embedded = Store::Embedded;
    let mut archives = [
        embedded.create(&tmp.path().join("archive-embedded")),
        pg.create(&tmp.path().join("archive-postgres")),
    ];
    // One age recipient per archive: export each bundle twice, to the same vault state? No:
    // a bundle is numbered once. Encrypt each bundle to both archives instead.
    let recipients: Vec<String> = archives.iter().map(|a| a.recipient()).collect();
    let export_both = |out: &Path| {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.export_bundle(
            &ExportOptions {
                recipients: recipients.clone(),
                ..Default::default()
            },
            out,
        )
        .unwrap();
    };
    let b1 = tmp.path().join("b1.tbundle");
    export_both(&b1);
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("edited: 가발과 속눈썹"),
        )
        .unwrap();
        v.clear_answer(&field.shared_interview, None, "ever_detained")
            .unwrap();
        v.add_note(&field.shared_interview, None, None, "second visit")
            .unwrap();
    }
    let b2 = tmp.path().join("b2.tbundle");
    export_both(&b2);
    let key = device_key(&field.dir);
    for a in archives.iter_mut() {
        // Before trust: quarantine; then trust merges it; then the rest out of order, twice.
        assert_eq!(a.import(&b2).unwrap().outcome, "quarantined");
        a.trust_device(&key, "laptop A").unwrap();
        assert_eq!(a.import(&b1).unwrap().outcome, "imported");
        assert_eq!(a.import(&b1).unwrap().outcome, "already_imported");
        assert_eq!(a.import(&b2).unwrap().outcome, "already_imported");
    }
    let views: Vec<Value> = archives.iter().map(archive_view).collect();
    assert_eq!(
        views[0], views[1],
        "embedded and PostgreSQL archives differ"
    );
    for a in &archives {
        assert_eq!(
            archive_wav(a, &field.shared_recording).unwrap(),
            vault_wav(&field.dir, &field.shared_recording)
        );
    }
    assert_eq!(
        archive_answers(&archives[0], &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
    assert_eq!(views[0]["details"].as_array().unwrap().len(), 1);
}

/// A later bundle that needs records of an earlier one that has not arrived waits, and is
/// merged as soon as the earlier one is imported; the end state is the same as in order.
fn a_bundle_needing_an_earlier_one_waits_for_it(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let mut a = store.create(&tmp.path().join("archive"));
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("later edit"),
        )
        .unwrap();
    let b2 = tmp.path().join("b2.tbundle");
    export(&field.dir, &a.recipient(), &b2);
    // Untrusted first: quarantined; trusting it cannot merge it yet, so it waits.
    assert_eq!(a.import(&b2).unwrap().outcome, "quarantined");
    let t = a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    assert_eq!(t.merged.len(), 1);
    assert_eq!(t.merged[0].outcome, "waiting", "{:?}", t.merged[0]);
    let q = a.quarantined().unwrap();
    assert_eq!(
        (q.len(), q[0].reason.as_str(), q[0].sequence),
        (1, "waiting", 2)
    );
    assert!(a.interviews().unwrap().is_empty(), "nothing half-merged");
    // Imported directly again: still waiting, not an error.
    assert_eq!(a.import(&b2).unwrap().outcome, "waiting");
    let r = a.import(&b1).unwrap();
    assert_eq!(
        (r.outcome.as_str(), r.released.clone()),
        ("imported", vec![2])
    );
    assert!(a.quarantined().unwrap().is_empty());
    assert!(
        fs::read_dir(tmp.path().join("archive").join("quarantine"))
            .unwrap()
            .next()
            .is_none(),
        "the waiting file is gone"
    );
    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
    assert!(a.devices().unwrap()[0].gaps.is_empty());

    // A lost laptop: untrusted, its next bundle waits in quarantine; what it sent stays.
    a.untrust_device(&device_key(&field.dir)).unwrap();
    assert!(matches!(
        a.untrust_device(&device_key(&field.dir)),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .add_note(
            &field.shared_interview,
            None,
            None,
            "after the laptop was lost",
        )
        .unwrap();
    let b3 = tmp.path().join("b3.tbundle");
    export(&field.dir, &a.recipient(), &b3);
    assert_eq!(a.import(&b3).unwrap().outcome, "quarantined");
    assert!(a.search("laptop was lost", 10).unwrap().is_empty());
    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
}

// ---- return bundles with recordings (a translator's laptop that never had the audio) ------

/// The samples a player reads for `from_ms..to_ms` of a recording.
fn played(vault: &Path, recording: &str, from_ms: u64, to_ms: u64) -> Vec<i16> {
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    v.read_samples(recording, from_ms, Some(to_ms))
        .unwrap()
        .flat_map(|b| b.unwrap())
        .collect()
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// An empty translator's laptop, enrolled at the archive (its key announced by a full
/// bundle), trusting the archive's key, with `interview` assigned to it. Returns its
/// directory and signing key.
fn enrolled_translator(tmp: &Path, a: &mut Archive, interview: &str) -> (PathBuf, String) {
    let translator = new_vault(&tmp.join("translator"), "translator T");
    let tkey = device_key(&translator);
    a.trust_device(&tkey, "translator").unwrap();
    let t0 = tmp.join("t0.tbundle");
    export_full(&translator, &a.recipient(), &t0);
    a.import(&t0).unwrap();
    a.assign(&tkey, interview).unwrap();
    trust_archive(&translator, a);
    (translator, tkey)
}

/// The interviewer records and transcribes; the archive sends the interview to a translator's
/// laptop that never had the recording: it arrives with its audio (byte for byte), markers and
/// transcript, and segments play. The translation goes back through the archive to the
/// interviewer, who does not get its own recording back; later returns do not resend audio.
fn a_translator_gets_the_recording_with_its_audio_and_the_interviewer_gets_the_translation(
    store: &Store,
) {
    use testimony_core::transcript::NewSegment;
    let (tmp, field, mut a) = setup(store);
    let (rec, transcript, first) = {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        // Recorded live in half-second chunks: the translator's vault stores it in chunks of
        // its own (a second each), so only the audio, not the chunk layout, is the same.
        let rec = v
            .start_recording(&field.shared_interview, 16_000, 1)
            .unwrap()
            .meta
            .id;
        let tone: Vec<i16> = tone_wav(3)[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        let mut w = v.recording_writer(&rec).unwrap();
        for half in tone.chunks(8_000) {
            w.append(half).unwrap();
        }
        drop(w);
        assert_eq!(v.stop_recording(&rec).unwrap().chunks, 6);
        let t = v
            .start_transcript(&rec, "ggml-test.bin", Some("ko"), 30_000)
            .unwrap();
        let seg = |s: u64, e: u64, text: &str| NewSegment {
            start_ms: s,
            end_ms: e,
            text: text.into(),
            language: Some("ko".into()),
            confidence: Some(0.8),
        };
        v.save_transcript_window(
            &t.meta.id,
            0,
            &[
                seg(300, 1200, "탄광에서 일했습니다"),
                seg(1200, 2000, "하루 열두 시간"),
            ],
        )
        .unwrap();
        v.finish_transcript(&t.meta.id, 1).unwrap();
        let first = v.transcript_segments(&t.meta.id).unwrap()[0]
            .meta
            .id
            .clone();
        (rec, t.meta.id, first)
    };
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let wav = vault_wav(&field.dir, &rec);
    let (translator, tkey) = enrolled_translator(tmp.path(), &mut a, &field.shared_interview);

    let r1 = tmp.path().join("r1-translator.tbundle");
    let rep = a.export_return(&tkey, &r1, false).unwrap();
    assert_eq!(
        (
            rep.counts.recordings,
            rep.counts.audio_markers,
            rep.counts.transcripts,
            rep.counts.transcript_segments
        ),
        (2, 1, 1, 2),
        "{rep:?}"
    );
    assert!(
        !contains(&fs::read(&r1).unwrap(), &wav[2000..2064]),
        "the audio travels encrypted"
    );
    let applied = apply_return(&translator, &r1).unwrap();
    assert_eq!(
        (
            applied.recordings_added,
            applied.recordings_already_here,
            applied.skipped_without_recording
        ),
        (2, 0, 0),
        "{applied:?}"
    );
    assert!(
        applied.message.contains("2 added with their audio"),
        "{}",
        applied.message
    );
    {
        let (tv, fv) = (
            Vault::open(&translator, VAULT_PASS).unwrap(),
            Vault::open(&field.dir, VAULT_PASS).unwrap(),
        );
        let (tr, fr) = (tv.recording(&rec).unwrap(), fv.recording(&rec).unwrap());
        assert_eq!(
            (
                &tr.meta,
                &tr.interview_id,
                tr.sample_rate,
                tr.channels,
                tr.samples,
                tr.duration_ms,
                &tr.started_at,
                &tr.stopped_at,
                tr.recovered
            ),
            (
                &fr.meta,
                &fr.interview_id,
                fr.sample_rate,
                fr.channels,
                fr.samples,
                fr.duration_ms,
                &fr.started_at,
                &fr.stopped_at,
                fr.recovered
            ),
            "the same recording: id, times, format, length, interview"
        );
        assert_eq!(
            (tr.chunks, fr.chunks),
            (3, 6),
            "stored in the vault's own chunks"
        );
        assert_eq!(tv.recordings(&field.shared_interview).unwrap().len(), 2);
        let marked = &field.shared_recording;
        assert_eq!(tv.markers(marked).unwrap(), fv.markers(marked).unwrap());
        assert_eq!(tv.markers(marked).unwrap()[0].label, "guard tower 감시탑");
        assert_eq!(tv.transcripts(&rec).unwrap().len(), 1);
        assert_eq!(
            tv.transcript_segments(&transcript).unwrap(),
            fv.transcript_segments(&transcript).unwrap()
        );
        tv.audit_verify().unwrap();
    }
    assert_eq!(
        vault_wav(&translator, &rec),
        wav,
        "the translator's audio is byte for byte the interviewer's"
    );
    assert_eq!(
        vault_wav(&translator, &field.shared_recording),
        vault_wav(&field.dir, &field.shared_recording)
    );
    // The review screen plays a segment from the vault's recording.
    let heard = played(&translator, &rec, 300, 1200);
    assert_eq!(heard.len(), 900 * 16);
    assert_eq!(heard, played(&field.dir, &rec, 300, 1200));
    assert!(heard.iter().any(|&s| s != 0));

    // The translator translates; its bundle carries the translation, not what the archive sent
    // (no recording, no audio), and only the translated segment meets the interviewer's
    // version (a conflict the coordinator settles).
    Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .set_segment_translation(&first, "I worked in the coal mine", "en")
        .unwrap();
    let t1 = tmp.path().join("t1.tbundle");
    export(&translator, &a.recipient(), &t1);
    assert!(
        fs::metadata(&t1).unwrap().len() < wav.len() as u64 / 2,
        "the received audio is not sent back"
    );
    let imp = a.import(&t1).unwrap();
    assert_eq!(
        (
            imp.counts.recordings,
            imp.counts.audio_markers,
            imp.counts.transcript_segments
        ),
        (0, 0, 1),
        "{imp:?}"
    );
    let open: Vec<_> = a.conflicts(false).unwrap();
    assert_eq!(
        open.iter().map(|c| c.kind.as_str()).collect::<Vec<_>>(),
        ["transcript_segment"],
        "{imp:?}"
    );
    a.resolve_conflict(open[0].id, true).unwrap();
    assert_eq!(
        archive_wav(&a, &rec).unwrap(),
        wav,
        "the archive's copy is untouched"
    );

    // The interviewer gets the translation, and not its own recording.
    trust_archive(&field.dir, &a);
    let r2 = tmp.path().join("r1-interviewer.tbundle");
    let rep = a
        .export_return(&device_key(&field.dir), &r2, false)
        .unwrap();
    assert_eq!(
        (
            rep.counts.recordings,
            rep.counts.audio_markers,
            rep.counts.transcript_segments
        ),
        (0, 0, 1),
        "{rep:?}"
    );
    assert!(rep.bytes < wav.len() as u64 / 2, "no audio in it: {rep:?}");
    let applied = apply_return(&field.dir, &r2).unwrap();
    assert_eq!(
        (
            applied.updated,
            applied.recordings_added,
            applied.recordings_already_here
        ),
        (1, 0, 0),
        "{applied:?}"
    );
    let v = Vault::open(&field.dir, VAULT_PASS).unwrap();
    assert_eq!(
        v.transcript_segment(&first).unwrap().translation.as_deref(),
        Some("I worked in the coal mine")
    );
    v.audit_verify().unwrap();
    drop(v);

    // The next return to the translator carries the interviewer's new note, not the audio again.
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .add_note(
            &field.shared_interview,
            None,
            None,
            "asked about the mine's name again",
        )
        .unwrap();
    let b2 = tmp.path().join("b2.tbundle");
    export(&field.dir, &a.recipient(), &b2);
    assert_eq!(a.import(&b2).unwrap().conflicts, 0);
    let r3 = tmp.path().join("r2-translator.tbundle");
    let rep = a.export_return(&tkey, &r3, false).unwrap();
    assert_eq!(
        (
            rep.counts.notes,
            rep.counts.recordings,
            rep.counts.audio_markers,
            rep.counts.transcripts
        ),
        (1, 0, 0, 0),
        "{rep:?}"
    );
    assert!(rep.bytes < wav.len() as u64 / 2, "no audio in it: {rep:?}");
    assert_eq!(apply_return(&translator, &r3).unwrap().added, 1);
    // `--full` sends the recording again; the laptop keeps the one it has.
    let r4 = tmp.path().join("r3-translator.tbundle");
    assert_eq!(
        a.export_return(&tkey, &r4, true).unwrap().counts.recordings,
        2
    );
    let applied = apply_return(&translator, &r4).unwrap();
    assert_eq!(
        (applied.recordings_added, applied.recordings_already_here),
        (0, 2),
        "{applied:?}"
    );
    assert!(
        applied.message.contains("2 already here (not replaced)"),
        "{}",
        applied.message
    );
    assert_eq!(vault_wav(&translator, &rec), wav);
    Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .audit_verify()
        .unwrap();
}

/// No audio of a witness whose consent (as the archive holds it) does not allow audio
/// recording, nor of one who withdrew; and a vault whose own consent refuses audio does not
/// store it.
fn returned_recordings_follow_consent_to_record_audio_and_withdrawal(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let code = Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .interview(&field.shared_interview)
        .unwrap()
        .witness_code;
    let set_consent = |scopes: ConsentScopes| {
        Vault::open(&field.dir, VAULT_PASS)
            .unwrap()
            .set_consent(&code, scopes, "interviewer A", None, ConsentMethod::Oral)
            .unwrap();
    };
    let mut no_audio = consent(true);
    no_audio.set(ConsentScope::Transcribe, false);
    no_audio.set(ConsentScope::RecordAudio, false);
    set_consent(no_audio);
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let (translator, tkey) = enrolled_translator(tmp.path(), &mut a, &field.shared_interview);
    let r1 = tmp.path().join("r1.tbundle");
    let rep = a.export_return(&tkey, &r1, false).unwrap();
    assert_eq!(
        (
            rep.counts.interviews,
            rep.counts.recordings,
            rep.counts.audio_markers,
            rep.withheld_recordings
        ),
        (1, 0, 0, 1),
        "{rep:?}"
    );
    apply_return(&translator, &r1).unwrap();
    assert!(
        Vault::open(&translator, VAULT_PASS)
            .unwrap()
            .recordings(&field.shared_interview)
            .unwrap()
            .is_empty()
    );

    // Consent to record given again: the recording goes, with its marker.
    set_consent(consent(true));
    let b2 = tmp.path().join("b2.tbundle");
    export(&field.dir, &a.recipient(), &b2);
    a.import(&b2).unwrap();
    let r2 = tmp.path().join("r2.tbundle");
    let rep = a.export_return(&tkey, &r2, false).unwrap();
    assert_eq!(
        (
            rep.counts.consents,
            rep.counts.recordings,
            rep.counts.audio_markers
        ),
        (1, 1, 1),
        "{rep:?}"
    );
    // A copy of the laptop where the witness's consent to audio was taken back locally (not
    // exported yet) does not store the audio; the laptop itself does.
    let copy = tmp.path().join("translator-copy");
    fs::create_dir_all(&copy).unwrap();
    for f in ["vault.json", "vault.db", "vault.lock"] {
        if translator.join(f).exists() {
            fs::copy(translator.join(f), copy.join(f)).unwrap();
        }
    }
    Vault::open(&copy, VAULT_PASS)
        .unwrap()
        .set_consent(&code, no_audio, "translator T", None, ConsentMethod::Oral)
        .unwrap();
    let refused = apply_return(&copy, &r2).unwrap();
    assert_eq!(
        (
            refused.recordings_added,
            refused.recordings_refused_consent,
            refused.skipped_without_recording
        ),
        (0, 1, 1),
        "{refused:?}"
    );
    assert!(
        Vault::open(&copy, VAULT_PASS)
            .unwrap()
            .recordings(&field.shared_interview)
            .unwrap()
            .is_empty()
    );
    let applied = apply_return(&translator, &r2).unwrap();
    assert_eq!(applied.recordings_added, 1, "{applied:?}");
    assert_eq!(
        vault_wav(&translator, &field.shared_recording),
        vault_wav(&field.dir, &field.shared_recording)
    );

    // The witness withdraws: the archive purges the audio, and nothing of theirs goes out again.
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .withdraw_consent(&code, None)
        .unwrap();
    let b3 = tmp.path().join("b3.tbundle");
    export(&field.dir, &a.recipient(), &b3);
    a.import(&b3).unwrap();
    assert!(matches!(
        archive_wav(&a, &field.shared_recording),
        Err(AErr::Core(Error::NotFound(..)))
    ));
    let r = tmp.path().join("r-after-withdrawal.tbundle");
    assert!(matches!(
        a.export_return(&tkey, &r, false),
        Err(AErr::Core(Error::NothingToExport(_)))
    ));
    assert!(!r.exists());
    // `--full` only sends the codebook again.
    let rep = a.export_return(&tkey, &r, true).unwrap();
    assert_eq!(
        (
            rep.counts.witnesses,
            rep.counts.interviews,
            rep.counts.recordings,
            rep.counts.audio_markers
        ),
        (0, 0, 0, 0),
        "{rep:?}"
    );
    // The witness who never agreed to sharing never reached the archive: nothing to assign.
    assert!(matches!(
        a.assign(&tkey, &field.private_interview),
        Err(AErr::Core(Error::NotFound(..)))
    ));
}

/// A vault's content (`vault_state`) and whether it holds `recording`, for "changed nothing" checks.
fn vault_state_with_audio(vault: &Path, recording: &str) -> String {
    let state = vault_state(vault);
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    format!("{state}|{:?}", v.recording(recording).map(|r| r.meta.id))
}

fn bad_return_bundles_with_audio_change_nothing_in_the_translators_vault(store: &Store) {
    use sha2::Digest;
    use testimony_core::bundle::{RecordKind, ReturnAudio, ReturnBundle, write_return_bundle};
    let (tmp, field, mut a) = setup(store);
    let rec = field.shared_recording.clone();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let (translator, tkey) = enrolled_translator(tmp.path(), &mut a, &field.shared_interview);
    let good = tmp.path().join("good.tbundle");
    assert_eq!(
        a.export_return(&tkey, &good, false)
            .unwrap()
            .counts
            .recordings,
        1
    );
    let bytes = fs::read(&good).unwrap();
    let before = vault_state_with_audio(&translator, &rec);
    assert!(matches!(
        Vault::open(&translator, VAULT_PASS)
            .unwrap()
            .recording(&rec),
        Err(Error::NotFound(..))
    ));

    // Damaged or cut anywhere: the audio makes up most of the file.
    let n = bytes.len();
    for at in [40, n / 5, n / 3, n / 2, 2 * n / 3, 4 * n / 5, n - 20, n - 1] {
        let mut b = bytes.clone();
        b[at] ^= 0x04;
        let f = tmp.path().join(format!("flipped-{at}.tbundle"));
        fs::write(&f, &b).unwrap();
        assert!(
            matches!(apply_return(&translator, &f), Err(Error::BadBundle(_))),
            "bit flipped at {at}"
        );
    }
    for len in [200, n / 4, n / 2, 3 * n / 4, n - 100, n - 1] {
        let f = tmp.path().join(format!("short-{len}.tbundle"));
        fs::write(&f, &bytes[..len]).unwrap();
        assert!(
            matches!(apply_return(&translator, &f), Err(Error::BadBundle(_))),
            "truncated to {len}"
        );
    }
    assert_eq!(
        vault_state_with_audio(&translator, &rec),
        before,
        "nothing changed"
    );

    // Validly signed (by a key the vault is made to trust) but inconsistent: the audio's header
    // does not fit its recording, or the recording claims more audio than the file holds.
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    let wav = archive_wav(&a, &rec).unwrap();
    let signer = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .trust_archive(&hex_of(&signer.verifying_key().to_bytes()), true)
        .unwrap();
    let recipient = Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .device_recipient()
        .unwrap();
    let crafted = |name: &str, recording: Value, audio: Vec<u8>| -> PathBuf {
        let out = tmp.path().join(name);
        let spec = ReturnBundle {
            signing_key: &signer,
            archive_id: "crafted-archive".into(),
            target_device: tkey.clone(),
            recipient: recipient.clone(),
            sequence: 1,
            previous_bundle_hash: None,
            codebooks: vec![],
            records: vec![
                (RecordKind::Witness, detail["witness"].clone()),
                (RecordKind::Consent, detail["consent"].clone()),
                (RecordKind::Interview, detail["interview"].clone()),
                (RecordKind::Recording, recording),
            ],
            audio: vec![ReturnAudio {
                recording_id: rec.clone(),
                size: audio.len() as u64,
                sha256: hex_of(&sha2::Sha256::digest(&audio)),
            }],
        };
        write_return_bundle(&spec, &out, &mut |_, w| Ok(w.write_all(&audio)?)).unwrap();
        out
    };
    let recording = detail["recordings"][0].clone();
    let mut other_rate = wav.clone();
    other_rate[24..28].copy_from_slice(&8_000u32.to_le_bytes());
    let mut longer = recording.clone();
    longer["samples"] = json!(recording["samples"].as_u64().unwrap() + 16_000);
    longer["duration_ms"] = json!(recording["duration_ms"].as_u64().unwrap() + 1_000);
    let mut not_wav = wav.clone();
    not_wav[0..4].copy_from_slice(b"RIFX");
    for (name, r, audio) in [
        ("rate.tbundle", recording.clone(), other_rate),
        ("longer.tbundle", longer, wav.clone()),
        ("not-wav.tbundle", recording.clone(), not_wav),
    ] {
        let f = crafted(name, r, audio);
        let e = apply_return(&translator, &f).unwrap_err();
        assert!(
            matches!(&e, Error::BadBundle(m) if m.contains("audio")),
            "{name}: {e}"
        );
    }
    // The writer refuses a recording without its audio.
    let spec = ReturnBundle {
        signing_key: &signer,
        archive_id: "crafted-archive".into(),
        target_device: tkey.clone(),
        recipient: recipient.clone(),
        sequence: 1,
        previous_bundle_hash: None,
        codebooks: vec![],
        records: vec![(RecordKind::Recording, recording.clone())],
        audio: vec![],
    };
    assert!(matches!(
        write_return_bundle(&spec, &tmp.path().join("no-audio.tbundle"), &mut |_, _| Ok(
            ()
        )),
        Err(Error::Invalid(_))
    ));
    // And the crafted bundle with the right audio applies: the checks above were what failed.
    let f = crafted("right.tbundle", recording, wav.clone());
    assert_eq!(
        vault_state_with_audio(&translator, &rec),
        before,
        "nothing changed"
    );
    assert_eq!(apply_return(&translator, &f).unwrap().recordings_added, 1);
    assert_eq!(vault_wav(&translator, &rec), wav);
    Vault::open(&translator, VAULT_PASS)
        .unwrap()
        .audit_verify()
        .unwrap();
}

// ---- a kill while a return bundle with audio is applied -----------------------------------

const KILL_CHILD_ENV: &str = "TESTIMONY_RETURN_KILL_CHILD";

/// Child: open the vault named in the environment, say so, and apply the return bundle.
#[test]
#[ignore = "entry point for the kill test's child process"]
fn return_import_child() {
    use std::io::Write;
    let Ok(spec) = std::env::var(KILL_CHILD_ENV) else {
        return;
    };
    let (dir, file) = spec.split_once('|').unwrap();
    let mut v = Vault::open(Path::new(dir), VAULT_PASS).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    let r = v.import_return_bundle(Path::new(file)).unwrap();
    writeln!(out, "applied {}", r.recordings_added).unwrap();
    out.flush().unwrap();
}

fn copy_vault(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for f in ["vault.json", "vault.db", "vault.lock"] {
        if src.join(f).exists() {
            fs::copy(src.join(f), dst.join(f)).unwrap();
        }
    }
}

/// Runs the child on `vault`; kills it `kill_after` after it said it is ready (None: lets it
/// finish). Returns how long it ran after ready.
fn run_import_child(
    vault: &Path,
    bundle: &Path,
    kill_after: Option<std::time::Duration>,
) -> std::time::Duration {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "return_import_child",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(
            KILL_CHILD_ENV,
            format!("{}|{}", vault.display(), bundle.display()),
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    // libtest prints "test return_import_child ... " before the child's own output, on the
    // same line.
    for l in lines.by_ref() {
        if l.unwrap().ends_with("ready") {
            break;
        }
    }
    let started = std::time::Instant::now();
    match kill_after {
        Some(d) => {
            std::thread::sleep(d);
            child.kill().unwrap();
        }
        None => assert!(
            lines.any(|l| l.unwrap().contains("applied 2")),
            "the child applied the bundle"
        ),
    }
    child.wait().unwrap();
    started.elapsed()
}

/// SIGKILL at several moments while a laptop applies a return bundle with a minute of audio:
/// afterwards the vault opens, its audit chain verifies, and it holds either nothing of the
/// bundle or the whole recording, byte for byte.
#[test]
fn a_kill_while_a_return_bundle_with_audio_is_applied_leaves_all_or_nothing() {
    let (tmp, field, mut a) = setup(&Store::Embedded);
    let rec = Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .import_wav(&field.shared_interview, &tone_wav(60)[..])
        .unwrap()
        .meta
        .id;
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let (translator, tkey) = enrolled_translator(tmp.path(), &mut a, &field.shared_interview);
    let r1 = tmp.path().join("r1.tbundle");
    assert_eq!(
        a.export_return(&tkey, &r1, false)
            .unwrap()
            .counts
            .recordings,
        2
    );
    let wav = vault_wav(&field.dir, &rec);
    let before = vault_state(&translator);

    // Uninterrupted, to know how long applying takes.
    let whole = tmp.path().join("whole");
    copy_vault(&translator, &whole);
    let took = run_import_child(&whole, &r1, None);
    assert_eq!(vault_wav(&whole, &rec), wav);
    let (mut none, mut all) = (0, 0);
    for (i, fraction) in [0.05, 0.2, 0.4, 0.6, 0.8, 0.95, 1.5]
        .into_iter()
        .enumerate()
    {
        let dir = tmp.path().join(format!("killed-{i}"));
        copy_vault(&translator, &dir);
        run_import_child(&dir, &r1, Some(took.mul_f64(fraction)));
        let v = Vault::open(&dir, VAULT_PASS).unwrap();
        v.audit_verify().unwrap();
        match v.recording(&rec) {
            Err(Error::NotFound(..)) => {
                drop(v);
                assert_eq!(
                    vault_state(&dir),
                    before,
                    "killed at {fraction}: nothing of the bundle"
                );
                none += 1;
            }
            Ok(_) => {
                drop(v);
                assert_eq!(
                    vault_wav(&dir, &rec),
                    wav,
                    "killed at {fraction}: the whole recording"
                );
                assert_eq!(
                    vault_wav(&dir, &field.shared_recording),
                    vault_wav(&field.dir, &field.shared_recording)
                );
                all += 1;
            }
            Err(e) => panic!("killed at {fraction}: {e}"),
        }
    }
    eprintln!(
        "return import killed 7 times ({took:?} uninterrupted): {none} left nothing, {all} complete"
    );
}

/// Rewrites a recording's chunks the way vaults stored them before `pcm16-zstd`
/// (`pcm16-delta-zstd`), as a vault from before holds them: same audio, same chunk hashes.
fn make_delta_recording(vault: &Path, recording: &str) {
    use testimony_core::audio::{ChunkFormat, DELTA_FORMAT};
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    let channels = v.recording(recording).unwrap().channels;
    let chunks: Vec<_> = v.chunks(recording).unwrap().map(Result::unwrap).collect();
    drop(v);
    let header = testimony_core::keys::Header::read(vault).unwrap();
    let key = header.unseal(VAULT_PASS).unwrap();
    let c = testimony_core::vault::open_encrypted_db(
        &vault.join("vault.db"),
        &key,
        false,
        header.page_hmac(),
    )
    .unwrap();
    for chunk in chunks {
        let data = ChunkFormat::Pcm16DeltaZstd
            .encode(&chunk.samples, channels)
            .unwrap();
        c.execute(
            "UPDATE audio_chunks SET data = ?3 WHERE recording_id = ?1 AND seq = ?2",
            rusqlite::params![recording, chunk.info.seq as i64, data],
        )
        .unwrap();
    }
    c.execute(
        "UPDATE recordings SET format = ?2 WHERE id = ?1",
        rusqlite::params![recording, DELTA_FORMAT],
    )
    .unwrap();
}

/// One bundle carrying a recording a vault stored before `pcm16-zstd` (decoded by the
/// exporter) and one stored as `pcm16-zstd` (its stored chunks passed through as zstd frames):
/// the archive holds both as byte-for-byte the WAV files the vault plays.
fn recordings_in_the_old_and_the_new_chunk_format_arrive_as_the_vaults_wav_files(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let old = field.shared_recording.clone();
    let new_input = tone_wav(3);
    let new = Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .import_wav(&field.shared_interview, &new_input[..])
        .unwrap()
        .meta
        .id;
    make_delta_recording(&field.dir, &old);
    {
        let v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        assert_eq!(
            v.recording(&old).unwrap().format,
            testimony_core::audio::DELTA_FORMAT
        );
        assert_eq!(
            v.recording(&new).unwrap().format,
            testimony_core::audio::FORMAT
        );
    }
    assert_eq!(
        vault_wav(&field.dir, &old),
        tone_wav(2),
        "the old recording plays as recorded"
    );
    assert_eq!(vault_wav(&field.dir, &new), new_input);

    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    let i1 = a.import(&b1).unwrap();
    assert_eq!(i1.recordings_audio, 2, "{i1:?}");
    for id in [&old, &new] {
        let wav = archive_wav(&a, id).unwrap();
        assert_eq!(wav, vault_wav(&field.dir, id), "{id}");
        let samples: Vec<i16> = wav[44..]
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        assert_eq!(
            samples,
            played(&field.dir, id, 0, 10_000),
            "{id}: the samples the vault plays"
        );
    }
}

// ---- a vault restored from an older backup (its audit chain forks from the archive's) -----

on_both_backends!(
    a_restored_vault_past_the_archives_audit_head_is_refused_and_changes_nothing,
    a_forked_bundle_in_a_gap_is_refused_and_the_genuine_one_still_merges,
);

/// What `import` refused (the core's `BadBundle`, "bundle rejected: …"), as the coordinator
/// reads it. Matched on the message, whichever error type `Archive::import` returns.
fn refused_bundle<E: std::fmt::Display + std::fmt::Debug>(
    r: std::result::Result<testimony_archive::ImportReport, E>,
) -> String {
    match r {
        Err(e) if e.to_string().starts_with("bundle rejected: ") => e.to_string(),
        other => panic!("expected the bundle to be refused, got {other:?}"),
    }
}

/// The laptop exports bundles 1 and 2; a backup taken after bundle 1 is restored elsewhere and
/// works on, with more audit entries than the archive holds for the device. Its bundle 2 is
/// refused (number taken); its bundle 3, whose audit chain begins past the archive's entries,
/// was merged before with only a warning, its higher versions replacing the live laptop's
/// newer answer. Now it is refused in plain words, the archive unchanged and the file kept;
/// a full export from the restored vault is refused too, one from the live laptop merges.
fn a_restored_vault_past_the_archives_audit_head_is_refused_and_changes_nothing(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let bundle = |n: &str| tmp.path().join(format!("{n}.tbundle"));
    export(&field.dir, &a.recipient(), &bundle("b1"));
    a.import(&bundle("b1")).unwrap();
    let restored = tmp.path().join("restored");
    copy_vault(&field.dir, &restored);
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("corrected on the live laptop"),
        )
        .unwrap();
    export(&field.dir, &a.recipient(), &bundle("b2"));
    a.import(&bundle("b2")).unwrap();
    let newest = archive_answers(&a, &field.shared_interview);
    assert_eq!(newest, vault_answers(&field.dir, &field.shared_interview));

    {
        let mut v = Vault::open(&restored, VAULT_PASS).unwrap();
        for k in 0..3 {
            v.add_note(
                &field.shared_interview,
                None,
                None,
                &format!("restored note {k}"),
            )
            .unwrap();
        }
    }
    export(&restored, &a.recipient(), &bundle("r2"));
    let m = refused_bundle(a.import(&bundle("r2")));
    assert!(m.contains("a different bundle numbered 2"), "{m}");
    {
        let mut v = Vault::open(&restored, VAULT_PASS).unwrap();
        for text in ["restored edit 1", "restored edit 2"] {
            v.set_answer(
                &field.shared_interview,
                None,
                "cl_anything_else",
                &json!(text),
            )
            .unwrap();
        }
    }
    let r3 = export(&restored, &a.recipient(), &bundle("r3"));
    assert_eq!(r3.sequence, 3);

    let dir = a.dir().to_path_buf();
    drop(a);
    let before = store.state(&dir);
    let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
    let m = refused_bundle(a.import(&bundle("r3")));
    assert!(
        m.contains("bundle 3 from device")
            && m.contains("does not continue the audit chain the archive holds for this device")
            && m.contains("bundle 2")
            && m.contains("restored from an older backup")
            && m.contains("nothing in the archive changed")
            && m.contains("Keep the bundle file"),
        "{m}"
    );
    assert_eq!(archive_answers(&a, &field.shared_interview), newest);
    assert!(a.search("restored", 10).unwrap().is_empty());
    assert!(a.quarantined().unwrap().is_empty());
    // A full export from the restored vault meets the archive's chain entry by entry: refused.
    export_full(&restored, &a.recipient(), &bundle("r4-full"));
    let m = refused_bundle(a.import(&bundle("r4-full")));
    assert!(m.contains("audit chain differs"), "{m}");
    drop(a);
    assert_eq!(
        store.state(&dir),
        before,
        "a refused bundle changed the archive"
    );
    assert!(
        bundle("r3").is_file(),
        "the refused bundle is left where it was"
    );

    // The live laptop goes on: its next bundle and a full re-export merge, the replay is a no-op.
    let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .add_note(&field.shared_interview, None, None, "live note")
        .unwrap();
    export(&field.dir, &a.recipient(), &bundle("b3"));
    let r = a.import(&bundle("b3")).unwrap();
    assert_eq!(r.outcome, "imported", "{}", r.message);
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    export_full(&field.dir, &a.recipient(), &bundle("b4-full"));
    let r = a.import(&bundle("b4-full")).unwrap();
    assert_eq!(
        (r.outcome.as_str(), r.updated, r.conflicts),
        ("imported", 0, 0)
    );
    assert_eq!(
        a.import(&bundle("b4-full")).unwrap().outcome,
        "already_imported"
    );
    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
    let d = &a.devices().unwrap()[0];
    assert_eq!((d.bundles, d.last_sequence), (4, Some(4)));
}

/// The archive holds the laptop's bundles 1 and 3; bundle 2 is still on its way. A vault
/// restored from a backup taken after bundle 1 exports its own bundle 2: its audit chain
/// joins bundle 1 but not bundle 3, whether it ends short of bundle 3's first entry or right
/// before it. Both are refused (before, both merged); the genuine bundle 2 then fills the gap.
fn a_forked_bundle_in_a_gap_is_refused_and_the_genuine_one_still_merges(store: &Store) {
    let (tmp, field, mut a) = setup(store);
    let bundle = |n: &str| tmp.path().join(format!("{n}.tbundle"));
    export(&field.dir, &a.recipient(), &bundle("b1"));
    a.import(&bundle("b1")).unwrap();
    let (short, same) = (tmp.path().join("short"), tmp.path().join("same"));
    copy_vault(&field.dir, &short);
    copy_vault(&field.dir, &same);
    let notes = |vault: &Path, who: &str| {
        let mut v = Vault::open(vault, VAULT_PASS).unwrap();
        for k in 0..3 {
            v.add_note(
                &field.shared_interview,
                None,
                None,
                &format!("{who} note {k}"),
            )
            .unwrap();
        }
    };
    notes(&field.dir, "live");
    export(&field.dir, &a.recipient(), &bundle("b2"));
    Vault::open(&field.dir, VAULT_PASS)
        .unwrap()
        .set_answer(
            &field.shared_interview,
            None,
            "cl_anything_else",
            &json!("corrected on the live laptop"),
        )
        .unwrap();
    export(&field.dir, &a.recipient(), &bundle("b3"));
    assert_eq!(a.import(&bundle("b3")).unwrap().gaps, vec![2]);

    // Fewer audit entries than the genuine bundle 2: it ends short of bundle 3's chain.
    Vault::open(&short, VAULT_PASS)
        .unwrap()
        .add_note(&field.shared_interview, None, None, "short note")
        .unwrap();
    assert_eq!(
        export(&short, &a.recipient(), &bundle("short2")).sequence,
        2
    );
    // As many as the genuine one: it ends right before bundle 3's first entry, which does not
    // follow it.
    notes(&same, "same");
    assert_eq!(export(&same, &a.recipient(), &bundle("same2")).sequence, 2);

    let dir = a.dir().to_path_buf();
    drop(a);
    let before = store.state(&dir);
    let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
    let m = refused_bundle(a.import(&bundle("short2")));
    assert!(
        m.contains("does not lead into the audit chain the archive holds for this device")
            && m.contains("bundle 3")
            && m.contains("Keep the bundle file"),
        "{m}"
    );
    let m = refused_bundle(a.import(&bundle("same2")));
    assert!(m.contains("does not lead into entry"), "{m}");
    assert!(a.search("short note", 10).unwrap().is_empty());
    drop(a);
    assert_eq!(
        store.state(&dir),
        before,
        "a refused bundle changed the archive"
    );

    let mut a = store.open(&dir, ARCHIVE_PASS).unwrap();
    let r = a.import(&bundle("b2")).unwrap();
    assert_eq!(r.outcome, "imported", "{}", r.message);
    assert!(r.gaps.is_empty() && r.warnings.is_empty(), "{r:?}");
    assert_eq!(
        archive_answers(&a, &field.shared_interview),
        vault_answers(&field.dir, &field.shared_interview)
    );
    assert_eq!(a.search("live note", 10).unwrap().len(), 3);
}
