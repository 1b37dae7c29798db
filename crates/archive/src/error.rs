//! The archive's errors: every error of the core, plus its PostgreSQL server's. The server's
//! messages carry its text and SQLSTATE only, never DETAIL (which can quote a whole row).

use testimony_core::Error as CoreError;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Core(CoreError),
    /// The archive's PostgreSQL server: connecting, or a statement it refused.
    #[error("database server error: {0}")]
    Server(String),
}

impl Error {
    /// Every code [`Error::code`] can return: the core's and `server`.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CoreError::CODES.iter().copied().chain(["server"])
    }

    /// A stable snake_case code, as [`testimony_core::Error::code`].
    pub fn code(&self) -> &'static str {
        match self {
            Error::Core(e) => e.code(),
            Error::Server(_) => "server",
        }
    }
}

impl From<CoreError> for Error {
    /// A core error, unless it is one of ours that went through the core's bundle reader (a
    /// `BundleSink` can only return core errors): then it is taken back out.
    fn from(e: CoreError) -> Error {
        match e {
            CoreError::Sink(inner) => match inner.downcast::<Error>() {
                Ok(ours) => *ours,
                Err(other) => Error::Core(CoreError::Sink(other)),
            },
            e => Error::Core(e),
        }
    }
}

/// Into the core's error, for what the archive's `BundleSink` returns to the bundle reader.
impl From<Error> for CoreError {
    fn from(e: Error) -> CoreError {
        match e {
            Error::Core(e) => e,
            e => CoreError::Sink(Box::new(e)),
        }
    }
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Core(e.into())
    }
}

impl From<rusqlite_migration::Error> for Error {
    fn from(e: rusqlite_migration::Error) -> Error {
        Error::Core(e.into())
    }
}

impl From<testimony_core::codebook::CodebookErrors> for Error {
    fn from(e: testimony_core::codebook::CodebookErrors) -> Error {
        Error::Core(e.into())
    }
}

impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Error {
        Error::Core(e.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_error_survives_the_bundle_reader() {
        let through_core: CoreError = Error::Server("refused (SQLSTATE 23505)".into()).into();
        assert_eq!(through_core.code(), "sink");
        let back = Error::from(through_core);
        assert_eq!(back.code(), "server");
        assert_eq!(
            back.to_string(),
            "database server error: refused (SQLSTATE 23505)"
        );
        let core = Error::from(CoreError::Corrupt("page 3".into()));
        assert_eq!(core.code(), "corrupt");
        assert!(Error::codes().any(|c| c == "server"));
    }
}
