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
    #[error("not allowed: {0}")]
    NotAllowed(String),
    /// Not allowed as [`Error::NotAllowed`] (same message; the CLI reports both as
    /// `not_allowed`), for the refusals the app can meet (interview status, recordings,
    /// consent to record or transcribe): a reason code the app translates. `NotAllowed` keeps
    /// free English for what only the CLI, bundles and the archive reach.
    #[error("not allowed: {0}")]
    Refused(crate::reason::Reason),
    #[error("invalid input: {0}")]
    Invalid(String),
    /// Invalid input as [`Error::Invalid`] (same message), for the refusals an interviewer
    /// meets in the app (witness profile, consent, new interview, notes, archive recipient,
    /// repeatable groups, search, transcript review, recording format and markers): a reason
    /// code the app translates. `Invalid` keeps free English for what only the CLI,
    /// bundles and internal checks reach.
    #[error("invalid input: {0}")]
    Rejected(crate::reason::Reason),
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
    /// The archive's PostgreSQL server: connecting, or a statement it refused. The message
    /// never carries row contents (only the server's message and SQLSTATE, without DETAIL).
    #[error("database server error: {0}")]
    Server(String),
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
