//! Old bundles must keep importing. `assets/fixtures/bundles/<folder>/` holds bundles, an
//! archive directory and a field vault written by an earlier Testimony (fictional data, test
//! passphrases; see the README there and tools/make-bundle-fixtures.sh), with expected.json
//! saying what they hold. For every folder: the committed archive is copied to a temporary
//! directory (the committed files are never opened in place), opened through the public API,
//! bundle 1 (full) and bundle 2 (incremental) are imported and the result checked against
//! expected.json; a replay changes nothing; a damaged copy is rejected and changes nothing; the
//! return bundle applies to a copy of the committed vault.
//!
//! A failure here means today's code no longer reads what an earlier version wrote. Do not
//! "fix" it by regenerating the fixtures: fix the reader (or, for a deliberate format change,
//! add a new folder and keep the old one, which must still import or be refused clearly).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use sha2::{Digest, Sha256};
use testimony_archive::Archive;
use testimony_core::Vault;

fn fixtures_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/fixtures/bundles")
}

/// Every fixture folder (one with an expected.json), oldest name first.
fn fixture_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = fs::read_dir(fixtures_root())
        .expect("assets/fixtures/bundles exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("expected.json").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn copy_dir(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        let to = dst.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to);
        } else {
            fs::copy(e.path(), &to).unwrap();
        }
    }
}

/// Every file below `dir` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(Sha256::digest(b))
}

struct Fixture {
    dir: PathBuf,
    expected: Value,
}

impl Fixture {
    fn load(dir: &Path) -> Fixture {
        let text = fs::read_to_string(dir.join("expected.json")).unwrap();
        Fixture {
            dir: dir.to_path_buf(),
            expected: serde_json::from_str(&text).unwrap(),
        }
    }

    fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    fn s(&self, path: &str) -> String {
        self.expected
            .pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{}: expected.json has no string at {path}", self.name()))
            .to_string()
    }

    fn archive_pass(&self) -> String {
        self.s("/archive_passphrase")
    }

    fn bundle(&self, i: usize) -> PathBuf {
        self.dir.join(self.s(&format!("/bundles/{i}/file")))
    }

    /// A copy of the committed archive in `tmp`. Git keeps no empty directories: the archive's
    /// `quarantine/` (empty when the fixture was written) is made again, as `archive init` did.
    fn archive_copy(&self, tmp: &Path, name: &str) -> PathBuf {
        let dst = tmp.join(name);
        copy_dir(&self.dir.join(self.s("/archive_dir")), &dst);
        fs::create_dir_all(dst.join(testimony_archive::QUARANTINE_DIR)).unwrap();
        dst
    }
}

/// question id + "#" + instance id (empty for none) → value: the shape of expected.json.
fn archive_answers(a: &Archive, interview: &str) -> BTreeMap<String, Value> {
    let d = a.interview_detail(interview).unwrap();
    d["answers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                format!(
                    "{}#{}",
                    x["question_id"].as_str().unwrap(),
                    x["instance_id"].as_str().unwrap_or("")
                ),
                x["value"].clone(),
            )
        })
        .collect()
}

fn expected_answers(f: &Fixture, key: &str) -> BTreeMap<String, Value> {
    f.expected["interview"][key]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn interview_ids(a: &Archive) -> Vec<String> {
    a.interviews()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap().to_string())
        .collect()
}

/// The import report against expected.json: the manifest's counts and what the merge did.
fn check_report(f: &Fixture, i: usize, r: &testimony_archive::ImportReport) {
    let name = format!("{}: bundle {}", f.name(), i + 1);
    let b = &f.expected["bundles"][i];
    let want = &f.expected["import_reports"][i];
    assert_eq!(r.outcome, "imported", "{name}: {}", r.message);
    assert_eq!(Value::from(r.sequence), b["sequence"], "{name}");
    assert_eq!(r.kind, b["kind"].as_str().unwrap(), "{name}");
    assert_eq!(r.bundle_hash, b["bundle_hash"].as_str().unwrap(), "{name}");
    assert_eq!(
        r.public_key,
        f.s("/device_public_key"),
        "{name}: signed by the fixture's device"
    );
    assert_eq!(
        serde_json::to_value(&r.counts).unwrap(),
        b["counts"],
        "{name}: manifest counts"
    );
    for (field, got) in [
        ("added", r.added),
        ("updated", r.updated),
        ("unchanged", r.unchanged),
        ("deleted", r.deleted),
        ("conflicts", r.conflicts),
        ("purged_for_withdrawal", r.purged_for_withdrawal),
        ("recordings_audio", r.recordings_audio),
    ] {
        assert_eq!(
            Value::from(got),
            want[field],
            "{name}: report field {field}"
        );
    }
    assert!(r.gaps.is_empty(), "{name}: gaps {:?}", r.gaps);
    assert!(r.warnings.is_empty(), "{name}: warnings {:?}", r.warnings);
}

fn import_and_check(f: &Fixture, tmp: &Path) {
    let name = f.name();
    let pass = f.archive_pass();
    let interview = f.s("/interview/id");
    let withheld = f.s("/withheld/interview_id");
    let withdrawn = f.s("/withdrawn/interview_id");
    let dir = f.archive_copy(tmp, "archive");
    let mut a = Archive::open(&dir, &pass).unwrap();
    assert_eq!(a.recipient(), f.s("/archive_recipient"), "{name}");
    assert!(a.interviews().unwrap().is_empty(), "{name}: nothing before");
    let devices = a.devices().unwrap();
    assert_eq!(devices.len(), 1, "{name}: the fixture's device is trusted");
    assert_eq!(devices[0].public_key, f.s("/device_public_key"));

    // Bundle 1 (full).
    let r1 = a.import(&f.bundle(0)).unwrap();
    check_report(f, 0, &r1);
    let mut ids = interview_ids(&a);
    ids.sort();
    let mut want = vec![interview.clone(), withdrawn.clone()];
    want.sort();
    assert_eq!(ids, want, "{name}: after bundle 1");
    assert_eq!(
        archive_answers(&a, &interview),
        expected_answers(f, "answers_after_bundle_1"),
        "{name}: answers after bundle 1"
    );
    assert_eq!(
        a.search(&f.s("/withdrawn/text"), 10).unwrap().len(),
        1,
        "{name}: the witness who withdraws later is still shared in bundle 1"
    );

    // Bundle 2 (incremental: a new answer, an edited one, a withdrawal of consent).
    let r2 = a.import(&f.bundle(1)).unwrap();
    check_report(f, 1, &r2);
    assert_eq!(
        interview_ids(&a),
        vec![interview.clone()],
        "{name}: after bundle 2 only the shared interview is left"
    );
    let answers = archive_answers(&a, &interview);
    assert_eq!(
        answers,
        expected_answers(f, "answers_after_bundle_2"),
        "{name}: answers after bundle 2"
    );
    // Korean text intact, byte for byte, and findable.
    let korean = answers["cl_anything_else#"].as_str().unwrap();
    assert!(korean.contains("가발과 속눈썹"), "{name}: {korean}");
    assert!(
        a.search("속눈썹", 10)
            .unwrap()
            .iter()
            .any(|h| h.interview_id == interview),
        "{name}: Korean search"
    );
    assert!(
        a.search("Chongjin", 10)
            .unwrap()
            .iter()
            .any(|h| h.interview_id == interview),
        "{name}: English search"
    );

    let d = a.interview_detail(&interview).unwrap();
    assert_eq!(
        d["interview"]["witness_code"].as_str(),
        Some(f.s("/interview/witness_code").as_str()),
        "{name}"
    );
    assert_eq!(
        d["interview"]["languages"], f.expected["interview"]["languages"],
        "{name}"
    );
    let notes: Vec<Value> = d["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["text"].clone())
        .collect();
    assert_eq!(
        Value::from(notes),
        f.expected["interview"]["notes"],
        "{name}: notes"
    );
    let instances: Vec<Value> = d["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].clone())
        .collect();
    assert_eq!(
        Value::from(instances),
        f.expected["interview"]["group_instances"],
        "{name}: group instances"
    );
    assert!(
        d["witness"].is_object(),
        "{name}: the interview's witness is there"
    );
    assert!(
        !d.to_string().contains("Fictional Name"),
        "{name}: identifying details were not exported"
    );

    // The witness without consent to share: nothing of theirs arrived.
    assert!(
        a.interview_detail(&withheld).is_err(),
        "{name}: withheld interview"
    );
    assert!(
        a.search(&f.s("/withheld/text"), 10).unwrap().is_empty(),
        "{name}: withheld answer"
    );
    // The witness who withdrew consent in bundle 2: purged.
    assert!(
        a.interview_detail(&withdrawn).is_err(),
        "{name}: withdrawn interview"
    );
    assert!(
        a.search(&f.s("/withdrawn/text"), 10).unwrap().is_empty(),
        "{name}: withdrawn answer"
    );

    // The recording and its audio.
    let rec = &f.expected["recording"];
    let rec_id = f.s("/recording/id");
    let recs = d["recordings"].as_array().unwrap();
    assert_eq!(recs.len(), 1, "{name}: one recording");
    assert_eq!(recs[0]["id"].as_str(), Some(rec_id.as_str()));
    assert_eq!(recs[0]["duration_ms"], rec["duration_ms"], "{name}");
    assert_eq!(recs[0]["sample_rate"], rec["sample_rate"], "{name}");
    assert_eq!(recs[0]["channels"], rec["channels"], "{name}");
    let markers = d["audio_markers"].as_array().unwrap();
    assert_eq!(markers.len(), 1, "{name}: one marker");
    assert_eq!(markers[0]["label"], rec["marker_label"], "{name}");
    let mut wav = Vec::new();
    let n = a.recording_wav(&rec_id, &mut wav).unwrap();
    assert_eq!(Value::from(n), rec["wav_bytes"], "{name}: WAV byte count");
    assert_eq!(Value::from(wav.len()), rec["wav_bytes"], "{name}");
    assert_eq!(
        sha256_hex(&wav),
        f.s("/recording/wav_sha256"),
        "{name}: WAV hash"
    );
    let dev = &a.devices().unwrap()[0];
    assert_eq!(
        (dev.bundles, dev.last_sequence),
        (2, Some(2)),
        "{name}: both bundles recorded"
    );
    assert!(dev.gaps.is_empty());

    // Replaying bundle 1 (and 2) changes nothing and says so.
    drop(a);
    let before = snapshot(&dir);
    let mut a = Archive::open(&dir, &pass).unwrap();
    for i in 0..2 {
        let again = a.import(&f.bundle(i)).unwrap();
        assert_eq!(
            again.outcome,
            "already_imported",
            "{name}: bundle {} replayed",
            i + 1
        );
    }
    drop(a);
    assert_eq!(
        snapshot(&dir),
        before,
        "{name}: a replay changed the archive"
    );
}

/// The core's `BadBundle` ("bundle rejected: …"): a signature, integrity or format failure.
/// Matched on the message, which the archive's error shows unchanged, so that this holds
/// whichever error type `Archive::import` returns.
fn is_bundle_rejection(msg: &str) -> bool {
    msg.starts_with("bundle rejected: ")
}

fn damaged_bundles_are_rejected(f: &Fixture, tmp: &Path) {
    let name = f.name();
    let pass = f.archive_pass();
    let dir = f.archive_copy(tmp, "archive-damaged");
    let good = fs::read(f.bundle(0)).unwrap();
    let before = snapshot(&dir);
    for pos in [40, 200, good.len() / 2, good.len() - 5] {
        let mut bad = good.clone();
        bad[pos] ^= 0x01;
        let file = tmp.join(format!("flipped-{pos}.tbundle"));
        fs::write(&file, &bad).unwrap();
        let mut a = Archive::open(&dir, &pass).unwrap();
        let err = a.import(&file).unwrap_err().to_string();
        assert!(
            is_bundle_rejection(&err),
            "{name}: byte {pos} flipped: {err}"
        );
        assert!(a.interviews().unwrap().is_empty(), "{name}: byte {pos}");
        drop(a);
        assert_eq!(
            snapshot(&dir),
            before,
            "{name}: byte {pos} flipped: the archive changed"
        );
    }
    // The undamaged bundle still imports into the same archive afterwards.
    let mut a = Archive::open(&dir, &pass).unwrap();
    assert_eq!(a.import(&f.bundle(0)).unwrap().outcome, "imported");
}

fn return_bundle_applies_to_the_vault(f: &Fixture, tmp: &Path) {
    let name = f.name();
    let vault = tmp.join("vault");
    copy_dir(&f.dir.join(f.s("/vault_dir")), &vault);
    let file = f.dir.join(f.s("/return_bundle/file"));
    let pass = f.s("/vault_passphrase");
    let (cb_id, cb_version) = (
        f.s("/return_bundle/codebook/id"),
        f.s("/return_bundle/codebook/version"),
    );
    let has_codebook = |v: &Vault| {
        v.codebooks()
            .unwrap()
            .iter()
            .any(|(id, ver, _)| *id == cb_id && *ver == cb_version)
    };
    // A damaged copy first: refused, and the codebook does not arrive.
    let good = fs::read(&file).unwrap();
    let mut bad = good.clone();
    let at = good.len() / 2;
    bad[at] ^= 0x01;
    let bad_file = tmp.join("return-flipped.tbundle");
    fs::write(&bad_file, &bad).unwrap();
    let mut v = Vault::open(&vault, &pass).unwrap();
    assert_eq!(
        v.device_public_key().unwrap(),
        f.s("/device_public_key"),
        "{name}"
    );
    let err = v.import_return_bundle(&bad_file).unwrap_err().to_string();
    assert!(is_bundle_rejection(&err), "{name}: {err}");
    assert!(
        !has_codebook(&v),
        "{name}: nothing applied from a damaged return"
    );

    let r = v.import_return_bundle(&file).unwrap();
    assert_eq!(r.outcome, "applied", "{name}: {}", r.message);
    assert_eq!(
        Value::from(r.sequence),
        f.expected["return_bundle"]["sequence"],
        "{name}"
    );
    assert_eq!(r.codebooks_added, 1, "{name}");
    assert!(has_codebook(&v), "{name}: the published codebook arrived");
    let again = v.import_return_bundle(&file).unwrap();
    assert_eq!(again.outcome, "already_applied", "{name}");
    // The vault's own interview is intact.
    let d = v.interview_detail(&f.s("/interview/id")).unwrap();
    assert_eq!(
        d.answers.len(),
        expected_answers(f, "answers_after_bundle_2").len()
    );
}

#[test]
fn committed_fixture_bundles_still_import() {
    let dirs = fixture_dirs();
    assert!(
        !dirs.is_empty(),
        "no fixture folders in {}",
        fixtures_root().display()
    );
    for dir in dirs {
        let f = Fixture::load(&dir);
        let committed = snapshot(&dir);
        let started = Instant::now();
        let tmp = tempfile::tempdir().unwrap();
        import_and_check(&f, tmp.path());
        damaged_bundles_are_rejected(&f, tmp.path());
        return_bundle_applies_to_the_vault(&f, tmp.path());
        assert_eq!(
            snapshot(&dir),
            committed,
            "{}: the committed fixture files changed",
            f.name()
        );
        eprintln!(
            "fixture {} ({}): ok in {:.1} s",
            f.name(),
            f.s("/written_by/commit"),
            started.elapsed().as_secs_f64()
        );
    }
}
