//! Errors the core reports. Messages never contain interview content, names or key material:
//! they name ids, fields and file positions only, because they end up in terminals and logs.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("wrong passphrase")]
    WrongPassphrase,
    #[error("not a Testimony vault: {path} ({reason})")]
    NotAVault { path: PathBuf, reason: String },
    #[error("the vault is damaged: {0}")]
    Corrupt(String),
    /// A recording's audio cannot be read: the vault file is damaged there (SQLCipher's page
    /// authentication or SQLite's structure check failed). The check on unlock leaves audio
    /// out, so the vault opened; but after such a failure SQLCipher refuses every further read
    /// on the open connection: [`Vault::reconnect`](crate::Vault::reconnect) (the app does it
    /// at once), or opening the vault again, reads the rest again.
    #[error(
        "the vault is damaged: recording {recording_id}, chunk {chunk} cannot be read; open the vault again before going on"
    )]
    DamagedAudio { recording_id: String, chunk: u64 },
    #[error(
        "this vault was created by a newer version of Testimony ({what} {found}, this version supports up to {supported}); upgrade Testimony to open it"
    )]
    NewerVersion {
        what: &'static str,
        found: u64,
        supported: u64,
    },
    #[error("the vault is open in another Testimony process ({0}); close it there first")]
    Locked(PathBuf),
    #[error("a vault or other files already exist at {0}; choose an empty or new directory")]
    AlreadyExists(PathBuf),
    /// A new plaintext file could not be created there (no such folder, no permission, a
    /// read-only disk): nothing was written.
    #[error("cannot create {path}: {kind}")]
    CannotCreate {
        path: PathBuf,
        kind: std::io::ErrorKind,
    },
    #[error("passphrase too weak: {0}")]
    WeakPassphrase(crate::reason::Reason),
    #[error("{0}")]
    Codebook(#[from] crate::codebook::CodebookErrors),
    /// `reason` is a code with parameters (translated by the app) whose English the CLI prints.
    #[error("invalid answer to '{question}': {reason}")]
    InvalidAnswer {
        question: String,
        reason: crate::reason::Reason,
    },
    #[error("{0} not found: {1}")]
    NotFound(&'static str, String),
    /// Not allowed now (interview status, recordings, consent to record or transcribe, and
    /// what only the CLI, bundles and the archive reach): a reason code the app translates, or
    /// [`Reason::Detail`](crate::reason::Reason::Detail) with fixed English.
    #[error("not allowed: {0}")]
    NotAllowed(crate::reason::Reason),
    /// Invalid input: a reason code the app translates (witness profile, consent, new
    /// interview, notes, archive recipient, repeatable groups, search, transcript review,
    /// recording format and markers), or [`Reason::Detail`](crate::reason::Reason::Detail)
    /// with fixed English for what only the CLI, bundles and internal checks reach.
    #[error("invalid input: {0}")]
    Invalid(crate::reason::Reason),
    /// Always [`Reason::RequiredUnanswered`](crate::reason::Reason::RequiredUnanswered), whose
    /// English names the unanswered questions by codebook path.
    #[error("cannot complete the interview; {0}")]
    Incomplete(crate::reason::Reason),
    #[error("audit log check failed: {0}")]
    AuditBroken(String),
    #[error("bundle rejected: {0}")]
    BadBundle(String),
    #[error("nothing to export: {0}")]
    NothingToExport(String),
    #[error("storage error: {0}")]
    Db(#[from] rusqlite::Error),
    /// An error of whatever a bundle is read into (a `BundleSink`, such as the archive's
    /// PostgreSQL store), passed through the reader unchanged; the importer takes it back out.
    #[error("{0}")]
    Sink(Box<dyn std::error::Error + Send + Sync>),
    /// Audio capture or an audio file: no input device, the device failed, a file that is not
    /// a usable WAV. Never carries audio.
    #[error("audio error: {0}")]
    Audio(String),
    /// The user cancelled a long operation (an export); nothing was written or recorded.
    #[error("cancelled; nothing was written")]
    Cancelled,
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// Invalid input, in fixed English without a reason code of its own
    /// ([`Reason::Detail`](crate::reason::Reason::Detail)).
    pub fn invalid(message: String) -> Error {
        Error::Invalid(crate::reason::Reason::Detail { message })
    }

    /// Not allowed, in fixed English without a reason code of its own.
    pub fn not_allowed(message: String) -> Error {
        Error::NotAllowed(crate::reason::Reason::Detail { message })
    }

    /// Every code [`Error::code`] can return. The CLI (exit codes, `--json`) and the app
    /// (en/ko messages) each have a test that fails when one of these has no answer there.
    pub const CODES: &'static [&'static str] = &[
        "wrong_passphrase",
        "not_a_vault",
        "corrupt",
        "damaged_recording",
        "newer_version",
        "vault_in_use",
        "already_exists",
        "cannot_create",
        "weak_passphrase",
        "codebook",
        "invalid_answer",
        "not_found",
        "not_allowed",
        "invalid",
        "incomplete",
        "audit_broken",
        "bad_bundle",
        "nothing_to_export",
        "storage",
        "sink",
        "audio",
        "cancelled",
        "io",
    ];

    /// A stable snake_case code for this error: what scripts match on (`--json`), what picks the
    /// CLI's exit status and the app's translated message. Codes never change meaning; a new
    /// kind of failure gets a new code.
    pub fn code(&self) -> &'static str {
        match self {
            Error::WrongPassphrase => "wrong_passphrase",
            Error::NotAVault { .. } => "not_a_vault",
            Error::Corrupt(_) => "corrupt",
            // Only this recording: the vault opened, and the rest of it reads.
            Error::DamagedAudio { .. } => "damaged_recording",
            Error::NewerVersion { .. } => "newer_version",
            // Another process holds the vault (not "the vault is not unlocked").
            Error::Locked(_) => "vault_in_use",
            Error::AlreadyExists(_) => "already_exists",
            Error::CannotCreate { .. } => "cannot_create",
            Error::WeakPassphrase(_) => "weak_passphrase",
            Error::Codebook(_) => "codebook",
            Error::InvalidAnswer { .. } => "invalid_answer",
            Error::NotFound(..) => "not_found",
            Error::NotAllowed(_) => "not_allowed",
            Error::Invalid(_) => "invalid",
            Error::Incomplete(_) => "incomplete",
            Error::AuditBroken(_) => "audit_broken",
            Error::BadBundle(_) => "bad_bundle",
            Error::NothingToExport(_) => "nothing_to_export",
            Error::Db(_) | Error::Migration(_) => "storage",
            Error::Sink(_) => "sink",
            Error::Audio(_) => "audio",
            Error::Cancelled => "cancelled",
            Error::Io(_) => "io",
        }
    }

    /// The reason code with parameters, for the errors that carry one (the app translates it).
    pub fn reason(&self) -> Option<&crate::reason::Reason> {
        match self {
            Error::Invalid(crate::reason::Reason::Detail { .. })
            | Error::NotAllowed(crate::reason::Reason::Detail { .. }) => None,
            Error::WeakPassphrase(r)
            | Error::NotAllowed(r)
            | Error::Invalid(r)
            | Error::Incomplete(r)
            | Error::InvalidAnswer { reason: r, .. } => Some(r),
            _ => None,
        }
    }

    /// English detail that a screen may show beside the translated code: only what names no
    /// content (what was not found, the audio system's own message, the core's fixed English
    /// for refusals that carry no reason code). Storage and server messages are never shown:
    /// a database message could in principle quote a value.
    pub fn shown_detail(&self) -> Option<String> {
        match self {
            Error::NotFound(what, _) => Some((*what).to_string()),
            Error::NotAllowed(crate::reason::Reason::Detail { message })
            | Error::Invalid(crate::reason::Reason::Detail { message })
            | Error::Audio(message) => Some(message.clone()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_is_listed_once() {
        let samples = [
            Error::WrongPassphrase,
            Error::NotAVault {
                path: "x".into(),
                reason: "y".into(),
            },
            Error::Corrupt("x".into()),
            Error::DamagedAudio {
                recording_id: "r".into(),
                chunk: 0,
            },
            Error::NewerVersion {
                what: "x",
                found: 2,
                supported: 1,
            },
            Error::Locked("x".into()),
            Error::AlreadyExists("x".into()),
            Error::CannotCreate {
                path: "x".into(),
                kind: std::io::ErrorKind::NotFound,
            },
            Error::WeakPassphrase(crate::reason::Reason::NotANumber),
            Error::Codebook(crate::codebook::CodebookErrors {
                file: "x".into(),
                errors: vec![],
            }),
            Error::InvalidAnswer {
                question: "q".into(),
                reason: crate::reason::Reason::NotANumber,
            },
            Error::NotFound("interview", "x".into()),
            Error::not_allowed("x".into()),
            Error::NotAllowed(crate::reason::Reason::NotANumber),
            Error::invalid("x".into()),
            Error::Invalid(crate::reason::Reason::NotANumber),
            Error::Incomplete(crate::reason::Reason::NotANumber),
            Error::AuditBroken("x".into()),
            Error::BadBundle("x".into()),
            Error::NothingToExport("x".into()),
            Error::Db(rusqlite::Error::InvalidQuery),
            Error::Sink("x".into()),
            Error::Audio("x".into()),
            Error::Cancelled,
            Error::Io(std::io::Error::other("x")),
        ];
        let mut seen: Vec<&str> = samples.iter().map(Error::code).collect();
        seen.sort();
        seen.dedup();
        let mut listed = Error::CODES.to_vec();
        listed.sort();
        let before = listed.len();
        listed.dedup();
        assert_eq!(before, listed.len(), "a code is listed twice");
        assert_eq!(seen, listed, "Error::CODES and Error::code disagree");
        for c in Error::CODES {
            assert!(
                c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
                "{c} is not snake_case"
            );
        }
    }
}
