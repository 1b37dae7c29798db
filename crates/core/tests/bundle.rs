//! Bundles as the archive meets them: real vaults exported to real files, read back through
//! `read_bundle`, opened by hand the way docs/bundle-format.md says anyone can, and damaged or
//! forged in every way the reader must refuse.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testimony_core::bundle::{
    BundleAuditEntry, BundleSink, ExportOptions, ExportReport, Manifest, ReadOutcome, RecordKind,
    SIGNATURE_CONTEXT, manifest_hash, read_bundle,
};
use testimony_core::codebook::Codebook;
use testimony_core::model::*;
use testimony_core::{Error, Vault};

// ---- the largest single allocation, to show the reader never buffers what a header claims ----

struct Largest;
static LARGEST_ALLOC: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(l.size(), Ordering::Relaxed);
        unsafe { System.alloc_zeroed(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        LARGEST_ALLOC.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(p, l, new_size) }
    }
}

#[global_allocator]
static ALLOC: Largest = Largest;

// ---- a sink that keeps everything it is given ----------------------------------------------

#[derive(Default)]
struct Collect {
    manifest: Option<Manifest>,
    bundle_hash: String,
    codebooks: Vec<(String, String, String)>,
    records: Vec<(RecordKind, Value)>,
    attachments: BTreeMap<String, Vec<u8>>,
    audio: BTreeMap<String, Vec<u8>>,
    audit: Vec<BundleAuditEntry>,
}

impl BundleSink for Collect {
    fn manifest(&mut self, manifest: &Manifest, bundle_hash: &str) -> testimony_core::Result<bool> {
        self.manifest = Some(manifest.clone());
        self.bundle_hash = bundle_hash.to_string();
        Ok(true)
    }
    fn codebook(&mut self, id: &str, version: &str, source: &str) -> testimony_core::Result<()> {
        self.codebooks
            .push((id.into(), version.into(), source.into()));
        Ok(())
    }
    fn record(&mut self, kind: RecordKind, record: Value) -> testimony_core::Result<()> {
        self.records.push((kind, record));
        Ok(())
    }
    fn attachment(&mut self, id: &str, data: &[u8]) -> testimony_core::Result<()> {
        assert!(
            self.attachments.insert(id.into(), data.to_vec()).is_none(),
            "attachment {id} delivered twice"
        );
        Ok(())
    }
    fn audio(&mut self, id: &str, size: u64, wav: &mut dyn Read) -> testimony_core::Result<()> {
        let mut data = Vec::new();
        wav.read_to_end(&mut data)?;
        assert_eq!(data.len() as u64, size);
        assert!(
            self.audio.insert(id.into(), data).is_none(),
            "audio {id} delivered twice"
        );
        Ok(())
    }
    fn audit_entry(&mut self, entry: &BundleAuditEntry) -> testimony_core::Result<()> {
        self.audit.push(entry.clone());
        Ok(())
    }
}

impl Collect {
    fn manifest(&self) -> &Manifest {
        self.manifest.as_ref().expect("manifest delivered")
    }
    fn of(&self, kind: RecordKind) -> Vec<&Value> {
        self.records
            .iter()
            .filter(|(k, _)| *k == kind)
            .map(|(_, v)| v)
            .collect()
    }
    fn ids(&self, kind: RecordKind) -> BTreeSet<String> {
        let field = if kind == RecordKind::Tombstone {
            "record_id"
        } else {
            "id"
        };
        self.of(kind)
            .iter()
            .map(|v| v[field].as_str().unwrap().to_string())
            .collect()
    }
    /// The kinds of the records whose JSON mentions `needle` anywhere.
    fn mentions(&self, needle: &str) -> Vec<RecordKind> {
        self.records
            .iter()
            .filter(|(_, v)| v.to_string().contains(needle))
            .map(|(k, _)| *k)
            .collect()
    }
}

fn set<const N: usize>(items: [&str; N]) -> BTreeSet<String> {
    items.into_iter().map(String::from).collect()
}

fn read_with(
    bytes: &[u8],
    key: &age::x25519::Identity,
) -> (testimony_core::Result<ReadOutcome>, Collect) {
    let mut c = Collect::default();
    let r = read_bundle(bytes, std::slice::from_ref(key), &mut c);
    (r, c)
}

#[track_caller]
fn read_ok(bytes: &[u8], key: &age::x25519::Identity) -> Collect {
    let (r, c) = read_with(bytes, key);
    assert_eq!(r.unwrap(), ReadOutcome::Complete);
    c
}

/// The bundle must be refused as a bad bundle (never read as complete); returns the message.
#[track_caller]
fn rejected(bytes: &[u8], key: &age::x25519::Identity, what: &str) -> String {
    match read_with(bytes, key).0 {
        Err(Error::BadBundle(m)) => m,
        other => panic!("{what}: expected the bundle to be rejected, got {other:?}"),
    }
}

// ---- a vault with every kind of record and every consent situation --------------------------

struct Person {
    id: String,
    code: String,
    interview: String,
    answer: String,
}

fn person(v: &mut Vault, tag: &str, consent: Option<ConsentScopes>, story: &str) -> Person {
    let identity = WitnessIdentity {
        real_name: Some(format!("REALNAME-{tag} 김")),
        contact: Some(format!("CONTACT-{tag}")),
        notes: None,
    };
    let w = v
        .add_witness(
            WitnessProfile {
                gender: Some("female".into()),
                ..Default::default()
            },
            Some(identity),
        )
        .unwrap();
    if let Some(scopes) = consent {
        v.set_consent(&w.code, scopes, "kim", None, ConsentMethod::Written)
            .unwrap();
    }
    let i = v
        .new_interview(NewInterview {
            witness: w.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    let a = v
        .set_answer(&i.meta.id, None, "cl_anything_else", &json!(story))
        .unwrap();
    Person {
        id: w.meta.id,
        code: w.code,
        interview: i.meta.id,
        answer: a.meta.id,
    }
}

const STORY_A: &str = "STORY-A 함경북도의 탄광에서 하루 열두 시간 일했습니다";
const FACILITY_A: &str = "전거리 교화소";
const NOTE_A: &str = "NOTE-A 보위부 조사 언급";
const STORY_D: &str = "STORY-D 교화소에서 가발을 만들었다";

struct Fixture {
    _tmp: tempfile::TempDir,
    out: PathBuf,
    v: Vault,
    key: age::x25519::Identity,
    /// Shares, and allows publishing with identity.
    a: Person,
    /// Shares, but not with identity.
    d: Person,
    /// Consent recorded without share_archive.
    b: Person,
    /// Consent given, then withdrawn.
    c: Person,
    /// No consent recorded at all.
    e: Person,
    a_detained: String,
    a_episode: String,
    a_facility: String,
    a_note: String,
    a_attachment: String,
    attachment: Vec<u8>,
    b_attachment: String,
    a_recording: String,
    a_marker: String,
    /// A's recording as the vault exports it (WAV).
    a_wav: Vec<u8>,
    b_recording: String,
}

/// A WAV file of `seconds` of 16 kHz mono noise-like audio.
fn wav(seconds: usize, seed: u64) -> Vec<u8> {
    let samples: Vec<u8> = noise(seconds * 16_000 * 2, seed);
    let mut out = testimony_core::audio::wav_header(16_000, 1, samples.len() as u32).to_vec();
    out.extend(samples);
    out
}

/// Incompressible bytes, so that a bundle spans several age chunks (64 KiB each).
fn noise(n: usize, mut seed: u64) -> Vec<u8> {
    (0..n)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

fn fixture() -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let share_identified = ConsentScopes {
        share_archive: true,
        publish_identified: true,
        record_audio: true,
        ..Default::default()
    };
    let share = ConsentScopes {
        share_archive: true,
        quote_anonymously: true,
        ..Default::default()
    };
    let no_share = ConsentScopes {
        record_audio: true,
        transcribe: true,
        ..Default::default()
    };

    let a = person(&mut v, "A", Some(share_identified), STORY_A);
    let detained = v
        .set_answer(&a.interview, None, "ever_detained", &json!("yes"))
        .unwrap();
    let episode = v
        .add_group_instance(&a.interview, "detention_episode", None)
        .unwrap();
    let facility = v
        .set_answer(
            &a.interview,
            Some(&episode.meta.id),
            "det_facility_name",
            &json!(FACILITY_A),
        )
        .unwrap();
    let note = v.add_note(&a.interview, None, None, NOTE_A).unwrap();
    let mut attachment = b"ATTACH-CANARY-A ".to_vec();
    attachment.extend(noise(150_000, 0x9e37_79b9_7f4a_7c15));
    let att = v
        .add_attachment(&a.interview, "sketch.png", "image/png", &attachment)
        .unwrap();
    let a_rec = v.import_wav(&a.interview, &wav(3, 0x51)[..]).unwrap();
    let a_marker = v
        .add_marker(
            &a_rec.meta.id,
            1500,
            Some("cl_anything_else"),
            "MARKER-A guard tower",
        )
        .unwrap();
    let mut a_wav = Vec::new();
    v.export_wav(&a_rec.meta.id, &mut a_wav).unwrap();

    let d = person(&mut v, "D", Some(share), STORY_D);
    let b = person(&mut v, "B", Some(no_share), "SECRET-B 보위부 구류장");
    let b_att = v
        .add_attachment(&b.interview, "b-doc.txt", "text/plain", b"ATTACH-CANARY-B")
        .unwrap();
    let b_rec = v.import_wav(&b.interview, &wav(1, 0x52)[..]).unwrap();
    v.add_marker(&b_rec.meta.id, 100, None, "MARKER-B secret")
        .unwrap();
    let c = person(&mut v, "C", Some(share), "SECRET-C 철회된 증언");
    v.withdraw_consent(&c.code, None).unwrap();
    let e = person(&mut v, "E", None, "SECRET-E no consent yet");

    Fixture {
        _tmp: tmp,
        out,
        v,
        key: age::x25519::Identity::generate(),
        a,
        d,
        b,
        c,
        e,
        a_detained: detained.meta.id,
        a_episode: episode.meta.id,
        a_facility: facility.meta.id,
        a_note: note.meta.id,
        a_attachment: att.meta.id,
        attachment,
        b_attachment: b_att.meta.id,
        a_recording: a_rec.meta.id,
        a_marker: a_marker.meta.id,
        a_wav,
        b_recording: b_rec.meta.id,
    }
}

impl Fixture {
    fn opts(&self, full: bool, include_identity: bool) -> ExportOptions {
        ExportOptions {
            recipients: vec![self.key.to_public().to_string()],
            full,
            include_identity,
        }
    }
    fn export(
        &mut self,
        name: &str,
        full: bool,
        include_identity: bool,
    ) -> testimony_core::Result<ExportReport> {
        let opts = self.opts(full, include_identity);
        self.v.export_bundle(&opts, &self.out.join(name))
    }
    fn bytes(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.out.join(name)).unwrap()
    }
    fn read(&self, name: &str) -> Collect {
        read_ok(&self.bytes(name), &self.key)
    }
    fn consent_id(&self, p: &Person) -> String {
        self.v.consent(&p.code).unwrap().unwrap().meta.id
    }
    /// Every id that belongs to a witness who is not shared.
    fn hidden_ids(&self) -> BTreeSet<String> {
        let mut ids = BTreeSet::new();
        for p in [&self.b, &self.c, &self.e] {
            ids.extend([p.id.clone(), p.interview.clone(), p.answer.clone()]);
            if let Some(c) = self.v.consent(&p.code).unwrap() {
                ids.insert(c.meta.id);
            }
        }
        ids.insert(self.b_attachment.clone());
        ids.insert(self.b_recording.clone());
        ids
    }
    fn files_in_out(&self) -> BTreeSet<String> {
        std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn default_codebook() -> (String, String) {
    let cb = Codebook::default_codebook();
    (cb.id.clone(), cb.version.clone())
}

// ---- 1. round trip -------------------------------------------------------------------------

#[test]
fn round_trip_delivers_shared_records_and_withholds_the_rest() {
    let mut f = fixture();
    let r = f.export("1.tbundle", false, false).unwrap();
    let bytes = f.bytes("1.tbundle");
    assert_eq!(r.bytes, bytes.len() as u64);
    assert_eq!(r.path, f.out.join("1.tbundle"));
    assert_eq!(
        f.files_in_out(),
        set(["1.tbundle"]),
        "no temporary file is left beside the bundle"
    );
    let c = read_ok(&bytes, &f.key);
    let m = c.manifest();

    // Manifest: what the exporter reported, signed by this device, first in its chain.
    assert_eq!(
        (m.format.as_str(), m.format_version),
        ("testimony-bundle", 1)
    );
    assert_eq!(
        (
            m.sequence,
            m.previous_bundle_hash.as_deref(),
            m.kind.as_str()
        ),
        (1, None, "incremental")
    );
    assert_eq!((r.sequence, r.kind.as_str()), (1, "incremental"));
    assert_eq!(m.device_id, f.v.device_id());
    assert_eq!(m.device_public_key, f.v.device_public_key().unwrap());
    assert_eq!(c.bundle_hash, r.bundle_hash);
    assert_eq!(m.bundle_id, r.bundle_id);
    assert_eq!(
        uuid::Uuid::parse_str(&m.bundle_id)
            .unwrap()
            .get_version_num(),
        7
    );
    assert_eq!(m.counts, r.counts);
    assert_eq!(m.withheld, r.withheld);

    // Shared witnesses arrive with everything; the withdrawn one only as its consent.
    assert_eq!(c.ids(RecordKind::Witness), set([&f.a.id, &f.d.id]));
    let consent_witnesses: BTreeSet<String> = c
        .of(RecordKind::Consent)
        .iter()
        .map(|v| v["witness_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(consent_witnesses, set([&f.a.id, &f.d.id, &f.c.id]));
    let withdrawn = c
        .of(RecordKind::Consent)
        .into_iter()
        .find(|v| v["witness_id"] == json!(f.c.id))
        .unwrap();
    assert!(
        withdrawn["withdrawn_at"].is_string(),
        "the archive learns of the withdrawal: {withdrawn}"
    );
    assert_eq!(
        c.ids(RecordKind::Interview),
        set([&f.a.interview, &f.d.interview])
    );
    assert_eq!(
        c.ids(RecordKind::Answer),
        set([&f.a.answer, &f.a_detained, &f.a_facility, &f.d.answer])
    );
    assert_eq!(c.ids(RecordKind::GroupInstance), set([&f.a_episode]));
    assert_eq!(c.ids(RecordKind::Note), set([&f.a_note]));
    assert_eq!(c.ids(RecordKind::Attachment), set([&f.a_attachment]));
    assert!(c.of(RecordKind::Tombstone).is_empty());

    // Content survives byte for byte, Hangul included.
    let answer = |id: &str| {
        c.of(RecordKind::Answer)
            .into_iter()
            .find(|v| v["id"] == json!(id))
            .unwrap()
            .clone()
    };
    assert_eq!(answer(&f.a.answer)["value"], json!(STORY_A));
    assert_eq!(answer(&f.a_facility)["value"], json!(FACILITY_A));
    assert_eq!(answer(&f.a_facility)["instance_id"], json!(f.a_episode));
    assert_eq!(answer(&f.d.answer)["value"], json!(STORY_D));
    assert_eq!(answer(&f.a.answer)["device_id"], json!(f.v.device_id()));
    assert_eq!(answer(&f.a.answer)["version"], json!(1));
    assert_eq!(c.of(RecordKind::Note)[0]["text"], json!(NOTE_A));
    let att = c.of(RecordKind::Attachment)[0].clone();
    assert_eq!(
        (att["name"].as_str(), att["size"].as_u64()),
        (Some("sketch.png"), Some(f.attachment.len() as u64))
    );
    assert_eq!(
        att["sha256"],
        json!(hex::encode(Sha256::digest(&f.attachment)))
    );
    assert_eq!(c.attachments.keys().collect::<Vec<_>>(), [&f.a_attachment]);
    assert_eq!(c.attachments[&f.a_attachment], f.attachment);
    let (cb_id, cb_version) = default_codebook();
    assert_eq!(
        c.codebooks
            .iter()
            .map(|(i, v, _)| (i.clone(), v.clone()))
            .collect::<Vec<_>>(),
        [(cb_id.clone(), cb_version.clone())]
    );
    assert_eq!(
        c.codebooks[0].2,
        f.v.codebook(&cb_id, &cb_version).unwrap().source
    );
    assert_eq!(m.codebooks.len(), 1);

    // Nothing of the witnesses who did not consent to sharing.
    for p in [&f.b, &f.e] {
        for id in [&p.id, &p.interview, &p.answer, &p.code] {
            assert!(
                c.mentions(id).is_empty(),
                "{id} of a non-shared witness travelled: {:?}",
                c.mentions(id)
            );
        }
    }
    assert!(c.mentions(&f.b_attachment).is_empty() && !c.attachments.contains_key(&f.b_attachment));
    assert_eq!(
        c.mentions(&f.c.id),
        [RecordKind::Consent],
        "the withdrawn witness: the consent record only"
    );
    for id in [&f.c.interview, &f.c.answer, &f.c.code] {
        assert!(c.mentions(id).is_empty(), "{id}");
    }
    for canary in ["SECRET-", "REALNAME", "CONTACT-", "ATTACH-CANARY-B"] {
        assert!(c.mentions(canary).is_empty(), "{canary} travelled");
    }
    // Identity is not exported unless asked for.
    assert!(c.of(RecordKind::WitnessIdentity).is_empty());
    assert_eq!(r.counts.witness_identities, 0);

    // Counts and reasons for what was held back.
    let counts = &r.counts;
    assert_eq!(
        (
            counts.witnesses,
            counts.consents,
            counts.interviews,
            counts.group_instances,
            counts.answers,
            counts.notes,
            counts.attachments,
            counts.tombstones
        ),
        (2, 3, 2, 1, 4, 1, 1, 0)
    );
    assert_eq!((counts.recordings, counts.audio_markers), (1, 1));
    assert_eq!(r.withheld.witnesses, 3);
    assert_eq!(
        (
            r.withheld.reasons.no_share_consent,
            r.withheld.reasons.consent_withdrawn,
            r.withheld.reasons.no_consent_recorded
        ),
        (1, 1, 1)
    );
    // B: witness, consent, interview, answer, attachment, recording, marker; C: witness,
    // interview, answer (its consent travels); E: witness, interview, answer.
    assert_eq!(r.withheld.records, 7 + 3 + 3);
    // A's recording travels with its marker and its audio, as the WAV the vault exports; B's
    // does not.
    assert_eq!(c.ids(RecordKind::Recording), set([&f.a_recording]));
    assert_eq!(c.ids(RecordKind::AudioMarker), set([&f.a_marker]));
    assert_eq!(c.audio.keys().collect::<Vec<_>>(), [&f.a_recording]);
    assert_eq!(c.audio[&f.a_recording], f.a_wav);
    let rec = c.of(RecordKind::Recording)[0].clone();
    assert_eq!(
        (
            rec["audio"].as_str(),
            rec["format"].as_str(),
            rec["sample_rate"].as_u64(),
            rec["interview_id"].as_str()
        ),
        (
            Some(format!("audio/{}.wav", f.a_recording).as_str()),
            Some("wav-pcm16"),
            Some(16_000),
            Some(f.a.interview.as_str())
        )
    );
    let marker = c.of(RecordKind::AudioMarker)[0].clone();
    assert_eq!(
        (
            marker["recording_id"].as_str(),
            marker["interview_id"].as_str(),
            marker["at_ms"].as_u64()
        ),
        (
            Some(f.a_recording.as_str()),
            Some(f.a.interview.as_str()),
            Some(1500)
        )
    );
    assert!(c.mentions("MARKER-B").is_empty());

    // The whole audit chain travels; entries about anything withheld are redacted.
    let total = f.v.audit_verify().unwrap().entries as u64;
    assert_eq!(
        (
            m.audit_from_seq,
            m.audit_to_seq as u64,
            counts.audit_entries,
            c.audit.len() as u64
        ),
        (1, total, total, total)
    );
    assert_eq!(c.audit.last().unwrap().hash, m.audit_head_hash);
    let hidden = f.hidden_ids();
    let mut redacted = 0;
    for e in &c.audit {
        if e.redacted {
            redacted += 1;
            assert!(
                e.record_id.is_none()
                    && e.record_type.is_none()
                    && e.content_hash.is_none()
                    && e.at.is_none()
            );
        } else {
            let id = e.record_id.as_deref().unwrap();
            assert!(
                !hidden.contains(id),
                "audit entry {} about withheld record {id} is not redacted",
                e.seq
            );
            assert_ne!(
                e.record_type.as_deref(),
                Some("witness_identity"),
                "identity audit entry visible without --include-identity"
            );
        }
    }
    // B (witness, identity, consent, interview, answer, attachment), C (the same less the
    // attachment, plus the withdrawal), E (witness, identity, interview, answer), and the
    // identities of A and D, and B's recording (start, stop) and marker.
    assert_eq!(redacted, 6 + 6 + 4 + 2 + 3);
    assert!(
        c.audit
            .iter()
            .any(|e| !e.redacted && e.record_id.as_deref() == Some(f.a.answer.as_str()))
    );

    // With include_identity: identity only for the witness whose consent allows it.
    let r2 = f.export("2.tbundle", true, true).unwrap();
    let c2 = f.read("2.tbundle");
    assert_eq!((r2.sequence, r2.kind.as_str()), (2, "full"));
    assert_eq!(
        c2.manifest().previous_bundle_hash.as_deref(),
        Some(r.bundle_hash.as_str())
    );
    assert_eq!(c2.ids(RecordKind::WitnessIdentity), set([&f.a.id]));
    let ident = c2.of(RecordKind::WitnessIdentity)[0].clone();
    assert_eq!(
        (ident["real_name"].as_str(), ident["contact"].as_str()),
        (Some("REALNAME-A 김"), Some("CONTACT-A"))
    );
    for canary in [
        "REALNAME-B",
        "REALNAME-C",
        "REALNAME-D",
        "REALNAME-E",
        "CONTACT-D",
        "SECRET-",
    ] {
        assert!(
            c2.mentions(canary).is_empty(),
            "{canary} travelled with include_identity"
        );
    }
    assert_eq!(r2.counts.witness_identities, 1);
    let visible_identities: Vec<&str> = c2
        .audit
        .iter()
        .filter(|e| !e.redacted && e.record_type.as_deref() == Some("witness_identity"))
        .map(|e| e.record_id.as_deref().unwrap())
        .collect();
    assert_eq!(visible_identities, [f.a.id.as_str()]);
    assert_eq!(c2.ids(RecordKind::Witness), set([&f.a.id, &f.d.id]));
    assert_eq!(r2.withheld, r.withheld);
}

// ---- 2. the file itself --------------------------------------------------------------------

/// age → zstd → tar, done by hand with the standard crates (what `age -d | zstd -d | tar -x` does).
fn plaintext_tar(bundle: &[u8], key: &age::x25519::Identity) -> Vec<u8> {
    zstd::decode_all(&zstd_stream(bundle, key).0[..]).unwrap()
}

/// The decrypted payload, checked to be a zstd stream of whole frames, and how many frames.
fn zstd_stream(bundle: &[u8], key: &age::x25519::Identity) -> (Vec<u8>, usize) {
    let d = age::Decryptor::new(bundle).unwrap();
    let mut zst = Vec::new();
    d.decrypt(std::iter::once(key as &dyn age::Identity))
        .unwrap()
        .read_to_end(&mut zst)
        .unwrap();
    let (mut at, mut frames) = (0, 0);
    while at < zst.len() {
        assert_eq!(
            &zst[at..at + 4],
            &[0x28, 0xb5, 0x2f, 0xfd],
            "zstd frame magic at {at}"
        );
        at += zstd::zstd_safe::find_frame_compressed_size(&zst[at..]).unwrap();
        frames += 1;
    }
    assert_eq!(at, zst.len(), "whole zstd frames up to the end");
    (zst, frames)
}

fn tar_entries(tar_bytes: &[u8]) -> Vec<(String, tar::EntryType, Vec<u8>)> {
    let mut ar = tar::Archive::new(tar_bytes);
    ar.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, e.header().entry_type(), data)
        })
        .collect()
}

#[test]
fn bundle_file_is_encrypted_and_opens_with_standard_tools() {
    let mut f = fixture();
    let second = age::x25519::Identity::generate();
    let opts = ExportOptions {
        recipients: vec![
            f.key.to_public().to_string(),
            second.to_public().to_string(),
        ],
        full: false,
        include_identity: true,
    };
    let r = f.v.export_bundle(&opts, &f.out.join("b.tbundle")).unwrap();
    let bytes = f.bytes("b.tbundle");

    // Not plaintext, not even compressed plaintext.
    assert!(
        bytes.starts_with(b"age-encryption.org/v1\n"),
        "binary age format"
    );
    for needle in [
        "STORY-A",
        "함경북도",
        "탄광",
        FACILITY_A,
        "NOTE-A",
        "ATTACH-CANARY",
        "REALNAME",
        "manifest.json",
        "testimony-bundle",
        "records/",
        "answers",
        "cl_anything_else",
    ] {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "'{needle}' readable in the bundle file"
        );
    }
    for needle in [
        f.a.code.as_str(),
        f.a.id.as_str(),
        f.v.device_id(),
        &f.v.device_public_key().unwrap(),
        &r.bundle_hash,
    ] {
        assert!(
            !contains(&bytes, needle.as_bytes()),
            "'{needle}' readable in the bundle file"
        );
    }
    assert!(
        !contains(&bytes, &[0x28, 0xb5, 0x2f, 0xfd]),
        "no visible zstd frame"
    );

    // Either recipient can open it.
    for key in [&f.key, &second] {
        read_ok(&bytes, key);
    }

    // By hand: age, then zstd frames, then a tar of regular files in the documented order.
    // The recording's stored chunks are frames of their own, passed through between the
    // frames the exporter compressed.
    let chunks = f.v.recording(&f.a_recording).unwrap().chunks as usize;
    assert!(chunks >= 1);
    assert_eq!(
        zstd_stream(&bytes, &second).1,
        2 + chunks,
        "one frame before the audio, its chunks, one after"
    );
    let tar_bytes = plaintext_tar(&bytes, &second);
    let entries = tar_entries(&tar_bytes);
    assert!(
        entries
            .iter()
            .all(|(_, t, _)| *t == tar::EntryType::Regular)
    );
    assert_eq!(entries[0].0, "manifest.json");
    assert_eq!(entries[1].0, "manifest.sig");
    let manifest_bytes = &entries[0].2;
    assert_eq!(
        manifest_hash(manifest_bytes),
        r.bundle_hash,
        "the bundle hash is the SHA-256 of manifest.json as stored"
    );
    let m: Value = serde_json::from_slice(manifest_bytes).unwrap();
    assert_eq!(
        (m["format"].as_str(), m["format_version"].as_u64()),
        (Some("testimony-bundle"), Some(1))
    );

    // The signature: 128 lowercase hex over the context string and the manifest bytes.
    let sig = std::str::from_utf8(&entries[1].2).unwrap();
    assert!(
        sig.len() == 128
            && sig
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{sig}"
    );
    let key: [u8; 32] = hex::decode(m["device_public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig: [u8; 64] = hex::decode(sig).unwrap().try_into().unwrap();
    let msg = [
        b"testimony-bundle-signature-v1\n".as_slice(),
        manifest_bytes,
    ]
    .concat();
    VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify(&msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .unwrap();

    // Exactly the listed files follow, in order, with the listed sizes and hashes.
    let listed: Vec<(String, u64, String)> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["path"].as_str().unwrap().into(),
                f["size"].as_u64().unwrap(),
                f["sha256"].as_str().unwrap().into(),
            )
        })
        .collect();
    let payload: Vec<(String, u64, String)> = entries[2..]
        .iter()
        .map(|(p, _, d)| (p.clone(), d.len() as u64, hex::encode(Sha256::digest(d))))
        .collect();
    assert_eq!(payload, listed);
    let paths: Vec<&str> = listed.iter().map(|(p, _, _)| p.as_str()).collect();
    let (cb_id, cb_version) = default_codebook();
    let codebook_path = format!("codebooks/{cb_id}@{cb_version}.toml");
    let attachment_path = format!("attachments/{}", f.a_attachment);
    for want in [
        codebook_path.as_str(),
        "records/witnesses.jsonl",
        "records/witness_identities.jsonl",
        "records/consents.jsonl",
        "records/interviews.jsonl",
        "records/group_instances.jsonl",
        "records/answers.jsonl",
        "records/notes.jsonl",
        "records/attachments.jsonl",
        attachment_path.as_str(),
        "audit/entries.jsonl",
    ] {
        assert!(paths.contains(&want), "{want} missing from {paths:?}");
    }
    assert!(
        !paths.contains(&"records/tombstones.jsonl"),
        "a file with no records is left out"
    );
    let file = |p: &str| &entries.iter().find(|(q, _, _)| q == p).unwrap().2;
    assert_eq!(file(&attachment_path), &f.attachment);
    let answers = String::from_utf8(file("records/answers.jsonl").clone()).unwrap();
    assert!(
        answers.contains("함경북도의 탄광에서"),
        "Hangul as UTF-8 in the JSON lines"
    );
    assert_eq!(answers.lines().count(), 4);
    for line in answers.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(
            v["id"].is_string()
                && v["device_id"].is_string()
                && v["created_at"].is_string()
                && v["updated_at"].is_string()
                && v["version"].is_i64()
        );
    }
    assert_eq!(
        file(&codebook_path),
        f.v.codebook(&cb_id, &cb_version).unwrap().source.as_bytes()
    );

    // And with the command-line tools themselves, where this machine has them.
    let have = |tool: &str| {
        std::process::Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if have("zstd") && have("tar") {
        let tmp = tempfile::tempdir().unwrap();
        let mut zst = Vec::new();
        age::Decryptor::new(&bytes[..])
            .unwrap()
            .decrypt(std::iter::once(&f.key as &dyn age::Identity))
            .unwrap()
            .read_to_end(&mut zst)
            .unwrap();
        std::fs::write(tmp.path().join("b.tar.zst"), &zst).unwrap();
        let x = tmp.path().join("x");
        std::fs::create_dir(&x).unwrap();
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg("zstd -d -q -c b.tar.zst | tar -x -f - -C x")
            .current_dir(tmp.path())
            .status()
            .unwrap();
        assert!(status.success());
        assert_eq!(
            std::fs::read(x.join("manifest.json")).unwrap(),
            *manifest_bytes
        );
        for (path, _, data) in &entries[2..] {
            assert_eq!(
                &std::fs::read(x.join(path)).unwrap(),
                data,
                "{path} as extracted by tar"
            );
        }
    } else {
        eprintln!("zstd or tar not installed: checked with the crates only");
    }
}

// ---- 3. incremental bundles ----------------------------------------------------------------

#[test]
fn incremental_bundles_carry_changes_and_chain() {
    let mut f = fixture();
    let r1 = f.export("1.tbundle", false, false).unwrap();
    let m1 = f.read("1.tbundle").manifest().clone();

    let new_story = "EDITED-A 수정: 탄광이 아니라 광산이었습니다";
    let edited =
        f.v.set_answer(&f.a.interview, None, "cl_anything_else", &json!(new_story))
            .unwrap();
    assert!(
        f.v.clear_answer(&f.a.interview, None, "ever_detained")
            .unwrap()
    );

    // An existing file is never replaced, and a refused export does not use up a sequence number.
    let first = f.bytes("1.tbundle");
    assert!(matches!(
        f.export("1.tbundle", false, false),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(f.bytes("1.tbundle"), first);

    let r2 = f.export("2.tbundle", false, false).unwrap();
    let c2 = f.read("2.tbundle");
    let m2 = c2.manifest();
    assert_eq!(
        (r2.sequence, m2.sequence, m2.kind.as_str()),
        (2, 2, "incremental")
    );
    assert_eq!(
        m2.previous_bundle_hash.as_deref(),
        Some(r1.bundle_hash.as_str())
    );
    assert_eq!(m2.audit_from_seq, m1.audit_to_seq + 1);
    assert_eq!(
        (m2.audit_to_seq - m2.audit_from_seq + 1, c2.audit.len()),
        (2, 2),
        "the edit and the deletion"
    );
    assert!(c2.audit.iter().all(|e| !e.redacted));
    assert_eq!(
        c2.audit[0].prev_hash, m1.audit_head_hash,
        "the audit chain continues the previous bundle's"
    );
    // Just the edited answer and the tombstone of the cleared one.
    let answers = c2.of(RecordKind::Answer);
    assert_eq!(answers.len(), 1);
    assert_eq!(
        (answers[0]["id"].as_str(), answers[0]["version"].as_i64()),
        (Some(edited.meta.id.as_str()), Some(2))
    );
    assert_eq!(answers[0]["value"], json!(new_story));
    let tombs = c2.of(RecordKind::Tombstone);
    assert_eq!(tombs.len(), 1);
    assert_eq!(tombs[0]["record_id"], json!(f.a_detained));
    assert_eq!(tombs[0]["record_type"], json!("answer"));
    assert_eq!(tombs[0]["interview_id"], json!(f.a.interview));
    assert!(tombs[0]["deleted_at"].is_string());
    for k in [
        RecordKind::Witness,
        RecordKind::WitnessIdentity,
        RecordKind::Consent,
        RecordKind::Interview,
        RecordKind::GroupInstance,
        RecordKind::Note,
        RecordKind::Attachment,
    ] {
        assert!(
            c2.of(k).is_empty(),
            "{k:?} travelled again without changing"
        );
    }
    assert!(c2.attachments.is_empty());
    assert_eq!(
        (
            r2.counts.answers,
            r2.counts.tombstones,
            r2.counts.audit_entries
        ),
        (1, 1, 2)
    );
    assert_eq!(r2.withheld, Default::default());

    // Nothing changed: nothing to export, and no file (not even a partial one) appears.
    let e = f.export("empty.tbundle", false, false).unwrap_err();
    assert!(matches!(e, Error::NothingToExport(_)), "{e}");
    assert_eq!(f.files_in_out(), set(["1.tbundle", "2.tbundle"]));

    // A change to a witness who does not share: nothing of it travels, only a redacted entry.
    f.v.set_answer(
        &f.b.interview,
        None,
        "cl_anything_else",
        &json!("SECRET-B edited"),
    )
    .unwrap();
    let r3 = f.export("3.tbundle", false, false).unwrap();
    let c3 = f.read("3.tbundle");
    assert_eq!(
        r3.sequence, 3,
        "the refused exports used no sequence number"
    );
    assert_eq!(
        c3.manifest().previous_bundle_hash.as_deref(),
        Some(r2.bundle_hash.as_str())
    );
    assert!(c3.records.is_empty() && c3.attachments.is_empty());
    assert_eq!(c3.audit.len(), 1);
    assert!(c3.audit[0].redacted);
    assert_eq!(
        (
            r3.withheld.records,
            r3.withheld.witnesses,
            r3.withheld.reasons.no_share_consent
        ),
        (1, 1, 1)
    );

    // Full: everything shareable again, as it is now.
    let r4 = f.export("4.tbundle", true, false).unwrap();
    let c4 = f.read("4.tbundle");
    let m4 = c4.manifest();
    assert_eq!(
        (r4.sequence, m4.kind.as_str(), m4.audit_from_seq),
        (4, "full", 1)
    );
    assert_eq!(
        m4.previous_bundle_hash.as_deref(),
        Some(r3.bundle_hash.as_str())
    );
    assert_eq!(c4.ids(RecordKind::Witness), set([&f.a.id, &f.d.id]));
    assert_eq!(
        c4.ids(RecordKind::Answer),
        set([&f.a.answer, &f.a_facility, &f.d.answer]),
        "the cleared answer is gone"
    );
    assert_eq!(c4.ids(RecordKind::Tombstone), set([&f.a_detained]));
    assert_eq!(c4.ids(RecordKind::Interview).len(), 2);
    assert_eq!(c4.ids(RecordKind::Consent).len(), 3);
    assert_eq!(c4.ids(RecordKind::GroupInstance), set([&f.a_episode]));
    assert_eq!(c4.ids(RecordKind::Note), set([&f.a_note]));
    assert_eq!(c4.attachments[&f.a_attachment], f.attachment);
    assert_eq!(
        c4.audit.len() as u64,
        f.v.audit_verify().unwrap().entries as u64
    );
    let story = c4
        .of(RecordKind::Answer)
        .into_iter()
        .find(|v| v["id"] == json!(f.a.answer))
        .unwrap()
        .clone();
    assert_eq!(story["value"], json!(new_story));
    assert!(c4.mentions("SECRET-").is_empty());
    assert_eq!(r4.withheld.records, 7 + 3 + 3);
    assert_eq!(
        c4.audio[&f.a_recording], f.a_wav,
        "a full bundle carries the audio again"
    );
}

#[test]
fn consent_given_later_sends_everything_and_withdrawal_sends_only_the_consent() {
    let mut f = fixture();
    let r1 = f.export("1.tbundle", false, false).unwrap();
    assert!(
        !f.read("1.tbundle")
            .attachments
            .contains_key(&f.b_attachment)
    );

    // B now agrees to sharing; D withdraws.
    let scopes = ConsentScopes {
        record_audio: true,
        transcribe: true,
        share_archive: true,
        ..Default::default()
    };
    f.v.set_consent(&f.b.code, scopes, "kim", None, ConsentMethod::Written)
        .unwrap();
    f.v.withdraw_consent(&f.d.code, None).unwrap();

    let r2 = f.export("2.tbundle", false, false).unwrap();
    let c2 = f.read("2.tbundle");
    assert_eq!(
        (r2.sequence, c2.manifest().previous_bundle_hash.as_deref()),
        (2, Some(r1.bundle_hash.as_str()))
    );
    // All of B's records, although only the consent changed since bundle 1.
    assert_eq!(c2.ids(RecordKind::Witness), set([&f.b.id]));
    assert_eq!(c2.ids(RecordKind::Interview), set([&f.b.interview]));
    assert_eq!(c2.ids(RecordKind::Answer), set([&f.b.answer]));
    assert_eq!(c2.ids(RecordKind::Attachment), set([&f.b_attachment]));
    assert_eq!(
        c2.attachments.get(&f.b_attachment).map(Vec::as_slice),
        Some(b"ATTACH-CANARY-B".as_slice())
    );
    assert_eq!(
        c2.of(RecordKind::Answer)[0]["value"],
        json!("SECRET-B 보위부 구류장")
    );
    assert!(
        c2.of(RecordKind::WitnessIdentity).is_empty(),
        "identity still needs include_identity"
    );
    // D: the withdrawn consent only.
    assert_eq!(
        c2.ids(RecordKind::Consent),
        set([&f.consent_id(&f.b), &f.consent_id(&f.d)])
    );
    let d_consent = c2
        .of(RecordKind::Consent)
        .into_iter()
        .find(|v| v["witness_id"] == json!(f.d.id))
        .unwrap()
        .clone();
    assert!(d_consent["withdrawn_at"].is_string());
    assert_eq!(c2.mentions(&f.d.id), [RecordKind::Consent]);
    assert!(c2.mentions(&f.d.interview).is_empty());
    // Nothing of A (unchanged), nothing of C or E.
    for id in [&f.a.id, &f.a.interview, &f.c.id, &f.e.id] {
        assert!(c2.mentions(id).is_empty(), "{id}");
    }
    // The audit entries: B's consent change is visible, D's withdrawal is redacted.
    assert_eq!(c2.audit.len(), 2);
    assert_eq!(
        c2.audit[0].record_id.as_deref(),
        Some(f.consent_id(&f.b).as_str())
    );
    assert!(c2.audit[1].redacted);
    assert_eq!(r2.withheld, Default::default());
    assert_eq!(
        (
            r2.counts.witnesses,
            r2.counts.consents,
            r2.counts.interviews,
            r2.counts.answers,
            r2.counts.attachments
        ),
        (1, 2, 1, 1, 1)
    );
}

// ---- 4. bad input --------------------------------------------------------------------------

/// A good full bundle of the fixture vault, shared by the tests that damage or forge bundles.
struct Good {
    bytes: Vec<u8>,
    key: age::x25519::Identity,
    device_key: String,
    attachment_id: String,
}

fn good() -> &'static Good {
    static GOOD: OnceLock<Good> = OnceLock::new();
    GOOD.get_or_init(|| {
        let mut f = fixture();
        f.export("good.tbundle", true, false).unwrap();
        Good {
            bytes: f.bytes("good.tbundle"),
            key: f.key.clone(),
            device_key: f.v.device_public_key().unwrap(),
            attachment_id: f.a_attachment.clone(),
        }
    })
}

/// A bundle as its parts: manifest bytes, signature bytes, payload files in order.
#[derive(Clone)]
struct Parts {
    manifest: Vec<u8>,
    sig: Vec<u8>,
    files: Vec<(String, Vec<u8>)>,
}

fn parts() -> Parts {
    let g = good();
    let mut entries = tar_entries(&plaintext_tar(&g.bytes, &g.key))
        .into_iter()
        .map(|(p, _, d)| (p, d));
    let (m, manifest) = entries.next().unwrap();
    let (s, sig) = entries.next().unwrap();
    assert_eq!((m.as_str(), s.as_str()), ("manifest.json", "manifest.sig"));
    Parts {
        manifest,
        sig,
        files: entries.collect(),
    }
}

/// One tar entry written byte by byte, so that any path, type and declared size can be made.
fn raw_entry(path: &[u8], kind: tar::EntryType, declared_size: u64, data: &[u8]) -> Vec<u8> {
    let mut h = tar::Header::new_ustar();
    h.as_ustar_mut().unwrap().name[..path.len()].copy_from_slice(path);
    h.set_size(declared_size);
    h.set_mode(0o600);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_cksum();
    let mut out = h.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
    out
}

fn entry(path: &str, data: &[u8]) -> Vec<u8> {
    raw_entry(
        path.as_bytes(),
        tar::EntryType::Regular,
        data.len() as u64,
        data,
    )
}

/// tar (with its end marker) → zstd → age to the good bundle's archive key.
fn seal(entries: &[Vec<u8>]) -> Vec<u8> {
    let mut tar_bytes = entries.concat();
    tar_bytes.extend_from_slice(&[0; 1024]);
    seal_stream(&zstd::encode_all(&tar_bytes[..], 3).unwrap())
}

fn seal_stream(zstd_bytes: &[u8]) -> Vec<u8> {
    let recipient = good().key.to_public();
    let enc = age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
        .unwrap();
    let mut w = enc.wrap_output(Vec::new()).unwrap();
    w.write_all(zstd_bytes).unwrap();
    w.finish().unwrap()
}

impl Parts {
    fn entries(&self) -> Vec<Vec<u8>> {
        let mut v = vec![
            entry("manifest.json", &self.manifest),
            entry("manifest.sig", &self.sig),
        ];
        v.extend(self.files.iter().map(|(p, d)| entry(p, d)));
        v
    }
    fn seal(&self) -> Vec<u8> {
        seal(&self.entries())
    }
    fn manifest_value(&self) -> Value {
        serde_json::from_slice(&self.manifest).unwrap()
    }
    fn file_mut(&mut self, path: &str) -> &mut Vec<u8> {
        &mut self.files.iter_mut().find(|(p, _)| p == path).unwrap().1
    }
}

/// A key that is not the vault's: what an attacker (or another device) signs with.
fn other_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn signature(key: &SigningKey, manifest: &[u8]) -> Vec<u8> {
    hex::encode(key.sign(&[SIGNATURE_CONTEXT, manifest].concat()).to_bytes()).into_bytes()
}

fn listing(files: &[(String, Vec<u8>)]) -> Value {
    files
        .iter()
        .map(|(p, d)| json!({"path": p, "size": d.len(), "sha256": hex::encode(Sha256::digest(d))}))
        .collect()
}

/// Signs `m` (naming the other key as the device key) and puts it in front of `files`.
fn signed(mut m: Value, files: Vec<(String, Vec<u8>)>) -> Parts {
    m["device_public_key"] = json!(hex::encode(other_key().verifying_key().to_bytes()));
    let manifest = serde_json::to_vec_pretty(&m).unwrap();
    Parts {
        sig: signature(&other_key(), &manifest),
        manifest,
        files,
    }
}

/// The good bundle with its payload edited, listed afresh and correctly signed by another key:
/// everything the signature can vouch for is consistent, so only the reader's own rules can
/// refuse it.
fn forged(edit: impl FnOnce(&mut Value, &mut Vec<(String, Vec<u8>)>)) -> Vec<u8> {
    let p = parts();
    let mut m = p.manifest_value();
    let mut files = p.files;
    edit(&mut m, &mut files);
    m["files"] = listing(&files);
    signed(m, files).seal()
}

/// The good bundle with only its manifest edited (listing included), correctly signed by another key.
fn forged_manifest(edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let p = parts();
    let mut m = p.manifest_value();
    edit(&mut m);
    signed(m, p.files).seal()
}

fn file_index(m: &Value, prefix: &str) -> usize {
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["path"].as_str().unwrap().starts_with(prefix))
        .unwrap()
}

fn map_lines(data: &mut Vec<u8>, f: impl Fn(&mut Value)) {
    let mut out = Vec::new();
    for line in data.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let mut v: Value = serde_json::from_slice(line).unwrap();
        f(&mut v);
        out.extend(serde_json::to_vec(&v).unwrap());
        out.push(b'\n');
    }
    *data = out;
}

#[test]
fn forging_helpers_make_readable_bundles() {
    let g = good();
    // Reassembled from its parts with the vault's own signature: still a good bundle.
    let c = read_ok(&parts().seal(), &g.key);
    assert_eq!(c.manifest().device_public_key, g.device_key);
    assert_eq!(c.attachments.len(), 1);
    // Re-signed by another key: not the reader's call (the archive quarantines untrusted keys),
    // but the sink is told which key signed.
    let c = read_ok(&forged(|_, _| {}), &g.key);
    assert_eq!(
        c.manifest().device_public_key,
        hex::encode(other_key().verifying_key().to_bytes())
    );
    assert_ne!(c.manifest().device_public_key, g.device_key);
    // A sink that stops after the manifest gets nothing else.
    struct Stop(usize);
    impl BundleSink for Stop {
        fn manifest(&mut self, _: &Manifest, _: &str) -> testimony_core::Result<bool> {
            Ok(false)
        }
        fn codebook(&mut self, _: &str, _: &str, _: &str) -> testimony_core::Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn record(&mut self, _: RecordKind, _: Value) -> testimony_core::Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn attachment(&mut self, _: &str, _: &[u8]) -> testimony_core::Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn audio(&mut self, _: &str, _: u64, _: &mut dyn Read) -> testimony_core::Result<()> {
            self.0 += 1;
            Ok(())
        }
        fn audit_entry(&mut self, _: &BundleAuditEntry) -> testimony_core::Result<()> {
            self.0 += 1;
            Ok(())
        }
    }
    let mut stop = Stop(0);
    assert_eq!(
        read_bundle(&g.bytes[..], std::slice::from_ref(&g.key), &mut stop).unwrap(),
        ReadOutcome::Stopped
    );
    assert_eq!(stop.0, 0);
}

/// Where the age header ends and the payload (16-byte nonce, then 64 KiB + 16 chunks) starts.
fn age_header_len(bytes: &[u8]) -> usize {
    let mac = bytes.windows(5).position(|w| w == b"\n--- ").unwrap() + 1;
    mac + bytes[mac..].iter().position(|&b| b == b'\n').unwrap() + 1
}

#[test]
fn truncated_bundles_are_rejected() {
    let g = good();
    let len = g.bytes.len();
    let body = age_header_len(&g.bytes) + 16;
    const CHUNK: usize = 64 * 1024 + 16;
    assert!(
        len > body + 2 * CHUNK,
        "the fixture spans several age chunks ({len} bytes)"
    );
    let cuts = [
        0,
        1,
        21,
        body - 17,
        body - 16,
        body,
        body + 100,
        body + CHUNK - 1,
        body + CHUNK,
        body + CHUNK + 1,
        body + 2 * CHUNK,
        len / 2,
        len - 17,
        len - 16,
        len - 1,
    ];
    for cut in cuts {
        let m = rejected(&g.bytes[..cut], &g.key, &format!("cut at {cut} of {len}"));
        assert!(!m.is_empty());
    }
    // Data appended after the end is a damaged bundle too.
    let mut longer = g.bytes.clone();
    longer.extend_from_slice(b"x");
    rejected(&longer, &g.key, "one byte appended");
    // Chunk-aligned cut inside the plaintext, re-encrypted as a complete age file: the tar and
    // the zstd frame are cut short.
    let tar_bytes = plaintext_tar(&g.bytes, &g.key);
    let zst = zstd::encode_all(&tar_bytes[..], 3).unwrap();
    rejected(
        &seal_stream(&zst[..zst.len() / 2]),
        &g.key,
        "zstd frame cut in half",
    );
    let half_tar = zstd::encode_all(&tar_bytes[..tar_bytes.len() / 2], 3).unwrap();
    rejected(&seal_stream(&half_tar), &g.key, "tar cut in half");
    let manifest_len = parts().manifest.len();
    let after_signature = 512 + manifest_len.next_multiple_of(512) + 1024;
    let no_files = zstd::encode_all(&tar_bytes[..after_signature], 3).unwrap();
    rejected(
        &seal_stream(&no_files),
        &g.key,
        "manifest and signature only",
    );
}

#[test]
fn flipped_bits_are_rejected() {
    let g = good();
    let len = g.bytes.len();
    let header = age_header_len(&g.bytes);
    let positions = [
        0,
        5,
        30,
        header - 10,
        header + 3,
        header + 16 + 5,
        header + 16 + 64 * 1024 + 8,
        len / 2,
        len - 20,
        len - 1,
    ];
    for at in positions {
        for bit in [0x01u8, 0x80] {
            let mut bad = g.bytes.clone();
            bad[at] ^= bit;
            rejected(
                &bad,
                &g.key,
                &format!("bit {bit:#x} flipped at {at} of {len}"),
            );
        }
    }
}

#[test]
fn wrong_recipient_and_not_a_bundle() {
    let g = good();
    let m = rejected(
        &g.bytes,
        &age::x25519::Identity::generate(),
        "another archive's key",
    );
    assert!(m.contains("recipient"), "{m}");
    rejected(b"", &g.key, "empty file");
    rejected(b"PK\x03\x04 not age at all", &g.key, "not age");
    rejected(&noise(5000, 42), &g.key, "random bytes");
    // Valid age, but not zstd inside; valid zstd, but not tar inside.
    rejected(&seal_stream(b"plain text, not zstd"), &g.key, "not zstd");
    rejected(
        &seal_stream(&zstd::encode_all(&b"not a tar"[..], 3).unwrap()),
        &g.key,
        "not tar",
    );
    rejected(
        &seal_stream(&zstd::encode_all(&[0u8; 1024][..], 3).unwrap()),
        &g.key,
        "empty tar",
    );
}

#[test]
fn altered_manifest_with_the_old_signature_is_rejected() {
    let g = good();
    let p = parts();
    let mut m = p.manifest_value();
    m["sequence"] = json!(2);
    let mut bad = p.clone();
    bad.manifest = serde_json::to_vec_pretty(&m).unwrap();
    let msg = rejected(&bad.seal(), &g.key, "sequence changed");
    assert!(msg.contains("signature"), "{msg}");
    // Even a change that means the same JSON: the signature is over the exact bytes.
    let mut bad = p.clone();
    bad.manifest.push(b' ');
    rejected(&bad.seal(), &g.key, "trailing space");
    // Withheld counts lowered to hide that something was held back.
    let mut m = p.manifest_value();
    m["withheld"]["records"] = json!(0);
    let mut bad = p.clone();
    bad.manifest = serde_json::to_vec_pretty(&m).unwrap();
    rejected(&bad.seal(), &g.key, "withheld changed");
    // A signature that is not one.
    for sig in [&b""[..], b"00", &[b'0'; 128], &[b'z'; 128], &[b'a'; 300]] {
        let mut bad = p.clone();
        bad.sig = sig.to_vec();
        rejected(
            &bad.seal(),
            &g.key,
            &format!("signature {:?}", String::from_utf8_lossy(sig)),
        );
    }
    // The other key's signature on the vault's manifest, and the vault's signature on a
    // manifest that names the other key.
    let mut bad = p.clone();
    bad.sig = signature(&other_key(), &p.manifest);
    rejected(
        &bad.seal(),
        &g.key,
        "signature by a key the manifest does not name",
    );
    let mut m = p.manifest_value();
    m["device_public_key"] = json!(hex::encode(other_key().verifying_key().to_bytes()));
    let mut bad = p.clone();
    bad.manifest = serde_json::to_vec_pretty(&m).unwrap();
    rejected(
        &bad.seal(),
        &g.key,
        "manifest names another key, old signature",
    );
}

#[test]
fn altered_payload_under_a_valid_manifest_is_rejected() {
    let g = good();
    let p = parts();
    // Same size, one character changed.
    let mut bad = p.clone();
    let answers = bad.file_mut("records/answers.jsonl");
    let at = answers.iter().position(|&b| b == b'A').unwrap();
    answers[at] = b'B';
    let m = rejected(&bad.seal(), &g.key, "answer text changed");
    assert!(m.contains("records/answers.jsonl"), "{m}");
    // A line added (different size).
    let mut bad = p.clone();
    let witnesses = bad.file_mut("records/witnesses.jsonl");
    let first = witnesses.split(|&b| b == b'\n').next().unwrap().to_vec();
    witnesses.extend(first);
    witnesses.push(b'\n');
    rejected(&bad.seal(), &g.key, "witness line duplicated");
    // One bit of the attachment.
    let mut bad = p.clone();
    bad.file_mut(&format!("attachments/{}", g.attachment_id))[1000] ^= 1;
    rejected(&bad.seal(), &g.key, "attachment bit flipped");
    // A listed file missing, files swapped, a file given twice.
    let mut bad = p.clone();
    bad.files.remove(2);
    rejected(&bad.seal(), &g.key, "listed file missing");
    let mut bad = p.clone();
    bad.files.swap(1, 2);
    rejected(&bad.seal(), &g.key, "files out of order");
    let mut bad = p.clone();
    bad.files.pop();
    rejected(&bad.seal(), &g.key, "last listed file missing");
    let mut bad = p.clone();
    let twice = bad.files[1].clone();
    bad.files.insert(1, twice);
    rejected(&bad.seal(), &g.key, "file given twice");
}

#[test]
fn entries_the_manifest_does_not_list_are_rejected() {
    let g = good();
    let p = parts();
    let extra = || entry("records/notes2.jsonl", b"{}\n");
    // At the end, in the middle, before the manifest.
    let mut e = p.entries();
    e.push(extra());
    let m = rejected(&seal(&e), &g.key, "extra file at the end");
    assert!(m.contains("does not list"), "{m}");
    let mut e = p.entries();
    e.insert(4, extra());
    rejected(&seal(&e), &g.key, "extra file in the middle");
    let mut e = p.entries();
    e.insert(0, extra());
    rejected(&seal(&e), &g.key, "extra file before the manifest");
    let mut e = p.entries();
    e.insert(2, extra());
    rejected(&seal(&e), &g.key, "extra file after the signature");
    // A listed file repeated after the last one.
    let mut e = p.entries();
    e.push(e[2].clone());
    rejected(&seal(&e), &g.key, "listed file repeated at the end");
    let mut e = p.entries();
    e.push(entry("manifest.json", &p.manifest));
    rejected(&seal(&e), &g.key, "second manifest at the end");
    // Data after the tar's end marker (inside the encryption).
    let mut tar_bytes = p.entries().concat();
    tar_bytes.extend_from_slice(&[0; 1024]);
    tar_bytes.extend_from_slice(&entry("records/notes2.jsonl", b"{}\n"));
    rejected(
        &seal_stream(&zstd::encode_all(&tar_bytes[..], 3).unwrap()),
        &g.key,
        "entry after the end marker",
    );
    // Links and folders in the place of a listed file.
    for kind in [
        tar::EntryType::Symlink,
        tar::EntryType::Link,
        tar::EntryType::Directory,
        tar::EntryType::Fifo,
    ] {
        let mut e = p.entries();
        e[3] = raw_entry(p.files[1].0.as_bytes(), kind, 0, b"");
        rejected(&seal(&e), &g.key, &format!("{kind:?} entry"));
    }
    let mut e = p.entries();
    let mut link = tar::Header::new_ustar();
    link.set_path("manifest.json").unwrap();
    link.set_link_name("/etc/passwd").unwrap();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    link.set_cksum();
    e[0] = link.as_bytes().to_vec();
    rejected(&seal(&e), &g.key, "manifest.json as a symlink");
}

#[test]
fn tar_extension_headers_are_refused() {
    let g = good();
    let p = parts();
    // A GNU long-name entry and a PAX header that would rename or resize the next entry.
    let long_name = raw_entry(
        b"././@LongLink",
        tar::EntryType::GNULongName,
        22,
        b"records/answers.jsonl\0",
    );
    let mut e = p.entries();
    let answers = p
        .files
        .iter()
        .position(|(f, _)| f == "records/answers.jsonl")
        .unwrap()
        + 2;
    e[answers] = [
        long_name,
        raw_entry(
            b"x",
            tar::EntryType::Regular,
            p.files[answers - 2].1.len() as u64,
            &p.files[answers - 2].1,
        ),
    ]
    .concat();
    rejected(&seal(&e), &g.key, "GNU long name");
    let attachment = format!("attachments/{}", g.attachment_id);
    let at = p.files.iter().position(|(f, _)| *f == attachment).unwrap() + 2;
    let record = "25 size=1000000000000000\n";
    assert_eq!(record.len(), 25, "a PAX record counts its own length");
    let mut e = p.entries();
    e[at] = [
        raw_entry(
            b"pax",
            tar::EntryType::XHeader,
            record.len() as u64,
            record.as_bytes(),
        ),
        e[at].clone(),
    ]
    .concat();
    rejected(&seal(&e), &g.key, "PAX size override");
}

#[test]
fn a_huge_tar_extension_header_is_not_buffered() {
    let g = good();
    let p = parts();
    // A PAX header of 1 GiB of zeros in front of everything (so before any signature): a
    // bundle of a few KiB that must not make the reader hold a gigabyte. The zstd stream is
    // the header, then many frames of zeros, then the rest.
    const BOMB: usize = 1 << 30;
    const ZEROS: usize = 4 << 20;
    let header = raw_entry(b"pax", tar::EntryType::XHeader, BOMB as u64, b"");
    let zeros = zstd::encode_all(&vec![0u8; ZEROS][..], 3).unwrap();
    let mut rest = p.entries().concat();
    rest.extend_from_slice(&[0; 1024]);
    let mut stream = zstd::encode_all(&header[..], 3).unwrap();
    for _ in 0..BOMB / ZEROS {
        stream.extend_from_slice(&zeros);
    }
    stream.extend(zstd::encode_all(&rest[..], 3).unwrap());
    let bomb = seal_stream(&stream);
    assert!(bomb.len() < 1 << 20, "{}", bomb.len());
    rejected(&bomb, &g.key, "1 GiB PAX header");
    let largest = LARGEST_ALLOC.load(Ordering::Relaxed);
    assert!(
        largest < 256 << 20,
        "the reader allocated {} MiB for a header it should have refused",
        largest >> 20
    );
}

#[test]
fn declared_sizes_are_checked_before_anything_is_read() {
    let g = good();
    let attachment = format!("attachments/{}", g.attachment_id);
    // The manifest declares 10^15 bytes (signed): refused from the manifest alone.
    for prefix in [
        "attachments/",
        "records/answers.jsonl",
        "audit/",
        "codebooks/",
    ] {
        let bad = forged_manifest(|m| {
            let i = file_index(m, prefix);
            m["files"][i]["size"] = json!(1_000_000_000_000_000u64);
        });
        let msg = rejected(&bad, &g.key, &format!("{prefix} declared 10^15 bytes"));
        assert!(msg.contains("larger than allowed"), "{msg}");
    }
    // ... and with a tar header that says the same, and no data behind it.
    let p = parts();
    let mut m = p.manifest_value();
    let i = file_index(&m, "attachments/");
    m["files"][i]["size"] = json!(1_000_000_000_000_000u64);
    let s = signed(m, p.files.clone());
    let mut e = s.entries();
    e[i + 2] = raw_entry(
        attachment.as_bytes(),
        tar::EntryType::Regular,
        1_000_000_000_000_000,
        b"",
    );
    rejected(&seal(&e), &g.key, "10^15 bytes in manifest and tar header");
    // The vault's own manifest, but the tar header claims 10^15 bytes.
    let mut e = p.entries();
    e[i + 2] = raw_entry(
        attachment.as_bytes(),
        tar::EntryType::Regular,
        1_000_000_000_000_000,
        &p.files[i].1,
    );
    let msg = rejected(
        &seal(&e),
        &g.key,
        "tar header 10^15, manifest the real size",
    );
    assert!(msg.contains("size differs"), "{msg}");
    // Declared within limits (60 MiB) in both, but the data is not there.
    let mut m = p.manifest_value();
    m["files"][i]["size"] = json!(60u64 << 20);
    let s = signed(m, p.files.clone());
    let mut e = s.entries();
    e[i + 2] = raw_entry(
        attachment.as_bytes(),
        tar::EntryType::Regular,
        60 << 20,
        &p.files[i].1,
    );
    rejected(&seal(&e), &g.key, "60 MiB declared, 150 KB present");
    // A manifest over 1 MiB, a JSON line over 4 MiB.
    let bad = forged_manifest(|m| m["padding"] = json!("x".repeat(1 << 20)));
    assert!(rejected(&bad, &g.key, "manifest over 1 MiB").contains("manifest.json"));
    let bad = forged(|_, files| {
        let notes = &mut files
            .iter_mut()
            .find(|(p, _)| p == "records/notes.jsonl")
            .unwrap()
            .1;
        map_lines(notes, |v| v["text"] = json!("가".repeat(2 << 20)));
    });
    let msg = rejected(&bad, &g.key, "note line over 4 MiB");
    assert!(msg.contains("longer than allowed"), "{msg}");
}

#[test]
fn paths_that_could_escape_are_rejected() {
    let g = good();
    let p = parts();
    let attachment = format!("attachments/{}", g.attachment_id);
    let i = p.files.iter().position(|(f, _)| *f == attachment).unwrap();
    let bad_paths = [
        "../evil",
        "/etc/passwd",
        "attachments/../../evil",
        "attachments/..",
        "attachments/.hidden",
        "attachments/a/b",
        "attachments/",
        "attachments/a\\b",
        "records/../manifest.json",
        "records/unknown.jsonl",
        "codebooks/../x@1.toml",
        "codebooks/x.toml",
        "codebooks/x@../1.toml",
        "audit/../../entries.jsonl",
        "audio/../../evil.wav",
        "audio/.wav",
        "audio/a/b.wav",
        "audio/x",
        "./records/answers.jsonl",
        "manifest.json",
    ];
    for bad_path in bad_paths {
        // Listed under that path in a correctly signed manifest, and stored under it.
        let mut files = p.files.clone();
        files[i].0 = bad_path.to_string();
        let mut m = p.manifest_value();
        m["files"] = listing(&files);
        let bad = signed(m, files);
        let e = bad.entries();
        rejected(&seal(&e), &g.key, &format!("listed path {bad_path}"));
        // The vault's manifest, but the tar entry stored under that path.
        let mut e = p.entries();
        e[i + 2] = raw_entry(
            bad_path.as_bytes(),
            tar::EntryType::Regular,
            p.files[i].1.len() as u64,
            &p.files[i].1,
        );
        rejected(&seal(&e), &g.key, &format!("tar path {bad_path}"));
    }
    for bad_path in [
        "/manifest.json",
        "./manifest.json",
        "../manifest.json",
        "manifest.json/",
    ] {
        let mut e = p.entries();
        e[0] = raw_entry(
            bad_path.as_bytes(),
            tar::EntryType::Regular,
            p.manifest.len() as u64,
            &p.manifest,
        );
        rejected(&seal(&e), &g.key, &format!("manifest stored as {bad_path}"));
    }
    // Attachment names that would escape a folder when the archive saves the file.
    for name in [
        "../../etc/passwd",
        "a/b",
        "/etc/passwd",
        "..",
        ".",
        "",
        "a\\b",
        "~/.ssh/authorized_keys",
        "x\0y",
    ] {
        let bad = forged(|_, files| {
            let meta = &mut files
                .iter_mut()
                .find(|(p, _)| p == "records/attachments.jsonl")
                .unwrap()
                .1;
            map_lines(meta, |v| v["name"] = json!(name));
        });
        let msg = rejected(&bad, &g.key, &format!("attachment name {name:?}"));
        assert!(msg.contains("attachment name"), "{msg}");
    }
    // Record ids that are not plain names.
    for id in ["../x", "a/b", "", ".x"] {
        let bad = forged(|_, files| {
            let w = &mut files
                .iter_mut()
                .find(|(p, _)| p == "records/witnesses.jsonl")
                .unwrap()
                .1;
            map_lines(w, |v| v["id"] = json!(id));
        });
        rejected(&bad, &g.key, &format!("record id {id:?}"));
    }
}

#[test]
fn future_format_version_is_a_newer_version() {
    let g = good();
    let bad = forged_manifest(|m| m["format_version"] = json!(99));
    match read_with(&bad, &g.key).0 {
        Err(Error::NewerVersion {
            found: 99,
            supported: 1,
            ..
        }) => {}
        other => panic!("expected NewerVersion, got {other:?}"),
    }
    for (field, value) in [
        ("format", json!("something-else")),
        ("format_version", json!(0)),
        ("format_version", json!("1")),
        ("device_id", json!("../x")),
    ] {
        let bad = forged_manifest(|m| m[field] = value.clone());
        rejected(&bad, &g.key, &format!("{field} = {value}"));
    }
}

#[test]
fn inconsistent_contents_are_rejected() {
    let g = good();
    // Counts that do not match the files.
    let bad = forged_manifest(|m| {
        m["counts"]["answers"] = json!(m["counts"]["answers"].as_u64().unwrap() + 1)
    });
    rejected(&bad, &g.key, "answer count");
    let bad = forged_manifest(|m| m["counts"]["witness_identities"] = json!(1));
    rejected(&bad, &g.key, "identity count without a file");
    let bad = forged_manifest(|m| m["counts"]["audit_entries"] = json!(0));
    rejected(&bad, &g.key, "audit count");
    // Audit entries altered, dropped or not ending where the manifest says.
    let bad = forged(|_, files| {
        let audit = &mut files
            .iter_mut()
            .find(|(p, _)| p == "audit/entries.jsonl")
            .unwrap()
            .1;
        map_lines(audit, |v| {
            if v["action"] == json!("create") && v["record_type"] == json!("answer") {
                v["action"] = json!("update");
            }
        });
    });
    assert!(rejected(&bad, &g.key, "audit entry altered").contains("altered"));
    let bad = forged(|m, files| {
        let audit = &mut files
            .iter_mut()
            .find(|(p, _)| p == "audit/entries.jsonl")
            .unwrap()
            .1;
        let lines: Vec<&[u8]> = audit
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .collect();
        let kept: Vec<u8> = lines
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 3)
            .flat_map(|(_, l)| [*l, b"\n"].concat())
            .collect();
        *audit = kept;
        m["counts"]["audit_entries"] = json!(m["counts"]["audit_entries"].as_u64().unwrap() - 1);
    });
    rejected(&bad, &g.key, "audit entry removed");
    let bad = forged_manifest(|m| m["audit_head_hash"] = json!("00".repeat(32)));
    rejected(&bad, &g.key, "audit head hash");
    let bad =
        forged_manifest(|m| m["audit_to_seq"] = json!(m["audit_to_seq"].as_i64().unwrap() + 1));
    rejected(&bad, &g.key, "audit range");
    // Lines that are not records.
    for (line, what) in [
        (&b"not json\n"[..], "not JSON"),
        (b"[1,2]\n", "not an object"),
        (b"{\"version\": 1}\n", "no id"),
        (b"{\"id\": \"x\"}\n", "no version"),
    ] {
        let bad = forged(|_, files| {
            let notes = &mut files
                .iter_mut()
                .find(|(p, _)| p == "records/notes.jsonl")
                .unwrap()
                .1;
            *notes = line.to_vec();
        });
        rejected(&bad, &g.key, what);
    }
    let bad = forged(|_, files| {
        let notes = &mut files
            .iter_mut()
            .find(|(p, _)| p == "records/notes.jsonl")
            .unwrap()
            .1;
        notes.pop();
    });
    rejected(&bad, &g.key, "last line without its newline");
    let bad = forged(|_, files| {
        let cb = &mut files
            .iter_mut()
            .find(|(p, _)| p.starts_with("codebooks/"))
            .unwrap()
            .1;
        cb.extend_from_slice(&[0xff, 0xfe]);
    });
    rejected(&bad, &g.key, "codebook not UTF-8");
}

#[test]
fn hostile_numbers_are_rejected_without_panicking() {
    let g = good();
    let cases: [&[(&str, Value)]; 7] = [
        &[("sequence", json!(0))],
        &[("sequence", json!(i64::MIN))],
        &[("audit_from_seq", json!(i64::MIN))],
        &[
            ("audit_from_seq", json!(i64::MIN)),
            ("audit_to_seq", json!(0)),
        ],
        &[("audit_from_seq", json!(-5))],
        &[("audit_to_seq", json!(i64::MAX))],
        &[("audit_to_seq", json!(-1))],
    ];
    for fields in cases {
        let bad = forged_manifest(|m| {
            for (field, value) in fields {
                m[*field] = value.clone();
            }
        });
        rejected(&bad, &g.key, &format!("{fields:?}"));
    }
    // Both ends negative and no audit file: a range the exporter never writes.
    let bad = forged(|m, files| {
        files.retain(|(p, _)| p != "audit/entries.jsonl");
        m["counts"]["audit_entries"] = json!(0);
        m["audit_from_seq"] = json!(-5);
        m["audit_to_seq"] = json!(-3);
    });
    rejected(&bad, &g.key, "negative audit range");
    // One redacted entry at the very end of the number range.
    let bad = forged(|m, files| {
        let audit = &mut files
            .iter_mut()
            .find(|(p, _)| p == "audit/entries.jsonl")
            .unwrap()
            .1;
        let h = "ab".repeat(32);
        *audit = format!(
            "{{\"seq\":{},\"redacted\":true,\"prev_hash\":\"{h}\",\"hash\":\"{h}\"}}\n",
            i64::MAX
        )
        .into_bytes();
        m["counts"]["audit_entries"] = json!(1);
        m["audit_from_seq"] = json!(i64::MAX);
        m["audit_to_seq"] = json!(i64::MAX);
        m["audit_head_hash"] = json!(h);
    });
    rejected(&bad, &g.key, "audit entry number i64::MAX");
    // Sizes and counts beyond what the types hold.
    let bad = forged_manifest(|m| m["counts"]["answers"] = json!(-1));
    rejected(&bad, &g.key, "negative count");
    let bad = forged_manifest(|m| m["files"][0]["size"] = json!(u64::MAX));
    rejected(&bad, &g.key, "size u64::MAX");
}

#[test]
fn exporter_refuses_bad_recipients_and_existing_files() {
    let mut f = fixture();
    for recipients in [
        vec![],
        vec!["not-a-key".to_string()],
        vec!["age1qqqq".to_string()],
    ] {
        let opts = ExportOptions {
            recipients,
            full: false,
            include_identity: false,
        };
        let e =
            f.v.export_bundle(&opts, &f.out.join("x.tbundle"))
                .unwrap_err();
        if opts.recipients.is_empty() {
            assert!(matches!(e, Error::Invalid(_)), "{e}");
        } else {
            assert!(
                matches!(&e, Error::Invalid(testimony_core::Reason::NotARecipient { recipient }) if *recipient == opts.recipients[0]),
                "{e}"
            );
        }
    }
    std::fs::write(f.out.join("taken.tbundle"), b"keep me").unwrap();
    assert!(matches!(
        f.export("taken.tbundle", false, false),
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(f.bytes("taken.tbundle"), b"keep me");
    assert_eq!(f.files_in_out(), set(["taken.tbundle"]));
    // None of the refusals used up the first sequence number.
    assert_eq!(f.export("1.tbundle", false, false).unwrap().sequence, 1);
}

// ---- recordings and their audio ---------------------------------------------------------------

#[test]
fn a_recording_and_its_audio_travel_together_or_not_at_all() {
    let g = good();
    let c = read_ok(&g.bytes, &g.key);
    let rec = c
        .ids(RecordKind::Recording)
        .into_iter()
        .next()
        .expect("the fixture has a shared recording");
    let audio = format!("audio/{rec}.wav");
    // The audio left out (the manifest listing it afresh, correctly signed).
    let m = rejected(
        &forged(|_, files| files.retain(|(p, _)| *p != audio)),
        &g.key,
        "recording without audio",
    );
    assert!(m.contains("without its audio"), "{m}");
    // The recording left out, its audio kept.
    let m = rejected(
        &forged(|m, files| {
            files.retain(|(p, _)| {
                p != "records/recordings.jsonl" && p != "records/audio_markers.jsonl"
            });
            m["counts"]["recordings"] = json!(0);
            m["counts"]["audio_markers"] = json!(0);
        }),
        &g.key,
        "audio without recording",
    );
    assert!(m.contains("does not carry"), "{m}");
    // Audio under the name of a recording the bundle does not carry.
    let m = rejected(
        &forged(|_, files| {
            files.iter_mut().find(|(p, _)| *p == audio).unwrap().0 =
                "audio/other-recording.wav".into()
        }),
        &g.key,
        "renamed audio",
    );
    assert!(m.contains("does not carry"), "{m}");
}

#[test]
fn a_recording_still_running_waits_for_the_bundle_after_it_stops_and_its_markers_with_it() {
    let mut f = fixture();
    let live = f.v.start_recording(&f.a.interview, 16_000, 1).unwrap();
    let mut w = f.v.recording_writer(&live.meta.id).unwrap();
    w.append(&vec![300i16; 16_000]).unwrap();
    let marker = f.v.add_marker(&live.meta.id, 200, None, "during").unwrap();
    f.export("1.tbundle", false, false).unwrap();
    let c1 = f.read("1.tbundle");
    assert!(
        !c1.ids(RecordKind::Recording).contains(&live.meta.id),
        "a running recording does not travel"
    );
    assert!(
        !c1.ids(RecordKind::AudioMarker).contains(&marker.meta.id),
        "nor its markers"
    );
    w.append(&vec![-300i16; 8_000]).unwrap();
    drop(w);
    f.v.stop_recording(&live.meta.id).unwrap();
    f.export("2.tbundle", false, false).unwrap();
    let c2 = f.read("2.tbundle");
    assert_eq!(c2.ids(RecordKind::Recording), set([&live.meta.id]));
    assert_eq!(c2.ids(RecordKind::AudioMarker), set([&marker.meta.id]));
    let mut wav = Vec::new();
    f.v.export_wav(&live.meta.id, &mut wav).unwrap();
    assert_eq!(c2.audio[&live.meta.id], wav);
    assert_eq!(wav.len(), 44 + 24_000 * 2);

    // Deleting it sends tombstones for it and its marker, and no audio.
    f.v.delete_recording(&live.meta.id).unwrap();
    f.export("3.tbundle", false, false).unwrap();
    let c3 = f.read("3.tbundle");
    assert_eq!(
        c3.ids(RecordKind::Tombstone),
        set([&live.meta.id, &marker.meta.id])
    );
    let kinds: BTreeSet<String> = c3
        .of(RecordKind::Tombstone)
        .iter()
        .map(|t| t["record_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, set(["recording", "audio_marker"]));
    assert!(c3.audio.is_empty() && c3.ids(RecordKind::Recording).is_empty());
}

// ---- progress and cancel ---------------------------------------------------------------------

#[test]
fn export_reports_progress_and_a_cancelled_export_leaves_nothing() {
    use std::ops::ControlFlow;
    use testimony_core::bundle::{ExportPhase, ExportProgress};
    let mut f = fixture();
    // About 3.8 MB of audio, so that progress is reported along the way, not only at the ends.
    f.v.import_wav(&f.a.interview, &wav(120, 0x77)[..]).unwrap();
    let opts = f.opts(false, false);

    // Cancelled while hashing, then while writing: no file, no partial file, no bundle recorded.
    for stop_in in [ExportPhase::Checking, ExportPhase::Writing] {
        let mut calls = 0;
        let r = f.v.export_bundle_with_progress(
            &opts,
            &f.out.join("c.tbundle"),
            &mut |p: ExportProgress| {
                calls += 1;
                if p.phase == stop_in && p.done_bytes > 0 {
                    ControlFlow::Break(())
                } else {
                    ControlFlow::Continue(())
                }
            },
        );
        assert!(matches!(r, Err(Error::Cancelled)), "{stop_in:?}: {r:?}");
        assert!(calls >= 2);
        assert!(
            f.files_in_out().is_empty(),
            "{stop_in:?}: {:?} left behind",
            f.files_in_out()
        );
    }

    let mut seen: Vec<ExportProgress> = Vec::new();
    let r =
        f.v.export_bundle_with_progress(&opts, &f.out.join("1.tbundle"), &mut |p| {
            seen.push(p);
            ControlFlow::Continue(())
        });
    let r = r.unwrap();
    assert_eq!(r.sequence, 1, "the cancelled exports were not recorded");
    assert_eq!(f.files_in_out(), set(["1.tbundle"]));
    let fractions: Vec<f64> = seen.iter().map(ExportProgress::fraction).collect();
    assert!(
        fractions.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes back: {fractions:?}"
    );
    assert_eq!(fractions.first().copied(), Some(0.0));
    assert_eq!(fractions.last().copied(), Some(1.0));
    let middle = fractions.iter().filter(|&&x| x > 0.0 && x < 1.0).count();
    assert!(
        middle >= 4,
        "progress along the way, not only at the ends: {fractions:?}"
    );
    assert_eq!(seen.last().unwrap().phase, ExportPhase::Writing);
    // The bundle is whole.
    let c = f.read("1.tbundle");
    assert_eq!(c.audio.len(), 2);
}

// ---- the recording's stored WAV hash -----------------------------------------------------------

/// Schema v9 stores the SHA-256 of a recording's WAV form when it stops, so that an export
/// does not decode the audio twice. The export must still carry the right audio when the hash
/// is missing (a vault from before v9), and must refuse, leaving nothing, when the stored hash
/// does not match the audio.
#[test]
fn a_recordings_wav_hash_is_stored_when_it_stops_and_checked_by_the_export() {
    let mut f = fixture();
    let id = f.a_recording.clone();
    let mut wav = Vec::new();
    f.v.export_wav(&id, &mut wav).unwrap();
    let want = hex::encode(Sha256::digest(&wav));
    let dir = f.v.dir().to_path_buf();
    let stored = |dir: &std::path::Path| -> Option<String> {
        raw_conn(dir, PASS)
            .query_row(
                "SELECT wav_sha256 FROM recordings WHERE id = ?1",
                [&id],
                |r| r.get(0),
            )
            .unwrap()
    };
    assert_eq!(
        stored(&dir).as_deref(),
        Some(want.as_str()),
        "stored when the recording stopped"
    );

    // As a vault migrated from v8: no stored hash. The export computes it and stores it.
    raw_conn(&dir, PASS)
        .execute("UPDATE recordings SET wav_sha256 = NULL", [])
        .unwrap();
    f.export("1.tbundle", false, false).unwrap();
    let c = f.read("1.tbundle");
    assert_eq!(c.audio[&id], wav);
    let listed = c
        .manifest
        .as_ref()
        .unwrap()
        .files
        .iter()
        .find(|e| e.path == format!("audio/{id}.wav"))
        .unwrap()
        .sha256
        .clone();
    assert_eq!(listed, want);
    assert_eq!(
        stored(&dir).as_deref(),
        Some(want.as_str()),
        "stored by the export"
    );

    // A stored hash that does not match the audio: the export fails, leaves no file and
    // records no bundle.
    raw_conn(&dir, PASS)
        .execute(
            "UPDATE recordings SET wav_sha256 = ?1 WHERE id = ?2",
            rusqlite::params!["00".repeat(32), &id],
        )
        .unwrap();
    let r = f.export("2.tbundle", true, false);
    assert!(
        matches!(&r, Err(Error::Corrupt(m)) if m.contains(&format!("audio/{id}.wav"))),
        "{r:?}"
    );
    assert_eq!(f.files_in_out(), BTreeSet::from(["1.tbundle".to_string()]));
    raw_conn(&dir, PASS)
        .execute("UPDATE recordings SET wav_sha256 = NULL", [])
        .unwrap();
    assert_eq!(f.export("2.tbundle", true, false).unwrap().sequence, 2);
}

// ---- stored audio chunks passed through ------------------------------------------------------

/// Rewrites a recording's chunks the way vaults stored them before `pcm16-zstd`
/// (`pcm16-delta-zstd`): the same audio and chunk hashes, the older encoding.
fn make_delta_recording(v: &Vault, id: &str) {
    use testimony_core::audio::{ChunkFormat, DELTA_FORMAT};
    let rec = v.recording(id).unwrap();
    assert_eq!(rec.format, testimony_core::audio::FORMAT);
    let c = raw_conn(v.dir(), PASS);
    for chunk in v.chunks(id).unwrap() {
        let chunk = chunk.unwrap();
        let data = ChunkFormat::Pcm16DeltaZstd
            .encode(&chunk.samples, rec.channels)
            .unwrap();
        c.execute(
            "UPDATE audio_chunks SET data = ?3 WHERE recording_id = ?1 AND seq = ?2",
            rusqlite::params![id, chunk.info.seq as i64, data],
        )
        .unwrap();
    }
    c.execute(
        "UPDATE recordings SET format = ?2 WHERE id = ?1",
        rusqlite::params![id, DELTA_FORMAT],
    )
    .unwrap();
    assert_eq!(
        v.recording(id).unwrap().chunk_format().unwrap(),
        ChunkFormat::Pcm16DeltaZstd
    );
}

/// A 16 kHz stereo WAV file of noise.
fn stereo_wav(seconds: usize, seed: u64) -> Vec<u8> {
    let samples = noise(seconds * 16_000 * 4, seed);
    let mut out = testimony_core::audio::wav_header(16_000, 2, samples.len() as u32).to_vec();
    out.extend(samples);
    out
}

/// A recording stored as `pcm16-zstd` travels as its stored chunks, each a zstd frame of its
/// own in the bundle's stream; one stored as `pcm16-delta-zstd` (a vault from before) is
/// decoded and compressed with the rest. Both arrive as the vault's exact WAV files.
#[test]
fn delta_and_passthrough_recordings_travel_in_one_bundle() {
    let mut f = fixture();
    let stereo_in = stereo_wav(2, 0x53);
    let stereo = f.v.import_wav(&f.a.interview, &stereo_in[..]).unwrap();
    assert_eq!(
        stereo.format,
        testimony_core::audio::FORMAT,
        "new recordings are stored as pcm16-zstd"
    );
    make_delta_recording(&f.v, &f.a_recording);
    let mut delta_wav = Vec::new();
    f.v.export_wav(&f.a_recording, &mut delta_wav).unwrap();
    assert_eq!(delta_wav, f.a_wav, "the delta recording reads as before");

    f.export("1.tbundle", true, false).unwrap();
    let c = f.read("1.tbundle");
    assert_eq!(c.audio[&f.a_recording], f.a_wav);
    assert_eq!(
        c.audio[&stereo.meta.id], stereo_in,
        "stereo, passed through, is the imported file"
    );
    // One frame up to the stereo recording's audio, its stored chunks, one frame after: the
    // delta recording went through the compressor with everything else.
    assert_eq!(
        zstd_stream(&f.bytes("1.tbundle"), &f.key).1,
        1 + stereo.chunks as usize + 1
    );
}

/// A stored chunk whose frame does not decompress to the length its row records (shorter or
/// longer): the export fails naming the recording and chunk, leaves no file and records no
/// bundle, even though the chunk's PCM hash is not checked on this path.
#[test]
fn a_stored_chunk_of_the_wrong_length_fails_the_export_and_leaves_nothing() {
    let mut f = fixture();
    let id = f.a_recording.clone();
    let c = raw_conn(f.v.dir(), PASS);
    let original: Vec<u8> = c
        .query_row(
            "SELECT data FROM audio_chunks WHERE recording_id = ?1 AND seq = 1",
            [&id],
            |r| r.get(0),
        )
        .unwrap();
    let pcm = zstd::decode_all(&original[..]).unwrap();
    assert_eq!(pcm.len(), 16_000 * 2);
    let longer = [pcm.clone(), vec![0, 0]].concat();
    for wrong in [&pcm[..pcm.len() - 2], &longer[..]] {
        c.execute(
            "UPDATE audio_chunks SET data = ?2 WHERE recording_id = ?1 AND seq = 1",
            rusqlite::params![&id, zstd::bulk::compress(wrong, 3).unwrap()],
        )
        .unwrap();
        let r = f.export("1.tbundle", true, false);
        assert!(
            matches!(&r, Err(Error::Corrupt(m)) if m.contains(&format!("recording {id}, chunk 1"))),
            "{} bytes: {r:?}",
            wrong.len()
        );
        assert!(
            f.files_in_out().is_empty(),
            "{:?} left behind",
            f.files_in_out()
        );
    }
    c.execute(
        "UPDATE audio_chunks SET data = ?2 WHERE recording_id = ?1 AND seq = 1",
        rusqlite::params![&id, original],
    )
    .unwrap();
    assert_eq!(
        f.export("1.tbundle", true, false).unwrap().sequence,
        1,
        "the failed exports were not recorded"
    );
    assert_eq!(f.read("1.tbundle").audio[&id], f.a_wav);
}
