//! `testimony transcribe-file` and `testimony transcribe` with the real tiny.en model on
//! espeak-ng speech: output formats, errors, consent, and a run killed part-way that resumes.
//! The models come from TESTIMONY_WHISPER_MODELS (`./run test` builds them); without it the
//! tests that need them skip loudly, except under CI or TESTIMONY_REQUIRE_WHISPER=1.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;
use testimony_core::Vault;
use testimony_core::transcript::TranscriptStatus;

const PASS: &str = "correct horse battery staple";
const ENGLISH: &str = "The guards took us to the mine before sunrise. We worked for twelve hours without food. \
                       In the winter many prisoners became sick, and nobody was allowed to see a doctor.";

fn models() -> Option<PathBuf> {
    let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_WHISPER").is_ok_and(|v| v == "1");
    match std::env::var_os("TESTIMONY_WHISPER_MODELS").map(PathBuf::from) {
        Some(d) if d.join("ggml-tiny.en.bin").is_file() => Some(d),
        _ if required => panic!(
            "the whisper tests are required here (CI or TESTIMONY_REQUIRE_WHISPER=1) but TESTIMONY_WHISPER_MODELS does not name a folder \
             with ggml-tiny.en.bin; run `./run test`"
        ),
        _ => {
            eprintln!(
                "\n*** SKIPPED: TESTIMONY_WHISPER_MODELS is not set: the CLI transcription tests with a real model did NOT run. ***\n"
            );
            None
        }
    }
}

fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!("{program} is needed ({e}): Debian espeak-ng sox opus-tools ffmpeg")
        });
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// English speech, `repeats` times with 5 s pauses, as 16 kHz 16-bit mono WAV.
fn speech(dir: &Path, repeats: u32) -> PathBuf {
    let clip = dir.join("clip.wav");
    tool(
        "espeak-ng",
        &[
            "-v",
            "en-us",
            "-s",
            "150",
            "-w",
            clip.to_str().unwrap(),
            ENGLISH,
        ],
    );
    let out = dir.join(format!("speech-{repeats}.wav"));
    let rep = (repeats - 1).to_string();
    tool(
        "sox",
        &[
            clip.to_str().unwrap(),
            "-r",
            "16000",
            "-b",
            "16",
            out.to_str().unwrap(),
            "pad",
            "0.5",
            "5",
            "repeat",
            &rep,
        ],
    );
    out
}

fn words(t: &str) -> Vec<String> {
    t.split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric())
                .flat_map(char::to_lowercase)
                .collect::<String>()
        })
        .filter(|w| !w.is_empty())
        .collect()
}

fn wer(reference: &str, hyp: &str) -> f64 {
    let (r, h) = (words(reference), words(hyp));
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            cur[j] = (prev[j - 1] + usize::from(r[i - 1] != h[j - 1]))
                .min(prev[j] + 1)
                .min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn testimony(vault: Option<&Path>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testimony"));
    if let Some(v) = vault {
        c.arg("--vault").arg(v);
    }
    c.args(args);
    for var in [
        "TESTIMONY_VAULT",
        "TESTIMONY_NEW_PASSPHRASE",
        "TESTIMONY_WHISPER_MODEL",
    ] {
        c.env_remove(var);
    }
    c.env("TESTIMONY_PASSPHRASE", PASS)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(vault: Option<&Path>, args: &[&str]) -> Run {
    let o = testimony(vault, args).output().unwrap();
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

/// `testimony transcribe-file AUDIO --model MODEL` (no vault), as a user runs it.
fn transcribe_file(audio: &Path, model: &Path) -> Run {
    run(
        None,
        &[
            "transcribe-file",
            audio.to_str().unwrap(),
            "--model",
            model.to_str().unwrap(),
        ],
    )
}

/// Refused as audio: exit 1, and the error says the file is not audio it reads.
fn assert_refused_as_audio(r: &Run) {
    assert!(
        r.code == Some(1)
            && (r.stderr.contains("unsupported audio file")
                || r.stderr.contains("the audio file is damaged")),
        "{}",
        r.stderr
    );
}

fn ok(vault: Option<&Path>, args: &[&str]) -> String {
    let r = run(vault, args);
    assert_eq!(r.code, Some(0), "{args:?}: {}\n{}", r.stdout, r.stderr);
    r.stdout.trim().to_string()
}

/// Progress on stderr never carries what was said.
fn assert_no_content(stderr: &str) {
    for w in ["guards", "mine", "prisoners", "doctor", "sunrise"] {
        assert!(
            !stderr.to_lowercase().contains(w),
            "stderr carries transcript text: {stderr}"
        );
    }
}

#[test]
fn transcribe_file_prints_plain_json_srt_and_vtt() {
    let Some(models) = models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), 1);
    let model = models.join("ggml-tiny.en.bin");
    let (a, m) = (wav.to_str().unwrap(), model.to_str().unwrap());
    let r = run(
        None,
        &[
            "--json",
            "transcribe-file",
            a,
            "--model",
            m,
            "--language",
            "en",
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_no_content(&r.stderr);
    let segs: Value = serde_json::from_str(&r.stdout).unwrap();
    let segs = segs.as_array().unwrap();
    let text: Vec<&str> = segs.iter().map(|s| s["text"].as_str().unwrap()).collect();
    let w = wer(ENGLISH, &text.join(" "));
    assert!(w <= 0.15, "WER {w}: {text:?}");
    assert!(segs.iter().all(
        |s| s["start_ms"].as_u64().unwrap() <= s["end_ms"].as_u64().unwrap()
            && s["language"] == "en"
    ));

    let plain = ok(None, &["transcribe-file", a, "--model", m]);
    assert!(
        plain.lines().next().unwrap().starts_with("[00:00:0"),
        "{plain}"
    );
    assert!(plain.contains(text[0]));

    let srt = ok(None, &["transcribe-file", a, "--model", m, "--srt"]);
    let first: Vec<&str> = srt.lines().take(3).collect();
    assert_eq!(first[0], "1");
    assert!(
        first[1].starts_with("00:00:0") && first[1].contains(" --> ") && first[1].contains(','),
        "{srt}"
    );
    assert_eq!(first[2], text[0]);

    let vtt = ok(None, &["transcribe-file", a, "--model", m, "--vtt"]);
    assert!(vtt.starts_with("WEBVTT\n\n00:00:0"), "{vtt}");
    assert!(
        vtt.lines().nth(2).unwrap().contains(" --> ") && vtt.lines().nth(2).unwrap().contains('.')
    );

    let r = run(
        None,
        &["transcribe-file", a, "--model", m, "--srt", "--vtt"],
    );
    assert_eq!(r.code, Some(2));
}

#[test]
fn transcribe_file_reads_opus_and_m4a() {
    let Some(models) = models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), 1);
    let w = wav.to_str().unwrap();
    let opus = dir.path().join("speech.opus");
    let m4a = dir.path().join("speech.m4a");
    tool("opusenc", &["--quiet", w, opus.to_str().unwrap()]);
    tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            w,
            "-c:a",
            "aac",
            "-profile:a",
            "aac_low",
            "-b:a",
            "96k",
            m4a.to_str().unwrap(),
        ],
    );
    // The WAV's length: 44-byte header, 16 kHz 16-bit mono.
    let wav_ms = (std::fs::metadata(&wav).unwrap().len() - 44) * 1000 / 32_000;
    let model = models.join("ggml-tiny.en.bin");
    for f in [&opus, &m4a] {
        let r = run(
            None,
            &[
                "--json",
                "transcribe-file",
                f.to_str().unwrap(),
                "--model",
                model.to_str().unwrap(),
                "--language",
                "en",
            ],
        );
        assert_eq!(r.code, Some(0), "{}: {}", f.display(), r.stderr);
        assert_no_content(&r.stderr);
        let segs: Value = serde_json::from_str(&r.stdout).unwrap();
        let segs = segs.as_array().unwrap();
        let text: Vec<&str> = segs.iter().map(|s| s["text"].as_str().unwrap()).collect();
        let w = wer(ENGLISH, &text.join(" "));
        assert!(w <= 0.15, "{}: WER {w}: {text:?}", f.display());
        // Times fit in the audio (the speech ends 5 s before the file does).
        let end = segs.last().unwrap()["end_ms"].as_u64().unwrap();
        assert!(
            end > 3_000 && end <= wav_ms,
            "{}: last segment ends at {end} ms of {wav_ms}",
            f.display()
        );
    }
}

#[test]
fn transcribe_file_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    tool(
        "sox",
        &[
            "-n",
            "-r",
            "16000",
            "-b",
            "16",
            p("tone.wav").to_str().unwrap(),
            "synth",
            "1",
            "sine",
            "440",
        ],
    );
    let r = transcribe_file(&p("tone.wav"), &p("none.bin"));
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("no model file at") && r.stderr.contains("none.bin"),
        "{}",
        r.stderr
    );
    std::fs::write(p("model.bin"), "not a model").unwrap();
    let r = run(
        None,
        &[
            "--json",
            "transcribe-file",
            p("tone.wav").to_str().unwrap(),
            "--model",
            p("model.bin").to_str().unwrap(),
        ],
    );
    let e: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert!(
        e["error"]
            .as_str()
            .unwrap()
            .contains("not a whisper.cpp model file"),
        "{e}"
    );
    // Audio problems are found before the model is even looked at.
    std::fs::write(p("notes.mp3"), "These are notes, not audio.\n".repeat(100)).unwrap();
    let r = transcribe_file(&p("notes.mp3"), &p("none.bin"));
    assert_refused_as_audio(&r);
    tool(
        "opusenc",
        &[
            "--quiet",
            p("tone.wav").to_str().unwrap(),
            p("voice.opus").to_str().unwrap(),
        ],
    );
    // Opus decodes (libopus): the only complaint left is the missing model.
    let r = transcribe_file(&p("voice.opus"), &p("none.bin"));
    assert!(
        r.code == Some(1) && r.stderr.contains("no model file at"),
        "{}",
        r.stderr
    );
    // Random bytes named .opus are still refused as audio.
    let garbage: Vec<u8> = (0..50_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(p("noise.opus"), &garbage).unwrap();
    let r = transcribe_file(&p("noise.opus"), &p("none.bin"));
    assert_refused_as_audio(&r);
    let r = run(
        None,
        &[
            "transcribe-file",
            p("tone.wav").to_str().unwrap(),
            "--model",
            p("none.bin").to_str().unwrap(),
            "--language",
            "fr",
        ],
    );
    assert_eq!(r.code, Some(2));
}

fn vault_with_recording(vault: &Path, wav: &Path) -> (String, String) {
    ok(Some(vault), &["init", "--interviewer", "Kim Interviewer"]);
    let code = ok(Some(vault), &["witness", "add"]);
    ok(
        Some(vault),
        &[
            "consent",
            "set",
            &code,
            "--scopes",
            "record_audio",
            "--taken-by",
            "Kim",
        ],
    );
    let interview = ok(Some(vault), &["interview", "new", "--witness", &code]);
    let rec: Value = serde_json::from_str(&ok(
        Some(vault),
        &[
            "--json",
            "record",
            &interview,
            "--from-wav",
            wav.to_str().unwrap(),
        ],
    ))
    .unwrap();
    (code, rec["id"].as_str().unwrap().to_string())
}

#[test]
fn transcribe_needs_consent_and_resumes_after_a_kill() {
    let Some(models) = models() else { return };
    let dir = tempfile::tempdir().unwrap();
    let wav = speech(dir.path(), 3); // about a minute
    let vault = dir.path().join("vault");
    let (witness, rec) = vault_with_recording(&vault, &wav);
    let model = models.join("ggml-tiny.en.bin");
    let m = model.to_str().unwrap();
    let args = [
        "transcribe",
        rec.as_str(),
        "--model",
        m,
        "--language",
        "en",
        "--window-seconds",
        "20",
    ];

    // No consent to transcription: refused, and nothing is written.
    let r = run(Some(&vault), &args);
    assert_eq!(r.code, Some(1));
    assert!(
        r.stderr.contains("not allowed") && r.stderr.contains("transcri"),
        "{}",
        r.stderr
    );
    assert!(
        Vault::open(&vault, PASS)
            .unwrap()
            .transcripts(&rec)
            .unwrap()
            .is_empty()
    );

    ok(
        Some(&vault),
        &[
            "consent",
            "set",
            &witness,
            "--scopes",
            "record_audio,transcribe",
            "--taken-by",
            "Kim",
        ],
    );
    // Killed (as by a crash or power loss) once the first window is saved.
    let mut child = testimony(Some(&vault), &args).spawn().unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut seen = String::new();
    for line in BufReader::new(stderr).lines() {
        let line = line.unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("window 1/") && line.contains("saved") {
            child.kill().unwrap();
            break;
        }
    }
    child.wait().unwrap();
    assert!(seen.contains("window 1/3 saved"), "{seen}");
    assert_no_content(&seen);
    let (tid, done_before) = {
        let v = Vault::open(&vault, PASS).unwrap();
        let ts = v.transcripts(&rec).unwrap();
        assert_eq!(ts.len(), 1);
        assert_eq!(ts[0].status, TranscriptStatus::Running);
        let done = v.transcript_windows_done(&ts[0].meta.id).unwrap();
        assert!(
            !done.is_empty() && done.len() < 3 && done[0] == 0,
            "{done:?}"
        );
        (ts[0].meta.id.clone(), done.len())
    };

    // The rerun resumes: only the missing windows are transcribed.
    let r = run(
        Some(&vault),
        &["--json", "transcribe", rec.as_str(), "--model", m],
    );
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("resuming transcript {tid}")),
        "{}",
        r.stderr
    );
    assert_no_content(&r.stderr);
    let out: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(out["transcript"]["id"], tid.as_str());
    assert_eq!(
        out["windows_transcribed_now"].as_u64().unwrap() as usize,
        3 - done_before
    );
    let v = Vault::open(&vault, PASS).unwrap();
    let t = v.transcripts(&rec).unwrap().remove(0);
    assert_eq!(
        (
            t.status,
            t.windows_total,
            t.window_ms,
            t.language.as_deref()
        ),
        (TranscriptStatus::Done, Some(3), 20_000, Some("en"))
    );
    let segs = v.transcript_segments(&tid).unwrap();
    assert!(segs.windows(2).all(|p| p[0].start_ms <= p[1].start_ms));
    let text: Vec<&str> = segs.iter().map(|s| s.text.as_str()).collect();
    let w = wer(&[ENGLISH; 3].join(" "), &text.join(" "));
    assert!(w <= 0.2, "WER {w}: {text:?}");
}
