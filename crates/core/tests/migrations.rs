//! A vault written by every earlier schema version opens, upgrades and keeps its data.

mod common;

use common::*;
use rusqlite::{Connection, params};
use testimony_core::Vault;
use testimony_core::codebook::Codebook;
use testimony_core::keys::{Header, KdfParams, VAULT_HEADER, random_data_key};
use testimony_core::schema::{LATEST, migrations};

/// Builds a vault directory whose database stops at schema `version`, with data written the
/// way that version stored it: header format 1, SQLCipher's default page MAC (HMAC-SHA512), as
/// every vault was before header format 2.
fn vault_at_version(dir: &std::path::Path, version: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let key = random_data_key();
    Header::seal_format(VAULT_HEADER, &key, PASS, KdfParams::default(), 1)
        .unwrap()
        .write_atomic(dir)
        .unwrap();
    std::fs::write(dir.join("vault.lock"), b"").unwrap();
    let mut conn = Connection::open(dir.join("vault.db")).unwrap();
    conn.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref())))
        .unwrap();
    migrations().to_version(&mut conn, version).unwrap();
    let cb = Codebook::default_codebook();
    let now = "2025-01-02T03:04:05.000Z";
    let dev = "0190aaaa-0000-7000-8000-000000000001";
    for (k, v) in [
        ("device_id", dev),
        ("interviewer", "old-version"),
        ("created_at", now),
        ("audit_head_seq", "0"),
        ("audit_head_hash", &"0".repeat(64)),
    ] {
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?1, ?2)",
            params![k, v],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO secrets (key, value) VALUES ('device_signing_key', ?1)",
        [vec![7u8; 32]],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO codebooks VALUES (?1, ?2, ?3, ?4, ?5)",
        params![cb.id, cb.version, cb.sha256, cb.source, now],
    )
    .unwrap();
    conn.execute("INSERT INTO witnesses (id, device_id, created_at, updated_at, version, code) VALUES ('w1', ?1, ?2, ?2, 1, 'W-2025-0001')", params![dev, now]).unwrap();
    conn.execute(
        "INSERT INTO interviews (id, device_id, created_at, updated_at, version, witness_id, interviewer, languages, codebook_id, codebook_version, status)
         VALUES ('i1', ?1, ?2, ?2, 1, 'w1', 'old-version', 'ko', ?3, ?4, 'draft')",
        params![dev, now, cb.id, cb.version],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO answers (id, device_id, created_at, updated_at, version, interview_id, question_id, value) VALUES ('a1', ?1, ?2, ?2, 1, 'i1', 'cl_anything_else', ?3)",
        params![dev, now, serde_json::json!("옛 버전에서 쓴 답변 oldversion").to_string()],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO notes (id, device_id, created_at, updated_at, version, interview_id, text) VALUES ('n1', ?1, ?2, ?2, 1, 'i1', '메모 oldnote')",
        params![dev, now],
    )
    .unwrap();
    if version >= 2 {
        conn.execute("INSERT INTO search_index (record_id, interview_id, kind, body) VALUES ('a1', 'i1', 'answer', '옛 버전에서 쓴 답변 oldversion')", []).unwrap();
        conn.execute("INSERT INTO search_index (record_id, interview_id, kind, body) VALUES ('n1', 'i1', 'note', '메모 oldnote')", []).unwrap();
    }
}

#[test]
fn every_earlier_schema_version_upgrades_with_data_intact() {
    const { assert!(LATEST >= 2, "there are earlier versions to test") };
    for version in 1..LATEST as usize {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("v");
        vault_at_version(&dir, version);
        let mut v = Vault::open(&dir, PASS).unwrap_or_else(|e| panic!("from v{version}: {e}"));
        let user_version: i64 = raw_version(&v);
        assert_eq!(user_version as u64, LATEST, "from v{version}");
        let d = v.interview_detail("i1").unwrap();
        assert_eq!(
            d.answers[0].value,
            serde_json::json!("옛 버전에서 쓴 답변 oldversion"),
            "from v{version}"
        );
        assert_eq!(d.notes[0].text, "메모 oldnote");
        // Search works over data written before the index existed.
        assert_eq!(v.search("버전", 10).unwrap().len(), 1, "from v{version}");
        assert_eq!(v.search("oldnote", 10).unwrap().len(), 1, "from v{version}");
        // The audit chain starts cleanly and records new work.
        v.set_answer("i1", None, "cl_anything_else", &serde_json::json!("new"))
            .unwrap();
        assert_eq!(v.audit_verify().unwrap().entries, 1, "from v{version}");
        drop(v);
        // And it opens again at the latest version without migrating twice.
        assert!(Vault::open(&dir, PASS).is_ok());
    }
}

fn raw_version(v: &Vault) -> i64 {
    raw_conn(v.dir(), PASS)
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap()
}

/// Version 7 (audio) on a vault written at version 6: the tables exist, a recording can be
/// made, and one left in progress is stopped on the next open.
#[test]
fn audio_tables_after_upgrade_from_version_6() {
    use testimony_core::audio::RecordingStatus;
    use testimony_core::model::{ConsentMethod, ConsentScopes};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_at_version(&dir, 6);
    let mut v = Vault::open(&dir, PASS).unwrap();
    assert_eq!(raw_version(&v) as u64, LATEST);
    assert!(v.recordings("i1").unwrap().is_empty());
    v.set_consent(
        "w1",
        ConsentScopes {
            record_audio: true,
            ..Default::default()
        },
        "tester",
        None,
        ConsentMethod::Oral,
    )
    .unwrap();
    let rec = v.start_recording("i1", 16_000, 1).unwrap();
    v.recording_writer(&rec.meta.id)
        .unwrap()
        .append(&[1, -1, 2, -2])
        .unwrap();
    drop(v);
    let v = Vault::open(&dir, PASS).unwrap();
    let rec = v.recording(&rec.meta.id).unwrap();
    assert_eq!(
        (rec.status, rec.samples, rec.recovered),
        (RecordingStatus::Stopped, 4, true)
    );
    let samples: Vec<i16> = v
        .read_samples(&rec.meta.id, 0, None)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect();
    assert_eq!(samples, [1, -1, 2, -2]);
    v.audit_verify().unwrap();
}

/// A vault written at version 7 holds its recordings in the chunk format of the time,
/// `pcm16-delta-zstd`. After the upgrade they read as before (playback, chunks, WAV), keep
/// that format, and new recordings beside them are stored as `pcm16-zstd`.
#[test]
fn delta_recordings_of_a_vault_from_before_are_still_read() {
    use sha2::{Digest, Sha256};
    use testimony_core::audio::{self, ChunkFormat};
    use testimony_core::model::{ConsentMethod, ConsentScopes};
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_at_version(&dir, 7);
    // Two seconds and a bit of stereo, in one-second chunks as the recorder wrote them.
    let samples: Vec<i16> = (0..2 * 16_000 + 500)
        .flat_map(|i: i32| {
            [
                (i * 37 % 3000) as i16 - 1500,
                (i * 11 % 20_000) as i16 - 10_000,
            ]
        })
        .collect();
    {
        let c = raw_conn(&dir, PASS);
        let now = "2025-01-02T03:04:05.000Z";
        let chunks: Vec<&[i16]> = samples.chunks(16_000 * 2).collect();
        let all = chunks
            .iter()
            .fold(Sha256::new(), |h, c| h.chain_update(audio::pcm_sha256(c)));
        let frames = samples.len() as i64 / 2;
        c.execute(
            "INSERT INTO recordings (id, device_id, created_at, updated_at, version, interview_id, started_at, stopped_at, sample_rate, channels, format, status, samples, duration_ms, chunks, audio_sha256)
             VALUES ('r1', '0190aaaa-0000-7000-8000-000000000001', ?1, ?1, 1, 'i1', ?1, ?1, 16000, 2, 'pcm16-delta-zstd', 'stopped', ?2, ?3, 3, ?4)",
            params![now, frames, frames * 1000 / 16_000, hex::encode(all.finalize())],
        )
        .unwrap();
        for (seq, chunk) in chunks.iter().enumerate() {
            c.execute(
                "INSERT INTO audio_chunks (recording_id, seq, segment, start_sample, n_samples, sha256, data) VALUES ('r1', ?1, 0, ?2, ?3, ?4, ?5)",
                params![seq as i64, seq as i64 * 16_000, chunk.len() as i64 / 2, &audio::pcm_sha256(chunk)[..], ChunkFormat::Pcm16DeltaZstd.encode(chunk, 2).unwrap()],
            )
            .unwrap();
        }
    }
    let mut v = Vault::open(&dir, PASS).unwrap();
    assert_eq!(raw_version(&v) as u64, LATEST);
    let rec = v.recording("r1").unwrap();
    assert_eq!((rec.format.as_str(), rec.chunks), (audio::DELTA_FORMAT, 3));
    let read: Vec<i16> = v
        .read_samples("r1", 0, None)
        .unwrap()
        .flat_map(Result::unwrap)
        .collect();
    assert_eq!(read, samples);
    let chunked: Vec<i16> = v
        .chunks("r1")
        .unwrap()
        .flat_map(|c| c.unwrap().samples)
        .collect();
    assert_eq!(chunked, samples);
    let mut wav = Vec::new();
    v.export_wav("r1", &mut wav).unwrap();
    let mut want = audio::wav_header(16_000, 2, samples.len() as u32 * 2).to_vec();
    want.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    assert_eq!(wav, want);
    // New audio in the same vault uses the new format; the old recording keeps its own.
    v.set_consent(
        "w1",
        ConsentScopes {
            record_audio: true,
            ..Default::default()
        },
        "tester",
        None,
        ConsentMethod::Oral,
    )
    .unwrap();
    let new = v.import_wav("i1", &want[..]).unwrap();
    assert_eq!(new.format, audio::FORMAT);
    let mut new_wav = Vec::new();
    v.export_wav(&new.meta.id, &mut new_wav).unwrap();
    assert_eq!(new_wav, want);
    assert_eq!(v.recording("r1").unwrap().format, audio::DELTA_FORMAT);
}

/// A vault of header format 1 (pages authenticated with HMAC-SHA512, as before format 2) opens,
/// takes writes, and keeps format 1 and its page MAC through a passphrase change.
#[test]
fn a_format_1_vault_keeps_its_page_mac() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_at_version(&dir, LATEST as usize);
    let mut v = Vault::open(&dir, PASS).unwrap();
    let w = v
        .add_witness(testimony_core::model::WitnessProfile::default(), None)
        .unwrap();
    drop(v);
    let new_pass = "a different and long passphrase";
    Vault::change_passphrase(&dir, PASS, new_pass).unwrap();
    assert_eq!(Header::read(&dir).unwrap().format, 1);
    let v = Vault::open(&dir, new_pass).unwrap();
    assert!(
        v.witnesses()
            .unwrap()
            .iter()
            .any(|x| x.meta.id == w.meta.id)
    );
    drop(v);
    // Still SQLCipher's default MAC: a plain keyed connection reads it.
    let key = Header::read(&dir).unwrap().unseal(new_pass).unwrap();
    let conn = Connection::open(dir.join("vault.db")).unwrap();
    conn.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref())))
        .unwrap();
    let n: i64 = conn
        .query_row("SELECT count(*) FROM witnesses", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 2);
}
