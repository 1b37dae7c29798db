//! Transcripts in a real (SQLCipher) vault: the storage API the transcription engine uses
//! (windows, resume, consent, crash safety), search, and the translator's review (edits,
//! translations, speakers, split/merge, redactions, history, exports). Segments are inserted
//! through the API as an engine would; no model is needed.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use testimony_core::model::*;
use testimony_core::transcript::*;
use testimony_core::{Error, Reason, Vault};

const CHILD_ENV: &str = "TESTIMONY_TRANSCRIPT_CHILD";

/// A witness with the given consent, an interview and a stopped recording of `seconds` of
/// silence at 8 kHz; returns (interview id, recording id).
fn recording(v: &mut Vault, transcribe: bool, seconds: u32) -> (String, String) {
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let scopes = ConsentScopes {
        record_audio: true,
        transcribe,
        share_archive: true,
        ..Default::default()
    };
    v.set_consent(&w.code, scopes, "tester", None, ConsentMethod::Oral)
        .unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code,
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap()
        .meta
        .id;
    let rec = v.start_recording(&i, 8_000, 1).unwrap();
    let mut wr = v.recording_writer(&rec.meta.id).unwrap();
    let chunk = vec![0i16; 80_000];
    for n in (0..seconds).step_by(10) {
        wr.append(&chunk[..8_000 * (seconds - n).min(10) as usize])
            .unwrap();
    }
    drop(wr);
    v.stop_recording(&rec.meta.id).unwrap();
    (i, rec.meta.id)
}

fn seg(start_ms: u64, end_ms: u64, text: &str) -> NewSegment {
    NewSegment {
        start_ms,
        end_ms,
        text: text.into(),
        language: Some("ko".into()),
        confidence: Some(0.75),
    }
}

fn audit_len(v: &Vault) -> i64 {
    v.audit_verify().unwrap().entries
}

fn row_count(dir: &Path, table: &str) -> i64 {
    raw_conn(dir, PASS)
        .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Every row of the tables a transcript change touches, as text: "changes nothing" means this
/// is equal before and after (the files themselves change when the vault closes: WAL).
fn db_state(dir: &Path) -> Vec<String> {
    let c = raw_conn(dir, PASS);
    let mut out = Vec::new();
    for table in [
        "transcripts",
        "transcript_windows",
        "transcript_segments",
        "transcript_history",
        "audit_log",
        "search_index",
        "search_rowids",
        "tombstones",
        "meta",
    ] {
        let mut st = c
            .prepare(&format!("SELECT * FROM {table} ORDER BY rowid"))
            .unwrap();
        let n = st.column_count();
        let mut rows = st.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cols: Vec<String> = (0..n)
                .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                .collect();
            out.push(format!("{table}: {}", cols.join("|")));
        }
    }
    out
}

// ---- storage: the engine's API ---------------------------------------------------------------

#[test]
fn windows_are_saved_in_order_and_a_finished_transcript_reads_back_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (interview, rec) = recording(&mut v, true, 65);
    let t = v
        .start_transcript(&rec, "ggml-base.bin", Some("ko"), 30_000)
        .unwrap();
    assert_eq!(
        (t.status, t.windows_done, t.windows_total, t.window_ms),
        (TranscriptStatus::Running, 0, None, 30_000)
    );
    assert_eq!(
        (
            t.recording_id.as_str(),
            t.interview_id.as_str(),
            t.language.as_deref()
        ),
        (rec.as_str(), interview.as_str(), Some("ko"))
    );
    // Windows saved out of order (a window may be empty: silence); segments come back by time.
    v.save_transcript_window(
        &t.meta.id,
        1,
        &[
            seg(31_000, 34_500, "두만강을 건넜습니다"),
            seg(35_000, 39_000, "crossed the river"),
        ],
    )
    .unwrap();
    v.save_transcript_window(
        &t.meta.id,
        0,
        &[seg(1_000, 4_000, "저는 함경북도에서 왔습니다")],
    )
    .unwrap();
    v.save_transcript_window(&t.meta.id, 2, &[]).unwrap();
    assert_eq!(
        v.transcript_windows_done(&t.meta.id).unwrap(),
        vec![0, 1, 2]
    );
    let done = v.finish_transcript(&t.meta.id, 3).unwrap();
    assert_eq!(
        (
            done.status,
            done.windows_done,
            done.windows_total,
            done.meta.version
        ),
        (TranscriptStatus::Done, 3, Some(3), 2)
    );
    let segs = v.transcript_segments(&t.meta.id).unwrap();
    let texts: Vec<(&str, u64, u64)> = segs
        .iter()
        .map(|s| (s.text.as_str(), s.start_ms, s.end_ms))
        .collect();
    assert_eq!(
        texts,
        vec![
            ("저는 함경북도에서 왔습니다", 1_000, 4_000),
            ("두만강을 건넜습니다", 31_000, 34_500),
            ("crossed the river", 35_000, 39_000)
        ]
    );
    for s in &segs {
        assert_eq!(s.machine_text.as_deref(), Some(s.text.as_str()));
        assert_eq!(
            (
                s.language.as_deref(),
                s.confidence,
                s.reviewed,
                s.speaker,
                s.meta.version
            ),
            (Some("ko"), Some(0.75), false, None, 1)
        );
        assert_eq!(s.interview_id, interview);
    }
    assert_eq!(v.transcripts(&rec).unwrap(), vec![done.clone()]);
    // The record travels as JSON like the others (RecordMeta flattened).
    let json = serde_json::to_value(&done).unwrap();
    assert_eq!(
        (
            json["id"].as_str(),
            json["status"].as_str(),
            json["version"].as_i64()
        ),
        (Some(done.meta.id.as_str()), Some("done"), Some(2))
    );
    let back: Transcript = serde_json::from_value(json).unwrap();
    assert_eq!(back, done);
    let sj = serde_json::to_string(&segs[0]).unwrap();
    assert_eq!(
        serde_json::from_str::<TranscriptSegment>(&sj).unwrap(),
        segs[0]
    );
    // Each segment creation is in the audit chain.
    assert_eq!(
        v.audit_history(&segs[0].meta.id)
            .unwrap()
            .iter()
            .map(|e| e.action.as_str())
            .collect::<Vec<_>>(),
        vec!["create"]
    );
    // A finished transcript takes no more windows.
    assert!(matches!(
        v.save_transcript_window(&t.meta.id, 3, &[]),
        Err(Error::NotAllowed(_))
    ));
}

#[test]
fn an_unfinished_transcript_is_resumed_and_keeps_its_windows() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, true, 100);
    let t = v
        .start_transcript(&rec, "ggml-base.bin", None, 30_000)
        .unwrap();
    v.save_transcript_window(&t.meta.id, 0, &[seg(0, 2_000, "하나")])
        .unwrap();
    v.save_transcript_window(&t.meta.id, 1, &[seg(30_000, 32_000, "둘")])
        .unwrap();
    drop(v);
    // The app was closed: the same model resumes the same transcript, whatever window it asks.
    let mut v = Vault::open(&dir, PASS).unwrap();
    let again = v
        .start_transcript(&rec, "ggml-base.bin", None, 10_000)
        .unwrap();
    assert_eq!(
        (again.meta.id.as_str(), again.window_ms, again.windows_done),
        (t.meta.id.as_str(), 30_000, 2)
    );
    assert_eq!(v.transcript_windows_done(&t.meta.id).unwrap(), vec![0, 1]);
    // Another model is another transcript.
    let other = v
        .start_transcript(&rec, "ggml-tiny.en.bin", Some("en"), 30_000)
        .unwrap();
    assert_ne!(other.meta.id, t.meta.id);
    // Finishing with windows missing is refused and changes nothing.
    let err = v.finish_transcript(&t.meta.id, 4).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.to_string().contains("2, 3")),
        "{err}"
    );
    assert!(
        matches!(v.finish_transcript(&t.meta.id, 1), Err(Error::Invalid(_))),
        "window 1 is saved, so there are at least 2"
    );
    assert_eq!(
        v.transcript(&t.meta.id).unwrap().status,
        TranscriptStatus::Running
    );
    v.save_transcript_window(&t.meta.id, 2, &[seg(60_000, 61_000, "셋")])
        .unwrap();
    v.save_transcript_window(&t.meta.id, 3, &[]).unwrap();
    v.finish_transcript(&t.meta.id, 4).unwrap();
    // Once finished, the same model starts a fresh transcript.
    let fresh = v
        .start_transcript(&rec, "ggml-base.bin", None, 30_000)
        .unwrap();
    assert_ne!(fresh.meta.id, t.meta.id);
    assert_eq!(v.transcripts(&rec).unwrap().len(), 3);
    assert_eq!(v.transcript_segments(&t.meta.id).unwrap().len(), 3);
}

#[test]
fn saving_a_window_twice_is_refused_and_never_duplicates() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, true, 60);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    v.save_transcript_window(
        &t.meta.id,
        0,
        &[seg(0, 1_000, "a window"), seg(1_000, 2_000, "two segments")],
    )
    .unwrap();
    let before = db_state(&dir);
    let err = v
        .save_transcript_window(&t.meta.id, 0, &[seg(0, 1_000, "a window")])
        .unwrap_err();
    assert!(
        matches!(&err, Error::NotAllowed(m) if m.to_string().contains("already saved")),
        "{err}"
    );
    assert_eq!(v.transcript_segments(&t.meta.id).unwrap().len(), 2);
    assert!(db_state(&dir) == before, "a refused window changes nothing");
}

#[test]
fn no_transcription_without_consent_and_none_after_withdrawal() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, false, 10);
    let entries = audit_len(&v);
    let err = v.start_transcript(&rec, "m", None, 30_000).unwrap_err();
    assert!(
        matches!(&err, Error::NotAllowed(Reason::NoTranscribeConsent { .. }))
            && err.to_string().contains("transcribe"),
        "{err}"
    );
    assert_eq!(audit_len(&v), entries);
    assert!(v.transcripts(&rec).unwrap().is_empty());
    drop(v);
    assert_eq!(row_count(&dir, "transcripts"), 0);

    // Consent given, a window saved, then consent withdrawn: no further window is accepted,
    // what was saved stays (and can be deleted).
    let mut v = Vault::open(&dir, PASS).unwrap();
    let witness = v
        .interview(&v.recording(&rec).unwrap().interview_id)
        .unwrap()
        .witness_id;
    let scopes = ConsentScopes {
        record_audio: true,
        transcribe: true,
        ..Default::default()
    };
    v.set_consent(&witness, scopes, "tester", None, ConsentMethod::Oral)
        .unwrap();
    let t = v.start_transcript(&rec, "m", None, 5_000).unwrap();
    v.save_transcript_window(&t.meta.id, 0, &[seg(0, 1_000, "before withdrawal")])
        .unwrap();
    v.withdraw_consent(&witness, None).unwrap();
    let entries = audit_len(&v);
    assert!(matches!(
        v.save_transcript_window(&t.meta.id, 1, &[seg(5_000, 6_000, "after")]),
        Err(Error::NotAllowed(Reason::NoTranscribeConsent { .. }))
    ));
    assert!(matches!(
        v.start_transcript(&rec, "other", None, 5_000),
        Err(Error::NotAllowed(Reason::NoTranscribeConsent { .. }))
    ));
    assert_eq!(audit_len(&v), entries);
    assert_eq!(v.transcript_windows_done(&t.meta.id).unwrap(), vec![0]);
    assert_eq!(v.transcript_segments(&t.meta.id).unwrap().len(), 1);
}

#[test]
fn bad_engine_input_is_refused_with_a_clear_error_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, true, 60);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    let before = db_state(&dir);
    assert!(matches!(
        v.start_transcript("no-such-recording", "m", None, 30_000),
        Err(Error::NotFound("recording", _))
    ));
    assert!(matches!(
        v.start_transcript(&rec, "  ", None, 30_000),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        v.start_transcript(&rec, "m2", Some("Korean"), 30_000),
        Err(Error::Invalid(Reason::NotALanguageCode { .. }))
    ));
    assert!(matches!(
        v.start_transcript(&rec, "m2", None, 10),
        Err(Error::Invalid(_))
    ));
    assert!(matches!(
        v.transcript_windows_done("nope"),
        Err(Error::NotFound("transcript", _))
    ));
    assert!(matches!(
        v.save_transcript_window("nope", 0, &[]),
        Err(Error::NotFound("transcript", _))
    ));
    assert!(matches!(
        v.finish_transcript("nope", 1),
        Err(Error::NotFound("transcript", _))
    ));
    assert!(matches!(
        v.transcript_segments("nope"),
        Err(Error::NotFound("transcript", _))
    ));
    assert!(matches!(
        v.transcripts("nope"),
        Err(Error::NotFound("recording", _))
    ));
    // A window past the end of the audio, times reversed or past the end, a bad confidence:
    // the whole window is refused, including its good segments.
    let err = v.save_transcript_window(&t.meta.id, 3, &[]).unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(m) if m.to_string().contains("after the end")),
        "{err}"
    );
    let good = seg(0, 1_000, "good");
    for bad in [
        seg(2_000, 1_000, "reversed"),
        seg(0, 999_000, "past the end"),
        NewSegment {
            confidence: Some(1.5),
            ..seg(0, 1, "x")
        },
        NewSegment {
            language: Some("KO".into()),
            ..seg(0, 1, "x")
        },
    ] {
        let err = v
            .save_transcript_window(&t.meta.id, 0, &[good.clone(), bad])
            .unwrap_err();
        assert!(matches!(err, Error::Invalid(_)), "{err}");
        assert!(
            !err.to_string().contains("good") && !err.to_string().contains("reversed"),
            "errors never quote the text: {err}"
        );
    }
    assert!(v.transcript_windows_done(&t.meta.id).unwrap().is_empty());
    assert!(db_state(&dir) == before, "refused input changes nothing");
}

#[test]
fn search_finds_segment_text_and_translations_in_korean_and_english() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (interview, rec) = recording(&mut v, true, 30);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    v.save_transcript_window(
        &t.meta.id,
        0,
        &[
            seg(0, 5_000, "보위부 구류장에서 석 달"),
            seg(5_000, 9_000, "then we walked to Yanji"),
        ],
    )
    .unwrap();
    let segs = v.transcript_segments(&t.meta.id).unwrap();
    let hits = v.search("구류장", 10).unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(
        (
            hits[0].record_id.as_str(),
            hits[0].kind.as_str(),
            hits[0].interview_id.as_str()
        ),
        (segs[0].meta.id.as_str(), "transcript", interview.as_str())
    );
    assert_eq!(v.search("Yanji", 10).unwrap()[0].record_id, segs[1].meta.id);
    assert_eq!(
        v.search("석 달", 10).unwrap().len(),
        1,
        "two-syllable Korean terms too"
    );
    // A translation is found in either language, and a correction replaces the old text.
    v.set_segment_translation(
        &segs[0].meta.id,
        "three months in the security police holding cell",
        "en",
    )
    .unwrap();
    v.set_segment_translation(&segs[1].meta.id, "그리고 연길까지 걸어갔습니다", "ko")
        .unwrap();
    assert_eq!(
        v.search("holding cell", 10).unwrap()[0].record_id,
        segs[0].meta.id
    );
    assert_eq!(v.search("연길", 10).unwrap()[0].record_id, segs[1].meta.id);
    assert_eq!(
        v.search("구류장", 10).unwrap().len(),
        1,
        "the text stays findable beside its translation"
    );
    v.edit_segment_text(&segs[0].meta.id, "국가보위부 집결소에서 석 달")
        .unwrap();
    assert!(v.search("구류장", 10).unwrap().is_empty());
    assert_eq!(
        v.search("집결소", 10).unwrap()[0].record_id,
        segs[0].meta.id
    );
    // Deleted with the transcript.
    v.delete_transcript(&t.meta.id).unwrap();
    assert!(v.search("집결소", 10).unwrap().is_empty());
    assert!(v.search("holding", 10).unwrap().is_empty());
}

#[test]
fn deleting_a_transcript_removes_its_text_and_writes_tombstones() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (interview, rec) = recording(&mut v, true, 30);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    v.save_transcript_window(
        &t.meta.id,
        0,
        &[
            seg(0, 5_000, "tombstone-text-one"),
            seg(5_000, 9_000, "tombstone-text-two"),
        ],
    )
    .unwrap();
    let segs = v.transcript_segments(&t.meta.id).unwrap();
    v.edit_segment_text(&segs[0].meta.id, "tombstone-text-edited")
        .unwrap();
    v.delete_transcript(&t.meta.id).unwrap();
    assert!(matches!(
        v.transcript(&t.meta.id),
        Err(Error::NotFound("transcript", _))
    ));
    assert!(matches!(
        v.transcript_segment(&segs[0].meta.id),
        Err(Error::NotFound(..))
    ));
    assert!(
        matches!(
            v.segment_history(&segs[0].meta.id),
            Err(Error::NotFound(..))
        ),
        "the history goes with the transcript"
    );
    assert_eq!(
        v.audit_history(&t.meta.id).unwrap().last().unwrap().action,
        "delete"
    );
    assert_eq!(
        v.audit_history(&segs[1].meta.id)
            .unwrap()
            .last()
            .unwrap()
            .action,
        "delete"
    );
    v.audit_verify().unwrap();
    assert!(matches!(
        v.delete_transcript(&t.meta.id),
        Err(Error::NotFound("transcript", _))
    ));
    drop(v);
    let c = raw_conn(&dir, PASS);
    let mut st = c
        .prepare("SELECT record_type, interview_id FROM tombstones WHERE record_id = ?1")
        .unwrap();
    for (id, kind) in [
        (&t.meta.id, "transcript"),
        (&segs[0].meta.id, "transcript_segment"),
        (&segs[1].meta.id, "transcript_segment"),
    ] {
        let (k, i): (String, String) = st.query_row([id], |r| Ok((r.get(0)?, r.get(1)?))).unwrap();
        assert_eq!((k.as_str(), i.as_str()), (kind, interview.as_str()));
    }
    for table in [
        "transcript_segments",
        "transcript_history",
        "transcript_windows",
        "transcripts",
    ] {
        assert_eq!(row_count(&dir, table), 0, "{table}");
    }
    // Nothing of the text is left in any file (secure_delete, WAL checkpointed).
    for (name, bytes) in snapshot(&dir) {
        assert!(!contains(&bytes, b"tombstone-text"), "{name}");
    }
}

#[test]
fn deleting_a_recording_deletes_its_transcripts() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (_, rec) = recording(&mut v, true, 30);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    v.save_transcript_window(&t.meta.id, 0, &[seg(0, 5_000, "cascade")])
        .unwrap();
    v.delete_recording(&rec).unwrap();
    assert!(matches!(v.transcript(&t.meta.id), Err(Error::NotFound(..))));
    assert!(v.search("cascade", 10).unwrap().is_empty());
    v.audit_verify().unwrap();
}

#[test]
fn transcript_text_is_not_readable_in_any_vault_file() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, true, 30);
    let t = v.start_transcript(&rec, "m", None, 30_000).unwrap();
    v.save_transcript_window(&t.meta.id, 0, &[seg(0, 5_000, "plaintext-canary 비밀증언")])
        .unwrap();
    let s = &v.transcript_segments(&t.meta.id).unwrap()[0];
    v.set_segment_translation(&s.meta.id, "translation-canary", "en")
        .unwrap();
    for (name, bytes) in snapshot(&dir) {
        for needle in ["plaintext-canary", "비밀증언", "translation-canary"] {
            assert!(
                !contains(&bytes, needle.as_bytes()),
                "{needle} readable in {name}"
            );
        }
    }
}

// ---- crash safety ----------------------------------------------------------------------------

/// Child: open the vault and save windows of the transcript until killed, printing a line only
/// after each save returned.
#[test]
#[ignore = "entry point for the transcript crash test's child process"]
fn transcript_crash_child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, rec) = spec.split_once('|').unwrap();
    let mut v = Vault::open(Path::new(dir), PASS).unwrap();
    let t = v
        .start_transcript(rec, "crash-model", Some("ko"), 1_000)
        .unwrap();
    let done = v.transcript_windows_done(&t.meta.id).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    for w in (0..3_600u32).filter(|w| !done.contains(w)) {
        let at = w as u64 * 1_000;
        let segs: Vec<NewSegment> = (0..3)
            .map(|k| {
                seg(
                    at + k * 300,
                    at + k * 300 + 250,
                    &format!("window {w} part {k} 증언"),
                )
            })
            .collect();
        v.save_transcript_window(&t.meta.id, w, &segs).unwrap();
        writeln!(out, "saved {w}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_while_saving_windows_keeps_every_finished_window() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, rec) = recording(&mut v, true, 3_600);
    drop(v);
    let runs: usize = std::env::var("TESTIMONY_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20)
        .min(20);
    let mut confirmed: Vec<u32> = Vec::new();
    for run in 0..runs {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "transcript_crash_child_writer",
                "--ignored",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD_ENV, format!("{}|{rec}", dir.display()))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for l in stdout.lines().map_while(Result::ok) {
                let _ = tx.send(l);
            }
        });
        // Wait until the child has saved a few windows, then kill it at once (SIGKILL), in the
        // middle of the next window.
        let mut saved_now = 0;
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        while saved_now < 3 + run % 4 {
            let l = rx
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .expect("the child saves windows");
            if let Some(w) = l.strip_prefix("saved ") {
                confirmed.push(w.parse().unwrap());
                saved_now += 1;
            }
        }
        std::thread::sleep(Duration::from_millis((run as u64 * 7) % 20));
        child.kill().unwrap();
        child.wait().unwrap();
        reader.join().unwrap();
        confirmed.extend(
            rx.try_iter()
                .filter_map(|l| l.strip_prefix("saved ").map(|w| w.parse::<u32>().unwrap())),
        );

        let v = Vault::open(&dir, PASS)
            .unwrap_or_else(|e| panic!("run {run}: the vault does not open after SIGKILL: {e}"));
        v.audit_verify().unwrap();
        let t = v.start_transcript_id_for_test(&rec);
        let done = v.transcript_windows_done(&t).unwrap();
        for w in &confirmed {
            assert!(
                done.contains(w),
                "run {run}: window {w} was confirmed saved but is gone"
            );
        }
        // A window is there with all its segments or not at all; none twice.
        let segs = v.transcript_segments(&t).unwrap();
        assert_eq!(segs.len(), done.len() * 3, "run {run}");
        for (n, w) in done.iter().enumerate() {
            assert_eq!(*w as usize, n, "windows are saved in order, none skipped");
            for k in 0..3 {
                assert_eq!(
                    segs[n * 3 + k as usize].text,
                    format!("window {w} part {k} 증언")
                );
            }
        }
    }
    assert!(confirmed.len() >= runs * 3);
}

trait TestLookup {
    fn start_transcript_id_for_test(&self, rec: &str) -> String;
}
impl TestLookup for Vault {
    fn start_transcript_id_for_test(&self, rec: &str) -> String {
        let all = self.transcripts(rec).unwrap();
        assert_eq!(all.len(), 1, "every run resumed the same transcript");
        all[0].meta.id.clone()
    }
}

// ---- the translator's review ---------------------------------------------------------------

/// A finished transcript with the given segments, all in one window.
fn transcript_with(v: &mut Vault, segs: &[NewSegment]) -> (String, Vec<TranscriptSegment>) {
    let seconds = segs.iter().map(|s| s.end_ms / 1000 + 1).max().unwrap_or(1) as u32;
    let (_, rec) = recording(v, true, seconds);
    let t = v
        .start_transcript(&rec, "m", Some("ko"), 3_600_000)
        .unwrap();
    v.save_transcript_window(&t.meta.id, 0, segs).unwrap();
    v.finish_transcript(&t.meta.id, 1).unwrap();
    let s = v.transcript_segments(&t.meta.id).unwrap();
    (t.meta.id, s)
}

#[test]
fn each_review_edit_is_a_new_version_with_who_and_when_and_its_history_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (_, segs) = transcript_with(&mut v, &[seg(1_000, 4_000, "저는 회령에서 왔습니다")]);
    let id = segs[0].meta.id.clone();
    let e = v
        .edit_segment_text(&id, "저는 회령시에서 왔습니다")
        .unwrap();
    assert_eq!(
        (e.text.as_str(), e.machine_text.as_deref(), e.meta.version),
        (
            "저는 회령시에서 왔습니다",
            Some("저는 회령에서 왔습니다"),
            2
        )
    );
    assert!(e.meta.updated_at >= segs[0].meta.updated_at);
    v.set_segment_translation(&id, "I come from Hoeryong", "en")
        .unwrap();
    v.set_segment_translation(&id, "I come from Hoeryong city", "en")
        .unwrap();
    v.set_segment_speaker(&id, Some(Speaker::Witness)).unwrap();
    let last = v.set_segment_reviewed(&id, true).unwrap();
    assert_eq!(
        (
            last.translation.as_deref(),
            last.translation_language.as_deref(),
            last.speaker,
            last.reviewed,
            last.meta.version
        ),
        (
            Some("I come from Hoeryong city"),
            Some("en"),
            Some(Speaker::Witness),
            true,
            6
        )
    );
    assert_eq!(
        v.transcript_segment(&id).unwrap(),
        last,
        "what was returned is what is stored"
    );
    // A change that changes nothing writes nothing.
    let entries = audit_len(&v);
    assert_eq!(v.set_segment_reviewed(&id, true).unwrap().meta.version, 6);
    assert_eq!(audit_len(&v), entries);

    let h = v.segment_history(&id).unwrap();
    let actions: Vec<&str> = h.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(
        actions,
        vec![
            "create",
            "edit",
            "translate",
            "translate",
            "speaker",
            "review"
        ]
    );
    assert_eq!(
        h[0].segment.text, "저는 회령에서 왔습니다",
        "the machine transcript"
    );
    assert_eq!(
        h[1].segment.text, "저는 회령시에서 왔습니다",
        "the correction"
    );
    assert_eq!(
        h[2].segment.translation.as_deref(),
        Some("I come from Hoeryong"),
        "the first translation"
    );
    assert_eq!(
        h[3].segment.translation.as_deref(),
        Some("I come from Hoeryong city")
    );
    assert_eq!(
        h.iter().map(|e| e.segment.meta.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    for e in &h {
        assert_eq!(
            (e.actor.as_str(), e.device_id.as_str()),
            ("tester", v.device_id())
        );
        assert!(!e.at.is_empty());
    }
    // The audit chain has the same entries, each hashing the version the history keeps.
    let audit = v.audit_history(&id).unwrap();
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        actions
    );
    for (a, e) in audit.iter().zip(&h) {
        assert_eq!(
            a.content_hash,
            testimony_core::audit::content_hash(&e.segment)
        );
        assert_eq!(a.at, e.at);
    }
    v.audit_verify().unwrap();
    // Unreview and clearing the translation are versions too.
    v.set_segment_reviewed(&id, false).unwrap();
    let c = v.clear_segment_translation(&id).unwrap();
    assert_eq!(
        (c.translation, c.translation_language, c.meta.version),
        (None, None, 8)
    );
    assert_eq!(v.segment_history(&id).unwrap().len(), 8);
}

#[test]
fn split_and_merge_keep_times_and_text() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (tid, segs) = transcript_with(
        &mut v,
        &[
            seg(1_000, 9_000, "첫째 문장입니다. 둘째 문장입니다."),
            seg(9_000, 12_000, "next one"),
        ],
    );
    let id = segs[0].meta.id.clone();
    v.set_segment_translation(&id, "First sentence. Second sentence.", "en")
        .unwrap();
    v.set_segment_speaker(&id, Some(Speaker::Witness)).unwrap();
    v.set_segment_reviewed(&id, true).unwrap();
    // Split at 4.5 s, after "첫째 문장입니다." (9 characters) and "First sentence." (15).
    let (a, b) = v.split_segment(&id, 4_500, 9, Some(15)).unwrap();
    assert_eq!(
        (a.meta.id.as_str(), a.start_ms, a.end_ms, a.text.as_str()),
        (id.as_str(), 1_000, 4_500, "첫째 문장입니다.")
    );
    assert_eq!(
        (b.start_ms, b.end_ms, b.text.as_str()),
        (4_500, 9_000, "둘째 문장입니다.")
    );
    assert_eq!(
        (a.translation.as_deref(), b.translation.as_deref()),
        (Some("First sentence."), Some("Second sentence."))
    );
    assert_eq!(
        (a.speaker, b.speaker, a.reviewed, b.reviewed),
        (Some(Speaker::Witness), Some(Speaker::Witness), false, false)
    );
    assert_eq!(
        (a.machine_text.as_deref(), b.machine_text.as_deref()),
        (Some("첫째 문장입니다. 둘째 문장입니다."), None)
    );
    assert_eq!(b.translation_language.as_deref(), Some("en"));
    let order: Vec<String> = v
        .transcript_segments(&tid)
        .unwrap()
        .iter()
        .map(|s| s.text.clone())
        .collect();
    assert_eq!(
        order,
        vec!["첫째 문장입니다.", "둘째 문장입니다.", "next one"]
    );
    let hb = v.segment_history(&b.meta.id).unwrap();
    assert_eq!(
        (
            hb.len(),
            hb[0].action.as_str(),
            hb[0].related_segment.as_deref()
        ),
        (1, "split", Some(id.as_str()))
    );
    assert_eq!(
        v.segment_history(&id)
            .unwrap()
            .last()
            .unwrap()
            .related_segment
            .as_deref(),
        Some(b.meta.id.as_str())
    );
    assert_eq!(
        v.search("둘째", 10).unwrap()[0].record_id,
        b.meta.id,
        "the new part is searchable"
    );

    // Merging them back (in either order) gives the original times and text.
    let m = v.merge_segments(&b.meta.id, &a.meta.id).unwrap();
    assert_eq!(
        (m.meta.id.as_str(), m.start_ms, m.end_ms),
        (id.as_str(), 1_000, 9_000)
    );
    assert_eq!(
        (m.text.as_str(), m.translation.as_deref()),
        (
            "첫째 문장입니다. 둘째 문장입니다.",
            Some("First sentence. Second sentence.")
        )
    );
    assert!(matches!(
        v.transcript_segment(&b.meta.id),
        Err(Error::NotFound(..))
    ));
    assert_eq!(v.transcript_segments(&tid).unwrap().len(), 2);
    // The merged-away part keeps its history, ending with the merge; a tombstone carries it.
    let hb = v.segment_history(&b.meta.id).unwrap();
    assert_eq!(
        hb.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["split", "merged_into"]
    );
    assert_eq!(
        v.audit_history(&b.meta.id).unwrap().last().unwrap().action,
        "delete"
    );
    assert_eq!(v.search("둘째", 10).unwrap()[0].record_id, id);
    v.audit_verify().unwrap();
}

#[test]
fn bad_split_and_merge_are_refused_with_clear_errors_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, segs) = transcript_with(
        &mut v,
        &[
            seg(1_000, 5_000, "one two"),
            seg(5_000, 8_000, "three four"),
            seg(8_000, 9_000, "five"),
        ],
    );
    let (_, other) = transcript_with(&mut v, &[seg(0, 1_000, "elsewhere")]);
    let (s0, s1, s2) = (&segs[0].meta.id, &segs[1].meta.id, &segs[2].meta.id);
    v.set_segment_translation(s1, "drei vier", "en").unwrap();
    let before = db_state(&dir);
    let invalid = |r: Result<_, Error>, what: &str| match r {
        Err(Error::Invalid(reason)) => reason,
        Err(e) => panic!("{what}: wrong error {e}"),
        Ok(_) => panic!("{what}: accepted"),
    };
    // Split outside the segment, at its edges, or leaving an empty part.
    for at in [0, 1_000, 5_000, 6_000] {
        let m = invalid(v.split_segment(s0, at, 3, None).map(drop), "time outside");
        assert!(
            matches!(
                m,
                Reason::SplitTimeOutside {
                    start_ms: 1_000,
                    end_ms: 5_000
                }
            ),
            "{m:?}"
        );
        assert!(m.to_string().contains("inside the segment"), "{m}");
    }
    for pos in [0, 7, 99, 3] {
        // 3 is the space: the first part is "one", the second "two" … but with pos 3 both are
        // fine, so use the blank-second-part case instead for it below.
        if pos == 3 {
            continue;
        }
        let m = invalid(
            v.split_segment(s0, 3_000, pos, None).map(drop),
            "text position",
        );
        assert_eq!(m.code(), "split_text_position");
    }
    let m = invalid(
        v.split_segment(s1, 6_000, 5, None).map(drop),
        "a translated segment needs a translation position",
    );
    assert_eq!(m, Reason::SplitNeedsTranslationPosition);
    let m = invalid(
        v.split_segment(s0, 3_000, 3, Some(2)).map(drop),
        "no translation to split",
    );
    assert_eq!(m, Reason::SplitNoTranslation);
    let m = invalid(
        v.split_segment(s1, 6_000, 5, Some(40)).map(drop),
        "translation position outside",
    );
    assert_eq!(m.code(), "split_translation_position");
    assert!(matches!(
        v.split_segment("nope", 1, 1, None),
        Err(Error::NotFound(..))
    ));
    // Merge: itself, not neighbours, another transcript, different speakers or languages.
    assert_eq!(
        invalid(v.merge_segments(s0, s0).map(drop), "itself"),
        Reason::MergeSameSegment
    );
    let m = invalid(v.merge_segments(s0, s2).map(drop), "not neighbours");
    assert_eq!(m, Reason::MergeNotNeighbours { between: 1 });
    assert!(m.to_string().contains("not next to each other"), "{m}");
    let m = invalid(
        v.merge_segments(s0, &other[0].meta.id).map(drop),
        "other transcript",
    );
    assert_eq!(m, Reason::MergeDifferentTranscripts);
    assert!(matches!(
        v.merge_segments(s0, "nope"),
        Err(Error::NotFound(..))
    ));
    assert!(db_state(&dir) == before, "nothing changed");
    v.set_segment_speaker(s0, Some(Speaker::Interviewer))
        .unwrap();
    v.set_segment_speaker(s1, Some(Speaker::Witness)).unwrap();
    let m = invalid(v.merge_segments(s0, s1).map(drop), "speakers");
    assert_eq!(
        m,
        Reason::MergeDifferentSpeakers {
            first: "interviewer".into(),
            second: "witness".into()
        }
    );
    assert!(m.to_string().contains("different speakers"), "{m}");
    v.set_segment_speaker(s1, None).unwrap();
    v.set_segment_translation(s0, "eins zwei", "de").unwrap();
    let m = invalid(v.merge_segments(s0, s1).map(drop), "translation languages");
    assert_eq!(
        m,
        Reason::MergeTranslationLanguages {
            first: "de".into(),
            second: "en".into()
        }
    );
    assert_eq!(
        v.transcript_segments(&segs[0].transcript_id).unwrap().len(),
        3
    );
}

#[test]
fn bad_review_input_is_refused_with_clear_errors_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let (_, segs) = transcript_with(&mut v, &[seg(0, 2_000, "Kim Young-ho said")]);
    let id = &segs[0].meta.id;
    let before = db_state(&dir);
    for (r, code) in [
        (v.edit_segment_text(id, ""), "segment_text_empty"),
        (v.edit_segment_text(id, "   \n "), "segment_text_empty"),
        (v.set_segment_translation(id, "", "en"), "translation_empty"),
    ] {
        assert!(
            matches!(&r, Err(Error::Invalid(reason)) if reason.code() == code && reason.to_string().contains("empty")),
            "{r:?}"
        );
    }
    assert!(matches!(
        v.edit_segment_text(id, &"x".repeat(MAX_SEGMENT_CHARS + 1)),
        Err(Error::Invalid(Reason::SegmentTextTooLong {
            max: MAX_SEGMENT_CHARS
        }))
    ));
    assert!(matches!(
        v.set_segment_translation(id, "text", "English"),
        Err(Error::Invalid(Reason::NotALanguageCode { .. }))
    ));
    assert!(matches!(
        v.clear_segment_translation(id),
        Err(Error::Invalid(Reason::NoTranslation { .. }))
    ));
    assert!(matches!(
        v.edit_segment_text("nope", "x"),
        Err(Error::NotFound("transcript segment", _))
    ));
    assert!(matches!(
        v.set_segment_speaker("nope", None),
        Err(Error::NotFound(..))
    ));
    assert!(matches!(
        v.set_segment_reviewed("nope", true),
        Err(Error::NotFound(..))
    ));
    assert!(matches!(
        v.segment_history("nope"),
        Err(Error::NotFound(..))
    ));
    // Redactions: empty, reversed or outside ranges, a translation that is not there, bad
    // labels, an unknown id to remove.
    for (start, end) in [(3, 3), (5, 2), (0, 18), (17, 40)] {
        let r = v.add_redaction(id, RedactionField::Text, start, end, "name");
        assert!(
            matches!(&r, Err(Error::Invalid(reason @ Reason::RedactionRange { len: 17, .. })) if reason.to_string().contains("inside the text")),
            "{start}..{end}: {r:?}"
        );
    }
    assert!(matches!(
        v.add_redaction(id, RedactionField::Translation, 0, 1, "name"),
        Err(Error::Invalid(Reason::RedactNoTranslation { .. }))
    ));
    for label in ["", "Name", "a name", "이름", &"x".repeat(41)] {
        assert!(
            matches!(
                v.add_redaction(id, RedactionField::Text, 0, 3, label),
                Err(Error::Invalid(Reason::RedactionLabel { max: 40 }))
            ),
            "{label}"
        );
    }
    assert!(matches!(
        v.remove_redaction(id, "nope"),
        Err(Error::NotFound("redaction", _))
    ));
    assert!(db_state(&dir) == before, "nothing changed");
    // Overlapping spans of one field are refused.
    let r = v
        .add_redaction(id, RedactionField::Text, 0, 11, "name")
        .unwrap();
    let err = v
        .add_redaction(id, RedactionField::Text, 4, 15, "name")
        .unwrap_err();
    assert!(
        matches!(&err, Error::Invalid(Reason::RedactionOverlap { redaction, start: 0, end: 11 }) if *redaction == r.id),
        "{err}"
    );
    assert!(
        err.to_string().contains(&r.id),
        "the CLI's English names the redaction: {err}"
    );
}

#[test]
fn redaction_spans_follow_edits_splits_and_merges_and_over_redact_rather_than_leak() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (_, segs) = transcript_with(
        &mut v,
        &[
            seg(0, 6_000, "Kim Young-ho took us to Musan"),
            seg(6_000, 9_000, "by night"),
        ],
    );
    let id = segs[0].meta.id.clone();
    let name = v
        .add_redaction(&id, RedactionField::Text, 0, 12, "name")
        .unwrap();
    let place = v
        .add_redaction(&id, RedactionField::Text, 24, 29, "place")
        .unwrap();
    let red = |v: &Vault| {
        rendered(
            &v.transcript_segment(&id).unwrap(),
            RedactionField::Text,
            true,
        )
        .unwrap()
    };
    assert_eq!(red(&v), "[name] took us to [place]");
    // An edit before a span moves it; an edit inside a span (a corrected name) stays hidden.
    v.edit_segment_text(&id, "Kim Young-ho then took us to Musan")
        .unwrap();
    assert_eq!(red(&v), "[name] then took us to [place]");
    v.edit_segment_text(&id, "Kim Yong-ho then took us to Musan")
        .unwrap();
    assert_eq!(red(&v), "[name] then took us to [place]");
    // Text added right against a span is covered too (it may be part of the name).
    v.edit_segment_text(&id, "Kim Yong-ho then took us to Musan-gun")
        .unwrap();
    assert_eq!(red(&v), "[name] then took us to [place]");
    let s = v.transcript_segment(&id).unwrap();
    assert_eq!(
        s.redactions
            .iter()
            .map(|r| (r.id.as_str(), r.start, r.end))
            .collect::<Vec<_>>(),
        vec![(name.id.as_str(), 0, 11), (place.id.as_str(), 28, 37)]
    );
    // Deleting the marked words removes the span.
    v.edit_segment_text(&id, "Kim Yong-ho then took us")
        .unwrap();
    assert_eq!(red(&v), "[name] then took us");
    assert_eq!(v.transcript_segment(&id).unwrap().redactions.len(), 1);
    // A rewrite across a span hides all that changed there: more than needed, never less.
    let p = v
        .add_redaction(&id, RedactionField::Text, 17, 21, "place")
        .unwrap();
    assert_eq!(red(&v), "[name] then [place] us");
    v.edit_segment_text(&id, "Kim Yong-ho then brought us")
        .unwrap();
    assert_eq!(red(&v), "[name] then [place] us");
    v.remove_redaction(&id, &p.id).unwrap();
    // Split: spans go with their characters; merge: they come back in place.
    let (a, b) = v.split_segment(&id, 3_000, 12, None).unwrap();
    assert_eq!(
        (
            rendered(&a, RedactionField::Text, true).unwrap().as_str(),
            rendered(&b, RedactionField::Text, true).unwrap().as_str()
        ),
        ("[name]", "then brought us")
    );
    let m = v.merge_segments(&a.meta.id, &b.meta.id).unwrap();
    assert_eq!(
        rendered(&m, RedactionField::Text, true).unwrap(),
        "[name] then brought us"
    );
    // A span across the split point is in both parts.
    let (a, b) = v.split_segment(&id, 3_000, 4, None).unwrap();
    assert_eq!(
        (
            rendered(&a, RedactionField::Text, true).unwrap().as_str(),
            rendered(&b, RedactionField::Text, true).unwrap().as_str()
        ),
        ("[name]", "[name] then brought us")
    );
    // Removing a span shows the text again.
    let r = a.redactions[0].id.clone();
    let a = v.remove_redaction(&a.meta.id, &r).unwrap();
    assert_eq!(rendered(&a, RedactionField::Text, true).unwrap(), "Kim");
    assert_eq!(
        v.segment_history(&a.meta.id)
            .unwrap()
            .last()
            .unwrap()
            .action,
        "unredact"
    );
}

#[test]
fn exports_are_exact_and_redact_marked_spans_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (tid, segs) = transcript_with(
        &mut v,
        &[
            seg(1_234, 4_000, "김영호가 무산까지 데려갔습니다"),
            seg(3_725_007, 3_729_999, "a <b> & \"c\" -->\n\nline two"),
            seg(3_730_000, 3_731_000, "no translation"),
        ],
    );
    let (s0, s1) = (&segs[0].meta.id, &segs[1].meta.id);
    v.set_segment_translation(s0, "Kim Young-ho took us to Musan", "en")
        .unwrap();
    v.set_segment_speaker(s0, Some(Speaker::Witness)).unwrap();
    v.set_segment_speaker(s1, Some(Speaker::Interviewer))
        .unwrap();
    v.set_segment_translation(s1, "에이", "ko").unwrap();
    v.add_redaction(s0, RedactionField::Text, 0, 3, "name")
        .unwrap();
    v.add_redaction(s0, RedactionField::Text, 5, 7, "place")
        .unwrap();
    v.add_redaction(s0, RedactionField::Translation, 0, 12, "name")
        .unwrap();
    v.add_redaction(s0, RedactionField::Translation, 24, 29, "place")
        .unwrap();
    let export = |v: &Vault, f: TranscriptFormat, redact: bool| {
        let mut out = Vec::new();
        assert_eq!(v.export_transcript(&tid, f, redact, &mut out).unwrap(), 3);
        String::from_utf8(out).unwrap()
    };

    assert_eq!(
        export(&v, TranscriptFormat::Text, false),
        "[00:00:01] Witness: 김영호가 무산까지 데려갔습니다\n[01:02:05] Interviewer: a <b> & \"c\" --> line two\n[01:02:10] no translation\n"
    );
    assert_eq!(
        export(&v, TranscriptFormat::Text, true),
        "[00:00:01] Witness: [name]가 [place]까지 데려갔습니다\n[01:02:05] Interviewer: a <b> & \"c\" --> line two\n[01:02:10] no translation\n"
    );
    assert_eq!(
        export(&v, TranscriptFormat::Srt, true),
        "1\r\n00:00:01,234 --> 00:00:04,000\r\nWitness: [name]가 [place]까지 데려갔습니다\r\n\r\n\
         2\r\n01:02:05,007 --> 01:02:09,999\r\nInterviewer: a <b> & \"c\" -->\r\nline two\r\n\r\n\
         3\r\n01:02:10,000 --> 01:02:11,000\r\nno translation\r\n\r\n"
    );
    assert_eq!(
        export(&v, TranscriptFormat::Vtt, true),
        "WEBVTT\n\n00:00:01.234 --> 00:00:04.000\n<v Witness>[name]가 [place]까지 데려갔습니다\n\n\
         01:02:05.007 --> 01:02:09.999\n<v Interviewer>a &lt;b&gt; &amp; &quot;c&quot; --&gt;\nline two\n\n\
         01:02:10.000 --> 01:02:11.000\nno translation\n\n"
    );
    let vtt = export(&v, TranscriptFormat::Vtt, false);
    assert!(
        vtt.contains("<v Witness>김영호가 무산까지 데려갔습니다\n"),
        "{vtt}"
    );
    let html = export(&v, TranscriptFormat::Bilingual, true);
    assert!(
        html.starts_with("<!DOCTYPE html>") && html.ends_with("</html>\n"),
        "{html}"
    );
    assert!(html.contains("<td>00:00:01.234 – 00:00:04.000</td><td>Witness</td><td lang=\"ko\">[name]가 [place]까지 데려갔습니다</td><td lang=\"en\">[name] took us to [place]</td>"), "{html}");
    assert!(html.contains("<td lang=\"ko\">a &lt;b&gt; &amp; &quot;c&quot; --&gt;<br><br>line two</td><td lang=\"ko\">에이</td>"), "{html}");
    assert!(
        html.contains("<td lang=\"ko\">no translation</td><td lang=\"en\"></td>"),
        "{html}"
    );
    assert!(!html.contains("<script"), "{html}");
    let plain = export(&v, TranscriptFormat::Bilingual, false);
    assert!(plain.contains("Kim Young-ho took us to Musan") && plain.contains("김영호가 무산까지"));
    // Redacted exports hold none of the marked words, in any format.
    for f in [
        TranscriptFormat::Text,
        TranscriptFormat::Srt,
        TranscriptFormat::Vtt,
        TranscriptFormat::Bilingual,
    ] {
        let out = export(&v, f, true);
        for word in ["김영호", "무산", "Kim Young-ho", "Musan"] {
            assert!(!out.contains(word), "{f:?} leaks {word}");
        }
        assert!(out.contains("[name]") && out.contains("[place]"), "{f:?}");
        // And the same without redact keeps them.
        assert!(export(&v, f, false).contains("김영호"), "{f:?}");
    }
    let mut sink = Vec::new();
    assert!(matches!(
        v.export_transcript("nope", TranscriptFormat::Srt, false, &mut sink),
        Err(Error::NotFound(..))
    ));
    assert!(sink.is_empty());
}

// ---- bundles -------------------------------------------------------------------------------------

/// Accepts everything a bundle holds, keeping the records and audit entries as JSON text.
#[derive(Default)]
struct Collect {
    records: Vec<(testimony_core::bundle::RecordKind, serde_json::Value)>,
    audit: Vec<String>,
}

impl testimony_core::bundle::BundleSink for Collect {
    fn manifest(
        &mut self,
        _: &testimony_core::bundle::Manifest,
        _: &str,
    ) -> testimony_core::Result<bool> {
        Ok(true)
    }
    fn codebook(&mut self, _: &str, _: &str, _: &str) -> testimony_core::Result<()> {
        Ok(())
    }
    fn record(
        &mut self,
        kind: testimony_core::bundle::RecordKind,
        record: serde_json::Value,
    ) -> testimony_core::Result<()> {
        self.records.push((kind, record));
        Ok(())
    }
    fn attachment(&mut self, _: &str, _: &[u8]) -> testimony_core::Result<()> {
        Ok(())
    }
    fn audio(
        &mut self,
        _: &str,
        _: u64,
        wav: &mut dyn std::io::Read,
    ) -> testimony_core::Result<()> {
        std::io::copy(wav, &mut std::io::sink())?;
        Ok(())
    }
    fn audit_entry(
        &mut self,
        e: &testimony_core::bundle::BundleAuditEntry,
    ) -> testimony_core::Result<()> {
        self.audit.push(serde_json::to_string(e).unwrap());
        Ok(())
    }
}

/// Bundles carry transcripts and their segments (reviewed text, machine text, translation),
/// and the tombstones of deleted or merged ones; every bundle still verifies.
#[test]
fn bundles_carry_transcripts_their_edits_and_their_deletions() {
    use testimony_core::bundle::RecordKind;
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let (tid, segs) = transcript_with(
        &mut v,
        &[
            seg(0, 2_000, "bundle-canary 번들카나리아"),
            seg(2_000, 4_000, "second"),
        ],
    );
    v.set_segment_translation(&segs[0].meta.id, "translation-canary", "en")
        .unwrap();
    let merged = v
        .merge_segments(&segs[0].meta.id, &segs[1].meta.id)
        .unwrap();
    let key = age::x25519::Identity::generate();
    let opts = testimony_core::bundle::ExportOptions {
        recipients: vec![key.to_public().to_string()],
        full: true,
        include_identity: false,
    };
    let out = tmp.path().join("one.tbundle");
    v.export_bundle(&opts, &out).unwrap();
    v.delete_transcript(&tid).unwrap();
    let out2 = tmp.path().join("two.tbundle");
    v.export_bundle(
        &testimony_core::bundle::ExportOptions {
            full: false,
            ..opts
        },
        &out2,
    )
    .unwrap();
    let read = |file: &std::path::Path| {
        let bytes = std::fs::read(file).unwrap();
        let mut c = Collect::default();
        testimony_core::bundle::read_bundle(&bytes[..], std::slice::from_ref(&key), &mut c)
            .unwrap();
        assert!(!c.audit.is_empty());
        c
    };
    let of = |c: &Collect, kind: RecordKind| -> Vec<serde_json::Value> {
        c.records
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, r)| r.clone())
            .collect()
    };
    let tombstoned = |c: &Collect| -> Vec<(String, String)> {
        let mut t: Vec<(String, String)> = of(c, RecordKind::Tombstone)
            .iter()
            .map(|r| {
                (
                    r["record_type"].as_str().unwrap().to_string(),
                    r["record_id"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        t.sort();
        t
    };
    let one = read(&out);
    let transcripts = of(&one, RecordKind::Transcript);
    assert_eq!(transcripts.len(), 1);
    assert_eq!(
        (
            transcripts[0]["id"].as_str(),
            transcripts[0]["status"].as_str()
        ),
        (Some(tid.as_str()), Some("done"))
    );
    let segments = of(&one, RecordKind::TranscriptSegment);
    assert_eq!(segments.len(), 1, "the merged segment only");
    let s = &segments[0];
    assert_eq!(s["id"].as_str(), Some(merged.meta.id.as_str()));
    assert_eq!(s["translation"].as_str(), Some("translation-canary"));
    assert_eq!(s["text"].as_str(), Some(merged.text.as_str()));
    assert!(s["text"].as_str().unwrap().contains("번들카나리아"));
    assert_eq!(
        (s["start_ms"].as_u64(), s["end_ms"].as_u64()),
        (Some(0), Some(4_000))
    );
    assert_eq!(
        tombstoned(&one),
        [("transcript_segment".to_string(), segs[1].meta.id.clone())]
    );

    let two = read(&out2);
    assert!(
        of(&two, RecordKind::TranscriptSegment).is_empty()
            && of(&two, RecordKind::Transcript).is_empty()
    );
    let mut expected = vec![
        ("transcript".to_string(), tid.clone()),
        ("transcript_segment".to_string(), merged.meta.id.clone()),
    ];
    expected.sort();
    assert_eq!(tombstoned(&two), expected);
    assert!(
        !format!("{:?}", two.records).contains("bundle-canary"),
        "a deletion carries no text"
    );
}
