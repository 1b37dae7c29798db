//! The real whisper models on real (synthetic) speech: English word error rate with tiny.en and
//! base, Korean with base, the audio formats, bad model and audio files, cancel and resume, and
//! flat memory on an hour of audio. The models come from TESTIMONY_WHISPER_MODELS (`./run test`
//! builds them); without it these tests skip loudly, except where they are required.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};

use common::*;
use testimony_transcribe::pipeline::{Flow, Outcome, Pipeline, PipelineConfig, WindowResult};
use testimony_transcribe::resample::Mono16k;
use testimony_transcribe::{
    AudioFile, Error, Language, SampleSource, Segment, Transcriber, WhisperTranscriber,
    WindowHooks, WindowOptions, check_model,
};

const ENGLISH: &str = "The guards took us to the mine before sunrise. We worked for twelve hours without food. \
                       In the winter many prisoners became sick, and nobody was allowed to see a doctor.";
const KOREAN: &str = "우리는 해가 뜨기 전에 광산으로 끌려갔습니다. 음식도 없이 열두 시간 동안 일했습니다. 겨울에는 많은 수감자들이 병에 걸렸습니다.";

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

fn run_file(t: &mut dyn Transcriber, path: &Path, cfg: PipelineConfig) -> (Outcome, Vec<Segment>) {
    let source = AudioFile::open(path).unwrap();
    let mut segs = Vec::new();
    let stop = AtomicBool::new(false);
    let outcome = Pipeline::new(cfg)
        .unwrap()
        .run(
            t,
            source,
            &BTreeSet::new(),
            0,
            &stop,
            &mut |_| Flow::Continue,
            &mut |w| {
                segs.extend(w.segments);
                Ok(())
            },
        )
        .unwrap();
    (outcome, segs)
}

fn text(segs: &[Segment]) -> String {
    segs.iter()
        .map(|s| s.text.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

fn lang_cfg(language: Language) -> PipelineConfig {
    PipelineConfig {
        options: WindowOptions {
            language,
            ..Default::default()
        },
        ..Default::default()
    }
}

#[test]
fn english_speech_with_tiny_en_and_base() {
    let Some(models) = models() else { return };
    let dir = tmp();
    // espeak-ng writes 22050 Hz: this also goes through the resampler.
    let wav = speak(dir.path(), "en", "en-us", ENGLISH);
    for (model, bound) in [("ggml-tiny.en.bin", 0.15), ("ggml-base.bin", 0.15)] {
        let mut t = WhisperTranscriber::load(&models.join(model)).unwrap();
        let (outcome, segs) = run_file(&mut t, &wav, lang_cfg(Language::Auto));
        assert!(
            matches!(outcome, Outcome::Finished { windows: 1, .. }),
            "{outcome:?}"
        );
        let hyp = text(&segs);
        let w = wer(ENGLISH, &hyp);
        eprintln!("{model}: WER {w:.3}");
        assert!(
            w <= bound,
            "{model}: word error rate {w:.3} is over {bound} (heard: {hyp:?})"
        );
        // Times are in the recording and in order; the language is reported; confidence is a
        // probability.
        let dur = 1000 * std::fs::metadata(&wav).unwrap().len() / (22_050 * 2);
        assert!(segs.windows(2).all(|p| p[0].start_ms <= p[1].start_ms));
        assert!(
            segs.iter()
                .all(|s| s.start_ms <= s.end_ms && s.end_ms <= dur + 50),
            "{segs:?}"
        );
        assert!(segs.iter().all(|s| s.language.as_deref() == Some("en")));
        assert!(
            segs.iter()
                .all(|s| s.confidence.is_some_and(|c| (0.0..=1.0).contains(&c)))
        );
    }
}

#[test]
fn korean_speech_with_base_gives_hangul() {
    let Some(models) = models() else { return };
    let dir = tmp();
    let wav = speak(dir.path(), "ko", "ko", KOREAN);
    let mut t = WhisperTranscriber::load(&models.join("ggml-base.bin")).unwrap();
    let (_, segs) = run_file(&mut t, &wav, lang_cfg(Language::Ko));
    let hyp = text(&segs);
    let letters: Vec<char> = hyp.chars().filter(|c| c.is_alphabetic()).collect();
    let hangul = letters
        .iter()
        .filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(*c))
        .count();
    eprintln!("Korean: {} letters, {hangul} Hangul", letters.len());
    assert!(
        letters.len() >= 10 && hangul * 10 >= letters.len() * 9,
        "expected Hangul text, got {hyp:?}"
    );
    assert!(segs.iter().all(|s| s.language.as_deref() == Some("ko")));
    // The robotic voice is hard for base: judge it with a tolerant character-level overlap.
    let want: BTreeSet<char> = KOREAN
        .chars()
        .filter(|c| ('\u{AC00}'..='\u{D7A3}').contains(c))
        .collect();
    let got: BTreeSet<char> = hyp.chars().collect();
    let common = want.intersection(&got).count();
    // A hallucination such as "수고하셨습니다." shares 4 of them.
    assert!(
        common * 3 >= want.len(),
        "only {common} of {} syllables heard: {hyp:?}",
        want.len()
    );
    // English-only models refuse a forced Korean.
    let en_only = WhisperTranscriber::load(&models.join("ggml-tiny.en.bin")).unwrap();
    let e = en_only.check_language(Language::Ko).unwrap_err();
    assert!(
        matches!(e, Error::ModelLanguage(..)) && e.to_string().contains("English only"),
        "{e}"
    );
}

/// Encodes `wav` into `out` with Debian's ffmpeg and the given codec options.
fn ffmpeg(wav: &str, codec: &[&str], out: &str) {
    let mut args = vec!["-hide_banner", "-loglevel", "error", "-y", "-i", wav];
    args.extend_from_slice(codec);
    args.push(out);
    tool("ffmpeg", &args);
}

/// Encodes `wav` as AAC-LC in an M4A (MP4) file (ffmpeg's own AAC encoder).
fn m4a(wav: &str, out: &str) {
    ffmpeg(
        wav,
        &["-c:a", "aac", "-profile:a", "aac_low", "-b:a", "128k"],
        out,
    );
}

/// Seconds of audio in `path` once decoded and resampled to 16 kHz mono.
fn decoded_seconds(path: &Path) -> f64 {
    let f = AudioFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = Mono16k::new(f).unwrap();
    let mut pcm = Vec::new();
    while m.read(&mut pcm).unwrap() {}
    pcm.len() as f64 / 16_000.0
}

#[test]
fn mp3_flac_opus_m4a_and_stereo_speech_transcribe_alike() {
    let Some(models) = models() else { return };
    let dir = tmp();
    let wav = speak(dir.path(), "en", "en-us", ENGLISH);
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    sox(&[
        wav.to_str().unwrap(),
        "-r",
        "44100",
        "-c",
        "2",
        &d("st.wav"),
    ]);
    tool(
        "lame",
        &["--quiet", "-b", "128", &d("st.wav"), &d("speech.mp3")],
    );
    sox(&[
        wav.to_str().unwrap(),
        "-r",
        "48000",
        "-c",
        "2",
        &d("speech.flac"),
    ]);
    // Ogg/Opus (opusenc: 48 kHz inside, whatever the input rate) and AAC-LC in M4A (ffmpeg).
    tool("opusenc", &["--quiet", &d("st.wav"), &d("speech.opus")]);
    m4a(&d("st.wav"), &d("speech.m4a"));
    let seconds = decoded_seconds(&wav);
    let mut t = WhisperTranscriber::load(&models.join("ggml-tiny.en.bin")).unwrap();
    for f in ["speech.mp3", "speech.flac", "speech.opus", "speech.m4a"] {
        // The same length as the WAV they came from (encoder delay and padding: under 60 ms).
        let s = decoded_seconds(&dir.path().join(f));
        assert!(
            (s - seconds).abs() < 0.06,
            "{f}: {s} s instead of {seconds}"
        );
        let (_, segs) = run_file(&mut t, &dir.path().join(f), lang_cfg(Language::En));
        let w = wer(ENGLISH, &text(&segs));
        assert!(w <= 0.15, "{f}: WER {w:.3}: {:?}", text(&segs));
    }
}

/// A tone at `hz` for `seconds`, decoded and resampled: its length and pitch survive.
fn check_tone(path: &Path, seconds: f64, hz: f64) {
    let f = AudioFile::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut m = Mono16k::new(f).unwrap();
    let mut pcm = Vec::new();
    while m.read(&mut pcm).unwrap() {}
    let n = pcm.len() as f64;
    // MP3 and AAC encoders add up to a frame or two of padding (symphonia's MP4 reader does not
    // apply edit lists, so an M4A keeps its AAC encoder delay: about 40 ms here).
    assert!(
        (n / 16_000.0 - seconds).abs() < 0.06,
        "{}: {} s instead of {seconds}",
        path.display(),
        n / 16_000.0
    );
    // Upward swings through zero, with hysteresis: the codec noise around zero in an encoder's
    // near-silent padding (AAC) is not a cycle of the tone.
    let mut crossings = 0f64;
    let mut low = false;
    for &s in &pcm {
        if s < -0.1 {
            low = true;
        } else if low && s > 0.1 {
            low = false;
            crossings += 1.0;
        }
    }
    let measured = crossings / (n / 16_000.0);
    assert!(
        (measured - hz).abs() < hz * 0.02,
        "{}: {measured:.1} Hz instead of {hz}",
        path.display()
    );
    let peak = pcm.iter().fold(0f32, |a, &b| a.max(b.abs()));
    assert!(peak > 0.3 && peak < 0.7, "{}: level {peak}", path.display());
}

#[test]
fn audio_formats_at_other_rates_and_channel_counts() {
    let dir = tmp();
    let d = |n: &str| dir.path().join(n).to_str().unwrap().to_string();
    // (file, sox output options)
    let cases: &[(&str, &[&str])] = &[
        ("a.wav", &["-r", "8000", "-c", "1", "-b", "16"]),
        ("b.wav", &["-r", "44100", "-c", "2", "-b", "24"]),
        (
            "c.wav",
            &["-r", "48000", "-c", "1", "-e", "floating-point", "-b", "32"],
        ),
        ("d.flac", &["-r", "48000", "-c", "2", "-b", "16"]),
        ("e.flac", &["-r", "16000", "-c", "1", "-b", "24"]),
        ("f.ogg", &["-r", "44100", "-c", "2"]),
        ("g.wav", &["-r", "16000", "-c", "2", "-b", "16"]),
    ];
    for (name, opts) in cases {
        let mut args: Vec<&str> = vec!["-n"];
        args.extend_from_slice(opts);
        let out = d(name);
        args.extend_from_slice(&[&out, "synth", "3.0", "sine", "440", "vol", "0.5"]);
        sox(&args);
        check_tone(Path::new(&out), 3.0, 440.0);
    }
    // MP3 (lame), from a 44.1 kHz stereo WAV.
    sox(&[
        "-n",
        "-r",
        "44100",
        "-c",
        "2",
        "-b",
        "16",
        &d("m.wav"),
        "synth",
        "3.0",
        "sine",
        "440",
        "vol",
        "0.5",
    ]);
    tool("lame", &["--quiet", "-b", "192", &d("m.wav"), &d("m.mp3")]);
    check_tone(&dir.path().join("m.mp3"), 3.0, 440.0);
    // Ogg/Opus (opusenc) from the same WAV: libopus decodes at 48 kHz.
    tool("opusenc", &["--quiet", &d("m.wav"), &d("m.opus")]);
    check_tone(&dir.path().join("m.opus"), 3.0, 440.0);
    // Opus at a low bit rate from 16 kHz mono (what a voice recorder may produce).
    tool(
        "opusenc",
        &["--quiet", "--bitrate", "24", &d("a.wav"), &d("low.opus")],
    );
    check_tone(&dir.path().join("low.opus"), 3.0, 440.0);
    // Opus in WebM (ffmpeg with libopus), as browsers record it.
    ffmpeg(&d("m.wav"), &["-c:a", "libopus"], &d("m.webm"));
    check_tone(&dir.path().join("m.webm"), 3.0, 440.0);
    // AAC-LC in M4A (ffmpeg), from the same WAV.
    m4a(&d("m.wav"), &d("m.m4a"));
    check_tone(&dir.path().join("m.m4a"), 3.0, 440.0);
    // The extension is only a hint: a FLAC file named .wav still decodes.
    std::fs::copy(d("d.flac"), d("really-flac.wav")).unwrap();
    check_tone(&dir.path().join("really-flac.wav"), 3.0, 440.0);
}

#[test]
fn unsupported_or_damaged_audio_gets_a_clear_error() {
    let dir = tmp();
    let p = |n: &str| dir.path().join(n);
    std::fs::write(p("empty.wav"), b"").unwrap();
    assert!(matches!(
        AudioFile::open(&p("empty.wav")),
        Err(Error::AudioEmpty)
    ));
    let garbage: Vec<u8> = (0..100_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(p("noise.mp3"), &garbage).unwrap();
    std::fs::write(p("notes.txt"), "Interview notes, not audio.\n".repeat(200)).unwrap();
    for f in ["noise.mp3", "notes.txt"] {
        let e = AudioFile::open(&p(f))
            .err()
            .unwrap_or_else(|| panic!("{f} opened"));
        assert!(
            matches!(e, Error::AudioUnsupported(_) | Error::AudioMalformed(_)),
            "{f}: {e:?}"
        );
        assert!(e.to_string().contains("audio"), "{f}: {e}");
    }
    // A WAV header promising audio that is not there.
    sox(&[
        "-n",
        "-r",
        "16000",
        "-c",
        "1",
        "-b",
        "16",
        p("tone.wav").to_str().unwrap(),
        "synth",
        "1",
        "sine",
        "440",
    ]);
    let bytes = std::fs::read(p("tone.wav")).unwrap();
    std::fs::write(p("header-only.wav"), &bytes[..44]).unwrap();
    assert!(AudioFile::open(&p("header-only.wav")).is_err());
    // An Ogg/Opus file cut off after its headers and a few bytes of its first page.
    tool(
        "opusenc",
        &[
            "--quiet",
            p("tone.wav").to_str().unwrap(),
            p("voice.opus").to_str().unwrap(),
        ],
    );
    let bytes = std::fs::read(p("voice.opus")).unwrap();
    assert!(AudioFile::open(&p("voice.opus")).is_ok());
    std::fs::write(p("cut.opus"), &bytes[..bytes.len().min(1000)]).unwrap();
    let e = AudioFile::open(&p("cut.opus")).err();
    assert!(
        matches!(e, Some(Error::AudioMalformed(_) | Error::AudioEmpty)),
        "{e:?}"
    );
    // A missing file.
    assert!(matches!(AudioFile::open(&p("nope.wav")), Err(Error::Io(_))));
}

#[test]
fn bad_model_files_get_specific_errors() {
    let Some(models) = models() else { return };
    let dir = tmp();
    let p = |n: &str| dir.path().join(n);
    let good = std::fs::read(models.join("ggml-tiny.en.bin")).unwrap();
    let info = check_model(&models.join("ggml-tiny.en.bin")).unwrap();
    assert_eq!((info.size_name, info.multilingual), ("tiny", false));
    assert!(
        check_model(&models.join("ggml-base.bin"))
            .unwrap()
            .multilingual
    );

    let e = WhisperTranscriber::load(&p("missing.bin")).err().unwrap();
    assert!(
        matches!(e, Error::ModelMissing(_)) && e.to_string().contains("no model file"),
        "{e}"
    );
    let e = WhisperTranscriber::load(dir.path()).err().unwrap();
    assert!(matches!(e, Error::ModelNotGgml(..)), "{e:?}");
    std::fs::write(p("notes.bin"), "not a model\n".repeat(100)).unwrap();
    let e = WhisperTranscriber::load(&p("notes.bin")).err().unwrap();
    assert!(
        matches!(e, Error::ModelNotGgml(..)) && e.to_string().contains("GGML"),
        "{e}"
    );
    // Cut short: in the vocabulary, in the middle of the weights, and one byte short.
    for (name, len) in [
        ("cut-early.bin", 100_000),
        ("cut-half.bin", good.len() / 2),
        ("cut-end.bin", good.len() - 1),
    ] {
        std::fs::write(p(name), &good[..len]).unwrap();
        let e = WhisperTranscriber::load(&p(name)).err().unwrap();
        match &e {
            Error::ModelTruncated { actual, needed, .. } => {
                assert!(*actual == len as u64 && needed > actual, "{e}")
            }
            e => panic!("{name}: {e:?}"),
        }
        assert!(e.to_string().contains("cut short"), "{e}");
    }
    // A damaged header (an absurd vocabulary size) and trailing garbage.
    let mut bad = good.clone();
    bad[4..8].copy_from_slice(&(-5i32).to_le_bytes());
    std::fs::write(p("bad-header.bin"), &bad).unwrap();
    let e = WhisperTranscriber::load(&p("bad-header.bin"))
        .err()
        .unwrap();
    assert!(
        matches!(e, Error::ModelInvalid(..)) && e.to_string().contains("n_vocab"),
        "{e}"
    );
    let mut long = good;
    long.extend_from_slice(&[7u8; 20]);
    std::fs::write(p("extra.bin"), &long).unwrap();
    assert!(WhisperTranscriber::load(&p("extra.bin")).is_err());
}

/// Speech with pauses, `repeats` times the clip plus `gap_s` of silence, at 16 kHz.
fn speech_file(dir: &Path, name: &str, repeats: u32, gap_s: f64) -> PathBuf {
    let clip = speak(dir, &format!("{name}-clip"), "en-us", ENGLISH);
    let out = dir.join(name);
    let gap = gap_s.to_string();
    let rep = (repeats - 1).to_string();
    sox(&[
        clip.to_str().unwrap(),
        "-r",
        "16000",
        out.to_str().unwrap(),
        "pad",
        "0",
        &gap,
        "repeat",
        &rep,
    ]);
    out
}

#[test]
fn cancel_then_resume_gives_the_same_transcript() {
    let Some(models) = models() else { return };
    let dir = tmp();
    let wav = speech_file(dir.path(), "talk.wav", 3, 5.0); // about 60 s
    let cfg = PipelineConfig {
        window_ms: 20_000,
        lookback_ms: 10_000,
        lookahead_ms: 5_000,
        ..lang_cfg(Language::En)
    };
    let p = Pipeline::new(cfg.clone()).unwrap();
    let mut t = WhisperTranscriber::load(&models.join("ggml-tiny.en.bin")).unwrap();
    let (whole_outcome, whole) = run_file(&mut t, &wav, cfg);
    let Outcome::Finished { windows, .. } = whole_outcome else {
        panic!()
    };
    assert!(windows >= 3);

    // Stop while window 1 is being transcribed (from another thread, as the app's cancel
    // button does): window 0 is kept, window 1 is not.
    let stop = AtomicBool::new(false);
    let mut saved: Vec<WindowResult> = Vec::new();
    let r = p.run(
        &mut t,
        AudioFile::open(&wav).unwrap(),
        &BTreeSet::new(),
        0,
        &stop,
        &mut |pr| {
            if pr.window == 1 && pr.done_ms > 20_000 {
                stop.store(true, Ordering::SeqCst);
            }
            Flow::Continue
        },
        &mut |w| {
            saved.push(w);
            Ok(())
        },
    );
    assert_eq!(r.unwrap(), Outcome::Cancelled { next_window: 1 });
    assert_eq!(saved.len(), 1);
    // Resume: a new run (a new model load, as after a restart) does the rest.
    let mut t2 = WhisperTranscriber::load(&models.join("ggml-tiny.en.bin")).unwrap();
    let done: BTreeSet<u32> = saved.iter().map(|w| w.index).collect();
    let stop = AtomicBool::new(false);
    let until = saved
        .iter()
        .flat_map(|w| &w.segments)
        .map(|s| s.end_ms)
        .max()
        .unwrap_or(0);
    let r = p.run(
        &mut t2,
        AudioFile::open(&wav).unwrap(),
        &done,
        until,
        &stop,
        &mut |_| Flow::Continue,
        &mut |w| {
            assert!(!done.contains(&w.index));
            saved.push(w);
            Ok(())
        },
    );
    assert_eq!(r.unwrap(), whole_outcome);
    let resumed: Vec<Segment> = saved.into_iter().flat_map(|w| w.segments).collect();
    assert_eq!(text(&resumed), text(&whole));
    assert!(
        wer(&[ENGLISH; 3].join(" "), &text(&resumed)) <= 0.2,
        "{}",
        text(&resumed)
    );
}

// ---- memory on an hour of audio --------------------------------------------------------------

/// Counts segments, nothing else: measures the pipeline's own memory (decode, resample, windows).
struct Counter;
impl Transcriber for Counter {
    fn transcribe_window(
        &mut self,
        pcm: &[f32],
        _: &WindowOptions,
        _: &mut WindowHooks<'_>,
    ) -> testimony_transcribe::Result<Vec<Segment>> {
        Ok(vec![Segment {
            start_ms: 0,
            end_ms: (pcm.len() / 16) as u64,
            text: "x".into(),
            language: None,
            confidence: None,
        }])
    }
    fn model_name(&self) -> String {
        "counter".into()
    }
}

/// The child process: runs the pipeline as TESTIMONY_MEMORY_CHILD says ("FILE|MODEL or -|WINDOW
/// SECONDS|MAX WINDOWS") and prints its peak memory.
#[test]
#[ignore = "a helper: long_audio_memory_stays_flat runs it in a child process"]
fn memory_child() {
    let spec =
        std::env::var("TESTIMONY_MEMORY_CHILD").expect("run by long_audio_memory_stays_flat");
    let parts: Vec<&str> = spec.split('|').collect();
    let (file, model, window_s, max_windows): (&str, &str, u64, u32) = (
        parts[0],
        parts[1],
        parts[2].parse().unwrap(),
        parts[3].parse().unwrap(),
    );
    let mut t: Box<dyn Transcriber> = if model == "-" {
        Box::new(Counter)
    } else {
        Box::new(WhisperTranscriber::load(Path::new(model)).unwrap())
    };
    let cfg = PipelineConfig::for_window(
        window_s * 1000,
        WindowOptions {
            language: Language::En,
            ..Default::default()
        },
    );
    let stop = AtomicBool::new(false);
    let mut windows = 0u32;
    let mut segments = 0usize;
    let source = AudioFile::open(Path::new(file)).unwrap();
    let duration = source.duration_ms().unwrap();
    let outcome = Pipeline::new(cfg)
        .unwrap()
        .run(
            t.as_mut(),
            source,
            &BTreeSet::new(),
            0,
            &stop,
            &mut |_| Flow::Continue,
            &mut |w| {
                windows += 1;
                segments += w.segments.len();
                if windows >= max_windows {
                    stop.store(true, Ordering::SeqCst);
                }
                Ok(())
            },
        )
        .unwrap();
    println!(
        "RESULT hwm_kb={} windows={windows} segments={segments} duration_ms={duration} outcome={outcome:?}",
        vm_hwm_kb()
    );
}

fn child(file: &Path, model: &str, window_s: u64, max_windows: u32) -> (u64, u32) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "memory_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(
            "TESTIMONY_MEMORY_CHILD",
            format!("{}|{model}|{window_s}|{max_windows}", file.display()),
        )
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout
        .lines()
        .find_map(|l| l.find("RESULT").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    eprintln!("{} ({model}, {window_s} s windows)", line);
    let field = |k: &str| {
        line.split_whitespace()
            .find_map(|f| f.strip_prefix(k))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    (field("hwm_kb="), field("windows=") as u32)
}

#[test]
fn long_audio_memory_stays_flat() {
    let dir = tmp();
    // An hour: the English clip (about 11 s) with 19 s of silence, 120 times, as FLAC at
    // 22050 Hz (decoded and resampled on the way). 11 minutes of the same for comparison.
    let clip = speak(dir.path(), "clip", "en-us", ENGLISH);
    let hour = dir.path().join("hour.flac");
    let short = dir.path().join("short.flac");
    let clip_s = std::fs::metadata(&clip).unwrap().len() as f64 / (22_050.0 * 2.0);
    let gap = format!("{:.3}", 30.0 - clip_s);
    sox(&[
        clip.to_str().unwrap(),
        hour.to_str().unwrap(),
        "pad",
        "0",
        &gap,
        "repeat",
        "119",
    ]);
    sox(&[
        clip.to_str().unwrap(),
        short.to_str().unwrap(),
        "pad",
        "0",
        &gap,
        "repeat",
        "21",
    ]);
    // The whole hour through decode, resampling and 5-minute windows, against 11 minutes.
    let (hour_kb, hour_windows) = child(&hour, "-", 300, u32::MAX);
    let (short_kb, short_windows) = child(&short, "-", 300, u32::MAX);
    assert_eq!((hour_windows, short_windows), (12, 3));
    // Holding the hour would take 230 MB as 16 kHz f32 (160 MB as the decoded 22 kHz i16).
    assert!(
        hour_kb < short_kb + 16 * 1024,
        "an hour peaked at {hour_kb} kB, 11 minutes at {short_kb} kB"
    );

    // With the real model: the model's state does not grow from window to window either
    // (tiny.en, 30 s windows: 8 windows of the hour against 3, both past the first window's
    // one-time allocations).
    let Some(models) = models() else { return };
    let model = models.join("ggml-tiny.en.bin");
    let model = model.to_str().unwrap();
    let (many_kb, many) = child(&hour, model, 30, 8);
    let (few_kb, few) = child(&hour, model, 30, 3);
    assert_eq!((many, few), (8, 3));
    assert!(
        many_kb < few_kb + 16 * 1024,
        "8 windows peaked at {many_kb} kB, 3 windows at {few_kb} kB"
    );
}
