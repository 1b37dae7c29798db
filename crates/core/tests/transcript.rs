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
use testimony_core::{Error, Vault};

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
        matches!(&err, Error::Invalid(m) if m.contains("2, 3")),
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
        matches!(&err, Error::NotAllowed(m) if m.contains("already saved")),
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
        matches!(&err, Error::NotAllowed(m) if m.contains("transcribe")),
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
        Err(Error::NotAllowed(_))
    ));
    assert!(matches!(
        v.start_transcript(&rec, "other", None, 5_000),
        Err(Error::NotAllowed(_))
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
        Err(Error::Invalid(_))
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
    assert!(matches!(
        v.save_transcript_window(&t.meta.id, 2, &[]),
        Err(Error::Invalid(_))
    ));
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
