//! Key handling. The passphrase never encrypts data directly: Argon2id turns it into a
//! key-encryption key that unwraps a random 256-bit data key (XChaCha20-Poly1305). SQLCipher
//! gets the raw data key. Changing the passphrase rewrites only the small header, atomically,
//! so a crash leaves either the old or the new passphrase working.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::reason::Reason;

pub const HEADER_FILE: &str = "vault.json";
pub const HEADER_MAGIC: &str = "testimony-vault";
/// Header format this build writes (and the newest it reads). The format also says how the
/// store's SQLCipher pages are authenticated ([`PageHmac`]): 1 with HMAC-SHA512 (SQLCipher 4's
/// default), 2 with HMAC-SHA256.
pub const HEADER_FORMAT: u64 = 2;

/// The MAC on every SQLCipher page of a store (vault or archive database), fixed when the
/// store is created and recorded in its header's format. HMAC-SHA256 since format 2: as a MAC
/// it is as sound, and on CPUs with SHA extensions it costs half of HMAC-SHA512, which was the
/// largest single cost of reading audio out of a vault (docs/performance.md, "Bundles").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageHmac {
    Sha512,
    Sha256,
}

impl PageHmac {
    pub fn of_format(format: u64) -> PageHmac {
        if format >= 2 {
            PageHmac::Sha256
        } else {
            PageHmac::Sha512
        }
    }
}
/// Floor for Argon2id memory (KiB): 64 MiB, as the threat model requires.
pub const MIN_MEMORY_KIB: u32 = 64 * 1024;
/// Larger headers are not ours; refuse before parsing.
const MAX_HEADER_BYTES: u64 = 64 * 1024;

pub type DataKey = Zeroizing<[u8; 32]>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    pub memory_kib: u32,
    pub iterations: u32,
    pub parallelism: u32,
}

impl Default for KdfParams {
    fn default() -> Self {
        KdfParams {
            memory_kib: MIN_MEMORY_KIB,
            iterations: 3,
            parallelism: 1,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Kdf {
    pub algorithm: String,
    #[serde(flatten)]
    pub params: KdfParams,
    pub salt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WrappedKey {
    pub algorithm: String,
    pub nonce: String,
    pub ciphertext: String,
}

/// The only plaintext in a vault directory: what is needed to derive the key, nothing more.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub magic: String,
    pub format: u64,
    pub kdf: Kdf,
    pub wrapped_key: WrappedKey,
}

fn derive_kek(passphrase: &str, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>> {
    let salt =
        hex::decode(&kdf.salt).map_err(|_| Error::Corrupt("vault header: bad salt".into()))?;
    let p = kdf.params;
    let params = Params::new(p.memory_kib, p.iterations, p.parallelism, Some(32))
        .map_err(|e| Error::Corrupt(format!("vault header: bad KDF parameters ({e})")))?;
    let mut out = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), &salt, out.as_mut())
        .map_err(|e| Error::Corrupt(format!("vault header: key derivation failed ({e})")))?;
    Ok(out)
}

/// Which kind of encrypted store a header belongs to: a field vault or the central archive
/// share the same design (see ARCHITECTURE.md) but never each other's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderSpec {
    pub magic: &'static str,
    pub file: &'static str,
}

pub const VAULT_HEADER: HeaderSpec = HeaderSpec {
    magic: HEADER_MAGIC,
    file: HEADER_FILE,
};
pub const ARCHIVE_HEADER: HeaderSpec = HeaderSpec {
    magic: "testimony-archive",
    file: "archive.json",
};

/// Binds the wrapped key to the header's parameters: editing them breaks the unwrap.
fn aad(magic: &str, format: u64, kdf: &Kdf) -> Vec<u8> {
    let mut v = format!("{magic}/{format}/").into_bytes();
    v.extend(serde_json::to_vec(kdf).expect("serialisable"));
    v
}

impl Header {
    /// A new header wrapping `key` under `passphrase`, with a fresh salt.
    pub fn seal(key: &DataKey, passphrase: &str, params: KdfParams) -> Result<Header> {
        Self::seal_for(VAULT_HEADER, key, passphrase, params)
    }

    pub fn seal_for(
        spec: HeaderSpec,
        key: &DataKey,
        passphrase: &str,
        params: KdfParams,
    ) -> Result<Header> {
        Self::seal_format(spec, key, passphrase, params, HEADER_FORMAT)
    }

    /// Like [`Header::seal_for`] in a given format: a new passphrase keeps the store's format
    /// (its pages stay as they were written), and tests build stores of earlier formats.
    pub fn seal_format(
        spec: HeaderSpec,
        key: &DataKey,
        passphrase: &str,
        params: KdfParams,
        format: u64,
    ) -> Result<Header> {
        if !(1..=HEADER_FORMAT).contains(&format) {
            return Err(Error::invalid(format!("no header format {format}")));
        }
        let mut salt = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            params,
            salt: hex::encode(salt),
        };
        let kek = derive_kek(passphrase, &kdf)?;
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let aad = aad(spec.magic, format, &kdf);
        let ct = cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: key.as_ref(),
                    aad: &aad,
                },
            )
            .map_err(|_| Error::Corrupt("key wrapping failed".into()))?;
        Ok(Header {
            magic: spec.magic.into(),
            format,
            kdf,
            wrapped_key: WrappedKey {
                algorithm: "xchacha20poly1305".into(),
                nonce: hex::encode(nonce),
                ciphertext: hex::encode(ct),
            },
        })
    }

    /// How the store's database pages are authenticated.
    pub fn page_hmac(&self) -> PageHmac {
        PageHmac::of_format(self.format)
    }

    /// Recovers the data key; a wrong passphrase fails the authentication tag.
    pub fn unseal(&self, passphrase: &str) -> Result<DataKey> {
        let kek = derive_kek(passphrase, &self.kdf)?;
        let nonce = hex::decode(&self.wrapped_key.nonce)
            .ok()
            .filter(|n| n.len() == 24);
        let ct = hex::decode(&self.wrapped_key.ciphertext).ok();
        let (Some(nonce), Some(ct)) = (nonce, ct) else {
            return Err(Error::Corrupt("vault header: bad wrapped key".into()));
        };
        let cipher = XChaCha20Poly1305::new(kek.as_ref().into());
        let aad = aad(&self.magic, self.format, &self.kdf);
        let pt = Zeroizing::new(
            cipher
                .decrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: &ct,
                        aad: &aad,
                    },
                )
                .map_err(|_| Error::WrongPassphrase)?,
        );
        let mut key = Zeroizing::new([0u8; 32]);
        if pt.len() != 32 {
            return Err(Error::Corrupt(
                "vault header: wrapped key has the wrong length".into(),
            ));
        }
        key.copy_from_slice(&pt);
        Ok(key)
    }

    /// Reads and checks the header of the vault at `dir`. Reads only.
    pub fn read(dir: &Path) -> Result<Header> {
        Self::read_for(VAULT_HEADER, dir)
    }

    pub fn read_for(spec: HeaderSpec, dir: &Path) -> Result<Header> {
        let file = spec.file;
        let not_vault = |reason: &str| Error::NotAVault {
            path: dir.to_path_buf(),
            reason: reason.into(),
        };
        if !dir.is_dir() {
            return Err(not_vault("no such directory"));
        }
        let path = dir.join(file);
        let meta = fs::metadata(&path).map_err(|_| not_vault(&format!("no {file} header")))?;
        if meta.len() > MAX_HEADER_BYTES {
            return Err(not_vault(&format!("{file} is too large to be a header")));
        }
        let bytes = fs::read(&path)?;
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|_| not_vault(&format!("{file} is not a readable header")))?;
        if v.get("magic").and_then(|m| m.as_str()) != Some(spec.magic) {
            return Err(not_vault(&format!(
                "{file} is not a Testimony {} header",
                spec.magic.trim_start_matches("testimony-")
            )));
        }
        let format = v
            .get("format")
            .and_then(|f| f.as_u64())
            .ok_or_else(|| Error::Corrupt("vault header: no format".into()))?;
        if format > HEADER_FORMAT {
            return Err(Error::NewerVersion {
                what: "vault header format",
                found: format,
                supported: HEADER_FORMAT,
            });
        }
        let h: Header =
            serde_json::from_value(v).map_err(|e| Error::Corrupt(format!("vault header: {e}")))?;
        if h.kdf.algorithm != "argon2id" || h.wrapped_key.algorithm != "xchacha20poly1305" {
            return Err(Error::Corrupt("vault header: unknown algorithm".into()));
        }
        if h.kdf.params.memory_kib < MIN_MEMORY_KIB {
            return Err(Error::Corrupt(
                "vault header: key derivation parameters below the minimum".into(),
            ));
        }
        Ok(h)
    }

    /// Replaces the header atomically: temp file, fsync, rename, fsync directory.
    pub fn write_atomic(&self, dir: &Path) -> Result<()> {
        self.write_atomic_for(VAULT_HEADER, dir)
    }

    pub fn write_atomic_for(&self, spec: HeaderSpec, dir: &Path) -> Result<()> {
        let tmp = dir.join(format!("{}.tmp", spec.file));
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
            let mut f = opts.open(&tmp)?;
            f.write_all(&serde_json::to_vec_pretty(self).expect("serialisable"))?;
            f.sync_all()?;
        }
        fs::rename(&tmp, dir.join(spec.file))?;
        sync_dir(dir)?;
        Ok(())
    }
}

pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

pub fn random_data_key() -> DataKey {
    let mut k = Zeroizing::new([0u8; 32]);
    rand::rngs::OsRng.fill_bytes(k.as_mut());
    k
}

/// A floor against typos and trivially guessable passphrases. The app shows a strength meter;
/// the core only refuses what is clearly unsafe.
pub fn check_passphrase_strength(p: &str) -> Result<()> {
    let chars = p.chars().count();
    if chars < 10 {
        return Err(Error::WeakPassphrase(Reason::PassphraseTooShort {
            min: 10,
        }));
    }
    let distinct: std::collections::HashSet<char> = p.chars().collect();
    if distinct.len() < 5 {
        return Err(Error::WeakPassphrase(Reason::PassphraseRepetitive));
    }
    Ok(())
}
