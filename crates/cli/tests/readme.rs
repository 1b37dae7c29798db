//! Every command in README.md, run as written, so that no example can rot.
//!
//! The test reads README.md, takes every fenced ```sh block, and runs each command line in
//! README order through `bash -c`, with `testimony` on PATH being the binary under test, HOME a
//! temporary folder (so `~/testimony-vault` and `~/archive` are fresh) and a temporary working
//! folder. Passphrases come from the environment; standard input is closed. Placeholders
//! (INTERVIEW_ID, age1…, /media/usb/, …) are replaced by what earlier commands printed or by
//! files the test makes: the table is `PLACEHOLDERS` below. Every command must exit 0; at the
//! end the vault and the archive must hold what the README put in.
//!
//! Not run, each with its reason: the blocks in `NOT_RUN`, and the lines in `NEEDS_MODEL`
//! when TESTIMONY_WHISPER_MODELS does not name a folder with ggml-base.bin (`./run test` sets
//! it, and TESTIMONY_REQUIRE_WHISPER=1, which turns that skip into a failure).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde_json::Value;
use testimony_core::Vault;
use testimony_core::transcript::NewSegment;

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md");
const DEFAULT_CODEBOOK: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../assets/codebook/default.toml"
);

const PASS: &str = "correct horse battery staple";
const ARCHIVE_PASS: &str = "archive horse battery staple";

/// ```sh blocks that are not run here, named by their first command, with the reason.
const NOT_RUN: &[(&str, &str)] = &[
    (
        "./run demo",
        "the set-up script itself (installs Debian packages, builds the workspace and the app, \
         runs every test); not an example of the CLI, and `./run test` is what runs this test",
    ),
    (
        "(cd ui && npm ci && npm run build)",
        "builds and starts the desktop app (Node.js, WebKitGTK, a display); the app's own \
         end-to-end tests cover it",
    ),
];

/// Command lines that need a whisper.cpp model file. They run when TESTIMONY_WHISPER_MODELS
/// names a folder with ggml-base.bin; otherwise they are skipped, with a note (a failure under
/// CI or TESTIMONY_REQUIRE_WHISPER=1).
const NEEDS_MODEL: &[&str] = &["testimony transcribe ", "testimony transcribe-file "];

/// Every placeholder the README uses, and what the test puts in its place. Identifiers
/// (capitals and `_`) are replaced as whole words only, so KEY never touches DEVICE_KEY; the
/// others are replaced as text.
const PLACEHOLDERS: &[(&str, &str)] = &[
    (
        "W-2026-0001",
        "the witness code `testimony witness add` printed (its year is this year)",
    ),
    ("INTERVIEW_ID", "what `testimony interview new` printed"),
    ("INTERVIEW", "the same interview (INTERVIEW_ID)"),
    (
        "INSTANCE_ID",
        "what `testimony interview add-group` printed",
    ),
    (
        "RECORDING_ID",
        "the first line `testimony record … --from-wav interview.wav` printed",
    ),
    ("RECORDING", "the same recording (RECORDING_ID)"),
    (
        "DEVICE_KEY",
        "what `testimony device id` prints on the README's vault (the README names that command)",
    ),
    (
        "KEY",
        "the same device key (DEVICE_KEY): the laptop the interview came from",
    ),
    ("age1…", "what `testimony archive recipient` printed"),
    (
        "SIGNING_KEY",
        "the \"Signing key for return bundles\" line of `testimony archive id`",
    ),
    (
        "TRANSCRIPT_ID",
        "a transcript of RECORDING_ID whose segments the test saves through the core's API, as \
         the transcription engine does (so it runs without a model, with the times the README uses)",
    ),
    (
        "SEGMENT_ID",
        "the segment of that transcript around 61 500 ms (the README splits it there)",
    ),
    (
        "NEXT_SEGMENT_ID",
        "the segment after SEGMENT_ID at the moment the command runs (after the split: its second half)",
    ),
    (
        "/media/usb/",
        "a temporary folder standing for the USB stick",
    ),
];

/// Files the README names that the test makes (no substitution: the names are used as written,
/// in the working folder or under the temporary HOME).
const FILES: &[(&str, &str)] = &[
    (
        "interview.wav",
        "75 s of speech-like 16 kHz mono audio (voiced syllables and pauses), made with hound",
    ),
    (
        "nk-v2.toml",
        "assets/codebook/default.toml with its version raised to 2.0.0",
    ),
    (
        "interview.flac, interview.mp3",
        "espeak-ng speech through sox and lame (only when a model is there)",
    ),
    (
        "ggml-base.bin, ~/models/ggml-base.bin",
        "links to TESTIMONY_WHISPER_MODELS/ggml-base.bin (only when a model is there)",
    ),
];

/// Values later commands use, taken from what a README command printed:
/// (placeholder, the command that prints it, which part of its output).
const PRINTED: &[(&str, &str, Part)] = &[
    ("W-2026-0001", "testimony witness add ", Part::All),
    ("INTERVIEW_ID", "testimony interview new ", Part::All),
    ("INSTANCE_ID", "testimony interview add-group ", Part::All),
    ("RECORDING_ID", "testimony record ", Part::FirstLine),
    ("age1…", "testimony archive recipient", Part::All),
    (
        "SIGNING_KEY",
        "testimony archive id",
        Part::After("Signing key for return bundles: "),
    ),
];

/// The moment (ms) the README's `transcript split` cuts at; SEGMENT_ID must hold it.
const SPLIT_AT_MS: u64 = 61_500;

#[derive(Clone, Copy)]
enum Part {
    All,
    FirstLine,
    After(&'static str),
}

/// One command line of a ```sh block, comment removed.
struct Line {
    number: usize,
    written: String,
    command: String,
}

struct Block {
    number: usize,
    lines: Vec<Line>,
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The command part of a shell line: everything before a `#` that starts a word outside
/// quotes.
fn strip_comment(line: &str) -> &str {
    let (mut single, mut double) = (false, false);
    let mut prev_blank = true;
    for (i, c) in line.char_indices() {
        match c {
            '\'' if !double => single = !single,
            '"' if !single => double = !double,
            '#' if !single && !double && prev_blank => return line[..i].trim_end(),
            _ => {}
        }
        prev_blank = c.is_whitespace();
    }
    line.trim_end()
}

fn sh_blocks(readme: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut current: Option<Block> = None;
    for (i, raw) in readme.lines().enumerate() {
        let number = i + 1;
        let t = raw.trim();
        if let Some(b) = current.as_mut() {
            if t == "```" {
                blocks.push(current.take().unwrap());
                continue;
            }
            let command = strip_comment(t).trim().to_string();
            assert!(
                !command.ends_with('\\'),
                "README.md line {number}: continued lines are not supported by this test"
            );
            if !command.is_empty() {
                b.lines.push(Line {
                    number,
                    written: t.to_string(),
                    command,
                });
            }
        } else if let Some(lang) = t.strip_prefix("```") {
            assert!(
                !matches!(lang.trim(), "bash" | "shell" | "console" | "zsh"),
                "README.md line {number}: write shell examples as ```sh so that this test runs them"
            );
            if lang.trim() == "sh" {
                current = Some(Block {
                    number,
                    lines: Vec::new(),
                });
            }
        }
    }
    assert!(current.is_none(), "README.md: a ```sh block is not closed");
    blocks
}

/// TESTIMONY_WHISPER_MODELS, when it names a folder with ggml-base.bin.
fn models() -> Option<PathBuf> {
    let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_WHISPER").is_ok_and(|v| v == "1");
    match std::env::var_os("TESTIMONY_WHISPER_MODELS").map(PathBuf::from) {
        Some(d) if d.join("ggml-base.bin").is_file() => Some(d),
        _ if required => panic!(
            "the README's transcription commands are required here (CI or TESTIMONY_REQUIRE_WHISPER=1) \
             but TESTIMONY_WHISPER_MODELS does not name a folder with ggml-base.bin; run `./run test`"
        ),
        _ => None,
    }
}

fn tool(program: &str, args: &[&str]) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} is needed ({e}): Debian espeak-ng sox lame"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Speech-like audio: voiced syllables (a glottal pulse train through two formants, pitch
/// moving) of 150–350 ms, short gaps between them and longer pauses between phrases, at
/// 16 kHz, 16-bit mono.
fn speech_like_wav(path: &Path, seconds: u32) -> Vec<i16> {
    const RATE: u32 = 16_000;
    let mut seed: u64 = 0x5eed_1234;
    let mut rnd = move || {
        seed = seed
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((seed >> 33) as f64) / f64::from(1u32 << 31)
    };
    let total = (seconds * RATE) as usize;
    let mut samples = Vec::with_capacity(total);
    while samples.len() < total {
        // A phrase of 4 to 9 syllables, then a pause.
        let syllables = 4 + (rnd() * 6.0) as usize;
        for _ in 0..syllables {
            let len = ((0.15 + rnd() * 0.2) * RATE as f64) as usize;
            let (f0, f1, f2) = (
                110.0 + rnd() * 60.0,
                400.0 + rnd() * 500.0,
                1_000.0 + rnd() * 1_200.0,
            );
            let mut phase = 0.0f64;
            for n in 0..len {
                let t = n as f64 / len as f64;
                let env = (std::f64::consts::PI * t).sin().powi(2);
                let pitch = f0 * (1.0 + 0.15 * (t - 0.5));
                phase += pitch / RATE as f64;
                let mut v = 0.0;
                for h in 1..=24 {
                    let f = pitch * h as f64;
                    let gain = 1.0 / (1.0 + ((f - f1) / 150.0).powi(2))
                        + 0.6 / (1.0 + ((f - f2) / 200.0).powi(2));
                    v += gain * (std::f64::consts::TAU * phase * h as f64).sin();
                }
                let noise = (rnd() - 0.5) * 0.02;
                samples
                    .push(((v * 0.12 * env + noise) * 32_767.0).clamp(-32_767.0, 32_767.0) as i16);
            }
            let gap = ((0.03 + rnd() * 0.08) * RATE as f64) as usize;
            samples.extend(std::iter::repeat_n(0i16, gap));
        }
        let pause = ((0.4 + rnd() * 0.8) * RATE as f64) as usize;
        samples.extend(std::iter::repeat_n(0i16, pause));
    }
    samples.truncate(total);
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for s in &samples {
        w.write_sample(*s).unwrap();
    }
    w.finalize().unwrap();
    samples
}

struct Session {
    _tmp: tempfile::TempDir,
    root: PathBuf,
    home: PathBuf,
    work: PathBuf,
    bin: PathBuf,
    /// `export` lines run so far: every later command starts with them, as in one shell.
    exports: Vec<String>,
    values: BTreeMap<&'static str, String>,
    used: BTreeSet<&'static str>,
    /// (command as run, standard output) of every README command, in order.
    outputs: Vec<(String, String)>,
    transcript: Option<String>,
}

impl Session {
    fn new() -> Session {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        let (home, work, bin) = (root.join("home"), root.join("work"), root.join("bin"));
        for d in [&home, &work, &bin, &root.join("usb")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_testimony"), bin.join("testimony")).unwrap();
        Session {
            _tmp: tmp,
            root,
            home,
            work,
            bin,
            exports: Vec::new(),
            values: BTreeMap::new(),
            used: BTreeSet::new(),
            outputs: Vec::new(),
            transcript: None,
        }
    }

    /// Runs a script with `bash -c` after the exports so far, in the working folder, with a
    /// clean environment: PATH (the binary under test first), HOME and the passphrases.
    fn sh(&self, script: &str) -> Run {
        let path = format!(
            "{}:{}",
            self.bin.display(),
            std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into())
        );
        let full = format!("set -o pipefail\n{}\n{script}", self.exports.join("\n"));
        let o = Command::new("bash")
            .arg("-c")
            .arg(&full)
            .current_dir(&self.work)
            .env_clear()
            .env("PATH", path)
            .env("HOME", &self.home)
            .env("LANG", "C.UTF-8")
            .env("TESTIMONY_PASSPHRASE", PASS)
            .env("TESTIMONY_ARCHIVE_PASSPHRASE", ARCHIVE_PASS)
            .stdin(Stdio::null())
            .output()
            .expect("bash runs");
        Run {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }

    /// A command of the test's own (not from the README); must succeed.
    fn query(&self, script: &str) -> String {
        let r = self.sh(script);
        assert_eq!(
            r.code,
            Some(0),
            "the test's own `{script}` failed: exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            r.code,
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    fn query_json(&self, script: &str) -> Value {
        let out = self.query(script);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("`{script}` printed invalid JSON ({e}):\n{out}"))
    }

    fn vault_dir(&self) -> PathBuf {
        let v = self.query("printf %s \"$TESTIMONY_VAULT\"");
        assert!(!v.is_empty(), "the README exports TESTIMONY_VAULT first");
        PathBuf::from(v)
    }

    fn printed(&self, name: &str) -> String {
        self.values.get(name).cloned().unwrap_or_else(|| {
            panic!("{name} is used before the README command that prints it ran")
        })
    }

    /// The value of a placeholder at this point of the README.
    fn value(&mut self, name: &'static str) -> String {
        match name {
            "INTERVIEW" => self.printed("INTERVIEW_ID"),
            "RECORDING" => self.printed("RECORDING_ID"),
            "KEY" => self.value("DEVICE_KEY"),
            "DEVICE_KEY" => {
                if !self.values.contains_key(name) {
                    let key = self.query("testimony device id").trim().to_string();
                    assert!(
                        !key.is_empty() && !key.contains(char::is_whitespace),
                        "{key}"
                    );
                    self.values.insert(name, key);
                }
                self.printed(name)
            }
            "TRANSCRIPT_ID" => self
                .transcript
                .clone()
                .expect("the transcript is saved before the first `testimony transcript`"),
            "SEGMENT_ID" => {
                if !self.values.contains_key(name) {
                    let t = self.value("TRANSCRIPT_ID");
                    let segs = self.segments(&t);
                    let s = segs
                        .iter()
                        .find(|s| {
                            s["start_ms"].as_u64() < Some(SPLIT_AT_MS)
                                && s["end_ms"].as_u64() > Some(SPLIT_AT_MS)
                        })
                        .expect("a segment holds the README's split time");
                    self.values
                        .insert(name, s["id"].as_str().unwrap().to_string());
                }
                self.printed(name)
            }
            "NEXT_SEGMENT_ID" => {
                let (t, seg) = (self.value("TRANSCRIPT_ID"), self.value("SEGMENT_ID"));
                let segs = self.segments(&t);
                let i = segs
                    .iter()
                    .position(|s| s["id"] == seg.as_str())
                    .expect("SEGMENT_ID is in its transcript");
                segs.get(i + 1).expect("a segment follows SEGMENT_ID")["id"]
                    .as_str()
                    .unwrap()
                    .to_string()
            }
            _ => self.printed(name),
        }
    }

    fn segments(&self, transcript: &str) -> Vec<Value> {
        self.query_json(&format!("testimony --json transcript show {transcript}"))["segments"]
            .as_array()
            .expect("transcript show --json lists segments")
            .clone()
    }

    /// Replaces the README's placeholders in one command line.
    fn substitute(&mut self, command: &str) -> String {
        let mut s = command.to_string();
        // Text placeholders first.
        for (name, _) in PLACEHOLDERS {
            let is_word = name.chars().all(|c| c.is_ascii_uppercase() || c == '_');
            if !is_word && s.contains(name) {
                let v = if *name == "/media/usb/" {
                    format!("{}/usb/", self.root.display())
                } else {
                    self.value(name)
                };
                s = s.replace(name, &v);
                self.used.insert(*name);
            }
        }
        // Then identifiers, whole words only.
        let mut out = String::new();
        let mut word = String::new();
        for c in s.chars().chain(std::iter::once('\0')) {
            if c.is_ascii_alphanumeric() || c == '_' {
                word.push(c);
                continue;
            }
            if let Some((name, _)) = PLACEHOLDERS.iter().find(|(n, _)| *n == word) {
                out.push_str(&self.value(name));
                self.used.insert(*name);
            } else {
                out.push_str(&word);
            }
            word.clear();
            if c != '\0' {
                out.push(c);
            }
        }
        out
    }

    /// Segments as the transcription engine saves them, window by window, through the core's
    /// API (what `testimony transcribe` does with a model's output). The text of the one
    /// around 61.5 s is the model's mishearing that the README's `transcript edit` corrects.
    fn save_transcript(&mut self) {
        let rec = self.printed("RECORDING_ID");
        let mut v = Vault::open(&self.vault_dir(), PASS).expect("the README's vault opens");
        let t = v
            .start_transcript(
                &rec,
                "readme-test (segments saved by the test)",
                Some("ko"),
                30_000,
            )
            .unwrap();
        let seg = |start_ms, end_ms, text: &str| NewSegment {
            start_ms,
            end_ms,
            text: text.into(),
            language: Some("ko".into()),
            confidence: Some(0.8),
        };
        let windows = [
            vec![seg(2_000, 7_500, "안녕하세요")],
            vec![seg(57_000, 64_000, "저는 회녕에서 왔어요")],
            vec![seg(64_000, 70_500, "교화소에서 일했습니다")],
        ];
        for (i, w) in windows.iter().enumerate() {
            v.save_transcript_window(&t.meta.id, i as u32, w).unwrap();
        }
        v.finish_transcript(&t.meta.id, windows.len() as u32)
            .unwrap();
        self.transcript = Some(t.meta.id);
    }

    fn run_line(&mut self, line: &Line) {
        if line.command.starts_with("testimony transcript ") && self.transcript.is_none() {
            self.save_transcript();
        }
        let command = self.substitute(&line.command);
        let started = Instant::now();
        let r = self.sh(&command);
        assert_eq!(
            r.code,
            Some(0),
            "README.md line {}: `{}` failed\nran as: {command}\nexit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            line.number,
            line.written,
            r.code,
            r.stdout,
            r.stderr
        );
        eprintln!(
            "ok  {:>5.1} s  line {:>3}: {}",
            started.elapsed().as_secs_f64(),
            line.number,
            line.command
        );
        if line.command.starts_with("export ") {
            self.exports.push(command.clone());
        }
        for (name, prefix, part) in PRINTED {
            if !line.command.starts_with(prefix) {
                continue;
            }
            let out = r.stdout.trim();
            let v = match part {
                Part::All => Some(out),
                Part::FirstLine => out.lines().next(),
                Part::After(label) => out.lines().find_map(|l| l.strip_prefix(label)),
            }
            .map(str::trim)
            .filter(|v| !v.is_empty() && !v.contains(char::is_whitespace))
            .unwrap_or_else(|| {
                panic!(
                    "README.md line {}: `{}` should print {name}; it printed:\n{}",
                    line.number, line.command, r.stdout
                )
            });
            self.values.insert(name, v.to_string());
        }
        self.outputs.push((command, r.stdout));
    }

    /// Standard output of the README command that, as run, starts with `prefix`.
    fn output_of(&self, prefix: &str) -> &str {
        &self
            .outputs
            .iter()
            .find(|(c, _)| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no README command starts with `{prefix}`"))
            .1
    }
}

fn answer<'a>(detail: &'a Value, question: &str) -> &'a Value {
    detail["answers"]
        .as_array()
        .expect("answers")
        .iter()
        .find(|a| a["question_id"] == question)
        .unwrap_or_else(|| panic!("no answer to {question} in {detail:#}"))
}

#[test]
fn every_command_in_the_readme_runs() {
    let started = Instant::now();
    let readme = std::fs::read_to_string(README).unwrap();
    let blocks = sh_blocks(&readme);
    let models = models();
    let mut s = Session::new();

    for (name, what) in PLACEHOLDERS.iter().chain(FILES) {
        eprintln!("{name}: {what}");
    }
    let wav = speech_like_wav(&s.work.join("interview.wav"), 75);
    let codebook = std::fs::read_to_string(DEFAULT_CODEBOOK).unwrap();
    assert!(codebook.contains("\nversion = \"1.0.0\"\n"));
    std::fs::write(
        s.work.join("nk-v2.toml"),
        codebook.replacen("\nversion = \"1.0.0\"\n", "\nversion = \"2.0.0\"\n", 1),
    )
    .unwrap();
    if let Some(m) = &models {
        let model = m.join("ggml-base.bin");
        std::fs::create_dir_all(s.home.join("models")).unwrap();
        std::os::unix::fs::symlink(&model, s.home.join("models/ggml-base.bin")).unwrap();
        std::os::unix::fs::symlink(&model, s.work.join("ggml-base.bin")).unwrap();
        let clip = s.root.join("clip.wav");
        let w = |p: &Path| p.to_str().unwrap().to_string();
        tool(
            "espeak-ng",
            &[
                "-v",
                "en-us",
                "-s",
                "150",
                "-w",
                &w(&clip),
                "The guards took us to the mine before sunrise. We worked for twelve hours without food.",
            ],
        );
        tool(
            "sox",
            &[&w(&clip), "-r", "16000", &w(&s.work.join("interview.flac"))],
        );
        tool(
            "lame",
            &["--quiet", &w(&clip), &w(&s.work.join("interview.mp3"))],
        );
    }

    let mut skipped_blocks = BTreeSet::new();
    let mut skipped_lines = Vec::new();
    let mut ran = 0;
    for b in &blocks {
        let first = b.lines.first().map_or("", |l| l.command.as_str());
        if let Some((name, why)) = NOT_RUN.iter().find(|(n, _)| first.starts_with(n)) {
            eprintln!(
                "not run: the block at README.md line {} (`{first}`): {why}",
                b.number
            );
            assert!(
                skipped_blocks.insert(*name),
                "two blocks start with `{name}`"
            );
            continue;
        }
        for line in &b.lines {
            if models.is_none() && NEEDS_MODEL.iter().any(|p| line.command.starts_with(p)) {
                skipped_lines.push(format!("line {}: {}", line.number, line.command));
                continue;
            }
            s.run_line(line);
            ran += 1;
        }
    }
    for (name, _) in NOT_RUN {
        assert!(
            skipped_blocks.contains(name),
            "NOT_RUN names `{name}`, which no ```sh block of README.md starts with any more"
        );
    }
    if !skipped_lines.is_empty() {
        eprintln!(
            "\n*** SKIPPED: TESTIMONY_WHISPER_MODELS does not name a folder with ggml-base.bin, so these README commands did NOT run:\n    {}\n",
            skipped_lines.join("\n    ")
        );
    }
    for (name, _) in PLACEHOLDERS {
        assert!(
            s.used.contains(name),
            "PLACEHOLDERS names {name}, which no README command uses any more"
        );
    }

    // What the README did must be there: in the vault…
    let interview = s.printed("INTERVIEW_ID");
    let instance = s.printed("INSTANCE_ID");
    let recording = s.printed("RECORDING_ID");
    let witness = s.printed("W-2026-0001");
    let detail = s.query_json(&format!("testimony --json interview show {interview}"));
    assert_eq!(
        detail["interview"]["witness_code"],
        witness.as_str(),
        "{detail:#}"
    );
    assert_eq!(
        answer(&detail, "ever_detained")["value"],
        "yes",
        "{detail:#}"
    );
    let facility = answer(&detail, "det_facility_type");
    assert_eq!(facility["value"], "kyohwaso", "{detail:#}");
    assert_eq!(facility["instance_id"], instance.as_str(), "{detail:#}");
    assert_eq!(
        answer(&detail, "cl_anything_else")["value"],
        "교화소에서 매일 12시간 일했다",
        "{detail:#}"
    );
    assert!(s.output_of("testimony search ").contains(&interview));
    assert!(
        s.output_of("testimony audit verify")
            .contains("Audit log intact")
    );
    let consent = s.query_json(&format!("testimony --json consent show {witness}"));
    assert!(consent.to_string().contains("transcribe"), "{consent:#}");

    // …in the transcript the README reviewed…
    let tid = s.value("TRANSCRIPT_ID");
    let seg = s.value("SEGMENT_ID");
    assert!(s.output_of("testimony transcript list ").contains(&tid));
    let segs = s.segments(&tid);
    let reviewed = segs.iter().find(|x| x["id"] == seg.as_str()).unwrap();
    assert_eq!(reviewed["text"], "저는 회령에서 왔습니다", "{reviewed:#}");
    assert_eq!(
        reviewed["translation"], "I come from Hoeryong",
        "{reviewed:#}"
    );
    assert_eq!(reviewed["speaker"], "witness", "{reviewed:#}");
    assert_eq!(segs.len(), 3, "split and merged back: {segs:#?}");
    let srt = std::fs::read_to_string(s.work.join("t.srt")).unwrap();
    assert!(
        srt.contains("[place]") && !srt.contains("회령") && srt.contains("-->"),
        "{srt}"
    );
    if models.is_some() {
        let list = s.query_json(&format!("testimony --json transcript list {recording}"));
        assert!(
            list.as_array()
                .unwrap()
                .iter()
                .any(|t| t["status"] == "done"
                    && t["model"].as_str().unwrap_or("").contains("ggml-base")),
            "`testimony transcribe` left a finished transcript: {list:#}"
        );
        assert!(
            s.output_of("testimony transcribe-file ")
                .to_lowercase()
                .contains("guards")
        );
    }

    // …in the archive…
    let archived = s.query_json(&format!("testimony --json archive show {interview}"));
    assert_eq!(
        archived["interview"]["id"],
        interview.as_str(),
        "{archived:#}"
    );
    assert_eq!(
        answer(&archived, "cl_anything_else")["value"],
        "교화소에서 매일 12시간 일했다"
    );
    assert!(
        archived["recordings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["id"] == recording.as_str()),
        "{archived:#}"
    );
    assert!(s.output_of("testimony archive show ").contains(&interview));
    assert!(
        s.output_of("testimony archive search ")
            .contains(&interview)
    );
    let back: Vec<i16> = hound::WavReader::open(s.work.join("r.wav"))
        .unwrap()
        .samples::<i16>()
        .map(Result::unwrap)
        .collect();
    assert!(back == wav, "r.wav holds the recorded audio");

    // …and back on the device, from the return bundle.
    let codebooks = s.query_json("testimony --json codebook list");
    assert!(
        codebooks
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["version"] == "2.0.0"),
        "the codebook published with the return bundle: {codebooks:#}"
    );

    assert!(ran >= 40, "only {ran} README commands ran");
    eprintln!(
        "{ran} README commands ran in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}
