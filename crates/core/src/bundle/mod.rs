//! Bundles: how records travel from a field vault to the archive. The format is specified in
//! docs/bundle-format.md: age( zstd( tar ) ) with a signed manifest first. `export` writes
//! them from a vault, `read` verifies and streams them into whatever imports them.

mod export;
mod plan;
mod read;
mod returns;
mod writers;

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

pub use export::{ExportOptions, ExportPhase, ExportProgress, ExportReport};
pub use read::{
    BundleSink, ReadOutcome, RecordKind, decrypt, plain_file_name, read_bundle, read_decrypted,
};
pub use returns::{
    RETURN_KINDS, ReturnAudio, ReturnBundle, ReturnImportReport, WrittenBundle, write_return_bundle,
};

pub const FORMAT: &str = "testimony-bundle";
pub const FORMAT_VERSION: u32 = 1;
pub const SIGNATURE_CONTEXT: &[u8] = b"testimony-bundle-signature-v1\n";

/// Bundle kinds: a device's `incremental` or `full` export to the archive, or a `return`
/// bundle from the archive to one device.
pub const KIND_INCREMENTAL: &str = "incremental";
pub const KIND_FULL: &str = "full";
pub const KIND_RETURN: &str = "return";

pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;
pub const MAX_RECORDS_FILE_BYTES: u64 = 1 << 30;
pub const MAX_LINE_BYTES: usize = 4 << 20;
pub const MAX_CODEBOOK_BYTES: u64 = 4 << 20;
/// A recording's WAV file: the format's own limit (a 32-bit data size).
pub const MAX_AUDIO_BYTES: u64 = u32::MAX as u64;
/// How a recording's audio travels: `audio/<recording id>.wav`, canonical 44-byte-header PCM
/// WAV, 16-bit little-endian, the recording's rate and channels.
pub const BUNDLE_AUDIO_FORMAT: &str = "wav-pcm16";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: String,
    pub format_version: u32,
    pub bundle_id: String,
    pub kind: String,
    pub device_id: String,
    pub device_public_key: String,
    pub sequence: i64,
    pub previous_bundle_hash: Option<String>,
    pub created_at: String,
    pub audit_from_seq: i64,
    pub audit_to_seq: i64,
    pub audit_head_hash: String,
    pub codebooks: Vec<CodebookRef>,
    pub counts: Counts,
    pub withheld: Withheld,
    pub files: Vec<FileEntry>,
    /// Device bundles: the device's own age recipient, so that the archive can encrypt return
    /// bundles to it. Signed with the rest of the manifest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_recipient: Option<String>,
    /// Return bundles only: the signing key (hex) of the one device the bundle is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_device: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CodebookRef {
    pub id: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Counts {
    pub witnesses: u64,
    pub witness_identities: u64,
    pub consents: u64,
    pub interviews: u64,
    pub group_instances: u64,
    pub answers: u64,
    pub notes: u64,
    #[serde(default)]
    pub recordings: u64,
    #[serde(default)]
    pub audio_markers: u64,
    #[serde(default)]
    pub transcripts: u64,
    #[serde(default)]
    pub transcript_segments: u64,
    pub attachments: u64,
    pub tombstones: u64,
    pub audit_entries: u64,
}

impl Counts {
    pub(crate) fn add(&mut self, kind: RecordKind) {
        let c = match kind {
            RecordKind::Witness => &mut self.witnesses,
            RecordKind::WitnessIdentity => &mut self.witness_identities,
            RecordKind::Consent => &mut self.consents,
            RecordKind::Interview => &mut self.interviews,
            RecordKind::GroupInstance => &mut self.group_instances,
            RecordKind::Answer => &mut self.answers,
            RecordKind::Note => &mut self.notes,
            RecordKind::Recording => &mut self.recordings,
            RecordKind::AudioMarker => &mut self.audio_markers,
            RecordKind::Transcript => &mut self.transcripts,
            RecordKind::TranscriptSegment => &mut self.transcript_segments,
            RecordKind::Attachment => &mut self.attachments,
            RecordKind::Tombstone => &mut self.tombstones,
        };
        *c += 1;
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Withheld {
    /// Witnesses whose records were left out.
    pub witnesses: u64,
    /// Records left out (all types together).
    pub records: u64,
    pub reasons: WithheldReasons,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WithheldReasons {
    pub no_share_consent: u64,
    pub consent_withdrawn: u64,
    pub no_consent_recorded: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    pub path: String,
    pub size: u64,
    pub sha256: String,
}

/// An audit entry as carried in a bundle; entries about withheld records keep only the chain.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BundleAuditEntry {
    pub seq: i64,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub redacted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub record_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

pub fn manifest_hash(manifest_bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(manifest_bytes))
}

pub(crate) fn sign_manifest(key: &SigningKey, manifest_bytes: &[u8]) -> String {
    let mut msg = SIGNATURE_CONTEXT.to_vec();
    msg.extend_from_slice(manifest_bytes);
    hex::encode(key.sign(&msg).to_bytes())
}

/// Checks `sig_hex` over the manifest with the key the manifest names.
pub fn verify_manifest(public_key_hex: &str, manifest_bytes: &[u8], sig_hex: &str) -> Result<()> {
    let bad = |m: &str| Error::BadBundle(m.to_string());
    let key: [u8; 32] = hex::decode(public_key_hex)
        .ok()
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| bad("the device public key is malformed"))?;
    let key =
        VerifyingKey::from_bytes(&key).map_err(|_| bad("the device public key is invalid"))?;
    let sig: [u8; 64] = hex::decode(sig_hex.trim())
        .ok()
        .and_then(|s| s.try_into().ok())
        .ok_or_else(|| bad("the signature is malformed"))?;
    let mut msg = SIGNATURE_CONTEXT.to_vec();
    msg.extend_from_slice(manifest_bytes);
    key.verify(&msg, &Signature::from_bytes(&sig)).map_err(|_| bad("the signature does not match the manifest: the bundle was altered or not made by this device"))
}

/// Checks a bundle's WAV header against the recording it belongs to: the canonical 44-byte
/// PCM header the format prescribes ("Recordings and their audio"), the recording's rate and
/// channels, and exactly its samples. `size` is the WAV file's size in the bundle. Used by
/// every importer of audio (the archive, and a vault applying a return bundle).
pub fn check_wav_header(
    h: &[u8; 44],
    size: u64,
    sample_rate: u64,
    channels: u64,
    samples: u64,
) -> Result<()> {
    let u16_at = |i: usize| u16::from_le_bytes([h[i], h[i + 1]]);
    let u32_at = |i: usize| u32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
    let canonical = &h[0..4] == b"RIFF"
        && &h[8..16] == b"WAVEfmt "
        && u32_at(16) == 16
        && u16_at(20) == 1
        && u16_at(34) == 16
        && &h[36..40] == b"data";
    if !canonical {
        return Err(Error::BadBundle(
            "a recording's audio is not a 16-bit PCM WAV file with the canonical header".into(),
        ));
    }
    let (ch, rate, data_len) = (u16_at(22) as u64, u32_at(24) as u64, u32_at(40) as u64);
    if rate != sample_rate
        || ch != channels
        || data_len + 44 != size
        || channels.checked_mul(2).and_then(|b| samples.checked_mul(b)) != Some(data_len)
    {
        return Err(Error::BadBundle(
            "a recording's audio does not match its recording (rate, channels or length)".into(),
        ));
    }
    Ok(())
}

/// A name usable as one path component: `[A-Za-z0-9._-]`, not starting with a dot.
pub(crate) fn safe_component(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 200
        && !s.starts_with('.')
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

pub(crate) use crate::io_util::HashingWriter;
