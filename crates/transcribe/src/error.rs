//! Errors. Messages name files the user chose (a model path) and what is wrong with them; they
//! never carry audio, transcript text or an audio file's name (a file name can name a witness).

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "no model file at {0}; copy a whisper.cpp GGML model file (ggml-*.bin) there or choose another with --model"
    )]
    ModelMissing(PathBuf),
    #[error("{0} is not a whisper.cpp model file (GGML): {1}")]
    ModelNotGgml(PathBuf, &'static str),
    #[error(
        "the model file {path} is cut short ({actual} bytes, its contents need {needed}); copy it again"
    )]
    ModelTruncated {
        path: PathBuf,
        actual: u64,
        needed: u64,
    },
    #[error("the model file {0} is damaged or of an unsupported kind: {1}")]
    ModelInvalid(PathBuf, String),
    #[error(
        "whisper.cpp could not load the model file {0} (it passed the file checks; it may be from an incompatible whisper.cpp version)"
    )]
    ModelLoad(PathBuf),
    #[error(
        "this model ({0}) understands English only; use a multilingual model for --language {1}"
    )]
    ModelLanguage(String, String),
    #[error("unsupported audio file: {0}")]
    AudioUnsupported(String),
    #[error("the audio file is damaged: {0}")]
    AudioMalformed(String),
    #[error("the audio file holds no audio")]
    AudioEmpty,
    #[error("resampling failed: {0}")]
    Resample(String),
    #[error("transcription failed in whisper.cpp: {0}")]
    Whisper(String),
    #[error("cancelled")]
    Cancelled,
    #[error("invalid option: {0}")]
    Invalid(String),
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// From the caller's own callbacks (saving a window, reading samples), passed through.
    #[error("{0}")]
    Source(Box<dyn std::error::Error + Send + Sync>),
}
