//! Testimony core: the encrypted vault, the codebook, the records and their rules.
//! No UI and no async runtime: the CLI, the desktop app and the archive all build on this.

pub mod audio;
pub mod audit;
pub mod bundle;
pub mod codebook;
pub mod demo;
pub mod error;
pub mod form;
pub mod io_util;
pub mod keys;
pub mod model;
pub mod partial_date;
pub mod process;
pub mod reason;
mod records;
pub mod schema;
mod search;
mod store;
pub mod transcript;
pub mod vault;

pub use error::{Error, Result};
pub use reason::Reason;
pub use records::{MAX_ATTACHMENT_BYTES, MAX_NOTE_CHARS};
pub use search::SearchHit;
pub use vault::{CreateOptions, Vault};
