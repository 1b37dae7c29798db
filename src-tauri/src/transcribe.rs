//! Transcribing a recording in the app, in the background (engine: `testimony_transcribe`;
//! storage and every rule: `testimony_core::transcript`). `crates/cli/src/transcribe.rs` drives
//! the same pipeline from the command line.
//!
//! Threads (the `Vault` is not `Send`; it lives on the vault thread, see `worker.rs`):
//! - `start` runs one short vault job (the recording, its state, the witness's consent
//!   `transcribe`, a running transcript to resume) and checks the model file, then starts the
//!   engine thread (`priority::spawn_low_priority`: nice 10, whisper.cpp on one core fewer
//!   than the machine has) and returns at once.
//! - The engine thread loads the model, then talks to the vault only through short
//!   background jobs: `start_transcript`, reading 10 s of samples at a time, saving each
//!   finished window (one durable transaction), `finish_transcript`. Inference runs between
//!   them, on the engine thread, so commands, answers and a recording's chunk writer are never
//!   held up for more than one such job. Background jobs do not count as activity: the idle
//!   lock does not wait for a transcription.
//! - Progress (percent, time left, windows saved) sits in a [`TranscribeSlot`](crate::slots::TranscribeSlot) that the UI
//!   polls (`transcribe_status`) without going through the vault thread.
//! - Cancel sets the job's stop flag, which whisper.cpp checks during its computation. Every
//!   lock (`Session::lock`: the lock button, idle, panic shortcut, window close, exit) sets it
//!   too and does not wait: the engine thread holds no key (it reaches the vault only through
//!   the vault thread), and every job it sends carries the lock count it started under, so
//!   after a lock (even after a quick unlock) it is refused and nothing more is saved. The
//!   thread then drops the model and the audio it held and ends. Finished windows stay in the
//!   vault; the transcript stays `running`, and Transcribe on the recording resumes it (never
//!   automatically after an unlock: see docs/testing.md, "Desktop app").
//!
//! Nothing here writes audio or text anywhere but the vault, or logs it; progress and errors
//! carry no content.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::Serialize;
use testimony_core::transcript::{NewSegment, TranscriptStatus};
use testimony_core::{Reason, Vault};
use testimony_transcribe::pipeline::{Flow, Outcome, Pipeline, PipelineConfig};
use testimony_transcribe::{
    Language, PcmBlockSource, Transcriber, WhisperTranscriber, WindowOptions, check_model,
    find_models, priority,
};

use crate::error::AppError;
use crate::ops::Session;
use crate::settings::{Settings, is_model_file_name};
use crate::slots::{Job, Phase, TranscriptionState, transcribe_slot};
use crate::worker::Worker;

/// The unit of resuming (see crates/transcribe, "pipeline"): at most this much work is lost
/// to a cancel, a lock or a crash.
pub const DEFAULT_WINDOW_MS: u64 = testimony_transcribe::pipeline::DEFAULT_WINDOW_MS;

/// A model file in the models folder, as the settings screen lists it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ModelEntry {
    pub file: String,
    /// tiny, base, small, medium, large (from the file's header), or unknown.
    pub size_name: String,
    /// False for English-only models (`*.en.bin`): they cannot transcribe Korean.
    pub multilingual: bool,
    pub bytes: u64,
}

/// A file in the models folder that is not a usable model, and why.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct InvalidModel {
    pub file: String,
    pub error: AppError,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ModelsInfo {
    /// Where the user copies model files (created when missing).
    pub dir: String,
    pub models: Vec<ModelEntry>,
    pub invalid: Vec<InvalidModel>,
    /// The model chosen in Settings, and whether it is among `models`.
    pub chosen: Option<String>,
    pub chosen_ok: bool,
    /// auto, ko or en.
    #[cfg_attr(test, ts(type = r#""auto" | "ko" | "en""#))]
    pub language: String,
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The engine's errors as the UI's codes. Details name the model file (never its folder,
/// which holds the user's name) and what is wrong with it; nothing carries content.
pub fn engine_error(e: testimony_transcribe::Error) -> AppError {
    use testimony_transcribe::Error as E;
    match e {
        E::ModelMissing(p) => AppError::with_detail("model_missing", file_name(&p)),
        E::ModelNotGgml(p, why) => {
            AppError::with_detail("model_not_ggml", format!("{}: {why}", file_name(&p)))
        }
        E::ModelTruncated {
            path,
            actual,
            needed,
        } => AppError::with_detail(
            "model_truncated",
            format!("{}: {actual} of {needed} bytes", file_name(&path)),
        ),
        E::ModelInvalid(p, why) => {
            AppError::with_detail("model_invalid", format!("{}: {why}", file_name(&p)))
        }
        E::ModelLoad(p) => AppError::with_detail("model_load", file_name(&p)),
        E::ModelLanguage(model, _) => AppError::with_detail("model_english_only", model),
        E::Cancelled => AppError::code("cancelled"),
        E::Io(_) => AppError::code("io"),
        // From our own callbacks (a vault job refused: locked, consent withdrawn, ...).
        E::Source(inner) => match inner.downcast::<AppError>() {
            Ok(a) => *a,
            Err(_) => AppError::code("internal"),
        },
        E::Whisper(m) => AppError::with_detail("transcribe_failed", m),
        E::Invalid(m) => AppError::with_detail("invalid", m),
        e @ (E::AudioUnsupported(_) | E::AudioMalformed(_) | E::AudioEmpty | E::Resample(_)) => {
            AppError::with_detail("audio", e.to_string())
        }
    }
}

/// The models folder listed: models that pass `check_model` and the files that do not, with
/// why. The folder is created when missing, so that the user can find it.
pub fn models(dir: &Path, settings: &Settings) -> Result<ModelsInfo, AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|_| AppError::with_detail("models_folder", dir.display().to_string()))?;
    let (good, bad) = find_models(dir)
        .map_err(|_| AppError::with_detail("models_folder", dir.display().to_string()))?;
    let models: Vec<ModelEntry> = good
        .iter()
        .map(|m| ModelEntry {
            file: file_name(&m.path),
            size_name: m.size_name.to_string(),
            multilingual: m.multilingual,
            bytes: m.bytes,
        })
        .collect();
    let invalid = bad
        .into_iter()
        .map(|(p, e)| InvalidModel {
            file: file_name(&p),
            error: engine_error(e),
        })
        .collect();
    let chosen = settings.whisper_model.clone();
    let chosen_ok = chosen
        .as_ref()
        .is_some_and(|c| models.iter().any(|m| &m.file == c));
    Ok(ModelsInfo {
        dir: dir.display().to_string(),
        models,
        invalid,
        chosen,
        chosen_ok,
        language: settings.transcribe_language.clone(),
    })
}

/// A transcript of the recording left running (cancelled, locked, crashed): resumed with its
/// own model, language and window length.
#[derive(Debug, Clone)]
struct Resume {
    model: String,
    language: Option<String>,
    window_ms: u64,
    windows_done: u32,
}

/// What the vault said before the engine starts.
#[derive(Debug, Clone)]
struct Plan {
    recording_id: String,
    interview_id: String,
    rate: u32,
    channels: u16,
    duration_ms: u64,
    /// The session's lock count: every later job checks that no lock happened since.
    epoch: u64,
    resume: Option<Resume>,
}

impl Session {
    /// The vault, if it has not been locked since `epoch` (a lock, even followed by an
    /// unlock, ends the transcription that started before it).
    fn vault_since(&mut self, epoch: u64) -> Result<&mut Vault, AppError> {
        if self.locks != epoch {
            return Err(AppError::locked());
        }
        self.vault()
    }

    fn plan_transcription(&mut self, recording_id: &str) -> Result<Plan, AppError> {
        let epoch = self.locks;
        let v = self.vault()?;
        let rec = v
            .check_can_transcribe(recording_id)
            .map_err(transcription_refusal)?;
        let resume = match v
            .transcripts(&rec.meta.id)?
            .into_iter()
            .rev()
            .find(|t| t.status == TranscriptStatus::Running)
        {
            Some(t) => Some(Resume {
                windows_done: v.transcript_windows_done(&t.meta.id)?.len() as u32,
                model: t.model,
                language: t.language,
                window_ms: t.window_ms,
            }),
            None => None,
        };
        Ok(Plan {
            recording_id: rec.meta.id,
            interview_id: rec.interview_id,
            rate: rec.sample_rate,
            channels: rec.channels,
            duration_ms: rec.duration_ms,
            epoch,
            resume,
        })
    }

    /// Called by `lock` before the vault is dropped: a running transcription is told to stop
    /// (it finds the vault closed at its next job; nothing is waited for). A finished one's
    /// state is forgotten.
    pub(crate) fn cancel_transcription_for_lock(&mut self) {
        let mut g = transcribe_slot(&self.transcribe);
        match g
            .as_mut()
            .filter(|j| j.alive() || matches!(j.state.phase, Phase::Loading | Phase::Running))
        {
            Some(j) => {
                j.stop.store(true, Ordering::SeqCst);
                j.state.locked = true;
            }
            None => *g = None,
        }
    }
}

/// The core's refusals to transcribe (`Vault::check_can_transcribe`, and consent on every
/// window), under the transcription panel's own codes, which say what to do next.
fn transcription_refusal(e: testimony_core::Error) -> AppError {
    let code = match e.reason() {
        Some(Reason::NoTranscribeConsent { .. }) => "no_transcribe_consent",
        Some(Reason::RecordingStillRunning { .. }) => "recording_not_stopped",
        Some(Reason::RecordingEmpty { .. }) => "recording_empty",
        _ => return e.into(),
    };
    AppError::code(code)
}

/// Starts (or resumes) transcribing `recording_id` in the background and returns at once.
/// Refusals (no model, a bad model file, no consent, a recording still running, another
/// transcription running) come back here and leave the vault unchanged.
pub fn start(
    w: &Worker,
    models_dir: &Path,
    settings: &Settings,
    recording_id: &str,
    window_ms: u64,
) -> Result<TranscriptionState, AppError> {
    if transcribe_slot(&w.transcribe)
        .as_ref()
        .is_some_and(Job::alive)
    {
        return Err(AppError::code("transcription_active"));
    }
    let rid = recording_id.to_string();
    let plan = w.call(move |s| s.plan_transcription(&rid))?;
    // The model: a transcript left running goes on with its own; a new one takes the one
    // chosen in Settings.
    let (file, language, window_ms) = match &plan.resume {
        Some(r) => {
            if !is_model_file_name(&r.model) || !models_dir.join(&r.model).is_file() {
                return Err(AppError::with_detail("model_gone", r.model.clone()));
            }
            let language =
                Language::parse(r.language.as_deref().unwrap_or("auto")).map_err(engine_error)?;
            (r.model.clone(), language, r.window_ms)
        }
        None => {
            let file = settings
                .whisper_model
                .clone()
                .ok_or_else(|| AppError::code("no_model"))?;
            if !is_model_file_name(&file) {
                return Err(AppError::code("no_model"));
            }
            (
                file,
                Language::parse(&settings.transcribe_language).map_err(engine_error)?,
                window_ms,
            )
        }
    };
    let path = models_dir.join(&file);
    // The whole layout is checked before whisper.cpp sees the file (and before the vault is
    // written to): missing, not GGML, cut short and damaged files are each their own error.
    let info = check_model(&path).map_err(engine_error)?;
    if language == Language::Ko && !info.multilingual {
        return Err(AppError::with_detail("model_english_only", file));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let state = TranscriptionState {
        recording_id: plan.recording_id.clone(),
        interview_id: plan.interview_id.clone(),
        transcript_id: None,
        model: file,
        language: language.code().map(str::to_string),
        resumed: plan.resume.as_ref().is_some_and(|r| r.windows_done > 0),
        phase: Phase::Loading,
        percent: None,
        eta_seconds: None,
        windows_done: plan.resume.as_ref().map_or(0, |r| r.windows_done),
        windows_total: None,
        locked: false,
        error: None,
    };
    let mut g = transcribe_slot(&w.transcribe);
    if g.as_ref().is_some_and(Job::alive) {
        return Err(AppError::code("transcription_active"));
    }
    let (w2, stop2) = (w.clone(), stop.clone());
    // The new thread waits for this guard before it reports anything.
    match priority::spawn_low_priority("transcribe", move || {
        engine_thread(w2, stop2, plan, path, language, window_ms)
    }) {
        Ok(thread) => {
            *g = Some(Job {
                state: state.clone(),
                stop,
                thread: Some(thread),
            });
            Ok(state)
        }
        Err(_) => Err(AppError::code("internal")),
    }
}

/// Updates the state of the job that owns `stop` (a newer job's is left alone).
fn update(w: &Worker, stop: &Arc<AtomicBool>, f: impl FnOnce(&mut TranscriptionState)) {
    if let Some(j) = transcribe_slot(&w.transcribe)
        .as_mut()
        .filter(|j| Arc::ptr_eq(&j.stop, stop))
    {
        f(&mut j.state);
    }
}

fn engine_thread(
    w: Worker,
    stop: Arc<AtomicBool>,
    plan: Plan,
    model: PathBuf,
    language: Language,
    window_ms: u64,
) {
    let result = transcribe(&w, &stop, plan, &model, language, window_ms);
    let stopped = stop.load(Ordering::SeqCst);
    update(&w, &stop, |st| match result {
        Ok(true) => {
            st.phase = Phase::Done;
            st.percent = Some(100.0);
            st.eta_seconds = Some(0);
        }
        // Stopped by cancel or lock: whatever the last step then said (the vault refusing a
        // job after a lock, whisper.cpp aborting) is the stop, not a failure.
        Ok(false) => st.phase = Phase::Cancelled,
        Err(_) if stopped => st.phase = Phase::Cancelled,
        Err(e) => {
            st.phase = if e.code == "cancelled" {
                Phase::Cancelled
            } else {
                Phase::Failed
            };
            st.error = Some(e).filter(|e| e.code != "cancelled");
        }
    });
}

/// The engine thread's work. Ok(true): finished; Ok(false): stopped.
fn transcribe(
    w: &Worker,
    stop: &Arc<AtomicBool>,
    plan: Plan,
    model: &Path,
    language: Language,
    window_ms: u64,
) -> Result<bool, AppError> {
    let mut t = WhisperTranscriber::load(model).map_err(engine_error)?;
    if stop.load(Ordering::SeqCst) {
        return Ok(false);
    }
    // Start or resume in the vault; a resumed transcript keeps its language and window.
    let epoch = plan.epoch;
    let (rid, name, code) = (
        plan.recording_id.clone(),
        t.model_name(),
        language.code().map(str::to_string),
    );
    let (transcript, done, done_until_ms) = w.call_background(move |s| {
        let v = s.vault_since(epoch)?;
        v.check_can_transcribe(&rid)
            .map_err(transcription_refusal)?;
        let t = v.start_transcript(&rid, &name, code.as_deref(), window_ms)?;
        let done: BTreeSet<u32> = v.transcript_windows_done(&t.meta.id)?.into_iter().collect();
        // The first window after the saved ones starts where the last saved segment ends.
        let until = v
            .transcript_segments(&t.meta.id)?
            .iter()
            .map(|s| s.end_ms)
            .max()
            .unwrap_or(0);
        Ok((t, done, until))
    })?;
    let language =
        Language::parse(transcript.language.as_deref().unwrap_or("auto")).map_err(engine_error)?;
    t.check_language(language).map_err(engine_error)?;
    let tid = transcript.meta.id.clone();
    update(w, stop, |st| {
        st.transcript_id = Some(tid.clone());
        st.language = language.code().map(str::to_string);
        st.windows_done = done.len() as u32;
        st.resumed = !done.is_empty();
        st.phase = Phase::Running;
    });
    let cfg = PipelineConfig::for_window(
        transcript.window_ms,
        WindowOptions {
            language,
            ..Default::default()
        },
    );
    let pipeline = Pipeline::new(cfg).map_err(engine_error)?;
    // Each block is a short job on the vault thread (10 s of audio decoded from its chunks),
    // so the vault is never held while whisper.cpp works.
    let rid = plan.recording_id.clone();
    let source = PcmBlockSource::new(plan.rate, plan.channels, plan.duration_ms, |from, to| {
        let rid = rid.clone();
        w.call_background(move |s| {
            let v = s.vault_since(epoch)?;
            let mut pcm: Vec<i16> = Vec::new();
            let read = v.read_samples(&rid, from, Some(to)).and_then(|blocks| {
                for b in blocks {
                    pcm.extend_from_slice(&b?);
                }
                Ok(())
            });
            match read {
                Ok(()) => Ok(pcm),
                Err(e) => Err(s.audio_read_error(e)),
            }
        })
        .map_err(|e| testimony_transcribe::Error::Source(Box::new(e)))
    });
    let outcome = pipeline
        .run(
            &mut t,
            source,
            &done,
            done_until_ms,
            stop,
            &mut |p| {
                update(w, stop, |st| {
                    st.percent = p.percent;
                    st.eta_seconds = p.eta.map(|d| d.as_secs());
                    st.windows_total = p.windows_total;
                });
                Flow::Continue
            },
            &mut |win| {
                let segments: Vec<NewSegment> = win
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
                let (tid, index) = (tid.clone(), win.index);
                // One durable transaction; refused after a lock or a withdrawal of consent.
                w.call_background(move |s| {
                    let v = s.vault_since(epoch)?;
                    v.save_transcript_window(&tid, index, &segments)
                        .map_err(transcription_refusal)
                })
                .map_err(|e| testimony_transcribe::Error::Source(Box::new(e)))?;
                update(w, stop, |st| st.windows_done += 1);
                Ok(())
            },
        )
        .map_err(engine_error)?;
    match outcome {
        Outcome::Cancelled { .. } => Ok(false),
        Outcome::Finished { windows, .. } => {
            w.call_background(move |s| {
                Ok(s.vault_since(epoch)?.finish_transcript(&tid, windows)?)
            })?;
            update(w, stop, |st| st.windows_total = Some(windows));
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    //! Through the command layer (`start`, `status`, `cancel`, the worker's jobs) as the app's
    //! commands call it, with the real tiny.en model on espeak-ng speech imported into a vault.
    //! The model tests use TESTIMONY_WHISPER_MODELS: skipped with a loud note when it is unset,
    //! failing instead under CI or TESTIMONY_REQUIRE_WHISPER=1 (as crates/transcribe's).
    use super::*;
    use std::process::Command;
    use std::time::{Duration, Instant};
    use testimony_core::model::{ConsentMethod, ConsentScopes, WitnessProfile};

    use crate::ops::NewInterviewArgs;
    use crate::slots::{cancel_transcription, transcription_status};

    const PASS: &str = "a long enough passphrase for tests";
    const TINY: &str = "ggml-tiny.en.bin";
    const ENGLISH: &str = "The guards took us to the mine before sunrise. We worked for twelve hours without food. \
                           In the winter many prisoners became sick, and nobody was allowed to see a doctor.";

    fn whisper_models() -> Option<PathBuf> {
        let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
            || std::env::var("TESTIMONY_REQUIRE_WHISPER").is_ok_and(|v| v == "1");
        match std::env::var_os("TESTIMONY_WHISPER_MODELS").map(PathBuf::from) {
            Some(d) if d.join(TINY).is_file() => Some(d),
            _ if required => panic!(
                "the whisper tests are required here (CI or TESTIMONY_REQUIRE_WHISPER=1) but TESTIMONY_WHISPER_MODELS does not name a folder \
                 with {TINY}; run `./run test`"
            ),
            _ => {
                eprintln!(
                    "\n*** SKIPPED: TESTIMONY_WHISPER_MODELS is not set: the app's transcription tests with a real model did NOT run. ***\n"
                );
                None
            }
        }
    }

    fn tool(program: &str, args: &[&str]) {
        let out = Command::new(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("{program} is needed ({e}): Debian espeak-ng sox"));
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

    /// Two seconds of a tone, for the tests that never reach the model.
    fn tone(dir: &Path) -> PathBuf {
        let p = dir.join("tone.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: 16_000,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..32_000 {
            w.write_sample(
                ((i as f32 / 16_000.0 * 440.0 * std::f32::consts::TAU).sin() * 8_000.0) as i16,
            )
            .unwrap();
        }
        w.finalize().unwrap();
        p
    }

    struct Setup {
        _t: tempfile::TempDir,
        w: Worker,
        witness: String,
        recording: String,
    }

    /// A vault on a worker (as the app runs it) with a witness whose consent has
    /// `transcribe` or not, and `wav` imported as a recording of an interview.
    fn setup(transcribe: bool, wav: impl FnOnce(&Path) -> PathBuf) -> Setup {
        let t = tempfile::tempdir().unwrap();
        let wav = wav(t.path());
        let w = Worker::start(t.path().join("vault"), 60);
        let (witness, recording) = w
            .call(move |s| {
                s.create_vault(PASS, "Kim")?;
                let wt = s.create_witness(WitnessProfile::default())?;
                let scopes = ConsentScopes {
                    record_audio: true,
                    transcribe,
                    share_archive: true,
                    ..Default::default()
                };
                s.set_consent(&wt.code, scopes, ConsentMethod::Oral)?;
                let i = s.new_interview(NewInterviewArgs {
                    witness: wt.code.clone(),
                    languages: vec!["en".into()],
                    place: None,
                    interpreter: None,
                })?;
                let rec = s
                    .vault()?
                    .import_wav(&i.meta.id, std::fs::File::open(&wav).unwrap())?;
                Ok((wt.code, rec.meta.id))
            })
            .unwrap();
        Setup {
            _t: t,
            w,
            witness,
            recording,
        }
    }

    fn settings(model: Option<&str>, language: &str) -> Settings {
        Settings {
            whisper_model: model.map(str::to_string),
            transcribe_language: language.into(),
            ..Default::default()
        }
    }

    /// Polls as the UI does until the engine thread has ended; returns every state seen.
    fn wait_end(w: &Worker) -> Vec<TranscriptionState> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let alive = transcribe_slot(&w.transcribe)
                .as_ref()
                .is_some_and(Job::alive);
            seen.push(transcription_status(&w.transcribe).expect("a transcription was started"));
            if !alive {
                return seen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(600),
                "the transcription did not end"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `windows` windows are saved (and the run is still going).
    fn wait_windows(w: &Worker, windows: u32) -> TranscriptionState {
        let started = Instant::now();
        loop {
            let st = transcription_status(&w.transcribe).unwrap();
            assert!(
                matches!(st.phase, Phase::Loading | Phase::Running),
                "ended before {windows} window(s): {st:?}"
            );
            if st.windows_done >= windows {
                return st;
            }
            assert!(started.elapsed() < Duration::from_secs(600));
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// The nice value of this process's thread named `name` (Linux: /proc/self/task).
    fn thread_nice(name: &str) -> Option<i32> {
        for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
            if std::fs::read_to_string(task.path().join("comm")).is_ok_and(|c| c.trim() == name) {
                let stat = std::fs::read_to_string(task.path().join("stat")).ok()?;
                // After the ")" that ends the name: state is field 3, nice field 19.
                let rest = &stat[stat.rfind(')')? + 2..];
                return rest.split(' ').nth(16)?.parse().ok();
            }
        }
        None
    }

    fn transcripts(w: &Worker, rec: &str) -> Vec<testimony_core::transcript::Transcript> {
        let rec = rec.to_string();
        w.call(move |s| s.transcripts(&rec)).unwrap()
    }

    fn text_of(w: &Worker, tid: &str) -> String {
        let tid = tid.to_string();
        w.call(move |s| s.segments(&tid))
            .unwrap()
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }

    fn windows_done(w: &Worker, tid: &str) -> Vec<u32> {
        let tid = tid.to_string();
        w.call(move |s| Ok(s.vault()?.transcript_windows_done(&tid)?))
            .unwrap()
    }

    #[test]
    fn no_model_or_a_bad_model_file_is_a_specific_error_and_stores_nothing() {
        let s = setup(true, tone);
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("models");
        // The folder is made when missing; empty, it lists nothing.
        let info = models(&dir, &settings(None, "auto")).unwrap();
        assert!(dir.is_dir());
        assert!(info.models.is_empty() && info.invalid.is_empty() && !info.chosen_ok);
        assert_eq!(
            start(&s.w, &dir, &settings(None, "auto"), &s.recording, 5_000)
                .unwrap_err()
                .code,
            "no_model"
        );
        let e = start(
            &s.w,
            &dir,
            &settings(Some("ggml-base.bin"), "auto"),
            &s.recording,
            5_000,
        )
        .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.detail.as_deref()),
            ("model_missing", Some("ggml-base.bin"))
        );
        // Not a model at all; a GGML file cut short (as by an interrupted copy).
        std::fs::write(
            dir.join("ggml-notes.bin"),
            "these are not the weights you are looking for",
        )
        .unwrap();
        let mut cut = 0x6767_6d6cu32.to_le_bytes().to_vec();
        cut.extend_from_slice(&51_864i32.to_le_bytes());
        std::fs::write(dir.join("ggml-cut.bin"), cut).unwrap();
        assert_eq!(
            start(
                &s.w,
                &dir,
                &settings(Some("ggml-notes.bin"), "auto"),
                &s.recording,
                5_000
            )
            .unwrap_err()
            .code,
            "model_not_ggml"
        );
        assert_eq!(
            start(
                &s.w,
                &dir,
                &settings(Some("ggml-cut.bin"), "en"),
                &s.recording,
                5_000
            )
            .unwrap_err()
            .code,
            "model_truncated"
        );
        // Settings lists both, each with its reason, and no usable model.
        let info = models(&dir, &settings(Some("ggml-cut.bin"), "en")).unwrap();
        assert!(info.models.is_empty() && !info.chosen_ok);
        let mut why: Vec<(String, String)> = info
            .invalid
            .iter()
            .map(|m| (m.file.clone(), m.error.code.clone()))
            .collect();
        why.sort();
        assert_eq!(
            why,
            [
                ("ggml-cut.bin".to_string(), "model_truncated".to_string()),
                ("ggml-notes.bin".into(), "model_not_ggml".into())
            ]
        );
        // Nothing was written to the vault and nothing runs.
        assert!(transcripts(&s.w, &s.recording).is_empty());
        assert!(transcription_status(&s.w.transcribe).is_none());
    }

    #[test]
    fn refused_without_transcribe_consent_and_nothing_is_stored() {
        // Checked before the model: the same refusal whether or not a model is installed.
        let dir = std::env::var_os("TESTIMONY_WHISPER_MODELS")
            .map_or_else(|| PathBuf::from("/nonexistent"), PathBuf::from);
        let s = setup(false, tone);
        let e = start(&s.w, &dir, &settings(Some(TINY), "en"), &s.recording, 5_000).unwrap_err();
        assert_eq!(e.code, "no_transcribe_consent");
        assert!(transcripts(&s.w, &s.recording).is_empty());
        assert!(
            transcription_status(&s.w.transcribe).is_none(),
            "no engine thread was started"
        );
        // Consent given, then withdrawn: refused again.
        let witness = s.witness.clone();
        s.w.call(move |ss| {
            let scopes = ConsentScopes {
                record_audio: true,
                transcribe: true,
                ..Default::default()
            };
            ss.set_consent(&witness, scopes, ConsentMethod::Oral)?;
            ss.withdraw_consent(&witness).map(|_| ())
        })
        .unwrap();
        assert_eq!(
            start(&s.w, &dir, &settings(Some(TINY), "en"), &s.recording, 5_000)
                .unwrap_err()
                .code,
            "no_transcribe_consent"
        );
        assert!(transcripts(&s.w, &s.recording).is_empty());
        // An unknown recording.
        assert_eq!(
            start(
                &s.w,
                &dir,
                &settings(Some(TINY), "en"),
                "no-such-recording",
                5_000
            )
            .unwrap_err()
            .code,
            "not_found"
        );
    }

    #[test]
    fn transcribes_a_recording_in_the_background() {
        let Some(dir) = whisper_models() else { return };
        let s = setup(true, |d| speech(d, 1));
        // An English-only model cannot be told to hear Korean.
        let e = start(
            &s.w,
            &dir,
            &settings(Some(TINY), "ko"),
            &s.recording,
            10_000,
        )
        .unwrap_err();
        assert_eq!(e.code, "model_english_only");
        assert!(transcripts(&s.w, &s.recording).is_empty());

        let st = start(
            &s.w,
            &dir,
            &settings(Some(TINY), "en"),
            &s.recording,
            10_000,
        )
        .unwrap();
        assert_eq!(
            (st.phase, st.windows_done, st.resumed),
            (Phase::Loading, 0, false)
        );
        // A second one while it runs is refused.
        assert_eq!(
            start(
                &s.w,
                &dir,
                &settings(Some(TINY), "en"),
                &s.recording,
                10_000
            )
            .unwrap_err()
            .code,
            "transcription_active"
        );
        // While whisper works, commands are answered at once: the vault thread is not held.
        // And it works at a lower priority than the rest of the app (the recorder's threads
        // and the vault thread keep theirs).
        let mut slowest = Duration::ZERO;
        let mut nice = None;
        let started = Instant::now();
        while transcribe_slot(&s.w.transcribe)
            .as_ref()
            .is_some_and(Job::alive)
            && started.elapsed() < Duration::from_secs(600)
        {
            nice = nice.or_else(|| thread_nice("transcribe").zip(thread_nice("vault")));
            let t0 = Instant::now();
            s.w.call(|ss| ss.witnesses().map(|_| ())).unwrap();
            slowest = slowest.max(t0.elapsed());
            std::thread::sleep(Duration::from_millis(50));
        }
        let seen = wait_end(&s.w);
        let end = seen.last().unwrap().clone();
        assert_eq!(end.phase, Phase::Done, "{end:?}");
        assert!(
            slowest < Duration::from_secs(2),
            "a command waited {slowest:?} while transcribing"
        );
        #[cfg(target_os = "linux")]
        {
            let (engine, vault) = nice.expect("the engine thread was seen");
            assert_eq!(
                engine,
                (vault + priority::NICE).min(19),
                "the engine thread runs at a lower priority than the vault thread"
            );
        }
        assert_eq!(end.percent, Some(100.0));
        let total = end.windows_total.unwrap();
        assert!(total >= 2, "{total} windows");
        assert_eq!(end.windows_done, total);
        // The vault holds the finished transcript with the spoken words.
        let ts = transcripts(&s.w, &s.recording);
        assert_eq!(ts.len(), 1);
        assert_eq!(Some(ts[0].meta.id.clone()), end.transcript_id);
        assert_eq!(
            (
                ts[0].status,
                ts[0].windows_total,
                ts[0].model.as_str(),
                ts[0].language.as_deref()
            ),
            (TranscriptStatus::Done, Some(total), TINY, Some("en"))
        );
        let text = text_of(&s.w, &ts[0].meta.id);
        for word in ["guards", "mine", "sunrise", "prisoners", "doctor"] {
            assert!(text.contains(word), "{word:?} missing from the transcript");
        }
        // The status never carries text.
        let json = serde_json::to_string(&end).unwrap().to_lowercase();
        assert!(!json.contains("guards") && !json.contains("doctor"));
    }

    /// The PulseAudio null sink `./run test` starts (its monitor is the default input), or
    /// None (skip, with a note) when there is none and none is required.
    fn pulse_sink() -> Option<String> {
        let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
            || std::env::var("TESTIMONY_REQUIRE_AUDIO").is_ok_and(|v| v == "1");
        match std::env::var("TESTIMONY_TEST_PULSE_SINK") {
            Ok(s) if !s.trim().is_empty() => Some(s),
            _ if required => panic!(
                "TESTIMONY_TEST_PULSE_SINK is not set but the capture test is required (`./run test` starts a PulseAudio null sink)"
            ),
            _ => {
                eprintln!(
                    "note: TESTIMONY_TEST_PULSE_SINK is not set: recording while transcribing is SKIPPED"
                );
                None
            }
        }
    }

    /// An interviewer records the next interview while an earlier recording is transcribed
    /// (on a 2-core laptop, whisper takes the other core). The capture is the app's own path
    /// (cpal's default input, here the monitor of a PulseAudio null sink a tone is played
    /// into), and it must lose nothing: over ten seconds of recording with whisper running,
    /// the audio saved covers the time that passed (an overrun drops samples), and the tone in
    /// the vault is unbroken, second by second.
    #[test]
    fn recording_loses_no_audio_while_a_transcription_runs() {
        use testimony_core::audio::capture::CpalSource;
        let Some(dir) = whisper_models() else { return };
        let Some(sink) = pulse_sink() else { return };
        // About three minutes of speech: whisper is still busy when the recording ends.
        let s = setup(true, |d| speech(d, 12));
        start(
            &s.w,
            &dir,
            &settings(Some(TINY), "en"),
            &s.recording,
            30_000,
        )
        .unwrap();
        let started = Instant::now();
        while transcription_status(&s.w.transcribe).unwrap().phase != Phase::Running {
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "the model did not load: {:?}",
                transcription_status(&s.w.transcribe)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let witness = s.witness.clone();
        let rec =
            s.w.call(move |ss| {
                let i = ss.new_interview(NewInterviewArgs {
                    witness,
                    languages: vec!["en".into()],
                    place: None,
                    interpreter: None,
                })?;
                ss.start_recording(&i.meta.id, || {
                    CpalSource::default_input().map_err(AppError::from)
                })
            })
            .unwrap();
        let rate = rec.sample_rate as usize;
        let elapsed = || {
            crate::slots::recording_status(&s.w.audio)
                .unwrap()
                .elapsed_ms
        };
        let started = Instant::now();
        while elapsed() < 300 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the input delivers audio"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // A 440 Hz tone at half scale for 14 s, played into the sink.
        let t = tempfile::tempdir().unwrap();
        let wav = t.path().join("tone.wav");
        let mut w = hound::WavWriter::create(
            &wav,
            hound::WavSpec {
                channels: 1,
                sample_rate: rate as u32,
                bits_per_sample: 16,
                sample_format: hound::SampleFormat::Int,
            },
        )
        .unwrap();
        for i in 0..rate * 14 {
            w.write_sample(
                ((i as f64 * 440.0 * std::f64::consts::TAU / rate as f64).sin() * 16_384.0) as i16,
            )
            .unwrap();
        }
        w.finalize().unwrap();
        let mut player = Command::new("paplay")
            .arg(format!("--device={sink}"))
            .arg(&wav)
            .spawn()
            .expect("paplay (Debian pulseaudio-utils)");
        // Ten seconds, polled as the UI polls the recorder.
        let (t0, e0) = (Instant::now(), elapsed());
        while t0.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(100));
        }
        let (wall, captured) = (t0.elapsed().as_millis() as u64, elapsed() - e0);
        let busy = transcription_status(&s.w.transcribe).unwrap();
        let rec = s.w.call(|ss| ss.stop_recording()).unwrap();
        let _ = player.kill();
        let _ = player.wait();
        cancel_transcription(&s.w.transcribe);
        wait_end(&s.w);
        assert_eq!(
            busy.phase,
            Phase::Running,
            "whisper was still working when the recording ended: {busy:?}"
        );
        // Loosely: audio still buffered in the audio system at either end shifts this by a few
        // hundred ms; the tone below shows any loss to the sample.
        assert!(
            captured * 10 >= wall * 9 && captured <= wall + 1_000,
            "{captured} ms of audio captured in {wall} ms"
        );

        // The stored audio, in 100 ms blocks: where the tone is (its RMS is about 11,600).
        let id = rec.meta.id.clone();
        let pcm: Vec<i16> =
            s.w.call(move |ss| {
                Ok(ss
                    .vault()?
                    .read_samples(&id, 0, None)?
                    .flat_map(Result::unwrap)
                    .collect())
            })
            .unwrap();
        let block = rate / 10;
        let loud: Vec<bool> = pcm
            .chunks_exact(block)
            .map(|b| {
                (b.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / block as f64).sqrt() > 8_000.0
            })
            .collect();
        let first = loud
            .iter()
            .position(|&l| l)
            .expect("the tone reached the recording");
        let last = loud.iter().rposition(|&l| l).unwrap();
        assert!(
            loud[first..=last].iter().all(|&l| l),
            "the tone has gaps in the recording"
        );
        // Every whole second inside the tone, but its first and last: 440 cycles.
        let seconds: Vec<i64> = pcm[(first + 10) * block..last.saturating_sub(9) * block]
            .chunks_exact(rate)
            .map(|sec| sec.windows(2).filter(|p| p[0] < 0 && p[1] >= 0).count() as i64)
            .collect();
        assert!(
            seconds.len() >= 7,
            "{} whole seconds of tone",
            seconds.len()
        );
        assert!(
            seconds.iter().all(|&c| (c - 440).abs() <= 3),
            "cycles per second of the tone: {seconds:?}"
        );
    }

    #[test]
    fn progress_is_reported_and_cancel_keeps_windows_that_resume_completes() {
        let Some(dir) = whisper_models() else { return };
        let s = setup(true, |d| speech(d, 2));
        let cfg = settings(Some(TINY), "en");
        start(&s.w, &dir, &cfg, &s.recording, 8_000).unwrap();
        let mid = wait_windows(&s.w, 1);
        cancel_transcription(&s.w.transcribe);
        let seen = wait_end(&s.w);
        let end = seen.last().unwrap().clone();
        assert_eq!(
            (end.phase, end.locked, end.error.is_none()),
            (Phase::Cancelled, false, true),
            "{end:?}"
        );
        // Percent and time left were reported on the way, never going back.
        let percents: Vec<f32> = seen.iter().filter_map(|st| st.percent).collect();
        assert!(
            percents.iter().any(|&p| p > 0.0 && p < 100.0),
            "{percents:?}"
        );
        assert!(percents.windows(2).all(|p| p[1] >= p[0]), "{percents:?}");
        assert!(
            mid.eta_seconds.is_some() || seen.iter().any(|st| st.eta_seconds.is_some()),
            "time left was reported"
        );
        let total = mid.windows_total.unwrap();
        assert!(total >= 4, "{total} windows");
        let tid = end.transcript_id.clone().unwrap();
        let kept = windows_done(&s.w, &tid);
        assert!(
            !kept.is_empty() && (kept.len() as u32) < total,
            "{kept:?} of {total}"
        );
        assert_eq!(kept.len() as u32, end.windows_done);
        assert_eq!(
            transcripts(&s.w, &s.recording)[0].status,
            TranscriptStatus::Running
        );
        assert!(
            text_of(&s.w, &tid).contains("guards"),
            "the first window's words are kept"
        );
        let segs = |w: &Worker| {
            let tid = tid.clone();
            w.call(move |ss| ss.segments(&tid))
                .unwrap()
                .into_iter()
                .map(|g| (g.meta.id, g.text))
                .collect::<Vec<_>>()
        };
        let before = segs(&s.w);

        // Transcribe again: the same transcript resumes, skipping the saved windows.
        let st = start(&s.w, &dir, &cfg, &s.recording, 8_000).unwrap();
        assert!(st.resumed && st.windows_done == kept.len() as u32, "{st:?}");
        let end = wait_end(&s.w).last().unwrap().clone();
        assert_eq!(end.phase, Phase::Done, "{end:?}");
        assert_eq!(end.transcript_id.as_deref(), Some(tid.as_str()));
        let ts = transcripts(&s.w, &s.recording);
        assert_eq!(ts.len(), 1, "resumed, not started again");
        assert_eq!(
            (ts[0].status, ts[0].windows_total),
            (TranscriptStatus::Done, Some(total))
        );
        assert_eq!(windows_done(&s.w, &tid), (0..total).collect::<Vec<_>>());
        let after = segs(&s.w);
        assert!(
            before.iter().all(|b| after.contains(b)),
            "the segments saved before the cancel are kept as they were"
        );
        assert!(after.len() > before.len());
        let text = text_of(&s.w, &tid);
        assert_eq!(
            text.matches("doctor").count(),
            2,
            "both repetitions, each once"
        );
    }

    #[test]
    fn a_withdrawal_stops_it_at_the_next_window_with_the_reason() {
        let Some(dir) = whisper_models() else { return };
        let s = setup(true, |d| speech(d, 2));
        let cfg = settings(Some(TINY), "en");
        start(&s.w, &dir, &cfg, &s.recording, 8_000).unwrap();
        let mid = wait_windows(&s.w, 1);
        let witness = s.witness.clone();
        s.w.call(move |ss| ss.withdraw_consent(&witness).map(|_| ()))
            .unwrap();
        let end = wait_end(&s.w).last().unwrap().clone();
        assert_eq!(end.phase, Phase::Failed, "{end:?}");
        assert_eq!(
            end.error.as_ref().map(|e| e.code.as_str()),
            Some("no_transcribe_consent")
        );
        // What was saved before stays (reviewable, deletable); nothing after.
        let tid = end.transcript_id.clone().unwrap();
        let kept = windows_done(&s.w, &tid);
        assert!(
            !kept.is_empty() && (kept.len() as u32) < mid.windows_total.unwrap(),
            "{kept:?}"
        );
        assert_eq!(kept.len() as u32, end.windows_done);
        assert_eq!(
            transcripts(&s.w, &s.recording)[0].status,
            TranscriptStatus::Running
        );
        // Resuming is refused too.
        assert_eq!(
            start(&s.w, &dir, &cfg, &s.recording, 8_000)
                .unwrap_err()
                .code,
            "no_transcribe_consent"
        );
    }

    #[test]
    fn a_lock_cancels_the_transcription_without_waiting_and_it_can_be_resumed() {
        let Some(dir) = whisper_models() else { return };
        let s = setup(true, |d| speech(d, 2));
        let cfg = settings(Some(TINY), "en");
        start(&s.w, &dir, &cfg, &s.recording, 8_000).unwrap();
        wait_windows(&s.w, 1);
        // As the lock command, the idle backstop, the panic shortcut and closing the window do.
        let t0 = Instant::now();
        s.w.call(|ss| {
            ss.lock();
            Ok(())
        })
        .unwrap();
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the lock waited {:?}",
            t0.elapsed()
        );
        assert!(
            !s.w.call(|ss| Ok(ss.vault.is_some())).unwrap(),
            "the vault is closed"
        );
        // The engine thread stops soon (whisper.cpp checks the flag while it computes) and ends
        // with nothing: the model and the audio it held are dropped with it.
        let t0 = Instant::now();
        let end = wait_end(&s.w).last().unwrap().clone();
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "stopping took {:?}",
            t0.elapsed()
        );
        assert_eq!(
            (end.phase, end.locked, end.error.is_none()),
            (Phase::Cancelled, true, true),
            "{end:?}"
        );
        // Unlocked again at once: the old run saves nothing more; what it saved is there.
        s.w.call(|ss| ss.unlock(PASS)).unwrap();
        let tid = end.transcript_id.clone().unwrap();
        let kept = windows_done(&s.w, &tid);
        assert_eq!(kept.len() as u32, end.windows_done);
        assert!(!kept.is_empty());
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(
            windows_done(&s.w, &tid),
            kept,
            "nothing is saved after the lock"
        );
        // Nothing resumes by itself (and the unlock forgot the stopped run's state);
        // Transcribe resumes it to the end.
        assert!(transcription_status(&s.w.transcribe).is_none());
        assert_eq!(
            transcripts(&s.w, &s.recording)[0].status,
            TranscriptStatus::Running
        );
        let st = start(&s.w, &dir, &cfg, &s.recording, 8_000).unwrap();
        assert!(st.resumed);
        let end = wait_end(&s.w).last().unwrap().clone();
        assert_eq!(end.phase, Phase::Done, "{end:?}");
        assert_eq!(
            transcripts(&s.w, &s.recording)[0].status,
            TranscriptStatus::Done
        );
        // A lock after it finished forgets the finished state.
        s.w.call(|ss| {
            ss.lock();
            Ok(())
        })
        .unwrap();
        assert!(transcription_status(&s.w.transcribe).is_none());
    }
}
