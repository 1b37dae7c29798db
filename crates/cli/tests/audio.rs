//! `testimony record` and `testimony recording …` as a user or a script meets them: real
//! processes, real vaults, WAV files in and out.
//!
//! `record --seconds N` captures from the default audio input for real. The test for it needs
//! a PulseAudio server with a null sink (`TESTIMONY_TEST_PULSE_SINK` names the sink,
//! `PULSE_SERVER` the server; the sink's monitor must be the default source): it plays a tone
//! into the sink with `paplay` and records it through cpal → ALSA → ALSA's pulse plugin.
//! `./run test` starts such a server. Without one the test is skipped with a note, except
//! under CI (`CI` set) or with `TESTIMONY_REQUIRE_AUDIO=1`, where it fails.

use std::io::Cursor;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

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

fn command(vault: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testimony"));
    c.arg("--vault").arg(vault).args(args);
    for var in ["TESTIMONY_VAULT", "TESTIMONY_NEW_PASSPHRASE"] {
        c.env_remove(var);
    }
    c.env("TESTIMONY_PASSPHRASE", PASS);
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn run(vault: &Path, args: &[&str]) -> Run {
    let o = command(vault, args).output().expect("testimony runs");
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
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

fn fails(vault: &Path, args: &[&str], code: i32) -> Run {
    let r = run(vault, args);
    assert_eq!(
        r.code,
        Some(code),
        "testimony {args:?}: expected exit {code}: {}",
        r.describe()
    );
    r
}

/// A vault with a witness (consent to record audio or not) and an interview; returns the
/// interview id.
fn vault_with_interview(vault: &Path, record_audio: bool) -> String {
    ok(vault, &["init", "--interviewer", "Kim Interviewer"]);
    let code = ok(vault, &["witness", "add"]);
    let scopes = if record_audio {
        "record_audio,share_archive"
    } else {
        "share_archive"
    };
    ok(
        vault,
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
    ok(vault, &["interview", "new", "--witness", &code])
}

/// Deterministic noise: incompressible, so a copy of it on disk would show.
fn noise(seed: u64, n: usize) -> Vec<i16> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 48) as i16
        })
        .collect()
}

fn write_wav(path: &Path, rate: u32, channels: u16, samples: &[i16]) {
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
}

fn read_wav(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::new(Cursor::new(bytes)).unwrap();
    (r.spec(), r.samples::<i16>().map(Result::unwrap).collect())
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn record_from_wav_then_list_show_mark_export_and_delete() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let interview = vault_with_interview(v, true);
    let input = noise(11, 22_050 * 2 * 2 + 777 * 2);
    let wav_in = tmp.path().join("interview.wav");
    write_wav(&wav_in, 22_050, 2, &input);

    let out = ok(
        v,
        &["record", &interview, "--from-wav", wav_in.to_str().unwrap()],
    );
    let id = out.lines().next().unwrap().to_string();
    assert_eq!(id.len(), 36, "record prints the recording id first: {out}");
    assert!(
        out.contains("0:00:02.035") && out.contains("22050 Hz, 2 ch"),
        "{out}"
    );

    let list = json(v, &["recording", "list", &interview]);
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1);
    let r = &list[0];
    assert_eq!(r["id"], id.as_str());
    assert_eq!(
        (
            r["status"].as_str(),
            r["samples"].as_u64(),
            r["duration_ms"].as_u64(),
            r["chunks"].as_u64()
        ),
        (Some("stopped"), Some(44_877), Some(2_035), Some(3))
    );
    assert_eq!(
        (
            r["sample_rate"].as_u64(),
            r["channels"].as_u64(),
            r["format"].as_str()
        ),
        (Some(22_050), Some(2), Some("pcm16-zstd"))
    );
    assert!(ok(v, &["recording", "list", &interview]).contains(&id));

    // Markers: tied to a question or not; past the end, or an unknown question, refused.
    let m = ok(
        v,
        &[
            "recording",
            "marker",
            &id,
            "--at",
            "1500",
            "--label",
            "Marker-canary: detention begins",
            "--question",
            "ever_detained",
        ],
    );
    assert_eq!(m.len(), 36, "{m}");
    ok(
        v,
        &[
            "recording",
            "marker",
            &id,
            "--at",
            "20",
            "--label",
            "greeting",
        ],
    );
    let bad = fails(
        v,
        &[
            "recording",
            "marker",
            &id,
            "--at",
            "2036",
            "--label",
            "after the end",
        ],
        1,
    );
    assert!(bad.stderr.contains("past the end"), "{}", bad.describe());
    let bad = fails(
        v,
        &[
            "recording",
            "marker",
            &id,
            "--at",
            "10",
            "--label",
            "x",
            "--question",
            "no_such_q",
        ],
        1,
    );
    assert!(bad.stderr.contains("no_such_q"), "{}", bad.describe());
    let show = json(v, &["recording", "show", &id]);
    let markers = show["markers"].as_array().unwrap();
    assert_eq!(
        markers
            .iter()
            .map(|m| m["at_ms"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        vec![20, 1500]
    );
    assert_eq!(markers[1]["question_id"], "ever_detained");
    assert_eq!(show["segments"].as_array().unwrap().len(), 1);
    assert!(ok(v, &["recording", "show", &id]).contains("Marker-canary"));

    // Export: the same samples, a warning on stderr, owner-only permissions, no overwrite.
    let wav_out = tmp.path().join("out.wav");
    let r = run(
        v,
        &[
            "recording",
            "export-wav",
            &id,
            "--out",
            wav_out.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(
        r.stderr.contains("warning") && r.stderr.contains("plaintext"),
        "{}",
        r.describe()
    );
    let bytes = std::fs::read(&wav_out).unwrap();
    let (spec, samples) = read_wav(&bytes);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (22_050, 2, 16)
    );
    assert_eq!(samples, input, "the exported samples are the imported ones");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&wav_out).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    let again = fails(
        v,
        &[
            "recording",
            "export-wav",
            &id,
            "--out",
            wav_out.to_str().unwrap(),
        ],
        1,
    );
    assert!(
        again.stderr.contains("already exist"),
        "{}",
        again.describe()
    );
    assert_eq!(
        std::fs::read(&wav_out).unwrap(),
        bytes,
        "an existing file is left alone"
    );
    let missing = fails(
        v,
        &[
            "recording",
            "export-wav",
            "no-such-recording",
            "--out",
            tmp.path().join("x.wav").to_str().unwrap(),
        ],
        1,
    );
    assert!(
        missing.stderr.contains("recording not found"),
        "{}",
        missing.describe()
    );
    assert!(!tmp.path().join("x.wav").exists());

    // Inside the vault directory the audio is nowhere in plaintext.
    let needle: Vec<u8> = input[30_000..30_032]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    assert!(contains(&bytes, &needle), "the needle is real audio");
    for e in std::fs::read_dir(v).unwrap() {
        let e = e.unwrap();
        assert!(
            !contains(&std::fs::read(e.path()).unwrap(), &needle),
            "PCM in {:?}",
            e.file_name()
        );
    }

    // The audit chain holds, deletion empties the list.
    ok(v, &["audit", "verify"]);
    ok(v, &["recording", "delete", &id]);
    assert_eq!(
        json(v, &["recording", "list", &interview]),
        serde_json::json!([])
    );
    assert!(ok(v, &["recording", "list", &interview]).contains("No recordings"));
    ok(v, &["audit", "verify"]);
}

#[test]
fn record_refuses_without_consent_and_explains_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let interview = vault_with_interview(v, false);
    let wav = tmp.path().join("a.wav");
    write_wav(&wav, 16_000, 1, &noise(1, 16_000));
    let r = fails(
        v,
        &["record", &interview, "--from-wav", wav.to_str().unwrap()],
        1,
    );
    assert!(r.stderr.contains("record_audio"), "{}", r.describe());
    assert_eq!(
        json(v, &["recording", "list", &interview]),
        serde_json::json!([])
    );

    let v2 = &tmp.path().join("vault2");
    let interview = vault_with_interview(v2, true);
    let text = tmp.path().join("notes.txt");
    std::fs::write(&text, "this is not audio at all, just some words\n").unwrap();
    let r = fails(
        v2,
        &[
            "--json",
            "record",
            &interview,
            "--from-wav",
            text.to_str().unwrap(),
        ],
        1,
    );
    let err: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(err["kind"], "audio", "{}", r.describe());
    assert!(!r.stderr.contains("just some words"));
    let r = fails(
        v2,
        &[
            "record",
            &interview,
            "--from-wav",
            tmp.path().join("absent.wav").to_str().unwrap(),
        ],
        1,
    );
    assert!(r.stderr.contains("cannot open"), "{}", r.describe());
    // Either a file or a duration, not both, not neither (usage errors exit 2).
    fails(v2, &["record", &interview], 2);
    fails(
        v2,
        &[
            "record",
            &interview,
            "--from-wav",
            wav.to_str().unwrap(),
            "--seconds",
            "3",
        ],
        2,
    );
    let r = fails(v2, &["record", &interview, "--seconds", "0"], 1);
    assert!(r.stderr.contains("--seconds"), "{}", r.describe());
    assert_eq!(
        json(v2, &["recording", "list", &interview]),
        serde_json::json!([])
    );
}

// ---- real capture through PulseAudio -------------------------------------------------------

fn audio_required() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_AUDIO").is_ok_and(|v| v == "1")
}

/// The PulseAudio null sink to play into, or None (skip) when there is none and none is
/// required.
fn pulse_sink() -> Option<String> {
    match std::env::var("TESTIMONY_TEST_PULSE_SINK") {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ if audio_required() => panic!(
            "the audio capture test is required here (CI or TESTIMONY_REQUIRE_AUDIO=1) but TESTIMONY_TEST_PULSE_SINK is not set; \
             run `./run test`, which starts a private PulseAudio server with a null sink"
        ),
        _ => {
            eprintln!(
                "note: TESTIMONY_TEST_PULSE_SINK is not set: the PulseAudio capture test is SKIPPED (`./run test` starts a server)"
            );
            None
        }
    }
}

/// Half-second windows of `samples`: (RMS, frequency from upward zero crossings).
fn windows(samples: &[i16], rate: usize) -> Vec<(f64, f64)> {
    samples
        .chunks(rate / 2)
        .filter(|w| w.len() == rate / 2)
        .map(|w| {
            let rms = (w.iter().map(|&s| (s as f64).powi(2)).sum::<f64>() / w.len() as f64).sqrt();
            let ups = w.windows(2).filter(|p| p[0] < 0 && p[1] >= 0).count();
            (rms, ups as f64 * 2.0)
        })
        .collect()
}

#[test]
fn record_seconds_captures_the_default_input_through_pulseaudio() {
    let Some(sink) = pulse_sink() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let interview = vault_with_interview(v, true);
    // A 1 kHz tone at -9 dBFS, longer than the recording, played into the null sink whose
    // monitor is the default input.
    let rate = 48_000usize;
    let tone: Vec<i16> = (0..rate * 12)
        .map(|i| {
            ((i as f64 * 2.0 * std::f64::consts::PI * 1000.0 / rate as f64).sin() * 11_600.0) as i16
        })
        .collect();
    let tone_wav = tmp.path().join("tone.wav");
    write_wav(&tone_wav, rate as u32, 1, &tone);
    let mut player = Command::new("paplay")
        .arg(format!("--device={sink}"))
        .arg(&tone_wav)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("paplay runs (Debian package pulseaudio-utils)");
    std::thread::sleep(std::time::Duration::from_millis(500));
    let rec = run(v, &["record", &interview, "--seconds", "3"]);
    let _ = player.kill();
    let played = player.wait_with_output().unwrap();
    assert_eq!(
        rec.code,
        Some(0),
        "{}\npaplay: {}",
        rec.describe(),
        String::from_utf8_lossy(&played.stderr)
    );
    assert!(
        rec.stderr.contains("dBFS"),
        "progress with the level is shown: {}",
        rec.describe()
    );
    let id = rec.stdout.lines().next().unwrap().to_string();

    let r = &json(v, &["recording", "list", &interview])[0];
    let (got_rate, duration) = (
        r["sample_rate"].as_u64().unwrap(),
        r["duration_ms"].as_u64().unwrap(),
    );
    assert_eq!(r["channels"], 1);
    assert!((3_000..=3_400).contains(&duration), "3 s recorded: {r}");
    assert!(r["chunks"].as_u64().unwrap() >= 3, "one-second chunks: {r}");

    let out = tmp.path().join("captured.wav");
    ok(
        v,
        &[
            "recording",
            "export-wav",
            &id,
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let (spec, samples) = read_wav(&std::fs::read(&out).unwrap());
    assert_eq!(spec.sample_rate as u64, got_rate);
    let w = windows(&samples, got_rate as usize);
    let tone_windows = w
        .iter()
        .filter(|(rms, f)| *rms > 4_000.0 && (*f - 1000.0).abs() <= 20.0)
        .count();
    eprintln!("captured {duration} ms at {got_rate} Hz; half-second windows (rms, Hz): {w:?}");
    // The whole recording lies inside the tone; allow the first window for the stream start.
    assert!(
        tone_windows + 1 >= w.len() && tone_windows >= 5,
        "the 1 kHz tone was captured: {w:?}"
    );
}

/// Recordings do not travel in bundles yet, but a vault that has (and deleted) some must
/// still export, and the archive must still accept what it exports.
#[test]
fn a_vault_with_recordings_still_exports_and_the_archive_imports_it() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let interview = vault_with_interview(v, true);
    ok(
        v,
        &[
            "interview",
            "answer",
            &interview,
            "cl_anything_else",
            "answer beside a recording",
        ],
    );
    let wav = tmp.path().join("a.wav");
    write_wav(&wav, 16_000, 1, &noise(4, 20_000));
    let kept = ok(
        v,
        &["record", &interview, "--from-wav", wav.to_str().unwrap()],
    )
    .lines()
    .next()
    .unwrap()
    .to_string();
    ok(
        v,
        &[
            "recording",
            "marker",
            &kept,
            "--at",
            "100",
            "--label",
            "start",
        ],
    );
    let gone = ok(
        v,
        &["record", &interview, "--from-wav", wav.to_str().unwrap()],
    )
    .lines()
    .next()
    .unwrap()
    .to_string();
    ok(
        v,
        &[
            "recording",
            "marker",
            &gone,
            "--at",
            "200",
            "--label",
            "also gone",
        ],
    );
    ok(v, &["recording", "delete", &gone]);

    let archive = tmp.path().join("archive");
    let a = archive.to_str().unwrap();
    let arch = |args: &[&str]| {
        let mut c = command(v, args);
        c.env(
            "TESTIMONY_ARCHIVE_PASSPHRASE",
            "archive passphrase for the audio test",
        )
        .env_remove("TESTIMONY_ARCHIVE")
        .env_remove("TESTIMONY_ARCHIVE_POSTGRES");
        let o = c.output().unwrap();
        let r = Run {
            code: o.status.code(),
            stdout: String::from_utf8(o.stdout).unwrap(),
            stderr: String::from_utf8(o.stderr).unwrap(),
        };
        assert_eq!(r.code, Some(0), "testimony {args:?}: {}", r.describe());
        r.stdout.trim().to_string()
    };
    arch(&["archive", "init", "--archive", a]);
    let recipient = arch(&["archive", "recipient", "--archive", a]);
    let key = json(v, &["device", "id"])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    arch(&[
        "archive",
        "device",
        "trust",
        &key,
        "--name",
        "laptop",
        "--archive",
        a,
    ]);
    let bundle = tmp.path().join("b1.tbundle");
    ok(
        v,
        &[
            "export",
            "--recipient",
            &recipient,
            "--out",
            bundle.to_str().unwrap(),
        ],
    );
    let imported: Value = serde_json::from_str(&arch(&[
        "--json",
        "archive",
        "import",
        bundle.to_str().unwrap(),
        "--archive",
        a,
    ]))
    .unwrap();
    assert_eq!(imported[0]["outcome"], "imported", "{imported}");
    assert!(
        arch(&["archive", "show", &interview, "--archive", a])
            .contains("answer beside a recording")
    );
}
