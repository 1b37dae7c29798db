//! Reading a bundle: decrypt, check the manifest and its signature, then stream every payload
//! file to a sink while checking its path, size, hash and count against the manifest. Nothing a
//! sink receives is final until `read_bundle` returns `Ok`: importers apply everything inside
//! one transaction and roll it back on any error.

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::*;
use crate::audit::{AuditEntry, entry_hash};
use crate::error::{Error, Result};
use crate::records::MAX_ATTACHMENT_BYTES;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Witness,
    WitnessIdentity,
    Consent,
    Interview,
    GroupInstance,
    Answer,
    Note,
    Recording,
    AudioMarker,
    Transcript,
    TranscriptSegment,
    Attachment,
    Tombstone,
}

impl RecordKind {
    pub const ALL: [RecordKind; 13] = [
        RecordKind::Witness,
        RecordKind::WitnessIdentity,
        RecordKind::Consent,
        RecordKind::Interview,
        RecordKind::GroupInstance,
        RecordKind::Answer,
        RecordKind::Note,
        RecordKind::Recording,
        RecordKind::AudioMarker,
        RecordKind::Transcript,
        RecordKind::TranscriptSegment,
        RecordKind::Attachment,
        RecordKind::Tombstone,
    ];
    pub fn code(self) -> &'static str {
        match self {
            RecordKind::Witness => "witness",
            RecordKind::WitnessIdentity => "witness_identity",
            RecordKind::Consent => "consent",
            RecordKind::Interview => "interview",
            RecordKind::GroupInstance => "group_instance",
            RecordKind::Answer => "answer",
            RecordKind::Note => "note",
            RecordKind::Recording => "recording",
            RecordKind::AudioMarker => "audio_marker",
            RecordKind::Transcript => "transcript",
            RecordKind::TranscriptSegment => "transcript_segment",
            RecordKind::Attachment => "attachment",
            RecordKind::Tombstone => "tombstone",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.code() == s)
    }
    pub(crate) fn file(self) -> &'static str {
        match self {
            RecordKind::Witness => "records/witnesses.jsonl",
            RecordKind::WitnessIdentity => "records/witness_identities.jsonl",
            RecordKind::Consent => "records/consents.jsonl",
            RecordKind::Interview => "records/interviews.jsonl",
            RecordKind::GroupInstance => "records/group_instances.jsonl",
            RecordKind::Answer => "records/answers.jsonl",
            RecordKind::Note => "records/notes.jsonl",
            RecordKind::Recording => "records/recordings.jsonl",
            RecordKind::AudioMarker => "records/audio_markers.jsonl",
            RecordKind::Transcript => "records/transcripts.jsonl",
            RecordKind::TranscriptSegment => "records/transcript_segments.jsonl",
            RecordKind::Attachment => "records/attachments.jsonl",
            RecordKind::Tombstone => "records/tombstones.jsonl",
        }
    }
    fn count(self, c: &Counts) -> u64 {
        match self {
            RecordKind::Witness => c.witnesses,
            RecordKind::WitnessIdentity => c.witness_identities,
            RecordKind::Consent => c.consents,
            RecordKind::Interview => c.interviews,
            RecordKind::GroupInstance => c.group_instances,
            RecordKind::Answer => c.answers,
            RecordKind::Note => c.notes,
            RecordKind::Recording => c.recordings,
            RecordKind::AudioMarker => c.audio_markers,
            RecordKind::Transcript => c.transcripts,
            RecordKind::TranscriptSegment => c.transcript_segments,
            RecordKind::Attachment => c.attachments,
            RecordKind::Tombstone => c.tombstones,
        }
    }
}

/// Receives a bundle's content as it is verified.
pub trait BundleSink {
    /// The manifest, after its signature verified against the key it names. Return `false` to
    /// stop reading (a replay, or a device that is not trusted yet).
    fn manifest(&mut self, manifest: &Manifest, bundle_hash: &str) -> Result<bool>;
    /// A codebook's source, already checked against its hash.
    fn codebook(&mut self, id: &str, version: &str, source: &str) -> Result<()>;
    /// One record (a JSON object with at least `id` or `record_id`).
    fn record(&mut self, kind: RecordKind, record: Value) -> Result<()>;
    /// An attachment's bytes, already checked against the manifest's hash.
    fn attachment(&mut self, id: &str, data: &[u8]) -> Result<()>;
    /// A recording's audio: a WAV file of `size` bytes, streamed (it can be hours long). The
    /// recording's record came earlier in the bundle. The hash is checked when the sink has
    /// read it, so a sink must keep nothing final until the whole bundle is complete (an
    /// importer works in one transaction anyway).
    fn audio(&mut self, recording_id: &str, size: u64, wav: &mut dyn Read) -> Result<()>;
    /// One audit entry; the chain inside the bundle is checked by the reader.
    fn audit_entry(&mut self, entry: &BundleAuditEntry) -> Result<()>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReadOutcome {
    /// Every file was read and verified.
    Complete,
    /// The sink stopped after the manifest.
    Stopped,
}

fn bad(m: impl Into<String>) -> Error {
    Error::BadBundle(m.into())
}

/// Maps I/O errors from inside the decrypted stream to a rejection: they mean a damaged,
/// truncated or tampered bundle, not a local disk problem.
fn stream_err(e: io::Error) -> Error {
    bad(format!("the bundle is damaged or truncated ({})", e.kind()))
}

/// Parses the age header; this is where a bundle for another archive is recognised.
pub fn decrypt<'a, R: Read + 'a>(
    input: R,
    identities: &[age::x25519::Identity],
) -> Result<impl Read + 'a> {
    let d = age::Decryptor::new(input).map_err(|_| {
        bad("not a Testimony bundle (not an age-encrypted file, or damaged at the start)")
    })?;
    d.decrypt(identities.iter().map(|i| i as &dyn age::Identity)).map_err(|e| match e {
        age::DecryptError::NoMatchingKeys => bad("the bundle is not encrypted to a key held here (wrong recipient: made for another archive or device)"),
        _ => bad("the bundle's encryption header is damaged"),
    })
}

pub fn read_bundle(
    input: impl Read,
    identities: &[age::x25519::Identity],
    sink: &mut dyn BundleSink,
) -> Result<ReadOutcome> {
    read_decrypted(decrypt(input, identities)?, sink)
}

/// The part of `read_bundle` after decryption: the zstd-compressed tar. Public for the fuzz
/// target; importers use `read_bundle`.
#[doc(hidden)]
pub fn read_decrypted(plain: impl Read, sink: &mut dyn BundleSink) -> Result<ReadOutcome> {
    let z = zstd::Decoder::new(plain).map_err(stream_err)?;
    let mut archive = tar::Archive::new(z);
    let outcome = {
        // Raw: GNU long-name and PAX extension entries are not interpreted (the tar crate would
        // buffer them whole and let them rename or resize the next entry); they are not regular
        // files, so `next` refuses them.
        let mut entries = archive.entries().map_err(stream_err)?.raw(true);
        let mut next = |want: &str| -> Result<tar::Entry<'_, _>> {
            let e = entries
                .next()
                .ok_or_else(|| bad(format!("the bundle ends before {want}")))?
                .map_err(stream_err)?;
            if e.header().entry_type() != tar::EntryType::Regular {
                return Err(bad(
                    "the bundle contains something other than regular files",
                ));
            }
            let path = e.path_bytes();
            if path.as_ref() != want.as_bytes() {
                return Err(bad(format!(
                    "unexpected file in the bundle where {want} should be (paths must follow the manifest)"
                )));
            }
            Ok(e)
        };
        // 1. Manifest and signature.
        let manifest_bytes =
            read_small(next("manifest.json")?, MAX_MANIFEST_BYTES, "manifest.json")?;
        let sig = read_small(next("manifest.sig")?, 256, "manifest.sig")?;
        let manifest = parse_manifest(&manifest_bytes)?;
        // The fuzz target (fuzz/) cannot forge signatures; it is built with `--cfg fuzzing` so
        // that it reaches the payload parser. Normal builds always verify.
        if !cfg!(fuzzing) {
            verify_manifest(
                &manifest.device_public_key,
                &manifest_bytes,
                std::str::from_utf8(&sig).map_err(|_| bad("the signature is malformed"))?,
            )?;
        }
        if !sink.manifest(&manifest, &manifest_hash(&manifest_bytes))? {
            return Ok(ReadOutcome::Stopped);
        }
        // 2. Payload, in manifest order.
        let mut seen = std::collections::HashMap::new();
        // Every recording travels with its audio: none may be missing, none may be extra.
        let mut recordings = HashSet::new();
        let mut audio_ids = HashSet::new();
        let mut audit = AuditCheck::new(&manifest);
        for f in &manifest.files {
            let mut e = next(&f.path)?;
            if e.header().size().map_err(stream_err)? != f.size {
                return Err(bad(format!("{}: size differs from the manifest", f.path)));
            }
            let mut hr = HashingReader {
                inner: &mut e,
                hasher: Sha256::new(),
                size: 0,
            };
            if let Some(rest) = f.path.strip_prefix("codebooks/") {
                let (id, version) = rest
                    .strip_suffix(".toml")
                    .and_then(|s| s.split_once('@'))
                    .expect("validated");
                let mut source = String::new();
                hr.read_to_string(&mut source)
                    .map_err(|_| bad(format!("{}: not UTF-8 text", f.path)))?;
                hr.check(f)?;
                let sha = hex::encode(Sha256::digest(source.as_bytes()));
                if !manifest
                    .codebooks
                    .iter()
                    .any(|c| c.id == id && c.version == version && c.sha256 == sha)
                {
                    return Err(bad(format!(
                        "{}: not among the manifest's codebooks",
                        f.path
                    )));
                }
                sink.codebook(id, version, &source)?;
            } else if let Some(id) = f.path.strip_prefix("attachments/") {
                let mut data = Vec::with_capacity(0);
                hr.read_to_end(&mut data).map_err(stream_err)?;
                hr.check(f)?;
                sink.attachment(id, &data)?;
            } else if let Some(id) = f
                .path
                .strip_prefix("audio/")
                .and_then(|r| r.strip_suffix(".wav"))
            {
                if !recordings.contains(id) {
                    return Err(bad(format!(
                        "{}: audio for a recording the bundle does not carry before it",
                        f.path
                    )));
                }
                audio_ids.insert(id.to_string());
                let mut watched = Watched {
                    inner: (&mut hr).take(f.size),
                    failed: None,
                };
                let r = sink.audio(id, f.size, &mut watched);
                // A damaged stream surfaces inside the sink as whatever it made of the I/O
                // error; it is a damaged bundle whatever the sink says.
                if let Some(kind) = watched.failed {
                    return Err(stream_err(io::Error::from(kind)));
                }
                r?;
                hr.check(f)?;
            } else if f.path == "audit/entries.jsonl" {
                for_each_line(&mut hr, &f.path, |line| {
                    let entry: BundleAuditEntry = serde_json::from_slice(line).map_err(|_| {
                        bad("audit/entries.jsonl: a line is not a valid audit entry")
                    })?;
                    audit.next(&entry)?;
                    sink.audit_entry(&entry)
                })?;
                hr.check(f)?;
                audit.finish()?;
            } else {
                let kind = RecordKind::ALL
                    .into_iter()
                    .find(|k| k.file() == f.path)
                    .expect("validated");
                let mut n = 0u64;
                for_each_line(&mut hr, &f.path, |line| {
                    let v: Value = serde_json::from_slice(line)
                        .map_err(|_| bad(format!("{}: a line is not JSON", f.path)))?;
                    check_record(kind, &v, &f.path)?;
                    if kind == RecordKind::Recording {
                        recordings.insert(v["id"].as_str().unwrap_or_default().to_string());
                    }
                    n += 1;
                    sink.record(kind, v)
                })?;
                hr.check(f)?;
                seen.insert(kind, n);
            }
        }
        for k in RecordKind::ALL {
            if seen.get(&k).copied().unwrap_or(0) != k.count(&manifest.counts) {
                return Err(bad(format!(
                    "{}: the number of records differs from the manifest",
                    k.file()
                )));
            }
        }
        if let Some(missing) = recordings.iter().find(|id| !audio_ids.contains(*id)) {
            return Err(bad(format!(
                "recording {missing} arrives without its audio (audio/{missing}.wav is not in the bundle)"
            )));
        }
        if audit.count == 0 {
            // No audit file: the manifest must declare an empty range.
            audit.finish()?;
        }
        if audit.count != manifest.counts.audit_entries {
            return Err(bad("the number of audit entries differs from the manifest"));
        }
        if let Some(extra) = entries.next() {
            extra.map_err(stream_err)?;
            return Err(bad("the bundle contains files the manifest does not list"));
        }
        ReadOutcome::Complete
    };
    // 3. The rest of the stream: tar padding only, and age must authenticate the final chunk.
    let mut rest = archive.into_inner();
    let mut tail = [0u8; 8192];
    let mut total = 0usize;
    loop {
        let n = rest.read(&mut tail).map_err(stream_err)?;
        if n == 0 {
            break;
        }
        total += n;
        if total > 64 * 1024 || tail[..n].iter().any(|&b| b != 0) {
            return Err(bad("unexpected data after the end of the bundle"));
        }
    }
    Ok(outcome)
}

fn read_small(e: impl Read, max: u64, what: &str) -> Result<Vec<u8>> {
    let mut buf = Vec::new();
    e.take(max + 1).read_to_end(&mut buf).map_err(stream_err)?;
    if buf.len() as u64 > max {
        return Err(bad(format!("{what} is larger than allowed")));
    }
    Ok(buf)
}

pub(crate) fn parse_manifest(bytes: &[u8]) -> Result<Manifest> {
    let v: Value =
        serde_json::from_slice(bytes).map_err(|_| bad("manifest.json is not valid JSON"))?;
    if v.get("format").and_then(Value::as_str) != Some(FORMAT) {
        return Err(bad("not a Testimony bundle (manifest format)"));
    }
    let version = v
        .get("format_version")
        .and_then(Value::as_u64)
        .ok_or_else(|| bad("manifest.json has no format_version"))?;
    if version > FORMAT_VERSION as u64 {
        return Err(Error::NewerVersion {
            what: "bundle format",
            found: version,
            supported: FORMAT_VERSION as u64,
        });
    }
    let m: Manifest =
        serde_json::from_value(v).map_err(|e| bad(format!("manifest.json is malformed ({e})")))?;
    if m.format_version != FORMAT_VERSION {
        return Err(bad("unsupported bundle format version"));
    }
    let mut paths = HashSet::new();
    for f in &m.files {
        let limit = file_limit(&f.path).ok_or_else(|| bad("the manifest lists a file path that is not allowed (only codebooks/, records/, attachments/, audio/ and audit/ names)"))?;
        if f.size > limit {
            return Err(bad(format!("{} is declared larger than allowed", f.path)));
        }
        if f.sha256.len() != 64 || !f.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad(format!("{}: malformed hash", f.path)));
        }
        if !paths.insert(f.path.as_str()) {
            return Err(bad(format!("{} is listed twice", f.path)));
        }
    }
    // From 1; `to` may be `from - 1` (no entries) and leaves room for `to + 1` without overflow.
    if m.sequence < 1
        || m.audit_from_seq < 1
        || m.audit_to_seq < m.audit_from_seq - 1
        || m.audit_to_seq == i64::MAX
    {
        return Err(bad("manifest sequence numbers are inconsistent"));
    }
    if !safe_component(&m.device_id) {
        return Err(bad("manifest device id is malformed"));
    }
    match (m.kind.as_str(), &m.target_device) {
        (KIND_INCREMENTAL | KIND_FULL, None) | (KIND_RETURN, Some(_)) => {}
        (KIND_RETURN, None) => return Err(bad("a return bundle must name the device it is for")),
        (KIND_INCREMENTAL | KIND_FULL, Some(_)) => {
            return Err(bad("only return bundles name a target device"));
        }
        _ => return Err(bad("unknown bundle kind")),
    }
    Ok(m)
}

/// The largest size allowed for a payload path, or None if the path is not allowed.
fn file_limit(path: &str) -> Option<u64> {
    if let Some(rest) = path.strip_prefix("codebooks/") {
        let (id, version) = rest.strip_suffix(".toml")?.split_once('@')?;
        return (safe_component(id) && safe_component(version)).then_some(MAX_CODEBOOK_BYTES);
    }
    if let Some(id) = path.strip_prefix("attachments/") {
        return safe_component(id).then_some(MAX_ATTACHMENT_BYTES as u64);
    }
    if let Some(id) = path
        .strip_prefix("audio/")
        .and_then(|r| r.strip_suffix(".wav"))
    {
        return safe_component(id).then_some(MAX_AUDIO_BYTES);
    }
    if path == "audit/entries.jsonl" || RecordKind::ALL.iter().any(|k| k.file() == path) {
        return Some(MAX_RECORDS_FILE_BYTES);
    }
    None
}

/// The minimum every record must satisfy before any importer sees it.
fn check_record(kind: RecordKind, v: &Value, path: &str) -> Result<()> {
    let obj = v
        .as_object()
        .ok_or_else(|| bad(format!("{path}: a record is not a JSON object")))?;
    let id_field = if kind == RecordKind::Tombstone {
        "record_id"
    } else {
        "id"
    };
    let id = obj
        .get(id_field)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("{path}: a record has no {id_field}")))?;
    if !safe_component(id) {
        return Err(bad(format!("{path}: a record id is malformed")));
    }
    if kind != RecordKind::Tombstone
        && obj
            .get("version")
            .and_then(Value::as_i64)
            .is_none_or(|v| v < 1)
    {
        return Err(bad(format!("{path}: a record has no valid version")));
    }
    if kind == RecordKind::Attachment {
        let name = obj.get("name").and_then(Value::as_str).unwrap_or("");
        if !plain_file_name(name) {
            return Err(bad(
                "an attachment name is not a plain file name (no folders, no '..', no absolute paths)",
            ));
        }
    }
    Ok(())
}

/// A name that cannot escape a folder when used as a file name.
pub fn plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\\', '\0'])
        && !name.starts_with('~')
}

fn for_each_line(
    r: &mut impl Read,
    path: &str,
    mut f: impl FnMut(&[u8]) -> Result<()>,
) -> Result<()> {
    let mut br = BufReader::with_capacity(64 * 1024, r);
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = (&mut br)
            .take(MAX_LINE_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)
            .map_err(stream_err)?;
        if n == 0 {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            if n > MAX_LINE_BYTES {
                return Err(bad(format!("{path}: a line is longer than allowed")));
            }
            return Err(bad(format!("{path}: the last line is incomplete")));
        }
        line.pop();
        f(&line)?;
    }
}

/// Remembers whether the stream under it failed.
struct Watched<R> {
    inner: R,
    failed: Option<io::ErrorKind>,
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner
            .read(buf)
            .inspect_err(|e| self.failed = Some(e.kind()))
    }
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

impl<R: Read> HashingReader<R> {
    /// Reads whatever the consumer left, then compares size and hash with the manifest.
    fn check(&mut self, f: &FileEntry) -> Result<()> {
        io::copy(self, &mut io::sink()).map_err(stream_err)?;
        let sha = hex::encode(std::mem::take(&mut self.hasher).finalize());
        if self.size != f.size || sha != f.sha256 {
            return Err(bad(format!(
                "{}: content does not match the signed manifest (altered in transit?)",
                f.path
            )));
        }
        Ok(())
    }
}

/// Checks the audit entries of a bundle link into one chain from `audit_from_seq` to
/// `audit_to_seq` and recomputes every entry that is not redacted.
struct AuditCheck<'m> {
    m: &'m Manifest,
    expected: i64,
    prev: Option<String>,
    count: u64,
}

impl<'m> AuditCheck<'m> {
    fn new(m: &'m Manifest) -> Self {
        AuditCheck {
            m,
            expected: m.audit_from_seq,
            prev: None,
            count: 0,
        }
    }
    fn next(&mut self, e: &BundleAuditEntry) -> Result<()> {
        if e.seq != self.expected {
            return Err(bad(format!(
                "audit entry {} is missing from the bundle",
                self.expected
            )));
        }
        if let Some(p) = &self.prev
            && *p != e.prev_hash
        {
            return Err(bad(format!(
                "audit entry {} does not follow entry {}",
                e.seq,
                e.seq - 1
            )));
        }
        if !e.redacted {
            let full = AuditEntry {
                seq: e.seq,
                at: e.at.clone().unwrap_or_default(),
                actor: e.actor.clone().unwrap_or_default(),
                device_id: e.device_id.clone().unwrap_or_default(),
                record_type: e.record_type.clone().unwrap_or_default(),
                record_id: e.record_id.clone().unwrap_or_default(),
                action: e.action.clone().unwrap_or_default(),
                content_hash: e.content_hash.clone().unwrap_or_default(),
                prev_hash: e.prev_hash.clone(),
                hash: String::new(),
            };
            if entry_hash(&full) != e.hash {
                return Err(bad(format!("audit entry {} was altered", e.seq)));
            }
        }
        self.prev = Some(e.hash.clone());
        self.expected += 1;
        self.count += 1;
        Ok(())
    }
    fn finish(&self) -> Result<()> {
        // A bundle without audit entries (a return bundle) declares the empty range from..from-1.
        let head_ok = match &self.prev {
            Some(p) => *p == self.m.audit_head_hash,
            None => self.count == 0,
        };
        if self.expected != self.m.audit_to_seq + 1 || !head_ok {
            return Err(bad("the audit entries do not end where the manifest says"));
        }
        Ok(())
    }
}
