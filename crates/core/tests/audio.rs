//! Audio recordings in a real (SQLCipher) vault: exact round trips, consent, markers, pauses,
//! crash recovery (also by SIGKILL of a child process), nothing readable on disk, flat memory
//! for a three-hour recording, and the recorder fed by a WAV file. The child processes are
//! this test binary run again (the ignored tests below are their entry points).

mod common;

use std::io::{BufRead, BufReader, Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use testimony_core::audio::capture::{Recorder, WavSource};
use testimony_core::audio::{self, RecordingStatus};
use testimony_core::model::*;
use testimony_core::{Error, Reason, Vault};

const CHILD_ENV: &str = "TESTIMONY_AUDIO_CHILD";

/// A vault with a witness who consented to audio recording, and an interview; returns the
/// interview id.
fn vault_with_interview(dir: &Path) -> (Vault, String) {
    let mut v = new_vault(dir);
    let i = interview_with_consent(&mut v, true);
    (v, i)
}

fn interview_with_consent(v: &mut Vault, record_audio: bool) -> String {
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let scopes = ConsentScopes {
        record_audio,
        share_archive: true,
        ..Default::default()
    };
    v.set_consent(&w.code, scopes, "tester", None, ConsentMethod::Oral)
        .unwrap();
    v.new_interview(NewInterview {
        witness: w.code,
        languages: vec!["ko".into()],
        ..Default::default()
    })
    .unwrap()
    .meta
    .id
}

/// Deterministic noise (xorshift): incompressible, so any copy of it on disk would show.
fn noise(seed: u64, n: usize) -> Vec<i16> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 48) as i16
        })
        .collect()
}

/// A stopped mono recording of `seconds` one-second chunks of noise.
fn record_noise(v: &mut Vault, interview: &str, rate: u32, seconds: u64) -> audio::Recording {
    let rec = v.start_recording(interview, rate, 1).unwrap();
    let mut w = v.recording_writer(&rec.meta.id).unwrap();
    for n in 0..seconds {
        w.append(&noise(n, rate as usize)).unwrap();
    }
    drop(w);
    v.stop_recording(&rec.meta.id).unwrap();
    rec
}

fn read_all(v: &Vault, id: &str) -> Vec<i16> {
    v.read_samples(id, 0, None)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect()
}

fn wav_bytes(rate: u32, channels: u16, bits: u16, samples: &[i32]) -> Vec<u8> {
    let mut c = Cursor::new(Vec::new());
    let spec = hound::WavSpec {
        channels,
        sample_rate: rate,
        bits_per_sample: bits,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::new(&mut c, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    c.into_inner()
}

fn wav_samples(bytes: &[u8]) -> (hound::WavSpec, Vec<i16>) {
    let mut r = hound::WavReader::new(Cursor::new(bytes)).unwrap();
    let spec = r.spec();
    (spec, r.samples::<i16>().map(Result::unwrap).collect())
}

#[test]
fn samples_round_trip_exactly_through_chunks_ranges_and_wav() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, interview) = vault_with_interview(&tmp.path().join("v"));
    let rec = v.start_recording(&interview, 16_000, 2).unwrap();
    assert_eq!(
        (rec.status, rec.samples, rec.format.as_str()),
        (RecordingStatus::Recording, 0, audio::FORMAT)
    );
    // Noise, the extremes (the delta step must wrap), silence, and a last partial chunk.
    let mut input = noise(1, 16_000 * 2 * 3);
    input.extend((0..16_000 * 2).map(|i| if i % 3 == 0 { i16::MIN } else { i16::MAX }));
    input.extend(std::iter::repeat_n(0, 16_000 * 2));
    input.extend(noise(2, 7_001 * 2));
    let mut w = v.recording_writer(&rec.meta.id).unwrap();
    for (n, chunk) in input.chunks(16_000 * 2).enumerate() {
        let info = w.append(chunk).unwrap();
        assert_eq!(
            (info.seq, info.start_sample, info.samples as usize),
            (n as u64, n as u64 * 16_000, chunk.len() / 2)
        );
    }
    assert_eq!(w.samples_written(), input.len() as u64 / 2);
    // While recording, the totals are what has been committed.
    let live = v.recording(&rec.meta.id).unwrap();
    assert_eq!(
        (live.status, live.samples, live.chunks),
        (RecordingStatus::Recording, 5 * 16_000 + 7_001, 6)
    );
    let rec = v.stop_recording(&rec.meta.id).unwrap();
    assert_eq!(
        (rec.status, rec.samples, rec.chunks, rec.duration_ms),
        (RecordingStatus::Stopped, 87_001, 6, 5_437)
    );
    assert!(rec.audio_sha256.as_ref().is_some_and(|h| h.len() == 64) && !rec.recovered);

    assert_eq!(read_all(&v, &rec.meta.id), input);
    let chunks: Vec<_> = v
        .chunks(&rec.meta.id)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(chunks.len(), 6);
    assert_eq!(
        chunks
            .iter()
            .flat_map(|c| c.samples.iter().copied())
            .collect::<Vec<_>>(),
        input
    );
    // A range inside one chunk, one across chunks, one to the end, one past it.
    for (from, to) in [(100, 200), (1_234, 4_321), (5_000, 99_999), (6_000, 7_000)] {
        let got: Vec<i16> = v
            .read_samples(&rec.meta.id, from, Some(to))
            .unwrap()
            .flat_map(Result::unwrap)
            .collect();
        let (a, b) = (
            (from * 16) as usize * 2,
            ((to * 16) as usize * 2).min(input.len()),
        );
        assert_eq!(got, input[a.min(b)..b], "{from}..{to} ms");
    }
    // The WAV export is a standard file holding exactly these samples.
    let mut wav = Vec::new();
    let n = v.export_wav(&rec.meta.id, &mut wav).unwrap();
    assert_eq!(n as usize, wav.len());
    assert_eq!(wav.len(), 44 + input.len() * 2);
    let (spec, samples) = wav_samples(&wav);
    assert_eq!(
        (spec.sample_rate, spec.channels, spec.bits_per_sample),
        (16_000, 2, 16)
    );
    assert_eq!(samples, input);
    // The stored chunks are compressed: silence takes next to nothing.
    let sizes: Vec<usize> = v
        .encoded_chunks(&rec.meta.id)
        .unwrap()
        .map(|c| c.unwrap().data.len())
        .collect();
    assert!(
        sizes[4] < 1_000,
        "a second of silence is {} bytes",
        sizes[4]
    );
}

#[test]
fn a_damaged_chunk_is_reported_not_returned() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    let rec = record_noise(&mut v, &interview, 8_000, 3);
    drop(v);
    // Someone with the key swaps one chunk's audio for another's (same length, valid zstd).
    let c = raw_conn(&dir, PASS);
    c.execute("UPDATE audio_chunks SET data = (SELECT data FROM audio_chunks WHERE seq = 0) WHERE seq = 1", []).unwrap();
    drop(c);
    let v = Vault::open(&dir, PASS).unwrap();
    let results: Vec<_> = v.read_samples(&rec.meta.id, 0, None).unwrap().collect();
    assert_eq!(results.len(), 2, "the reader stops at the damaged chunk");
    assert!(results[0].is_ok());
    assert!(
        matches!(&results[1], Err(Error::Corrupt(m)) if m.contains("chunk 1")),
        "{:?}",
        results[1].as_ref().err()
    );
    assert!(matches!(
        v.export_wav(&rec.meta.id, std::io::sink()),
        Err(Error::Corrupt(_))
    ));
}

/// A damaged page inside a recording's audio does not lock the interviewer out of every other
/// testimony: the vault opens (the check on unlock leaves the audio out), the interview is
/// there, and the damage is reported when that recording is read or exported.
#[test]
fn damaged_audio_is_reported_for_its_recording_and_the_vault_still_opens() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    // A minute of incompressible noise: about 1.9 MB of chunks, nearly all of the file.
    let rec = record_noise(&mut v, &interview, 16_000, 60);
    drop(v);
    let db = dir.join("vault.db");
    let mut bytes = std::fs::read(&db).unwrap();
    assert!(
        bytes.len() > 1_800_000,
        "the audio is in the file: {} bytes",
        bytes.len()
    );
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&db, &bytes).unwrap();

    let v = Vault::open(&dir, PASS).expect("the vault opens although a recording is damaged");
    assert_eq!(v.interview(&interview).unwrap().meta.id, interview);
    let read: Result<Vec<_>, Error> = v
        .read_samples(&rec.meta.id, 0, None)
        .and_then(|it| it.collect());
    let Err(Error::DamagedAudio { recording_id, .. }) = &read else {
        panic!("reading the damaged recording: {:?}", read.err())
    };
    assert_eq!(recording_id, &rec.meta.id);
    assert!(
        read.unwrap_err()
            .to_string()
            .contains("cannot be read; open the vault again")
    );
    // SQLCipher refuses every later read on this connection; a fresh one reads the rest
    // again, and the damage is reported again, also by an export of the recording.
    let mut v = v;
    v.reconnect().unwrap();
    assert_eq!(v.interview(&interview).unwrap().meta.id, interview);
    let export = v.export_wav(&rec.meta.id, std::io::sink());
    assert!(
        matches!(export, Err(Error::DamagedAudio { .. })),
        "exporting it: {:?}",
        export.err()
    );
    v.reconnect().unwrap();
    drop(v);
    // Opened again, the same.
    let v = Vault::open(&dir, PASS).unwrap();
    assert_eq!(v.interview(&interview).unwrap().meta.id, interview);
}

#[test]
fn recording_needs_consent_to_record_audio() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let no_audio = interview_with_consent(&mut v, false);
    assert!(matches!(
        v.start_recording(&no_audio, 16_000, 1),
        Err(Error::NotAllowed(Reason::NoAudioConsent { .. }))
    ));
    assert!(
        v.start_recording(&no_audio, 16_000, 1)
            .unwrap_err()
            .to_string()
            .contains("record_audio"),
        "the CLI's English names the scope"
    );
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let no_consent = v
        .new_interview(NewInterview {
            witness: w.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap()
        .meta
        .id;
    assert!(matches!(
        v.start_recording(&no_consent, 16_000, 1),
        Err(Error::NotAllowed(Reason::NoAudioConsent { .. }))
    ));
    let scopes = ConsentScopes {
        record_audio: true,
        ..Default::default()
    };
    v.set_consent(&w.code, scopes, "tester", None, ConsentMethod::Written)
        .unwrap();
    v.start_recording(&no_consent, 16_000, 1).unwrap();
    v.withdraw_consent(&w.code, None).unwrap();
    assert!(matches!(
        v.start_recording(&no_consent, 16_000, 1),
        Err(Error::NotAllowed(Reason::NoAudioConsent { .. }))
    ));
    // Nothing was started by the refusals, and a WAV import is refused the same way.
    assert_eq!(v.recordings(&no_audio).unwrap().len(), 0);
    let wav = wav_bytes(16_000, 1, 16, &[1, 2, 3]);
    assert!(matches!(
        v.import_wav(&no_audio, Cursor::new(wav)),
        Err(Error::NotAllowed(Reason::NoAudioConsent { .. }))
    ));
    assert_eq!(v.recordings(&no_audio).unwrap().len(), 0);
    // Formats out of range.
    let ok = interview_with_consent(&mut v, true);
    assert!(matches!(
        v.start_recording(&ok, 4_000, 1),
        Err(Error::Invalid(Reason::SampleRateRange {
            min: 8_000,
            max: 192_000
        }))
    ));
    assert!(matches!(
        v.start_recording(&ok, 48_000, 3),
        Err(Error::Invalid(Reason::ChannelsRange { max: 2 }))
    ));
    assert!(matches!(
        v.start_recording("no-such-interview", 48_000, 1),
        Err(Error::NotFound("interview", _))
    ));
}

#[test]
fn lifecycle_rules_markers_segments_and_audit() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, interview) = vault_with_interview(&tmp.path().join("v"));
    let rec = v.start_recording(&interview, 8_000, 1).unwrap();
    let id = rec.meta.id.clone();
    let mut w = v.recording_writer(&id).unwrap();
    assert!(matches!(w.append(&[]), Err(Error::Invalid(_))));
    assert!(
        matches!(w.append(&vec![0; 8_000 * 11]), Err(Error::Invalid(_))),
        "more than 10 s in one chunk"
    );
    w.append(&noise(1, 8_000)).unwrap();
    w.append(&noise(2, 4_000)).unwrap();
    w.pause();
    assert!(matches!(
        w.append(&noise(3, 8_000)),
        Err(Error::NotAllowed(Reason::RecordingPaused { .. }))
    ));
    w.resume();
    w.append(&noise(3, 8_000)).unwrap();
    w.pause();
    w.resume();
    w.pause(); // a pause with no audio since the last one makes no empty segment
    w.resume();
    w.append(&noise(4, 2_000)).unwrap();
    let segs = v.recording_segments(&id).unwrap();
    assert_eq!(
        segs.iter()
            .map(|s| (s.index, s.start_sample, s.samples))
            .collect::<Vec<_>>(),
        vec![(0, 0, 12_000), (1, 12_000, 8_000), (2, 20_000, 2_000)]
    );
    // The audio itself has no gap: pauses are segment boundaries only.
    let mut expected = noise(1, 8_000);
    for (s, n) in [(2, 4_000), (3, 8_000), (4, 2_000)] {
        expected.extend(noise(s, n));
    }
    assert_eq!(read_all(&v, &id), expected);

    // Markers while recording may run ahead of the committed audio by a few seconds.
    let m1 = v
        .add_marker(&id, 2_500, Some("ever_detained"), "detention begins")
        .unwrap();
    let m0 = v.add_marker(&id, 100, None, "  greeting  ").unwrap();
    assert_eq!(m0.label, "greeting");
    v.add_marker(&id, 9_000, None, "ahead of the saved audio")
        .unwrap();
    assert!(matches!(
        v.add_marker(&id, 30_000, None, "far ahead"),
        Err(Error::Invalid(Reason::MarkerPastEnd { at_ms: 30_000, .. }))
    ));
    assert!(matches!(
        v.add_marker(&id, 100, Some("no_such_question"), "x"),
        Err(Error::NotFound("question", _))
    ));
    for label in [" ", "two\nlines", &"x".repeat(201)] {
        assert!(matches!(
            v.add_marker(&id, 100, None, label),
            Err(Error::Invalid(Reason::MarkerLabel { max: 200 }))
        ));
    }
    let e = v.delete_recording(&id).unwrap_err();
    assert!(
        matches!(&e, Error::NotAllowed(Reason::RecordingStillRunning { .. }))
            && e.to_string().contains("stop it first"),
        "{e}"
    );

    let stopped = v.stop_recording(&id).unwrap();
    assert_eq!(
        (
            stopped.samples,
            stopped.duration_ms,
            stopped.chunks,
            stopped.meta.version
        ),
        (22_000, 2_750, 4, 2)
    );
    // Once stopped: no more audio, no second stop, no new writer, markers within the audio.
    assert!(matches!(
        w.append(&noise(5, 100)),
        Err(Error::NotAllowed(Reason::RecordingClosed { .. }))
    ));
    assert!(matches!(
        v.stop_recording(&id),
        Err(Error::NotAllowed(Reason::RecordingAlreadyStopped { .. }))
    ));
    assert!(matches!(
        v.recording_writer(&id),
        Err(Error::NotAllowed(Reason::RecordingStopped { .. }))
    ));
    assert!(matches!(
        v.add_marker(&id, 2_751, None, "past the end"),
        Err(Error::Invalid(Reason::MarkerPastEnd {
            at_ms: 2_751,
            duration_ms: 2_750
        }))
    ));
    v.add_marker(&id, 2_750, None, "the end").unwrap();
    let markers = v.markers(&id).unwrap();
    assert_eq!(
        markers.iter().map(|m| m.at_ms).collect::<Vec<_>>(),
        vec![100, 2_500, 2_750, 9_000]
    );
    assert_eq!(markers[1], m1);
    assert_eq!(m1.question_id.as_deref(), Some("ever_detained"));

    // Listing, and the audit trail: start and stop of the recording, each marker.
    let list = v.recordings(&interview).unwrap();
    assert_eq!(list, vec![stopped.clone()]);
    let actions: Vec<String> = v
        .audit_history(&id)
        .unwrap()
        .into_iter()
        .map(|e| e.action)
        .collect();
    assert_eq!(actions, ["create", "stop"]);
    assert_eq!(
        v.audit_history(&m1.meta.id).unwrap()[0].record_type,
        "audio_marker"
    );
    v.audit_verify().unwrap();

    // Deletion removes audio and markers, audits, keeps the chain, and leaves tombstones (for
    // the recording and each marker) that tell the archive with the next bundle.
    let markers = v.markers(&id).unwrap().len() as i64;
    assert!(markers > 0);
    let dir = v.dir().to_path_buf();
    v.delete_recording(&id).unwrap();
    assert!(matches!(
        v.recording(&id),
        Err(Error::NotFound("recording", _))
    ));
    assert!(v.recordings(&interview).unwrap().is_empty());
    assert_eq!(
        v.audit_history(&id).unwrap().last().unwrap().action,
        "delete"
    );
    v.audit_verify().unwrap();
    drop(v);
    let c = raw_conn(&dir, PASS);
    let count = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).unwrap();
    assert_eq!(count("SELECT count(*) FROM audio_chunks"), 0);
    assert_eq!(count("SELECT count(*) FROM audio_markers"), 0);
    assert_eq!(count("SELECT count(*) FROM recordings"), 0);
    assert_eq!(
        count(&format!(
            "SELECT count(*) FROM tombstones WHERE record_type = 'recording' AND record_id = '{id}'"
        )),
        1
    );
    assert_eq!(
        count("SELECT count(*) FROM tombstones WHERE record_type = 'audio_marker'"),
        markers
    );
    assert_eq!(count("SELECT count(*) FROM tombstones"), markers + 1);
}

#[test]
fn a_recording_never_stopped_is_stopped_on_the_next_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    let rec = v.start_recording(&interview, 8_000, 1).unwrap();
    let empty = v.start_recording(&interview, 8_000, 1).unwrap();
    let mut w = v.recording_writer(&rec.meta.id).unwrap();
    for n in 0..3 {
        w.append(&noise(n, 8_000)).unwrap();
    }
    w.append(&noise(3, 1_234)).unwrap();
    // The process ends without stopping (as after a crash, the writer and vault just go).
    drop(w);
    drop(v);
    let v = Vault::open(&dir, PASS).unwrap();
    let r = v.recording(&rec.meta.id).unwrap();
    assert_eq!(
        (r.status, r.recovered, r.samples, r.chunks, r.duration_ms),
        (RecordingStatus::Stopped, true, 25_234, 4, 3_154)
    );
    assert!(r.stopped_at.is_some() && r.audio_sha256.is_some());
    let e = v.recording(&empty.meta.id).unwrap();
    assert_eq!(
        (e.status, e.recovered, e.samples),
        (RecordingStatus::Stopped, true, 0)
    );
    assert_eq!(
        v.audit_history(&rec.meta.id)
            .unwrap()
            .last()
            .unwrap()
            .action,
        "recover"
    );
    v.audit_verify().unwrap();
    let mut expected: Vec<i16> = (0..3).flat_map(|n| noise(n, 8_000)).collect();
    expected.extend(noise(3, 1_234));
    assert_eq!(read_all(&v, &rec.meta.id), expected);
    // The hash over the chunk hashes is the one a normal stop would have recorded.
    drop(v);
    let mut v = Vault::open(&dir, PASS).unwrap();
    let again = v.start_recording(&interview, 8_000, 1).unwrap();
    let mut w = v.recording_writer(&again.meta.id).unwrap();
    for n in 0..3 {
        w.append(&noise(n, 8_000)).unwrap();
    }
    w.append(&noise(3, 1_234)).unwrap();
    assert_eq!(
        v.stop_recording(&again.meta.id).unwrap().audio_sha256,
        r.audio_sha256
    );
}

#[test]
fn no_plaintext_audio_in_any_vault_file_while_recording_or_after() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    let rec = v.start_recording(&interview, 16_000, 1).unwrap();
    let mut w = v.recording_writer(&rec.meta.id).unwrap();
    let input = noise(42, 16_000 * 4);
    for c in input.chunks(16_000) {
        w.append(c).unwrap();
    }
    // Needles: 64 bytes of the PCM itself, and 64 bytes of a chunk exactly as stored (noise
    // does not compress, so an unencrypted database would hold these bytes verbatim).
    let pcm: Vec<u8> = input[20_000..20_032]
        .iter()
        .flat_map(|s| s.to_le_bytes())
        .collect();
    let stored = v
        .encoded_chunks(&rec.meta.id)
        .unwrap()
        .nth(2)
        .unwrap()
        .unwrap()
        .data;
    assert!(
        stored.len() > 30_000,
        "noise stays about its size ({} bytes)",
        stored.len()
    );
    let stored = stored[10_000..10_064].to_vec();
    let check = |when: &str| {
        let files = snapshot(&dir);
        assert!(files.contains_key("vault.db"), "{when}: {:?}", files.keys());
        for (name, bytes) in &files {
            assert!(!contains(bytes, &pcm), "{when}: PCM in {name}");
            assert!(
                !contains(bytes, &stored),
                "{when}: a stored chunk in plaintext in {name}"
            );
        }
        // Nothing but the vault's own files exists (no temporary audio files).
        for name in files.keys() {
            assert!(
                [
                    "vault.json",
                    "vault.db",
                    "vault.lock",
                    "vault.db-wal",
                    "vault.db-shm"
                ]
                .contains(&name.as_str()),
                "{when}: {name}"
            );
        }
    };
    check("while recording (WAL in use)");
    drop(w);
    v.stop_recording(&rec.meta.id).unwrap();
    drop(v);
    check("after closing");
    // The needles are real: the audio is in the vault.
    let v = Vault::open(&dir, PASS).unwrap();
    assert_eq!(read_all(&v, &rec.meta.id), input);
}

#[test]
fn wav_import_converts_and_refuses_what_it_cannot_store() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, interview) = vault_with_interview(&tmp.path().join("v"));
    // 16-bit stereo: stored exactly, in one-second chunks.
    let input: Vec<i16> = noise(9, 44_100 * 2 * 2 + 501 * 2);
    let wav = wav_bytes(
        44_100,
        2,
        16,
        &input.iter().map(|&s| s as i32).collect::<Vec<_>>(),
    );
    let rec = v.import_wav(&interview, Cursor::new(&wav)).unwrap();
    assert_eq!(
        (
            rec.status,
            rec.sample_rate,
            rec.channels,
            rec.samples,
            rec.chunks
        ),
        (RecordingStatus::Stopped, 44_100, 2, 88_701, 3)
    );
    assert_eq!(read_all(&v, &rec.meta.id), input);
    let mut out = Vec::new();
    v.export_wav(&rec.meta.id, &mut out).unwrap();
    assert_eq!(wav_samples(&out).1, input);
    // 24-bit mono: the top 16 bits are kept.
    let wide: Vec<i32> = vec![0x7F_FFFF, -0x80_0000, 0x12_3456, -1, 256];
    let rec = v
        .import_wav(&interview, Cursor::new(wav_bytes(8_000, 1, 24, &wide)))
        .unwrap();
    assert_eq!(
        read_all(&v, &rec.meta.id),
        vec![0x7FFF, -0x8000, 0x1234, -1, 1]
    );
    // Not a WAV, an empty WAV, a rate or channel count we do not store.
    for (bytes, what) in [
        (b"RIFF\x04\x00\x00\x00WAVEnope".to_vec(), "not a usable WAV"),
        (
            b"#!/bin/sh\necho this is not audio\n".to_vec(),
            "not a usable WAV",
        ),
        (wav_bytes(16_000, 1, 16, &[]), "no audio"),
        (wav_bytes(4_000, 1, 16, &[1, 2]), "sample rate"),
        (wav_bytes(16_000, 4, 16, &[1, 2, 3, 4]), "channels"),
    ] {
        match v.import_wav(&interview, Cursor::new(bytes)) {
            Err(Error::Audio(m)) => assert!(m.contains(what), "{m}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    // A file cut short: the header promises more than there is. What is there is imported.
    let mut cut = wav_bytes(
        8_000,
        1,
        16,
        &noise(3, 8_000 * 3)
            .iter()
            .map(|&s| s as i32)
            .collect::<Vec<_>>(),
    );
    cut.truncate(44 + 2 * 12_345 + 1);
    let before = v.recordings(&interview).unwrap().len();
    let r = v.import_wav(&interview, Cursor::new(cut)).unwrap();
    assert_eq!(r.samples, 12_345);
    assert_eq!(read_all(&v, &r.meta.id), noise(3, 12_345));
    assert_eq!(v.recordings(&interview).unwrap().len(), before + 1);
    v.audit_verify().unwrap();
}

#[test]
fn the_recorder_writes_a_wav_source_through_one_second_chunks() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    // Mono 16-bit: the recorder stores it exactly.
    let input = noise(5, 16_000 * 3 + 123);
    let wav = tmp.path().join("in.wav");
    std::fs::write(
        &wav,
        wav_bytes(
            16_000,
            1,
            16,
            &input.iter().map(|&s| s as i32).collect::<Vec<_>>(),
        ),
    )
    .unwrap();
    let src = WavSource::open(&wav, false).unwrap();
    let rec = v.start_recording(&interview, 16_000, 1).unwrap();
    let r = Recorder::start(src, v.recording_writer(&rec.meta.id).unwrap()).unwrap();
    assert!(
        r.wait_until_source_ends(Duration::from_secs(60)),
        "the file source ends"
    );
    let report = r.stop().unwrap();
    assert_eq!(
        (report.samples, report.chunks, report.duration_ms),
        (48_123, 4, 3_007)
    );
    let rec = v.stop_recording(&rec.meta.id).unwrap();
    assert_eq!(rec.samples, 48_123);
    assert_eq!(read_all(&v, &rec.meta.id), input);
    // Every chunk but the last is exactly one second.
    let sizes: Vec<u32> = v
        .chunks(&rec.meta.id)
        .unwrap()
        .map(|c| c.unwrap().info.samples)
        .collect();
    assert_eq!(sizes, vec![16_000, 16_000, 16_000, 123]);

    // Stereo is mixed to mono; a recording of another rate or of two channels is refused.
    let stereo: Vec<i32> = (0..16_000)
        .flat_map(|i| [i % 1000, -(i % 1000) + 2 * (i % 7)])
        .collect();
    let wav2 = tmp.path().join("stereo.wav");
    std::fs::write(&wav2, wav_bytes(16_000, 2, 16, &stereo)).unwrap();
    let two = v.start_recording(&interview, 16_000, 2).unwrap();
    let err = Recorder::start(
        WavSource::open(&wav2, false).unwrap(),
        v.recording_writer(&two.meta.id).unwrap(),
    )
    .unwrap_err();
    assert!(matches!(err, Error::Invalid(_)));
    v.stop_recording(&two.meta.id).unwrap();
    let mono = v.start_recording(&interview, 16_000, 1).unwrap();
    let r = Recorder::start(
        WavSource::open(&wav2, false).unwrap(),
        v.recording_writer(&mono.meta.id).unwrap(),
    )
    .unwrap();
    r.wait_until_source_ends(Duration::from_secs(60));
    r.stop().unwrap();
    v.stop_recording(&mono.meta.id).unwrap();
    let got = read_all(&v, &mono.meta.id);
    let want: Vec<i16> = stereo
        .chunks(2)
        .map(|f| ((f[0] + f[1]) / 2) as i16)
        .collect();
    assert_eq!(got, want);
}

#[test]
fn the_recorder_pauses_resumes_and_reports_level_and_time() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, interview) = vault_with_interview(&tmp.path().join("v"));
    // Four seconds of a loud tone, played in real time.
    let tone: Vec<i32> = (0..8_000 * 4)
        .map(|i| {
            ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / 8_000.0).sin() * 16_000.0) as i32
        })
        .collect();
    let wav = tmp.path().join("tone.wav");
    std::fs::write(&wav, wav_bytes(8_000, 1, 16, &tone)).unwrap();
    let rec = v.start_recording(&interview, 8_000, 1).unwrap();
    let r = Recorder::start(
        WavSource::open(&wav, true).unwrap(),
        v.recording_writer(&rec.meta.id).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1_300));
    let s = r.status();
    assert!(s.running && !s.paused && !s.failed, "{s:?}");
    assert!((900..=1_700).contains(&s.elapsed_ms), "elapsed {s:?}");
    assert!(
        s.saved_ms >= 1_000 && s.chunks >= 1,
        "one chunk committed after a second: {s:?}"
    );
    assert!(
        s.level.rms > 0.25 && s.level.rms < 0.45 && s.level.peak > 0.45,
        "a sine at half scale: {s:?}"
    );
    r.pause();
    std::thread::sleep(Duration::from_millis(100));
    let paused_at = r.status().elapsed_ms;
    std::thread::sleep(Duration::from_millis(800));
    let s = r.status();
    assert!(
        s.paused && s.elapsed_ms == paused_at,
        "nothing recorded while paused: {s:?} (paused at {paused_at})"
    );
    // The last partial chunk before the pause is committed at once.
    assert_eq!(s.saved_ms, s.elapsed_ms, "{s:?}");
    r.resume();
    assert!(r.wait_until_source_ends(Duration::from_secs(30)));
    let report = r.stop().unwrap();
    let rec = v.stop_recording(&rec.meta.id).unwrap();
    assert_eq!(rec.samples, report.samples);
    // About 0.9 s of the 4 s went by while paused.
    assert!((2_600..=3_400).contains(&rec.duration_ms), "{rec:?}");
    let segs = v.recording_segments(&rec.meta.id).unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    assert_eq!(segs[1].start_sample, segs[0].samples);
    assert_eq!(
        segs[0].start_sample + segs[0].samples + segs[1].samples,
        rec.samples
    );
}

// ---- SIGKILL while recording ---------------------------------------------------------------

/// One second at 8 kHz, different for every run and chunk.
fn crash_chunk(run: u64, n: u64) -> Vec<i16> {
    noise(run * 1_000_003 + n, 8_000)
}

/// Child: open the vault, start a recording and append chunks until killed, printing a line
/// only after each append returned.
#[test]
#[ignore = "entry point for the audio crash test's child process"]
fn audio_crash_child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut p = spec.split('|');
    let (dir, interview, run) = (
        p.next().unwrap(),
        p.next().unwrap(),
        p.next().unwrap().parse::<u64>().unwrap(),
    );
    let mut v = Vault::open(Path::new(dir), PASS).unwrap();
    let rec = v.start_recording(interview, 8_000, 1).unwrap();
    let mut w = v.recording_writer(&rec.meta.id).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "recording {}", rec.meta.id).unwrap();
    out.flush().unwrap();
    for n in 0.. {
        w.append(&crash_chunk(run, n)).unwrap();
        writeln!(out, "chunk {n}").unwrap();
        out.flush().unwrap();
    }
}

fn spawn_child(test: &str, spec: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn iterations() -> usize {
    std::env::var("TESTIMONY_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(20, |n: usize| (n / 10).max(5))
}

#[test]
fn sigkill_while_recording_loses_at_most_the_chunk_in_flight() {
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("v");
    let interview = vault_with_interview(&dir).1;
    let mut rng = rand::rngs::StdRng::seed_from_u64(23);
    let (mut kills_while_writing, mut chunks_checked, mut in_flight_kept) = (0, 0, 0);
    for run in 0..iterations() as u64 {
        let mut child = spawn_child(
            "audio_crash_child_writer",
            &format!("{}|{interview}|{run}", dir.display()),
        );
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut lines = Vec::new();
        if run % 5 == 4 {
            // Sometimes during start-up: opening, recovering, starting the recording.
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..800)));
        } else {
            // Otherwise once a chunk was committed, at a random moment after it.
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            loop {
                let l = rx
                    .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                    .expect("the child records within 60 s");
                let first_chunk = l.contains("chunk ");
                lines.push(l);
                if first_chunk {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..250)));
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        reader.join().unwrap();
        lines.extend(rx.try_iter());

        let v = Vault::open(&dir, PASS)
            .unwrap_or_else(|e| panic!("run {run}: the vault does not open after SIGKILL: {e}"));
        v.audit_verify()
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        for r in v.recordings(&interview).unwrap() {
            assert_eq!(
                r.status,
                RecordingStatus::Stopped,
                "run {run}: every recording is stopped after reopening"
            );
        }
        let Some(id) = lines
            .iter()
            .find_map(|l| l.split("recording ").nth(1).map(str::to_string))
        else {
            continue;
        };
        let confirmed = lines.iter().filter(|l| l.contains("chunk ")).count() as u64;
        if confirmed > 0 {
            kills_while_writing += 1;
        }
        let r = v.recording(&id).unwrap();
        assert!(r.recovered, "run {run}");
        // Every chunk whose append returned is there; at most the one in flight besides.
        assert!(
            r.chunks == confirmed || r.chunks == confirmed + 1,
            "run {run}: {} chunks stored, {confirmed} confirmed",
            r.chunks
        );
        in_flight_kept += (r.chunks > confirmed) as usize;
        assert_eq!(r.samples, r.chunks * 8_000, "run {run}");
        let expected: Vec<i16> = (0..r.chunks).flat_map(|n| crash_chunk(run, n)).collect();
        assert_eq!(
            read_all(&v, &id),
            expected,
            "run {run}: the samples are intact"
        );
        chunks_checked += r.chunks;
    }
    eprintln!(
        "{} kills, {kills_while_writing} while recording; {chunks_checked} chunks checked; {in_flight_kept} times the chunk in flight had committed before the kill",
        iterations()
    );
    assert!(
        kills_while_writing >= iterations() / 2,
        "most kills landed while recording ({kills_while_writing})"
    );
    assert!(
        chunks_checked >= iterations() as u64,
        "chunks were written and checked ({chunks_checked})"
    );
}

// ---- three hours, flat memory --------------------------------------------------------------

const HOURS3_CHUNKS: u64 = 3 * 3600;
const HOURS3_RATE: u32 = 8_000;

fn hours3_chunk(base: &[i16], n: u64) -> Vec<i16> {
    let mut c = base.to_vec();
    c[0] = n as i16;
    c[1] = (n >> 16) as i16;
    c
}

fn vm_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("{field} in /proc/self/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Child: open the vault, reset the peak RSS, stream the whole recording (read every sample,
/// then export it as WAV to nowhere), and print the peak growth.
#[test]
#[ignore = "entry point for the three-hour memory test's child process"]
fn audio_memory_child_reader() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let (dir, id) = spec.split_once('|').unwrap();
    let v = Vault::open(Path::new(dir), PASS).unwrap();
    let base = noise(77, HOURS3_RATE as usize);
    // Argon2id's 64 MiB are behind us; measure from here.
    std::fs::write("/proc/self/clear_refs", "5").expect("reset VmHWM");
    let rss_before = vm_kib("VmRSS:");
    let (mut total, mut n) = (0u64, 0u64);
    for block in v.read_samples(id, 0, None).unwrap() {
        let block = block.unwrap();
        assert_eq!(block, hours3_chunk(&base, n), "chunk {n}");
        total += block.len() as u64;
        n += 1;
    }
    let bytes = v.export_wav(id, std::io::sink()).unwrap();
    println!("result {total} {bytes} {rss_before} {}", vm_kib("VmHWM:"));
}

#[test]
fn three_hours_of_audio_are_read_and_exported_with_flat_memory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let (mut v, interview) = vault_with_interview(&dir);
    let rec = v.start_recording(&interview, HOURS3_RATE, 1).unwrap();
    let base = noise(77, HOURS3_RATE as usize);
    // The writer commits (and fsyncs) every chunk, which the crash test covers; here the
    // three hours of chunks, encoded by the same function, go in as one transaction so that
    // the test spends its time reading.
    let started = std::time::Instant::now();
    let mut c = raw_conn(&dir, PASS);
    c.pragma_update(None, "busy_timeout", 5000).unwrap();
    let tx = c.transaction().unwrap();
    for n in 0..HOURS3_CHUNKS {
        let chunk = hours3_chunk(&base, n);
        tx.execute(
            "INSERT INTO audio_chunks (recording_id, seq, segment, start_sample, n_samples, sha256, data) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)",
            rusqlite::params![rec.meta.id, n as i64, (n * HOURS3_RATE as u64) as i64, HOURS3_RATE, audio::pcm_sha256(&chunk).to_vec(), audio::ChunkFormat::Pcm16Zstd.encode(&chunk, 1).unwrap()],
        )
        .unwrap();
    }
    tx.commit().unwrap();
    drop(c);
    let write_time = started.elapsed();
    let rec = v.stop_recording(&rec.meta.id).unwrap();
    assert_eq!(
        (rec.chunks, rec.duration_ms),
        (HOURS3_CHUNKS, 3 * 3600 * 1000)
    );
    drop(v);
    let pcm_bytes = HOURS3_CHUNKS * HOURS3_RATE as u64 * 2;
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "audio_memory_child_reader",
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, format!("{}|{}", dir.display(), rec.meta.id))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the reader child failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let nums: Vec<u64> = stdout
        .lines()
        .find_map(|l| l.split("result ").nth(1))
        .unwrap_or_else(|| panic!("no result line:\n{stdout}"))
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (samples, wav_bytes, rss_before_kib, peak_kib) = (nums[0], nums[1], nums[2], nums[3]);
    assert_eq!(samples, HOURS3_CHUNKS * HOURS3_RATE as u64);
    assert_eq!(wav_bytes, 44 + pcm_bytes);
    let growth_mib = peak_kib.saturating_sub(rss_before_kib) / 1024;
    eprintln!(
        "3 h at {HOURS3_RATE} Hz: {} MiB of PCM stored in {write_time:?}; reading it all and exporting it raised the peak RSS by {growth_mib} MiB",
        pcm_bytes >> 20
    );
    // The PCM is 165 MiB; holding even a sixth of it would show.
    assert!(
        growth_mib < 24,
        "peak RSS grew by {growth_mib} MiB while streaming {} MiB of audio",
        pcm_bytes >> 20
    );
}

// ---- the default input device, for real (PulseAudio null sink) -----------------------------

/// The PulseAudio null sink to play into (see crates/cli/tests/audio.rs for the set-up), or
/// None (skip, with a note) when there is none and none is required.
#[cfg(feature = "capture")]
fn pulse_sink() -> Option<String> {
    let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_AUDIO").is_ok_and(|v| v == "1");
    match std::env::var("TESTIMONY_TEST_PULSE_SINK") {
        Ok(s) if !s.trim().is_empty() => Some(s),
        _ if required => panic!(
            "the audio capture test is required here (CI or TESTIMONY_REQUIRE_AUDIO=1) but TESTIMONY_TEST_PULSE_SINK is not set; \
             run `./run test`, which starts a private PulseAudio server with a null sink"
        ),
        _ => {
            eprintln!(
                "note: TESTIMONY_TEST_PULSE_SINK is not set: the PulseAudio capture test is SKIPPED (`./run test` starts a server)"
            );
            None
        }
    }
}

/// cpal's default input (ALSA → PulseAudio null sink monitor) through the recorder: the level
/// follows the tone played into the sink, a pause leaves a segment boundary, and the stored
/// audio is the tone.
#[cfg(feature = "capture")]
#[test]
fn the_recorder_captures_the_default_input_device() {
    use testimony_core::audio::capture::{AudioSource, CpalSource};
    let Some(sink) = pulse_sink() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let (mut v, interview) = vault_with_interview(&tmp.path().join("v"));
    let rate = 48_000usize;
    // 2 s of silence, then a 440 Hz tone at half scale.
    let mut signal = vec![0i32; rate * 2];
    signal.extend((0..rate * 10).map(|i| {
        ((i as f64 * 2.0 * std::f64::consts::PI * 440.0 / rate as f64).sin() * 16_384.0) as i32
    }));
    let wav = tmp.path().join("tone.wav");
    std::fs::write(&wav, wav_bytes(rate as u32, 1, 16, &signal)).unwrap();

    let src = CpalSource::default_input().unwrap();
    let rec = v.start_recording(&interview, src.sample_rate(), 1).unwrap();
    let r = Recorder::start(src, v.recording_writer(&rec.meta.id).unwrap()).unwrap();
    // The input stream takes a moment to start (up to seconds through ALSA's pulse plugin).
    let started = std::time::Instant::now();
    while r.status().elapsed_ms < 200 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the input delivers audio: {:?}",
            r.status()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut player = Command::new("paplay")
        .arg(format!("--device={sink}"))
        .arg(&wav)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let quiet = r.status();
    // The tone arrives after the file's 2 s of silence, plus the player's start-up.
    let loud = loop {
        let s = r.status();
        if s.level.rms > 0.1 || started.elapsed() > Duration::from_secs(8) {
            std::thread::sleep(Duration::from_millis(300));
            break r.status();
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let wall = started.elapsed().as_millis() as u64;
    r.pause();
    std::thread::sleep(Duration::from_millis(600));
    let paused = r.status();
    std::thread::sleep(Duration::from_millis(400));
    assert_eq!(
        r.status().elapsed_ms,
        paused.elapsed_ms,
        "nothing is captured while paused"
    );
    r.resume();
    std::thread::sleep(Duration::from_millis(1_200));
    let report = r.stop().unwrap();
    let _ = player.kill();
    let _ = player.wait();
    assert!(
        quiet.running && quiet.elapsed_ms >= 500 && quiet.level.peak < 0.01,
        "silence first: {quiet:?}"
    );
    assert!(
        loud.level.rms > 0.25 && loud.level.rms < 0.45,
        "then the tone at half scale: {loud:?}"
    );
    assert!(
        loud.elapsed_ms > 1_500 && loud.elapsed_ms <= wall + 100,
        "elapsed follows the clock ({wall} ms): {loud:?}"
    );
    let rec = v.stop_recording(&rec.meta.id).unwrap();
    assert_eq!(rec.samples, report.samples);
    assert!(rec.duration_ms >= loud.elapsed_ms + 1_000, "{rec:?}");
    let segs = v.recording_segments(&rec.meta.id).unwrap();
    assert_eq!(segs.len(), 2, "{segs:?}");
    // The last second (after resuming) is the tone: 440 upward zero crossings a second.
    let tail: Vec<i16> = v
        .read_samples(&rec.meta.id, rec.duration_ms - 1_000, None)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect();
    let ups = tail.windows(2).filter(|p| p[0] < 0 && p[1] >= 0).count() as i64;
    assert!((ups - 440).abs() <= 10, "{ups} cycles in the last second");
}
