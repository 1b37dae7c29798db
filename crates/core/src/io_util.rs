//! Small I/O helpers that every layer may use: they know nothing of vaults or bundles.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// Counts bytes and hashes them while passing them on.
pub(crate) struct HashingWriter<W> {
    pub inner: W,
    pub hasher: Sha256,
    pub size: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            size: 0,
        }
    }
    pub fn finish(self) -> (W, u64, String) {
        (self.inner, self.size, hex::encode(self.hasher.finalize()))
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a new plaintext file (a WAV, a transcript) that only its owner may read: created
/// with mode 0600, never over an existing file, flushed and fsynced before it counts as
/// written, and removed again if anything fails, so that no half-written copy of testimony
/// is left behind. Every plaintext export of the CLI and the app goes through here. `body`
/// writes the content and returns what it counts (bytes, segments).
pub fn write_private_file(
    file: &Path,
    body: impl FnOnce(&mut dyn Write) -> Result<u64>,
) -> Result<u64> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let f = opts.open(file).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::AlreadyExists(file.to_path_buf()),
        kind => Error::CannotCreate {
            path: file.to_path_buf(),
            kind,
        },
    })?;
    let result = (|| {
        let mut w = BufWriter::new(&f);
        let n = body(&mut w)?;
        w.flush()?;
        f.sync_all()?;
        Ok(n)
    })();
    if result.is_err() {
        let _ = fs::remove_file(file);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_private_file_is_owner_only_and_a_failed_one_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let ok = dir.path().join("ok.txt");
        let n = write_private_file(&ok, |w| {
            w.write_all(b"hello")?;
            Ok(5)
        })
        .unwrap();
        assert_eq!(n, 5);
        assert_eq!(fs::read(&ok).unwrap(), b"hello");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                fs::metadata(&ok).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        // Never over an existing file, which stays as it was.
        let again = write_private_file(&ok, |w| {
            w.write_all(b"other")?;
            Ok(5)
        });
        assert!(matches!(again, Err(Error::AlreadyExists(_))));
        assert_eq!(fs::read(&ok).unwrap(), b"hello");
        // A body that fails half-way leaves nothing behind.
        let bad = dir.path().join("bad.txt");
        let err = write_private_file(&bad, |w| {
            w.write_all(b"half of it")?;
            Err(Error::invalid("stopped".into()))
        });
        assert!(err.is_err());
        assert!(!bad.exists());
    }
}
