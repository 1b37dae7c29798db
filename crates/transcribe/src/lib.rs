//! On-device transcription for Testimony: whisper.cpp (through whisper-rs) behind a small
//! [`Transcriber`] trait, so the app, the CLI and the tests share one pipeline.
//!
//! - [`decode`]: audio files (symphonia; Opus through libopus), packet by packet.
//! - [`resample`]: any source to 16 kHz mono in memory, block by block.
//! - [`pipeline`]: long audio in fixed windows (memory stays flat for hours), progress with time
//!   left, cancel, resume (windows already done are skipped), repetition-loop recovery.
//! - [`whisper`]: the whisper.cpp implementation; [`model::check_model`] checks a model file
//!   before whisper.cpp sees it.
//! - [`priority`]: a lower-priority worker thread that leaves a core for recording.
//!
//! Nothing here writes audio or text to disk or logs it: segments go to the caller's callback.

pub mod decode;
pub mod error;
pub mod model;
pub mod pipeline;
pub mod priority;
pub mod repetition;
pub mod resample;
pub mod whisper;

pub use decode::{AudioFile, PCM_BLOCK_MS, PcmBlockSource, SampleSource};
pub use error::{Error, Result};
pub use model::{ModelInfo, RejectedModel, check_model, find_models};
pub use pipeline::{Flow, Outcome, Pipeline, PipelineConfig, Progress};
pub use whisper::WhisperTranscriber;

use serde::{Deserialize, Serialize};

/// A stretch of speech and its text. Times are milliseconds from the start of the recording
/// (from the pipeline; a [`Transcriber`] returns them from the start of the audio it was given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    /// The language whisper used for the window ("ko", "en", ...).
    pub language: Option<String>,
    /// Mean probability of the segment's text tokens (0–1), where the engine gives one.
    pub confidence: Option<f32>,
}

/// The spoken language: detected per window, or forced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    #[default]
    Auto,
    Ko,
    En,
}

impl Language {
    pub fn parse(s: &str) -> Result<Language> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" | "" => Ok(Language::Auto),
            "ko" | "kor" | "korean" => Ok(Language::Ko),
            "en" | "eng" | "english" => Ok(Language::En),
            _ => Err(Error::Invalid("language must be auto, ko or en".into())),
        }
    }
    /// The whisper language code, None for detection.
    pub fn code(self) -> Option<&'static str> {
        match self {
            Language::Auto => None,
            Language::Ko => Some("ko"),
            Language::En => Some("en"),
        }
    }
}

/// Settings for one call of [`Transcriber::transcribe_window`].
#[derive(Debug, Clone, PartialEq)]
pub struct WindowOptions {
    pub language: Language,
    /// Sampling temperature of the first attempt; whisper raises it on its own when a decode
    /// looks bad (its temperature fallback).
    pub temperature: f32,
    /// Condition each 30-second decode inside the window on the text before it (better
    /// punctuation and names; also what feeds repetition loops, so retries turn it off).
    /// Windows never see each other's text, so a resumed run gives what an uninterrupted one
    /// would.
    pub use_context: bool,
    /// Worker threads for whisper.cpp.
    pub threads: usize,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            language: Language::Auto,
            temperature: 0.0,
            use_context: true,
            threads: priority::worker_threads(),
        }
    }
}

/// Hooks a transcriber calls while it works on a window.
pub struct WindowHooks<'a> {
    /// Progress through the window, 0.0–1.0; returns false to stop (the call then returns
    /// [`Error::Cancelled`]).
    pub progress: &'a mut dyn FnMut(f32) -> bool,
    /// Set (by `progress` or from another thread) to stop as soon as possible.
    pub stop: &'a std::sync::atomic::AtomicBool,
}

/// Speech to text for one window of audio.
pub trait Transcriber {
    /// Transcribes `pcm_16k_mono` (16 kHz mono, values in [-1, 1]). Segment times are from the
    /// start of `pcm_16k_mono`.
    fn transcribe_window(
        &mut self,
        pcm_16k_mono: &[f32],
        opts: &WindowOptions,
        hooks: &mut WindowHooks<'_>,
    ) -> Result<Vec<Segment>>;
    /// A name for the model, stored with a transcript (e.g. "ggml-base.bin").
    fn model_name(&self) -> String;
}
