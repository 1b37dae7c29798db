//! The archive end to end with real vaults, real bundles and real SQLCipher files: an
//! interviewer's vault exported twice with edits in between, replays, gaps, quarantine,
//! conflicts between two devices, withdrawal of consent, and bad bundles that must leave the
//! archive byte-for-byte unchanged.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use testimony_archive::Archive;
use testimony_core::bundle::ExportOptions;
use testimony_core::model::*;
use testimony_core::{CreateOptions, Error, Vault};

const VAULT_PASS: &str = "vault passphrase for archive tests";
const ARCHIVE_PASS: &str = "archive passphrase for tests";

struct Field {
    dir: PathBuf,
    shared_interview: String,
    private_interview: String,
}

fn consent(share: bool) -> ConsentScopes {
    let mut s = ConsentScopes::default();
    s.set(ConsentScope::RecordAudio, true);
    s.set(ConsentScope::ShareArchive, share);
    s
}

/// A vault with one witness who consented to sharing and one who did not.
fn field_vault(dir: &Path) -> Field {
    let mut v = Vault::create(dir, VAULT_PASS, CreateOptions { interviewer: "interviewer A".into(), ..Default::default() }).unwrap();
    let shared = v.add_witness(WitnessProfile::default(), Some(WitnessIdentity { real_name: Some("Secret Name".into()), contact: None, notes: None })).unwrap();
    v.set_consent(&shared.code, consent(true), "interviewer A", None, ConsentMethod::Oral).unwrap();
    let private = v.add_witness(WitnessProfile::default(), None).unwrap();
    v.set_consent(&private.code, consent(false), "interviewer A", None, ConsentMethod::Oral).unwrap();
    let i = v.new_interview(NewInterview { witness: shared.code.clone(), languages: vec!["ko".into()], ..Default::default() }).unwrap();
    v.set_answer(&i.meta.id, None, "ever_detained", &json!("yes")).unwrap();
    let ep = v.add_group_instance(&i.meta.id, "detention_episode", None).unwrap();
    v.set_answer(&i.meta.id, Some(&ep.meta.id), "det_facility_name", &json!("전거리 교화소 (가상)")).unwrap();
    v.set_answer(&i.meta.id, None, "cl_anything_else", &json!("wigs and false eyelashes every day")).unwrap();
    v.add_note(&i.meta.id, None, None, "증언자가 피곤해 보였다").unwrap();
    v.add_attachment(&i.meta.id, "sketch-map.png", "image/png", b"\x89PNG fictional sketch map bytes").unwrap();
    let p = v.new_interview(NewInterview { witness: private.code.clone(), languages: vec!["ko".into()], ..Default::default() }).unwrap();
    v.set_answer(&p.meta.id, None, "cl_anything_else", &json!("PRIVATE-ANSWER-MUST-NOT-TRAVEL")).unwrap();
    Field { dir: dir.to_path_buf(), shared_interview: i.meta.id, private_interview: p.meta.id }
}

fn export(vault: &Path, archive_recipient: &str, out: &Path) -> testimony_core::bundle::ExportReport {
    let mut v = Vault::open(vault, VAULT_PASS).unwrap();
    v.export_bundle(&ExportOptions { recipients: vec![archive_recipient.into()], ..Default::default() }, out).unwrap()
}

fn device_key(vault: &Path) -> String {
    Vault::open(vault, VAULT_PASS).unwrap().device_public_key().unwrap()
}

/// Every file of a directory and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in walk(dir) {
        out.insert(e.strip_prefix(dir).unwrap().to_path_buf(), fs::read(&e).unwrap());
    }
    out
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { v.extend(walk(&p)) } else { v.push(p) }
    }
    v
}

/// question id (with instance) → value, as the vault has it.
fn vault_answers(vault: &Path, interview: &str) -> BTreeMap<String, Value> {
    let v = Vault::open(vault, VAULT_PASS).unwrap();
    v.interview_detail(interview).unwrap().answers.into_iter().map(|a| (format!("{}#{:?}", a.question_id, a.instance_id), a.value)).collect()
}

fn archive_answers(a: &Archive, interview: &str) -> BTreeMap<String, Value> {
    let d = a.interview_detail(interview).unwrap();
    d["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| (format!("{}#{:?}", x["question_id"].as_str().unwrap(), x["instance_id"].as_str().map(str::to_string)), x["value"].clone()))
        .collect()
}

fn setup() -> (tempfile::TempDir, Field, Archive) {
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let mut a = Archive::create(&tmp.path().join("archive"), ARCHIVE_PASS).unwrap();
    a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    (tmp, field, a)
}

#[test]
fn two_exports_with_edits_in_between_import_to_what_the_vault_holds() {
    let (tmp, field, mut a) = setup();
    let b1 = tmp.path().join("b1.tbundle");
    let r1 = export(&field.dir, &a.recipient(), &b1);
    assert_eq!(r1.withheld.witnesses, 1, "the witness without sharing consent is withheld");
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.set_answer(&field.shared_interview, None, "cl_anything_else", &json!("edited: 가발과 속눈썹")).unwrap();
        v.clear_answer(&field.shared_interview, None, "ever_detained").unwrap_or_default();
        v.add_note(&field.shared_interview, None, None, "second visit").unwrap();
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

    assert_eq!(archive_answers(&a, &field.shared_interview), vault_answers(&field.dir, &field.shared_interview));
    let notes = a.interview_detail(&field.shared_interview).unwrap()["notes"].as_array().unwrap().len();
    assert_eq!(notes, 2);
    // The private witness's interview never reached the archive.
    assert!(matches!(a.interview_detail(&field.private_interview), Err(Error::NotFound(..))));
    assert!(a.search("PRIVATE-ANSWER", 10).unwrap().is_empty());
    // Identity is not exported by default.
    let detail = a.interview_detail(&field.shared_interview).unwrap();
    assert!(!detail.to_string().contains("Secret Name"));
    // Search in Korean and English; the attachment arrived intact.
    assert!(!a.search("속눈썹", 10).unwrap().is_empty());
    assert!(!a.search("교화소", 10).unwrap().is_empty());
    assert!(a.search("eyelashes every day", 10).unwrap().is_empty(), "the old text was replaced");
    let att = &detail["attachments"][0];
    assert_eq!(a.attachment_data(att["id"].as_str().unwrap()).unwrap(), b"\x89PNG fictional sketch map bytes");
}

#[test]
fn importing_the_same_bundle_twice_changes_nothing_and_says_so() {
    let (tmp, field, mut a) = setup();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = snapshot(&dir);
    let mut a = Archive::open(&dir, ARCHIVE_PASS).unwrap();
    let again = a.import(&b1).unwrap();
    assert_eq!(again.outcome, "already_imported");
    drop(a);
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn bundles_out_of_order_report_the_gap_and_end_in_the_same_state() {
    let (tmp, field, mut a) = setup();
    let (b1, b2) = (tmp.path().join("b1.tbundle"), tmp.path().join("b2.tbundle"));
    export(&field.dir, &a.recipient(), &b1);
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.clear_answer(&field.shared_interview, None, "cl_anything_else").unwrap();
    }
    export(&field.dir, &a.recipient(), &b2);
    let r = a.import(&b2).unwrap();
    assert_eq!(r.gaps, vec![1], "bundle 1 is reported missing");
    assert_eq!(a.devices().unwrap()[0].gaps, vec![1]);
    let r = a.import(&b1).unwrap();
    assert!(r.gaps.is_empty());
    // The answer deleted in bundle 2 does not come back with the older bundle 1.
    assert_eq!(archive_answers(&a, &field.shared_interview), vault_answers(&field.dir, &field.shared_interview));
}

#[test]
fn a_bundle_from_an_untrusted_device_waits_in_quarantine_until_trusted() {
    let tmp = tempfile::tempdir().unwrap();
    let field = field_vault(&tmp.path().join("vault"));
    let mut a = Archive::create(&tmp.path().join("archive"), ARCHIVE_PASS).unwrap();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    let r = a.import(&b1).unwrap();
    assert_eq!(r.outcome, "quarantined");
    assert!(a.interviews().unwrap().is_empty(), "nothing merged");
    assert_eq!(a.quarantined().unwrap().len(), 1);
    let t = a.trust_device(&device_key(&field.dir), "laptop A").unwrap();
    assert_eq!(t.merged.len(), 1);
    assert!(a.quarantined().unwrap().is_empty());
    assert_eq!(a.interviews().unwrap().len(), 1);
}

#[test]
fn bad_bundles_are_rejected_and_leave_the_archive_byte_for_byte_unchanged() {
    let (tmp, field, a) = setup();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    let good = fs::read(&b1).unwrap();
    // A bundle for another archive.
    let other = Archive::create(&tmp.path().join("other"), ARCHIVE_PASS).unwrap();
    let foreign = tmp.path().join("foreign.tbundle");
    {
        let mut v = Vault::open(&field.dir, VAULT_PASS).unwrap();
        v.export_bundle(&ExportOptions { recipients: vec![other.recipient()], full: true, ..Default::default() }, &foreign).unwrap();
    }
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = snapshot(&dir);
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        ("empty file".into(), vec![]),
        ("not a bundle".into(), b"hello, this is not a bundle".to_vec()),
        ("wrong recipient".into(), fs::read(&foreign).unwrap()),
    ];
    for cut in [10, good.len() / 3, good.len() / 2, good.len() - 17, good.len() - 1] {
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
        let mut a = Archive::open(&dir, ARCHIVE_PASS).unwrap();
        match a.import(&f) {
            Err(Error::BadBundle(msg)) => assert!(!msg.is_empty(), "{name}"),
            other => panic!("{name}: expected a rejection, got {other:?}"),
        }
        drop(a);
        assert_eq!(snapshot(&dir), before, "{name}: the archive changed");
    }
}

#[test]
fn a_wrong_archive_passphrase_is_reported_and_changes_nothing() {
    let (_tmp, _field, a) = setup();
    let dir = a.dir().to_path_buf();
    drop(a);
    let before = snapshot(&dir);
    assert!(matches!(Archive::open(&dir, "not the archive passphrase"), Err(Error::WrongPassphrase)));
    assert_eq!(snapshot(&dir), before);
    // A vault is not an archive.
    assert!(matches!(Archive::open(&_field.dir, ARCHIVE_PASS), Err(Error::NotAVault { .. })));
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
    let conn = testimony_core::vault::open_encrypted_db(&dst.join("vault.db"), &key, false).unwrap();
    let sk = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
    conn.execute("UPDATE secrets SET value = ?1 WHERE key = 'device_signing_key'", [&sk.to_bytes()[..]]).unwrap();
    conn.execute("UPDATE meta SET value = ?1 WHERE key = 'device_id'", ["translator-laptop"]).unwrap();
    conn.execute("DELETE FROM bundle_exports", []).unwrap();
}

#[test]
fn the_same_record_changed_on_two_devices_is_kept_twice_until_resolved() {
    let (tmp, field, mut a) = setup();
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1);
    a.import(&b1).unwrap();
    let second = tmp.path().join("vault2");
    make_second_device(&field.dir, &second);
    a.trust_device(&device_key(&second), "translator").unwrap();
    for (dir, text) in [(&field.dir, "interviewer's correction"), (&second, "translator's correction")] {
        let mut v = Vault::open(dir, VAULT_PASS).unwrap();
        v.set_answer(&field.shared_interview, None, "cl_anything_else", &json!(text)).unwrap();
    }
    let (b2, t1) = (tmp.path().join("b2.tbundle"), tmp.path().join("t1.tbundle"));
    export(&field.dir, &a.recipient(), &b2);
    export(&second, &a.recipient(), &t1);
    assert_eq!(a.import(&b2).unwrap().updated, 1);
    let r = a.import(&t1).unwrap();
    assert!(r.conflicts >= 1, "{r:?}");
    let conflicts = a.conflicts(false).unwrap();
    let c = conflicts.iter().find(|c| c.kind == "answer" && c.current["value"] == json!("interviewer's correction")).expect("answer conflict listed");
    assert_eq!(c.incoming["value"], json!("translator's correction"));
    // Nothing was overwritten silently.
    let current = archive_answers(&a, &field.shared_interview);
    assert_eq!(current["cl_anything_else#None"], json!("interviewer's correction"));
    a.resolve_conflict(c.id, true).unwrap();
    assert_eq!(archive_answers(&a, &field.shared_interview)["cl_anything_else#None"], json!("translator's correction"));
    assert!(a.conflicts(false).unwrap().iter().all(|x| x.id != c.id));
}

#[test]
fn withdrawing_consent_removes_the_witness_records_from_the_archive() {
    let (tmp, field, mut a) = setup();
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
    assert_eq!(r.counts.answers, 0, "no content travels for a withdrawn witness");
    let imp = a.import(&b2).unwrap();
    assert!(imp.purged_for_withdrawal > 0);
    assert!(a.interviews().unwrap().is_empty());
    assert!(a.search("교화소", 10).unwrap().is_empty());
}
