//! `testimony transcribe-file AUDIO` (no vault: prints segments) and `testimony transcribe
//! RECORDING` (segments go into the vault window by window; a run that was killed or stopped
//! resumes where it left off). Progress goes to stderr and never carries text.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Args;
use serde_json::json;
use testimony_core::Error;
use testimony_core::transcript::NewSegment;
use testimony_transcribe::pipeline::{
    DEFAULT_WINDOW_MS, Flow, Outcome, Pipeline, PipelineConfig, Progress,
};
use testimony_transcribe::{
    AudioFile, Language, PcmBlockSource, Segment, Transcriber, WhisperTranscriber, WindowOptions,
    priority,
};

use crate::{Cli, Out, open};

#[derive(Args)]
pub(crate) struct TranscribeFileArgs {
    /// Audio file: WAV, FLAC, MP3, M4A/AAC, Ogg Vorbis, Ogg/Opus.
    audio: PathBuf,
    /// whisper.cpp model file (GGML, e.g. ggml-base.bin).
    #[arg(long, env = "TESTIMONY_WHISPER_MODEL")]
    model: PathBuf,
    /// Spoken language: detected (auto), or forced.
    #[arg(long, default_value = "auto", value_parser = ["auto", "ko", "en"])]
    language: String,
    /// SubRip subtitles instead of the plain listing (--json for JSON).
    #[arg(long, conflicts_with = "vtt")]
    srt: bool,
    /// WebVTT subtitles instead of the plain listing.
    #[arg(long)]
    vtt: bool,
    /// Window length in seconds (see crates/transcribe, "pipeline").
    #[arg(long, hide = true, default_value_t = DEFAULT_WINDOW_MS / 1000)]
    window_seconds: u64,
}

#[derive(Args)]
pub(crate) struct TranscribeArgs {
    /// Recording id (`testimony recording list INTERVIEW`).
    recording: String,
    /// whisper.cpp model file (GGML, e.g. ggml-base.bin).
    #[arg(long, env = "TESTIMONY_WHISPER_MODEL")]
    model: PathBuf,
    /// Spoken language: detected (auto), or forced. A resumed transcript keeps its own.
    #[arg(long, default_value = "auto", value_parser = ["auto", "ko", "en"])]
    language: String,
    /// Window length in seconds: the unit of resuming. A resumed transcript keeps its own.
    #[arg(long, hide = true, default_value_t = DEFAULT_WINDOW_MS / 1000)]
    window_seconds: u64,
}

/// Errors of the engine, as the CLI's (core's) error type; none carries content.
fn engine_error(e: testimony_transcribe::Error) -> Error {
    use testimony_transcribe::Error as E;
    match e {
        E::Cancelled => Error::Cancelled,
        E::Io(e) => Error::Io(e),
        e @ (E::AudioUnsupported(_) | E::AudioMalformed(_) | E::AudioEmpty | E::Resample(_)) => {
            Error::Audio(e.to_string())
        }
        e => Error::invalid(e.to_string()),
    }
}

fn load_model(path: &std::path::Path, language: Language) -> Result<WhisperTranscriber, Error> {
    let t = WhisperTranscriber::load(path).map_err(engine_error)?;
    t.check_language(language).map_err(engine_error)?;
    Ok(t)
}

fn config(window_seconds: u64, language: Language) -> Result<PipelineConfig, Error> {
    let cfg = PipelineConfig::for_window(
        window_seconds.saturating_mul(1000),
        WindowOptions {
            language,
            ..Default::default()
        },
    );
    Pipeline::new(cfg.clone()).map_err(engine_error)?;
    Ok(cfg)
}

/// Progress on stderr: a line per finished window, and (on a terminal) a percentage in between.
struct Reporter {
    tty: bool,
    last: Instant,
}

impl Reporter {
    fn new() -> Reporter {
        Reporter {
            tty: std::io::stderr().is_terminal(),
            last: Instant::now(),
        }
    }
    fn line(p: &Progress) -> String {
        let pct = p.percent.map_or_else(String::new, |x| format!(" {x:.0}%"));
        let left = p.eta.map_or_else(String::new, |d| {
            format!(", about {} left", human_duration(d))
        });
        format!("transcribing:{pct}{left}")
    }
    fn progress(&mut self, p: &Progress) {
        if self.tty && self.last.elapsed() >= Duration::from_millis(500) {
            self.last = Instant::now();
            eprint!("\r{}   ", Self::line(p));
        }
    }
    fn window_saved(&mut self, index: u32, p: Option<&Progress>) {
        let total = p
            .and_then(|p| p.windows_total)
            .map_or_else(String::new, |t| format!("/{t}"));
        let rest = p.map_or_else(String::new, |p| {
            format!(" ({})", Self::line(p).trim_start_matches("transcribing: "))
        });
        eprintln!(
            "{}window {}{total} saved{rest}",
            if self.tty { "\r" } else { "" },
            index + 1
        );
    }
}

fn human_duration(d: Duration) -> String {
    let s = d.as_secs();
    if s < 90 {
        format!("{s} s")
    } else if s < 5400 {
        format!("{} min", (s + 30) / 60)
    } else {
        format!("{}:{:02} h", s / 3600, s / 60 % 60)
    }
}

pub(crate) fn transcribe_file(cli: &Cli, out: &Out, a: &TranscribeFileArgs) -> Result<(), Error> {
    let language = Language::parse(&a.language).map_err(engine_error)?;
    let cfg = config(a.window_seconds, language)?;
    // The audio first: a wrong file should not wait for a model to load.
    let source = AudioFile::open(&a.audio).map_err(engine_error)?;
    let mut t = load_model(&a.model, language)?;
    priority::lower_current_thread_priority();
    let mut segments: Vec<Segment> = Vec::new();
    let mut rep = Reporter::new();
    let mut last: Option<Progress> = None;
    let stop = AtomicBool::new(false);
    let outcome = Pipeline::new(cfg)
        .map_err(engine_error)?
        .run(
            &mut t,
            source,
            &BTreeSet::new(),
            0,
            &stop,
            &mut |p| {
                rep.progress(p);
                last = Some(p.clone());
                Flow::Continue
            },
            &mut |w| {
                segments.extend(w.segments);
                Ok(())
            },
        )
        .map_err(engine_error)?;
    if rep.tty {
        eprint!("\r{:40}\r", "");
    }
    if let Outcome::Cancelled { .. } = outcome {
        return Err(Error::Cancelled);
    }
    if a.srt || a.vtt {
        let text = if a.srt {
            srt(&segments)
        } else {
            vtt(&segments)
        };
        let out = Out { json: false };
        out.print(&text, |t| t.trim_end().to_string());
        return Ok(());
    }
    let _ = cli;
    out.print(&segments, |segs| {
        segs.iter()
            .map(|s| {
                format!(
                    "[{} → {}] {}",
                    clock(s.start_ms, '.'),
                    clock(s.end_ms, '.'),
                    s.text
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    });
    Ok(())
}

fn clock(ms: u64, frac: char) -> String {
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}{frac}{:03}",
        s / 3600,
        s / 60 % 60,
        s % 60,
        ms % 1000
    )
}

/// Cue text cannot hold a blank line (it would end the cue).
fn cue_text(t: &str) -> String {
    t.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

fn srt(segments: &[Segment]) -> String {
    let mut s = String::new();
    for (i, seg) in segments.iter().enumerate() {
        s.push_str(&format!(
            "{}\n{} --> {}\n{}\n\n",
            i + 1,
            clock(seg.start_ms, ','),
            clock(seg.end_ms, ','),
            cue_text(&seg.text)
        ));
    }
    s
}

fn vtt(segments: &[Segment]) -> String {
    let mut s = String::from("WEBVTT\n\n");
    for seg in segments {
        // "-->" inside cue text would be read as a timing line.
        s.push_str(&format!(
            "{} --> {}\n{}\n\n",
            clock(seg.start_ms, '.'),
            clock(seg.end_ms, '.'),
            cue_text(&seg.text).replace("-->", "→")
        ));
    }
    s
}

fn source_error(e: testimony_transcribe::Error) -> Error {
    match e {
        testimony_transcribe::Error::Source(inner) => match inner.downcast::<Error>() {
            Ok(core) => *core,
            Err(other) => Error::invalid(other.to_string()),
        },
        e => engine_error(e),
    }
}

pub(crate) fn transcribe(cli: &Cli, out: &Out, a: &TranscribeArgs) -> Result<(), Error> {
    let language = Language::parse(&a.language).map_err(engine_error)?;
    config(a.window_seconds, language)?;
    let mut vault = open(cli)?;
    // Stopped, not empty, consent: refused before the model is loaded.
    let rec = vault.check_can_transcribe(&a.recording)?;
    // Model file checks before anything is written to the vault.
    let mut t = load_model(&a.model, language)?;
    let transcript = vault.start_transcript(
        &rec.meta.id,
        &t.model_name(),
        language.code(),
        a.window_seconds * 1000,
    )?;
    // A resumed transcript keeps the language and window it started with.
    let language = match transcript.language.as_deref() {
        Some(l) => Language::parse(l).map_err(engine_error)?,
        None => Language::Auto,
    };
    t.check_language(language).map_err(engine_error)?;
    let cfg = PipelineConfig::for_window(
        transcript.window_ms,
        WindowOptions {
            language,
            ..Default::default()
        },
    );
    let pipeline = Pipeline::new(cfg).map_err(engine_error)?;
    let done: BTreeSet<u32> = vault
        .transcript_windows_done(&transcript.meta.id)?
        .into_iter()
        .collect();
    // The first window after the saved ones starts where the last saved segment ends.
    let done_until_ms = vault
        .transcript_segments(&transcript.meta.id)?
        .iter()
        .map(|s| s.end_ms)
        .max()
        .unwrap_or(0);
    if !done.is_empty() {
        eprintln!(
            "resuming transcript {}: {} window(s) already saved",
            transcript.meta.id,
            done.len()
        );
    }
    priority::lower_current_thread_priority();
    let tid = transcript.meta.id.clone();
    let vault = RefCell::new(vault);
    let source = PcmBlockSource::new(
        rec.sample_rate,
        rec.channels,
        rec.duration_ms,
        // The vault is shared with the window saver (RefCell): each read borrows it only
        // while it reads one block.
        |from, to| {
            let v = vault.borrow();
            let read = || -> Result<Vec<i16>, Error> {
                let mut pcm = Vec::new();
                for block in v.read_samples(&rec.meta.id, from, Some(to))? {
                    pcm.extend_from_slice(&block?);
                }
                Ok(pcm)
            };
            read().map_err(|e| testimony_transcribe::Error::Source(Box::new(e)))
        },
    );
    let mut rep = Reporter::new();
    let last: RefCell<Option<Progress>> = RefCell::new(None);
    let stop = AtomicBool::new(false);
    let mut saved = 0u32;
    let outcome = pipeline.run(
        &mut t,
        source,
        &done,
        done_until_ms,
        &stop,
        &mut |p| {
            rep.progress(p);
            *last.borrow_mut() = Some(p.clone());
            Flow::Continue
        },
        &mut |w| {
            let segs: Vec<NewSegment> = w
                .segments
                .into_iter()
                .map(|s| NewSegment {
                    start_ms: s.start_ms,
                    end_ms: s.end_ms,
                    text: s.text,
                    language: s.language,
                    confidence: s.confidence,
                })
                .collect();
            vault
                .borrow_mut()
                .save_transcript_window(&tid, w.index, &segs)
                .map_err(|e| testimony_transcribe::Error::Source(Box::new(e)))?;
            saved += 1;
            Reporter::new().window_saved(w.index, last.borrow().as_ref());
            Ok(())
        },
    );
    let outcome = outcome.map_err(source_error)?;
    let mut vault = vault.into_inner();
    match outcome {
        Outcome::Cancelled { .. } => Err(Error::Cancelled),
        Outcome::Finished { windows, .. } => {
            let tr = vault.finish_transcript(&tid, windows)?;
            let segments = vault.transcript_segments(&tid)?.len();
            let v =
                json!({"transcript": tr, "segments": segments, "windows_transcribed_now": saved});
            out.print(&v, |_| {
                format!(
                    "Transcript {} of recording {}: {} segment(s) in {} window(s), model {}.",
                    tr.meta.id, tr.recording_id, segments, windows, tr.model
                )
            });
            Ok(())
        }
    }
}
