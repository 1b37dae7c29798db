//! Shared by the tests that need the real models and speech tools.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// Set by `./run test`: the models must be there (the tests fail instead of skipping).
pub fn whisper_required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_WHISPER").is_ok_and(|v| v == "1")
}

/// The folder with ggml-tiny.en.bin and ggml-base.bin (TESTIMONY_WHISPER_MODELS, filled by
/// `./run test` with tools/whisper-models/build.sh), or None (skip) when it is
/// not set and not required.
pub fn models() -> Option<PathBuf> {
    let dir = std::env::var_os("TESTIMONY_WHISPER_MODELS").map(PathBuf::from);
    match dir {
        Some(d) if d.join("ggml-tiny.en.bin").is_file() && d.join("ggml-base.bin").is_file() => {
            Some(d)
        }
        _ if whisper_required() => panic!(
            "the whisper tests are required here (CI or TESTIMONY_REQUIRE_WHISPER=1) but TESTIMONY_WHISPER_MODELS does not name a folder \
             with ggml-tiny.en.bin and ggml-base.bin; run `./run test`, which builds them with tools/whisper-models/build.sh"
        ),
        _ => {
            eprintln!(
                "\n*** SKIPPED: TESTIMONY_WHISPER_MODELS is not set (or lacks ggml-tiny.en.bin / ggml-base.bin): the real-model \
                 transcription tests did NOT run. `./run test` builds the models and runs them. ***\n"
            );
            None
        }
    }
}

/// Runs a tool the tests need (espeak-ng, sox, lame, opusenc, ffmpeg); panics with the Debian
/// package to install when it is missing.
pub fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).output().unwrap_or_else(|e| {
        panic!("{program} is needed for this test ({e}); install the Debian packages espeak-ng sox libsox-fmt-mp3 lame opus-tools ffmpeg")
    });
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Speech from espeak-ng (22050 Hz mono WAV), with half a second of silence before it and one
/// after, as a recording has. (Korean speech that starts at the very first sample makes base
/// hallucinate its stock "수고하셨습니다." instead.)
pub fn speak(dir: &Path, name: &str, voice: &str, text: &str) -> PathBuf {
    let raw = dir.join(format!("{name}-raw.wav"));
    let p = dir.join(format!("{name}.wav"));
    tool(
        "espeak-ng",
        &["-v", voice, "-s", "150", "-w", raw.to_str().unwrap(), text],
    );
    sox(&[
        raw.to_str().unwrap(),
        p.to_str().unwrap(),
        "pad",
        "0.5",
        "1",
    ]);
    p
}

pub fn sox(args: &[&str]) {
    tool("sox", args);
}

/// Lower case words without punctuation.
pub fn words(text: &str) -> Vec<String> {
    testimony_transcribe::repetition::words(text)
}

/// Word error rate: (substitutions + deletions + insertions) / reference words, by edit
/// distance over words.
pub fn wer(reference: &str, hypothesis: &str) -> f64 {
    let r = words(reference);
    let h = words(hypothesis);
    let mut prev: Vec<usize> = (0..=h.len()).collect();
    for i in 1..=r.len() {
        let mut cur = vec![i; h.len() + 1];
        for j in 1..=h.len() {
            let sub = prev[j - 1] + usize::from(r[i - 1] != h[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[h.len()] as f64 / r.len().max(1) as f64
}

/// Peak resident memory of this process so far (VmHWM, kB).
pub fn vm_hwm_kb() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap()
}
