//! The vault as the front-ends open it: the storage (`store`) plus the repairs that the layers
//! above it need on every open. This module sits at the top of the core's layers so that
//! storage never calls upward:
//!
//! ```text
//! vault, demo                       the façade the CLI and the app use
//! bundle (export, read, returns)    what travels between devices
//! records, audio, transcript        the testimony itself and its rules
//! audit, search                     the hash chain and the search index
//! store                             SQLCipher database, header, lock, transactions
//! keys, schema, codebook, model, reason, error, io_util, ...   no vault at all
//! ```
//! `tests/tests/layers.rs` (the workspace's scenario crate) fails when a module imports one
//! above it.

use std::path::Path;

use crate::error::Result;
pub use crate::store::{
    CreateOptions, DB_FILE, LOCK_FILE, Vault, configure_db, lock_dir, new_id, now,
    open_encrypted_db,
};

impl Vault {
    /// Opens an existing vault. Every failure leaves the directory untouched.
    pub fn open(dir: &Path, passphrase: &str) -> Result<Vault> {
        let mut v = Vault::open_storage(dir, passphrase)?;
        repair_on_open(&mut v)?;
        Ok(v)
    }

    /// BENCHMARK ONLY (feature `bench-plaintext`): opens a vault made by
    /// [`Vault::create_plaintext_for_bench`] through the same path as [`Vault::open`].
    #[cfg(feature = "bench-plaintext")]
    pub fn open_plaintext_for_bench(dir: &Path, passphrase: &str) -> Result<Vault> {
        let mut v = Vault::open_plaintext_storage_for_bench(dir, passphrase)?;
        repair_on_open(&mut v)?;
        Ok(v)
    }
}

fn repair_on_open(v: &mut Vault) -> Result<()> {
    // A recording the last process never stopped (it crashed or lost power) is stopped now,
    // with the chunks that were committed.
    crate::audio::recover_interrupted(v)?;
    Ok(())
}
