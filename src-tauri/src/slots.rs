//! State shared between the vault thread and the command threads, without the vault: the
//! recording in progress (its recorder's counters, pause and resume) and the transcription in
//! the background. Commands read these without waiting for the vault thread; `ops`, `audio`,
//! `transcribe` and `worker` all build on this module, which imports none of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;

use serde::Serialize;
use testimony_core::audio::capture::{Level, Recorder};

use crate::error::AppError;

// ---- the recording in progress ----

/// The recording in progress, if any (at most one per app).
pub type AudioSlot = Arc<Mutex<Option<Active>>>;

pub struct Active {
    pub recording_id: String,
    pub interview_id: String,
    pub sample_rate: u32,
    pub(crate) recorder: Recorder,
}

/// What the recording panel shows: the clock, the level meter, the state.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RecordingState {
    pub recording_id: String,
    pub interview_id: String,
    pub sample_rate: u32,
    /// Audio captured while not paused: the position a marker gets.
    pub elapsed_ms: u64,
    /// Audio committed to the vault so far.
    pub saved_ms: u64,
    pub paused: bool,
    /// False once the input ended or failed: the UI then stops the recording to learn why.
    pub running: bool,
    pub failed: bool,
    pub level: Level,
}

pub(crate) fn audio_slot(a: &AudioSlot) -> MutexGuard<'_, Option<Active>> {
    // A panic elsewhere while holding the lock leaves the recorder usable.
    a.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn recording_state(a: &Active) -> RecordingState {
    let s = a.recorder.status();
    RecordingState {
        recording_id: a.recording_id.clone(),
        interview_id: a.interview_id.clone(),
        sample_rate: a.sample_rate,
        elapsed_ms: s.elapsed_ms,
        saved_ms: s.saved_ms,
        paused: s.paused,
        running: s.running,
        failed: s.failed,
        level: s.level,
    }
}

/// The recording in progress (no vault access: read from the recorder's counters).
pub fn recording_status(audio: &AudioSlot) -> Option<RecordingState> {
    audio_slot(audio).as_ref().map(recording_state)
}

/// Whether audio is being captured now (not paused, not failed): the idle lock waits then.
pub fn capturing(audio: &AudioSlot) -> bool {
    audio_slot(audio).as_ref().is_some_and(|a| {
        let s = a.recorder.status();
        s.running && !s.paused
    })
}

pub fn pause_recording(audio: &AudioSlot, pause: bool) -> Result<RecordingState, AppError> {
    let g = audio_slot(audio);
    let a = g.as_ref().ok_or_else(|| AppError::code("not_recording"))?;
    if pause {
        a.recorder.pause();
    } else {
        a.recorder.resume();
    }
    Ok(recording_state(a))
}

// ---- the transcription in the background ----

/// The transcription in the background, if any (one at a time: on a 2-core laptop a second
/// one would only slow both and the recording down).
pub type TranscribeSlot = Arc<Mutex<Option<Job>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS), ts(rename = "TranscriptionPhase"))]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// The model is being loaded.
    Loading,
    Running,
    Done,
    /// By the cancel button or a lock; the finished windows are kept.
    Cancelled,
    Failed,
}

/// What the UI shows about the transcription. No content: ids, numbers, an error code.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct TranscriptionState {
    pub recording_id: String,
    pub interview_id: String,
    /// Known once the vault has started (or resumed) the transcript.
    pub transcript_id: Option<String>,
    /// The model's file name.
    pub model: String,
    /// The language whisper is told (None: detected).
    pub language: Option<String>,
    /// An earlier run saved windows of this transcript.
    pub resumed: bool,
    pub phase: Phase,
    pub percent: Option<f32>,
    pub eta_seconds: Option<u64>,
    /// Windows saved in the vault (by this run and earlier ones).
    pub windows_done: u32,
    pub windows_total: Option<u32>,
    /// Stopped because the vault was locked.
    pub locked: bool,
    pub error: Option<AppError>,
}

pub struct Job {
    pub(crate) state: TranscriptionState,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl Job {
    /// Its thread has not ended yet (it may still be stopping after a cancel or a lock).
    pub(crate) fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|h| !h.is_finished())
    }
}

pub(crate) fn transcribe_slot(s: &TranscribeSlot) -> MutexGuard<'_, Option<Job>> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The transcription as the UI shows it (no vault access).
pub fn transcription_status(s: &TranscribeSlot) -> Option<TranscriptionState> {
    transcribe_slot(s).as_ref().map(|j| j.state.clone())
}

/// Asks the running transcription to stop; the window being inferred is dropped, the
/// finished ones are kept. Returns the state (it turns `cancelled` once the thread stopped).
pub fn cancel_transcription(s: &TranscribeSlot) -> Option<TranscriptionState> {
    let g = transcribe_slot(s);
    let j = g.as_ref()?;
    j.stop.store(true, Ordering::SeqCst);
    Some(j.state.clone())
}
