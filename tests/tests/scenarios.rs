//! Scenarios across the field vault (`testimony-core`) and the coordinator's archive
//! (`testimony-archive`), through their public APIs only, each on both archive back-ends:
//! `…::embedded`, and `…::postgres` when `TESTIMONY_TEST_POSTGRES` names a server (a libpq
//! string for a role that may create databases; each archive gets a fresh database). Without
//! it the PostgreSQL variant is skipped with a note, unless `TESTIMONY_REQUIRE_POSTGRES=1` (or
//! CI) is set: then it fails. `./run test` starts a throw-away server and sets both.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::json;
use testimony_archive::Archive;
use testimony_core::model::{NewInterview, WitnessProfile};
use testimony_core::transcript::NewSegment;
use testimony_scenarios::*;

on_both_backends!(
    an_interview_reaches_the_archive_once_and_only_with_consent_to_share,
    a_translation_made_on_an_assigned_laptop_reaches_the_archive,
    a_withdrawal_of_consent_removes_the_witness_from_the_archive,
    a_restored_older_vault_cannot_make_the_archive_lose_newer_work,
);

/// A field laptop with one interview of a witness who consented to sharing (Korean answers, a
/// detention episode, a note) and one of a witness who did not.
struct Field {
    dir: PathBuf,
    witness: String,
    interview: String,
    private_interview: String,
}

fn field_vault(dir: &Path) -> Field {
    new_vault(dir, "interviewer A");
    let mut v = open_vault(dir);
    let w = v
        .add_witness(
            WitnessProfile {
                gender: Some("female".into()),
                birth_year: Some(1979),
                ..Default::default()
            },
            None,
        )
        .unwrap();
    give_consent(&mut v, &w.code, true);
    let i = v
        .new_interview(NewInterview {
            witness: w.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    let id = i.meta.id.clone();
    v.set_answer(&id, None, "ever_detained", &json!("yes"))
        .unwrap();
    let ep = v
        .add_group_instance(&id, "detention_episode", None)
        .unwrap();
    v.set_answer(
        &id,
        Some(&ep.meta.id),
        "det_facility_name",
        &json!("전거리 교화소 (가상)"),
    )
    .unwrap();
    v.set_answer(
        &id,
        None,
        "cl_anything_else",
        &json!("매일 가발과 속눈썹을 만들었다"),
    )
    .unwrap();
    v.add_note(&id, None, None, "증언자가 피곤해 보였다")
        .unwrap();
    // A witness who agreed to be interviewed but not to sharing with the archive.
    let p = v.add_witness(WitnessProfile::default(), None).unwrap();
    give_consent(&mut v, &p.code, false);
    let pi = v
        .new_interview(NewInterview {
            witness: p.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    v.set_answer(
        &pi.meta.id,
        None,
        "cl_anything_else",
        &json!("PRIVATE-ANSWER-MUST-NOT-TRAVEL 비공개"),
    )
    .unwrap();
    Field {
        dir: dir.to_path_buf(),
        witness: w.code,
        interview: id,
        private_interview: pi.meta.id,
    }
}

/// The field vault, and an archive that trusts it.
fn setup(store: &Store, tmp: &Path) -> (Field, Archive) {
    let field = field_vault(&tmp.join("interviewer"));
    let mut a = store.create(&tmp.join("archive"));
    a.trust_device(&device_key(&field.dir), "interviewer A's laptop")
        .unwrap();
    (field, a)
}

/// If this breaks, a coordinator finds an interview missing or with wrong (or garbled Korean)
/// answers, sees records doubled or altered by importing the same USB stick twice, or finds
/// the words of a witness who refused sharing in the archive.
fn an_interview_reaches_the_archive_once_and_only_with_consent_to_share(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let (field, mut a) = setup(store, tmp.path());
    // A third witness without any consent recorded: withheld too.
    {
        let mut v = open_vault(&field.dir);
        let n = v.add_witness(WitnessProfile::default(), None).unwrap();
        v.new_interview(NewInterview {
            witness: n.code,
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    }
    let b1 = tmp.path().join("b1.tbundle");
    let out = export(&field.dir, &a.recipient(), &b1, false);
    assert_eq!(out.sequence, 1);
    let c = &out.counts;
    assert_eq!(
        (
            c.witnesses,
            c.consents,
            c.interviews,
            c.group_instances,
            c.answers,
            c.notes
        ),
        (1, 1, 1, 1, 3, 1),
        "only the sharing witness's records travel: {out:?}"
    );
    assert_eq!(
        (
            out.withheld.witnesses,
            out.withheld.reasons.no_share_consent,
            out.withheld.reasons.no_consent_recorded
        ),
        (2, 1, 1),
        "{:?}",
        out.withheld
    );
    let bytes = fs::read(&b1).unwrap();
    for secret in ["교화소", "PRIVATE-ANSWER"] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "the bundle is encrypted: {secret} readable"
        );
    }

    let r = a.import(&b1).unwrap();
    assert_eq!((r.outcome.as_str(), r.sequence), ("imported", 1), "{r:?}");
    assert_eq!(r.counts, out.counts, "the archive read what was exported");
    assert_eq!(
        (r.added, r.updated, r.deleted, r.conflicts),
        (8, 0, 0, 0),
        "witness, consent, interview, episode, 3 answers, note: {r:?}"
    );
    assert!(r.gaps.is_empty() && r.warnings.is_empty(), "{r:?}");

    // What the coordinator sees: the interview, its answers and note as the interviewer wrote
    // them, found by a Korean search; nothing of the other witnesses.
    let listed = a.interviews().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(field.interview));
    assert_eq!(listed[0]["witness_code"], json!(field.witness));
    assert_eq!(
        archive_answers(&a, &field.interview),
        vault_answers(&field.dir, &field.interview)
    );
    assert_eq!(
        archive_answers(&a, &field.interview)["cl_anything_else#None"],
        json!("매일 가발과 속눈썹을 만들었다")
    );
    assert_eq!(
        archive_notes(&a, &field.interview),
        ["증언자가 피곤해 보였다"]
    );
    let hits = a.search("교화소", 10).unwrap();
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0].interview_id, field.interview);
    assert_eq!(
        code_of!(a.interview_detail(&field.private_interview)),
        "not_found"
    );
    assert!(a.search("PRIVATE-ANSWER", 10).unwrap().is_empty());
    assert!(a.search("비공개", 10).unwrap().is_empty());

    // The same bundle again, also after the coordinator closed and reopened the archive:
    // nothing changes, and the import says so.
    let before = archive_view(&a);
    let again = a.import(&b1).unwrap();
    assert_eq!(again.outcome, "already_imported", "{again:?}");
    assert_eq!((again.added, again.updated), (0, 0));
    assert_eq!(archive_view(&a), before);
    let dir = a.dir().to_path_buf();
    drop(a);
    let mut a = store.open(&dir);
    assert_eq!(a.import(&b1).unwrap().outcome, "already_imported");
    assert_eq!(archive_view(&a), before);
    let devices = a.devices().unwrap();
    assert_eq!(
        (devices[0].bundles, devices[0].last_sequence),
        (1, Some(1)),
        "one bundle counted once"
    );
}

/// If this breaks, a translator's laptop never receives the interview it was assigned (or
/// receives it without its recording or transcript), or the translator's work never reaches
/// the coordinator.
fn a_translation_made_on_an_assigned_laptop_reaches_the_archive(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let (field, mut a) = setup(store, tmp.path());
    // The interviewer imports the interview's audio and transcribes it (machine text).
    let (recording, first_segment) = {
        let mut v = open_vault(&field.dir);
        let rec = v.import_wav(&field.interview, &tone_wav(2)[..]).unwrap();
        let t = v
            .start_transcript(&rec.meta.id, "ggml-test.bin", Some("ko"), 30_000)
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
                seg(0, 900, "탄광에서 일했습니다"),
                seg(900, 2000, "하루 열두 시간"),
            ],
        )
        .unwrap();
        v.finish_transcript(&t.meta.id, 1).unwrap();
        let first = v.transcript_segments(&t.meta.id).unwrap()[0]
            .meta
            .id
            .clone();
        (rec.meta.id, first)
    };
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1, false);
    assert_eq!(a.import(&b1).unwrap().recordings_audio, 1);
    let wav = vault_wav(&field.dir, &recording);

    // The translator's laptop: a new vault, enrolled (its first, empty bundle tells the archive
    // its encryption key), trusting the archive's signing key.
    let translator = new_vault(&tmp.path().join("translator"), "translator T");
    let tkey = device_key(&translator);
    a.trust_device(&tkey, "translator T's laptop").unwrap();
    let t0 = tmp.path().join("t0.tbundle");
    export(&translator, &a.recipient(), &t0, true);
    assert_eq!(a.import(&t0).unwrap().outcome, "imported");
    open_vault(&translator)
        .trust_archive(&a.id().unwrap().signing_key, false)
        .unwrap();

    // The coordinator assigns the interview and writes the return bundle.
    a.assign(&tkey, &field.interview).unwrap();
    let r1 = tmp.path().join("r1.tbundle");
    let sent = a.export_return(&tkey, &r1, false).unwrap();
    let c = &sent.counts;
    assert_eq!(
        (
            c.witnesses,
            c.consents,
            c.interviews,
            c.answers,
            c.notes,
            c.recordings,
            c.transcripts,
            c.transcript_segments
        ),
        (1, 1, 1, 3, 1, 1, 1, 2),
        "{sent:?}"
    );
    assert_eq!(sent.withheld_interviews, 0);
    let applied = open_vault(&translator).import_return_bundle(&r1).unwrap();
    assert_eq!(applied.outcome, "applied", "{applied:?}");
    assert_eq!(
        (applied.recordings_added, applied.kept_local),
        (1, 0),
        "{applied:?}"
    );

    // The translator sees the interview as made: answers, recording (byte for byte), transcript.
    assert_eq!(
        vault_answers(&translator, &field.interview),
        vault_answers(&field.dir, &field.interview)
    );
    assert_eq!(vault_wav(&translator, &recording), wav);
    {
        let tv = open_vault(&translator);
        let seg = tv.transcript_segment(&first_segment).unwrap();
        assert_eq!(seg.text, "탄광에서 일했습니다");
        assert_eq!(seg.translation, None);
        assert!(tv.witness_identity(&field.witness).unwrap().is_none());
    }
    assert_eq!(
        open_vault(&translator)
            .import_return_bundle(&r1)
            .unwrap()
            .outcome,
        "already_applied"
    );

    // The translator translates the segment and adds a translator's note.
    {
        let mut tv = open_vault(&translator);
        tv.set_segment_translation(&first_segment, "I worked in the coal mine", "en")
            .unwrap();
        tv.add_note(
            &field.interview,
            Some("cl_anything_else"),
            None,
            "Translation: she made wigs and false eyelashes every day",
        )
        .unwrap();
    }
    let t1 = tmp.path().join("t1.tbundle");
    let back = export(&translator, &a.recipient(), &t1, false);
    assert_eq!(
        (back.counts.recordings, back.counts.notes),
        (0, 1),
        "the received recording is not sent back: {back:?}"
    );
    let imp = a.import(&t1).unwrap();
    assert_eq!(imp.outcome, "imported", "{imp:?}");
    assert_eq!(
        (imp.added, imp.conflicts),
        (1, 1),
        "the note is new; the segment the interviewer's laptop sent is changed by another device, so it is kept beside the current one: {imp:?}"
    );

    // The coordinator sees the note at once, and the translation once the conflict is settled.
    assert!(
        archive_notes(&a, &field.interview)
            .contains(&"Translation: she made wigs and false eyelashes every day".to_string())
    );
    assert_eq!(a.search("false eyelashes", 10).unwrap().len(), 1);
    let open = a.conflicts(false).unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].kind, "transcript_segment");
    assert_eq!(
        open[0].incoming["translation"],
        json!("I worked in the coal mine")
    );
    assert!(a.search("coal mine", 10).unwrap().is_empty(), "not yet");
    a.resolve_conflict(open[0].id, true).unwrap();
    let detail = a.interview_detail(&field.interview).unwrap();
    let seg = detail["transcript_segments"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == json!(first_segment))
        .unwrap()
        .clone();
    assert_eq!(
        (seg["text"].as_str(), seg["translation"].as_str()),
        (
            Some("탄광에서 일했습니다"),
            Some("I worked in the coal mine")
        )
    );
    let hits = a.search("coal mine", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].interview_id, field.interview);
    assert_eq!(
        archive_wav(&a, &recording).unwrap(),
        wav,
        "the archive's audio is untouched"
    );
    assert!(a.conflicts(false).unwrap().is_empty());
}

/// If this breaks, a witness who withdrew consent still has their testimony (answers, notes,
/// audio) readable and searchable in the archive, or other witnesses' interviews vanish too.
///
/// What the code intends (docs/bundle-format.md "Consent rules", "Withdrawal"; merge.rs
/// `purge_witness`): the vault's next bundle carries the withdrawn consent record and no other
/// content of that witness; the archive then deletes the witness's interview, its answers,
/// notes, instances, recordings with their audio and attachments, keeping only the
/// pseudonymous witness and the consent record as proof. Importing the older bundle again
/// brings nothing back.
fn a_withdrawal_of_consent_removes_the_witness_from_the_archive(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let (field, mut a) = setup(store, tmp.path());
    let (recording, attachment, other_interview) = {
        let mut v = open_vault(&field.dir);
        let rec = v.import_wav(&field.interview, &tone_wav(1)[..]).unwrap();
        let att = v
            .add_attachment(
                &field.interview,
                "sketch-map.png",
                "image/png",
                b"\x89PNG fictional sketch map",
            )
            .unwrap();
        // A second sharing witness, whose interview must stay.
        let o = v.add_witness(WitnessProfile::default(), None).unwrap();
        give_consent(&mut v, &o.code, true);
        let oi = v
            .new_interview(NewInterview {
                witness: o.code,
                languages: vec!["ko".into()],
                ..Default::default()
            })
            .unwrap();
        v.set_answer(
            &oi.meta.id,
            None,
            "cl_anything_else",
            &json!("다른 증인의 진술은 남는다"),
        )
        .unwrap();
        (rec.meta.id, att.meta.id, oi.meta.id)
    };
    let b1 = tmp.path().join("b1.tbundle");
    export(&field.dir, &a.recipient(), &b1, false);
    a.import(&b1).unwrap();
    assert_eq!(a.interviews().unwrap().len(), 2);
    assert!(archive_wav(&a, &recording).is_ok());
    assert!(a.attachment_data(&attachment).is_ok());
    let other_before = a.interview_detail(&other_interview).unwrap();

    {
        let mut v = open_vault(&field.dir);
        v.withdraw_consent(&field.witness, None).unwrap();
        assert!(
            !v.consent_allows(
                &field.witness,
                testimony_core::model::ConsentScope::ShareArchive
            )
            .unwrap()
        );
    }
    let b2 = tmp.path().join("b2.tbundle");
    let out = export(&field.dir, &a.recipient(), &b2, false);
    let c = &out.counts;
    assert_eq!(c.consents, 1, "the withdrawal travels: {out:?}");
    assert_eq!(
        c.witnesses
            + c.interviews
            + c.group_instances
            + c.answers
            + c.notes
            + c.recordings
            + c.attachments,
        0,
        "and nothing else of the witness: {out:?}"
    );

    let r = a.import(&b2).unwrap();
    assert_eq!(r.outcome, "imported", "{r:?}");
    assert_eq!(
        r.purged_for_withdrawal, 8,
        "interview, episode, 3 answers, note, recording, attachment: {r:?}"
    );
    let listed = a.interviews().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["id"], json!(other_interview));
    assert_eq!(code_of!(a.interview_detail(&field.interview)), "not_found");
    for q in ["교화소", "속눈썹", "피곤"] {
        assert!(a.search(q, 10).unwrap().is_empty(), "{q} still found");
    }
    assert_eq!(archive_wav(&a, &recording), Err("not_found"));
    assert_eq!(code_of!(a.attachment_data(&attachment)), "not_found");
    assert_eq!(
        a.interview_detail(&other_interview).unwrap(),
        other_before,
        "the other witness's interview is untouched"
    );
    assert_eq!(a.search("다른 증인", 10).unwrap().len(), 1);

    // The first bundle imported again (the old USB stick) brings nothing back.
    let before = archive_view(&a);
    assert_eq!(a.import(&b1).unwrap().outcome, "already_imported");
    assert_eq!(archive_view(&a), before);
    // Nor does the vault send the witness's records again, even in a full bundle.
    let b3 = tmp.path().join("b3.tbundle");
    let full = export(&field.dir, &a.recipient(), &b3, true);
    assert_eq!(full.counts.interviews, 1, "only the other witness's");
    assert_eq!(full.withheld.reasons.consent_withdrawn, 1);
    a.import(&b3).unwrap();
    assert_eq!(a.interviews().unwrap().len(), 1);
    assert!(a.search("교화소", 10).unwrap().is_empty());
}

/// Copies a closed vault's files (a backup on a USB stick).
fn copy_vault(src: &Path, dst: &Path) {
    fs::create_dir_all(dst).unwrap();
    for e in fs::read_dir(src).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), dst.join(e.file_name())).unwrap();
    }
}

/// If this breaks, restoring a laptop from an old backup and exporting from it makes the
/// archive forget or overwrite work that newer bundles of the same laptop had delivered.
///
/// What the code intends (docs/bundle-format.md, "Same number, different bundle" and "Audit
/// chains"; merge.rs `manifest`, `audit_entry`): the restored vault numbers its next bundles
/// from its own, older last export, so they carry sequence numbers the archive already holds
/// from that device: each is refused as "a different bundle numbered N … (a restored or
/// copied vault?)", with nothing merged. A bundle past the archive's highest number whose
/// audit entries differ from the device's chain the archive holds is refused too. Either way
/// the archive keeps exactly what it had. (When the restored vault's audit log has grown past
/// the archive's copy of the chain: see the test below.)
fn a_restored_older_vault_cannot_make_the_archive_lose_newer_work(store: &Store) {
    let tmp = tempfile::tempdir().unwrap();
    let (field, mut a) = setup(store, tmp.path());
    let bundle = |n: &str| tmp.path().join(format!("{n}.tbundle"));
    export(&field.dir, &a.recipient(), &bundle("b1"), false);
    a.import(&bundle("b1")).unwrap();
    let backup = tmp.path().join("backup");
    copy_vault(&field.dir, &backup);

    // The laptop goes on working: two more bundles reach the archive.
    {
        let mut v = open_vault(&field.dir);
        v.set_answer(
            &field.interview,
            None,
            "cl_anything_else",
            &json!("두 번째 방문: 가발 공장"),
        )
        .unwrap();
        v.add_note(&field.interview, None, None, "second visit")
            .unwrap();
    }
    export(&field.dir, &a.recipient(), &bundle("b2"), false);
    a.import(&bundle("b2")).unwrap();
    open_vault(&field.dir)
        .add_note(&field.interview, None, None, "third visit")
        .unwrap();
    export(&field.dir, &a.recipient(), &bundle("b3"), false);
    a.import(&bundle("b3")).unwrap();
    let newest = vault_answers(&field.dir, &field.interview);
    assert_eq!(archive_answers(&a, &field.interview), newest);
    let before = archive_view(&a);

    // The laptop dies; the old backup is restored in its place and work goes on there.
    fs::remove_dir_all(&field.dir).unwrap();
    copy_vault(&backup, &field.dir);
    assert_eq!(
        vault_answers(&field.dir, &field.interview)["cl_anything_else#None"],
        json!("매일 가발과 속눈썹을 만들었다"),
        "the restored vault holds the older answer"
    );
    for (n, text) in [(2, "restored: 세 번째 방문"), (3, "restored: 네 번째 방문")] {
        {
            let mut v = open_vault(&field.dir);
            v.set_answer(&field.interview, None, "cl_anything_else", &json!(text))
                .unwrap();
        }
        let out = export(
            &field.dir,
            &a.recipient(),
            &bundle(&format!("restored{n}")),
            false,
        );
        assert_eq!(out.sequence, n, "numbered from the backup's last export");
        let (code, m) = refused!(a.import(&bundle(&format!("restored{n}"))));
        assert_eq!(code, "bad_bundle", "{m}");
        assert!(
            m.contains(&format!("a different bundle numbered {n}"))
                && m.contains("restored or copied vault"),
            "{m}"
        );
        assert_eq!(archive_view(&a), before, "bundle {n} changed the archive");
    }
    // Its next bundle has a number the archive has not seen; its audit chain forks from the
    // one the archive holds.
    {
        let mut v = open_vault(&field.dir);
        v.add_note(&field.interview, None, None, "restored: fifth visit")
            .unwrap();
    }
    let out = export(&field.dir, &a.recipient(), &bundle("restored4"), false);
    assert_eq!(out.sequence, 4);
    let (code, m) = refused!(a.import(&bundle("restored4")));
    assert_eq!(code, "bad_bundle", "{m}");
    assert!(m.contains("audit chain differs"), "{m}");
    assert_eq!(archive_view(&a), before, "bundle 4 changed the archive");
    assert_eq!(
        archive_answers(&a, &field.interview),
        newest,
        "the newest answers stay"
    );
    let mut notes = archive_notes(&a, &field.interview);
    notes.retain(|n| n.ends_with("visit"));
    assert_eq!(notes, ["second visit", "third visit"]);
    let d = &a.devices().unwrap()[0];
    assert_eq!((d.bundles, d.last_sequence), (3, Some(3)));
    assert!(d.gaps.is_empty());
}

/// If this breaks, a coordinator finds an answer that the interviewer corrected on the live
/// laptop silently replaced by an older line of work from a restored backup of the same laptop.
///
/// The archive refuses a restored vault's bundles while their numbers are taken and while
/// their audit entries overlap the chain it holds. Once the restored vault has written more
/// audit entries than the archive holds, its bundle with a new number does not meet the
/// archive's chain at all; because the archive holds that device's bundle numbered one less,
/// the missing link cannot be a bundle still on its way, and the bundle is refused (merge.rs
/// `check_audit_meets_held_chain`). Before, it merged with only a warning, and its records,
/// from the same device key with a higher `version`, replaced the newer ones without a
/// conflict.
#[test]
fn a_restored_vault_that_worked_longer_does_not_replace_newer_answers() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::Embedded;
    let (field, mut a) = setup(&store, tmp.path());
    let bundle = |n: &str| tmp.path().join(format!("{n}.tbundle"));
    export(&field.dir, &a.recipient(), &bundle("b1"), false);
    a.import(&bundle("b1")).unwrap();
    let backup = tmp.path().join("backup");
    copy_vault(&field.dir, &backup);
    open_vault(&field.dir)
        .set_answer(
            &field.interview,
            None,
            "cl_anything_else",
            &json!("corrected on the live laptop"),
        )
        .unwrap();
    export(&field.dir, &a.recipient(), &bundle("b2"), false);
    a.import(&bundle("b2")).unwrap();
    let newest = archive_answers(&a, &field.interview);

    fs::remove_dir_all(&field.dir).unwrap();
    copy_vault(&backup, &field.dir);
    {
        let mut v = open_vault(&field.dir);
        for k in 0..3 {
            v.add_note(&field.interview, None, None, &format!("restored note {k}"))
                .unwrap();
        }
    }
    export(&field.dir, &a.recipient(), &bundle("r2"), false);
    assert_eq!(refused!(a.import(&bundle("r2"))).0, "bad_bundle");
    {
        let mut v = open_vault(&field.dir);
        for text in ["restored edit 1", "restored edit 2"] {
            v.set_answer(&field.interview, None, "cl_anything_else", &json!(text))
                .unwrap();
        }
    }
    export(&field.dir, &a.recipient(), &bundle("r3"), false);
    // Refused, or merged as a conflict: either way the newer answer stays current.
    let _ = a.import(&bundle("r3"));
    assert_eq!(
        archive_answers(&a, &field.interview),
        newest,
        "the live laptop's answer was replaced by the restored vault's"
    );
}
