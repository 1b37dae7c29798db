//! Errors as the UI receives them: a stable code (translated by the UI) and, for the errors
//! whose core message is written for people and carries no content (validation reasons,
//! weak-passphrase advice), that message as `detail`. Nothing here is logged.

use serde::Serialize;
use testimony_core::Error;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct AppError {
    pub code: String,
    pub detail: Option<String>,
}

impl AppError {
    pub fn code(code: &str) -> AppError {
        AppError { code: code.into(), detail: None }
    }
    pub fn with_detail(code: &str, detail: impl Into<String>) -> AppError {
        AppError { code: code.into(), detail: Some(detail.into()) }
    }
    /// The vault is not open (never unlocked, locked by the user, or by the idle timer).
    pub fn locked() -> AppError {
        AppError::code("locked")
    }
}

/// Only the code: an `AppError` passes through the transcription engine's callbacks as a
/// boxed error (see `transcribe.rs`) and comes out again by downcasting.
impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)
    }
}

impl std::error::Error for AppError {}

impl From<Error> for AppError {
    fn from(e: Error) -> AppError {
        match e {
            Error::WrongPassphrase => AppError::code("wrong_passphrase"),
            Error::NotAVault { .. } => AppError::code("not_a_vault"),
            Error::Corrupt(_) => AppError::code("corrupt"),
            Error::NewerVersion { .. } => AppError::code("newer_version"),
            Error::Locked(_) => AppError::code("vault_in_use"),
            Error::AlreadyExists(_) => AppError::code("already_exists"),
            Error::WeakPassphrase(m) => AppError::with_detail("weak_passphrase", m),
            // The reason never repeats typed text (core invariant 4); the question id is known
            // to the UI already.
            Error::InvalidAnswer { reason, .. } => AppError::with_detail("invalid_answer", reason),
            Error::NotFound(what, _) => AppError::with_detail("not_found", what),
            Error::NotAllowed(m) => AppError::with_detail("not_allowed", m),
            Error::Invalid(m) => AppError::with_detail("invalid", m),
            Error::Incomplete(m) => AppError::with_detail("incomplete", m),
            Error::NothingToExport(m) => AppError::with_detail("nothing_to_export", m),
            Error::AuditBroken(_) => AppError::code("audit_broken"),
            Error::Codebook(_) => AppError::code("codebook"),
            Error::Io(_) => AppError::code("io"),
            // Capture or device failures: the core's message names the device's problem
            // (never audio), e.g. the audio system's own error.
            Error::Audio(m) => AppError::with_detail("audio", m),
            // The interviewer cancelled an export: nothing was written.
            Error::Cancelled => AppError::code("cancelled"),
            // Storage and everything else: no detail, since a database message could in
            // principle quote a value.
            _ => AppError::code("storage"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_people_facing_messages_become_details() {
        let e: AppError = Error::Server("row (\"secret\") violates".into()).into();
        assert_eq!(e, AppError::code("storage"));
        let e: AppError = Error::Corrupt("page 3".into()).into();
        assert_eq!(e, AppError::code("corrupt"));
        let e: AppError = Error::Io(std::io::Error::other("/home/x/file")).into();
        assert_eq!(e, AppError::code("io"));
        let e: AppError = Error::InvalidAnswer { question: "q".into(), reason: "expected a number".into() }.into();
        assert_eq!(e, AppError::with_detail("invalid_answer", "expected a number"));
        let e: AppError = Error::NotFound("witness", "W-2026-0001".into()).into();
        assert_eq!(e, AppError::with_detail("not_found", "witness"));
        let e: AppError = Error::Audio("cannot open the audio input (device busy)".into()).into();
        assert_eq!(e, AppError::with_detail("audio", "cannot open the audio input (device busy)"));
        assert_eq!(AppError::from(Error::Cancelled), AppError::code("cancelled"));
    }
}
