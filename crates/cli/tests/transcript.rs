//! `testimony transcript …` as a translator or a script meets it: real processes, a real
//! vault. The segments are saved through the core's API, as the transcription engine does (no
//! model needed); everything after that goes through the command line.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;
use testimony_core::Vault;
use testimony_core::transcript::NewSegment;

const PASS: &str = "correct horse battery staple";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn run_with(vault: &Path, args: &[&str], stdin: Option<&str>) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testimony"));
    c.arg("--vault").arg(vault).args(args);
    for var in ["TESTIMONY_VAULT", "TESTIMONY_NEW_PASSPHRASE"] {
        c.env_remove(var);
    }
    c.env("TESTIMONY_PASSPHRASE", PASS);
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("testimony runs");
    if let Some(input) = stdin {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn run(vault: &Path, args: &[&str]) -> Run {
    run_with(vault, args, None)
}

fn ok(vault: &Path, args: &[&str]) -> String {
    let r = run(vault, args);
    assert_eq!(
        r.code,
        Some(0),
        "testimony {args:?} failed: {}",
        r.describe()
    );
    r.stdout.trim().to_string()
}

fn json(vault: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(vault, &a)).unwrap()
}

fn fails(vault: &Path, args: &[&str]) -> Run {
    let r = run(vault, args);
    assert_eq!(
        r.code,
        Some(1),
        "testimony {args:?}: expected exit 1: {}",
        r.describe()
    );
    r
}

fn write_wav(path: &Path, seconds: u32) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8_000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for _ in 0..seconds * 8_000 {
        w.write_sample(0i16).unwrap();
    }
    w.finalize().unwrap();
}

/// A vault with a witness (consent to transcribe or not), an interview and a 20 s recording;
/// returns the recording id.
fn vault_with_recording(tmp: &Path, transcribe: bool) -> (std::path::PathBuf, String) {
    let v = tmp.join("vault");
    ok(&v, &["init", "--interviewer", "Translator Lee"]);
    let code = ok(&v, &["witness", "add"]);
    let scopes = if transcribe {
        "record_audio,transcribe,share_archive"
    } else {
        "record_audio,share_archive"
    };
    ok(
        &v,
        &[
            "consent",
            "set",
            &code,
            "--scopes",
            scopes,
            "--taken-by",
            "Kim",
        ],
    );
    let interview = ok(&v, &["interview", "new", "--witness", &code]);
    let wav = tmp.join("in.wav");
    write_wav(&wav, 20);
    let rec = ok(
        &v,
        &["record", &interview, "--from-wav", wav.to_str().unwrap()],
    )
    .lines()
    .next()
    .unwrap()
    .to_string();
    (v, rec)
}

/// Saves segments as the engine would; returns the transcript id.
fn transcribe(v: &Path, rec: &str, segs: &[(u64, u64, &str)]) -> String {
    let mut vault = Vault::open(v, PASS).unwrap();
    let t = vault
        .start_transcript(rec, "ggml-test.bin", Some("ko"), 30_000)
        .unwrap();
    let segs: Vec<NewSegment> = segs
        .iter()
        .map(|(s, e, t)| NewSegment {
            start_ms: *s,
            end_ms: *e,
            text: t.to_string(),
            language: Some("ko".into()),
            confidence: None,
        })
        .collect();
    vault.save_transcript_window(&t.meta.id, 0, &segs).unwrap();
    vault.finish_transcript(&t.meta.id, 1).unwrap();
    t.meta.id
}

#[test]
fn a_translator_reviews_translates_and_exports_from_the_command_line() {
    let tmp = tempfile::tempdir().unwrap();
    let (v, rec) = vault_with_recording(tmp.path(), true);
    let tid = transcribe(
        &v,
        &rec,
        &[
            (1_000, 5_000, "김영호가 무산까지 데려갔습니다"),
            (5_000, 9_000, "밤에 강을 건넜습니다"),
            (9_000, 12_500, "그리고 연길로"),
        ],
    );

    let list = json(&v, &["transcript", "list", &rec]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        (
            list[0]["id"].as_str(),
            list[0]["status"].as_str(),
            list[0]["model"].as_str()
        ),
        (Some(tid.as_str()), Some("done"), Some("ggml-test.bin"))
    );
    assert!(ok(&v, &["transcript", "list", &rec]).contains("done (1 windows)"));
    let show = json(&v, &["transcript", "show", &tid]);
    let segs = show["segments"].as_array().unwrap();
    assert_eq!(segs.len(), 3);
    let ids: Vec<String> = segs
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(segs[0]["text"], "김영호가 무산까지 데려갔습니다");

    // Corrections and translations, the text read from standard input (kept out of the
    // process list), speaker, reviewed.
    let r = run_with(
        &v,
        &["transcript", "edit", &ids[1], "--text", "-"],
        Some("밤에 두만강을 건넜습니다\n"),
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    ok(
        &v,
        &[
            "transcript",
            "translate",
            &ids[0],
            "--text",
            "Kim Young-ho took us to Musan",
        ],
    );
    ok(
        &v,
        &[
            "transcript",
            "translate",
            &ids[1],
            "--text",
            "At night we crossed the Tumen",
            "--language",
            "en",
        ],
    );
    ok(&v, &["transcript", "speaker", &ids[0], "witness"]);
    ok(&v, &["transcript", "review", &ids[0]]);
    let s0 = json(&v, &["transcript", "show", &tid])["segments"][0].clone();
    assert_eq!(
        (
            s0["speaker"].as_str(),
            s0["reviewed"].as_bool(),
            s0["version"].as_i64()
        ),
        (Some("witness"), Some(true), Some(4))
    );
    assert_eq!(
        (
            s0["translation"].as_str(),
            s0["translation_language"].as_str()
        ),
        (Some("Kim Young-ho took us to Musan"), Some("en"))
    );

    // History: the machine's text, then the correction, by the vault's interviewer profile.
    let h = json(&v, &["transcript", "history", &ids[1]]);
    let h = h.as_array().unwrap();
    assert_eq!(
        h.iter()
            .map(|e| e["action"].as_str().unwrap())
            .collect::<Vec<_>>(),
        vec!["create", "edit", "translate"]
    );
    assert_eq!(
        (
            h[0]["segment"]["text"].as_str(),
            h[1]["segment"]["text"].as_str()
        ),
        (
            Some("밤에 강을 건넜습니다"),
            Some("밤에 두만강을 건넜습니다")
        )
    );
    assert!(h.iter().all(|e| e["actor"] == "Translator Lee"));
    let text = ok(&v, &["transcript", "history", &ids[1]]);
    assert!(
        text.contains("Translator Lee  create") && text.contains("text: 밤에 두만강을 건넜습니다"),
        "{text}"
    );

    // Search finds the translation and the correction.
    let hits = json(&v, &["search", "Tumen"]);
    assert_eq!(
        (hits[0]["record_id"].as_str(), hits[0]["kind"].as_str()),
        (Some(ids[1].as_str()), Some("transcript"))
    );
    assert_eq!(
        json(&v, &["search", "두만강"])[0]["record_id"].as_str(),
        Some(ids[1].as_str())
    );

    // Redaction marks and exports.
    let name = ok(
        &v,
        &[
            "transcript",
            "redact",
            &ids[0],
            "--start",
            "0",
            "--end",
            "3",
            "--label",
            "name",
        ],
    );
    assert_eq!(name.len(), 36, "prints the redaction id: {name}");
    ok(
        &v,
        &[
            "transcript",
            "redact",
            &ids[0],
            "--field",
            "translation",
            "--start",
            "0",
            "--end",
            "12",
            "--label",
            "name",
        ],
    );
    ok(
        &v,
        &[
            "transcript",
            "redact",
            &ids[0],
            "--start",
            "5",
            "--end",
            "7",
            "--label",
            "place",
        ],
    );
    ok(
        &v,
        &[
            "transcript",
            "redact",
            &ids[0],
            "--field",
            "translation",
            "--start",
            "24",
            "--end",
            "29",
            "--label",
            "place",
        ],
    );
    let srt = ok(
        &v,
        &["transcript", "export", &tid, "--format", "srt", "--redact"],
    );
    assert!(
        srt.starts_with(
            "1\r\n00:00:01,000 --> 00:00:05,000\r\nWitness: [name]가 [place]까지 데려갔습니다\r\n"
        ),
        "{srt:?}"
    );
    assert!(!srt.contains("김영호") && !srt.contains("무산"));
    let full = ok(&v, &["transcript", "export", &tid, "--format", "txt"]);
    assert_eq!(
        full,
        "[00:00:01] Witness: 김영호가 무산까지 데려갔습니다\n[00:00:05] 밤에 두만강을 건넜습니다\n[00:00:09] 그리고 연길로"
    );
    for (format, ext) in [
        ("txt", "txt"),
        ("srt", "srt"),
        ("vtt", "vtt"),
        ("bilingual", "html"),
    ] {
        let out = tmp.path().join(format!("export-{format}.{ext}"));
        let r = run(
            &v,
            &[
                "transcript",
                "export",
                &tid,
                "--format",
                format,
                "--redact",
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_eq!(r.code, Some(0), "{}", r.describe());
        assert!(
            r.stderr.contains("plaintext"),
            "the user is told the file is not encrypted: {}",
            r.describe()
        );
        let body = std::fs::read_to_string(&out).unwrap();
        for word in ["김영호", "무산", "Kim Young-ho", "Musan"] {
            assert!(!body.contains(word), "{format} leaks {word}");
        }
        assert!(
            body.contains("[name]") && body.contains("두만강"),
            "{format}: {body}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&out).unwrap().permissions().mode() & 0o777,
                0o600,
                "{format}"
            );
        }
        // An existing file is never overwritten.
        let again = run(
            &v,
            &[
                "transcript",
                "export",
                &tid,
                "--format",
                format,
                "--out",
                out.to_str().unwrap(),
            ],
        );
        assert_ne!(again.code, Some(0));
        assert!(
            again.stderr.contains("already exist"),
            "{}",
            again.describe()
        );
        assert_eq!(std::fs::read_to_string(&out).unwrap(), body);
    }
    let html = std::fs::read_to_string(tmp.path().join("export-bilingual.html")).unwrap();
    assert!(
        html.contains("<td lang=\"en\">[name] took us to [place]</td>"),
        "{html}"
    );
    let vtt = std::fs::read_to_string(tmp.path().join("export-vtt.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT\n\n00:00:01.000 --> 00:00:05.000\n<v Witness>[name]가 [place]까지 데려갔습니다\n"), "{vtt}");

    // Split and merge.
    let parts = json(
        &v,
        &[
            "transcript",
            "split",
            &ids[1],
            "--at-ms",
            "7000",
            "--text-at",
            "3",
            "--translation-at",
            "9",
        ],
    );
    assert_eq!(
        (parts[0]["text"].as_str(), parts[0]["end_ms"].as_u64()),
        (Some("밤에"), Some(7_000))
    );
    assert_eq!(
        (parts[1]["text"].as_str(), parts[1]["start_ms"].as_u64()),
        (Some("두만강을 건넜습니다"), Some(7_000))
    );
    assert_eq!(
        (
            parts[0]["translation"].as_str(),
            parts[1]["translation"].as_str()
        ),
        (Some("At night"), Some("we crossed the Tumen"))
    );
    let second = parts[1]["id"].as_str().unwrap().to_string();
    assert_eq!(
        json(&v, &["transcript", "show", &tid])["segments"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let merged = json(&v, &["transcript", "merge", &ids[1], &second]);
    assert_eq!(
        (
            merged["text"].as_str(),
            merged["start_ms"].as_u64(),
            merged["end_ms"].as_u64()
        ),
        (Some("밤에 두만강을 건넜습니다"), Some(5_000), Some(9_000))
    );

    // Remove a redaction mark.
    let s0 = json(&v, &["transcript", "show", &tid])["segments"][0].clone();
    assert_eq!(s0["redactions"].as_array().unwrap().len(), 4);
    ok(&v, &["transcript", "redact", &ids[0], "--remove", &name]);
    let txt = ok(
        &v,
        &["transcript", "export", &tid, "--format", "txt", "--redact"],
    );
    assert!(
        txt.starts_with("[00:00:01] Witness: 김영호가 [place]까지"),
        "{txt}"
    );

    // Deleting the transcript.
    ok(&v, &["transcript", "delete", &tid]);
    assert_eq!(
        json(&v, &["transcript", "list", &rec])
            .as_array()
            .unwrap()
            .len(),
        0
    );
    assert!(
        json(&v, &["search", "Tumen"])
            .as_array()
            .unwrap()
            .is_empty()
    );
    ok(&v, &["audit", "verify"]);
}

#[test]
fn bad_transcript_commands_fail_clearly_and_change_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let (v, rec) = vault_with_recording(tmp.path(), true);
    let tid = transcribe(
        &v,
        &rec,
        &[
            (1_000, 5_000, "하나 둘"),
            (5_000, 9_000, "셋"),
            (9_000, 12_000, "넷"),
        ],
    );
    let ids: Vec<String> = json(&v, &["transcript", "show", &tid])["segments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect();
    let before = json(&v, &["transcript", "show", &tid]);
    let audit_before = ok(&v, &["audit", "verify"]);
    for (args, expect) in [
        (
            vec!["transcript", "show", "no-such-transcript"],
            "transcript not found",
        ),
        (
            vec!["transcript", "list", "no-such-recording"],
            "recording not found",
        ),
        (
            vec!["transcript", "edit", "no-such-segment", "--text", "x"],
            "transcript segment not found",
        ),
        (
            vec!["transcript", "edit", &ids[0], "--text", "  "],
            "segment text is empty",
        ),
        (
            vec![
                "transcript",
                "translate",
                &ids[0],
                "--text",
                "x",
                "--language",
                "English",
            ],
            "language code",
        ),
        (
            vec![
                "transcript",
                "split",
                &ids[0],
                "--at-ms",
                "9000",
                "--text-at",
                "2",
            ],
            "inside the segment",
        ),
        (
            vec![
                "transcript",
                "split",
                &ids[0],
                "--at-ms",
                "3000",
                "--text-at",
                "0",
            ],
            "split position",
        ),
        (
            vec!["transcript", "merge", &ids[0], &ids[2]],
            "not next to each other",
        ),
        (vec!["transcript", "merge", &ids[0], &ids[0]], "itself"),
        (
            vec![
                "transcript",
                "redact",
                &ids[0],
                "--start",
                "3",
                "--end",
                "99",
            ],
            "inside the text",
        ),
        (
            vec![
                "transcript",
                "redact",
                &ids[0],
                "--field",
                "translation",
                "--start",
                "0",
                "--end",
                "1",
            ],
            "no translation",
        ),
        (
            vec![
                "transcript",
                "redact",
                &ids[0],
                "--start",
                "0",
                "--end",
                "1",
                "--label",
                "Real Name",
            ],
            "label",
        ),
        (
            vec![
                "transcript",
                "redact",
                &ids[0],
                "--remove",
                "no-such-redaction",
            ],
            "redaction not found",
        ),
        (
            vec!["transcript", "history", "no-such-segment"],
            "not found",
        ),
        (
            vec![
                "transcript",
                "export",
                "no-such-transcript",
                "--format",
                "srt",
            ],
            "transcript not found",
        ),
    ] {
        let r = fails(&v, &args);
        assert!(r.stderr.contains(expect), "{args:?}: {}", r.describe());
        assert!(
            !r.stderr.contains("하나"),
            "errors never quote the text: {}",
            r.describe()
        );
    }
    // clap refuses unknown formats and speakers before anything opens the vault.
    let r = run(&v, &["transcript", "export", &tid, "--format", "docx"]);
    assert_eq!(r.code, Some(2), "{}", r.describe());
    let r = run(&v, &["transcript", "speaker", &ids[0], "narrator"]);
    assert_eq!(r.code, Some(2), "{}", r.describe());
    // An export to a place that cannot be written leaves nothing behind.
    let bad_out = tmp.path().join("missing-dir").join("t.srt");
    fails(
        &v,
        &[
            "transcript",
            "export",
            &tid,
            "--format",
            "srt",
            "--out",
            bad_out.to_str().unwrap(),
        ],
    );
    assert!(!bad_out.exists());
    assert_eq!(
        json(&v, &["transcript", "show", &tid]),
        before,
        "nothing changed"
    );
    assert_eq!(ok(&v, &["audit", "verify"]), audit_before);
}

#[test]
fn without_consent_to_transcribe_nothing_is_stored() {
    let tmp = tempfile::tempdir().unwrap();
    let (v, rec) = vault_with_recording(tmp.path(), false);
    let mut vault = Vault::open(&v, PASS).unwrap();
    let err = vault
        .start_transcript(&rec, "ggml-test.bin", None, 30_000)
        .unwrap_err();
    assert!(
        err.to_string().contains("consented to transcription"),
        "{err}"
    );
    drop(vault);
    assert!(ok(&v, &["transcript", "list", &rec]).contains("No transcripts."));
}
