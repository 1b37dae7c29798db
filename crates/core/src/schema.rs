//! Schema migrations: forward only, numbered by SQLite's user_version. Never edit a released
//! migration; add a new one. `crates/core/tests/migrations.rs` upgrades a vault from every earlier version.

use rusqlite_migration::{M, Migrations};

/// Version 1: records. Every record carries id (UUID v7), device id, timestamps and a version
/// counter, which is what incremental bundles and conflict detection need.
const V1_RECORDS: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE secrets (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
CREATE TABLE codebooks (
    id TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
    added_at TEXT NOT NULL, PRIMARY KEY (id, version)) STRICT;
CREATE TABLE witnesses (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, code TEXT NOT NULL UNIQUE,
    gender TEXT, birth_year INTEGER, home_province TEXT, songbun TEXT, year_left INTEGER,
    repatriations INTEGER) STRICT;
-- Identifying details live apart so that every export can leave them out.
CREATE TABLE witness_identities (
    witness_id TEXT PRIMARY KEY REFERENCES witnesses(id), device_id TEXT NOT NULL,
    created_at TEXT NOT NULL, updated_at TEXT NOT NULL, version INTEGER NOT NULL,
    real_name TEXT, contact TEXT, notes TEXT) STRICT;
CREATE TABLE consents (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, witness_id TEXT NOT NULL UNIQUE REFERENCES witnesses(id),
    record_audio INTEGER NOT NULL, transcribe INTEGER NOT NULL, share_archive INTEGER NOT NULL,
    quote_anonymously INTEGER NOT NULL, publish_identified INTEGER NOT NULL,
    taken_by TEXT NOT NULL, taken_at TEXT NOT NULL,
    method TEXT NOT NULL CHECK (method IN ('oral', 'written')), withdrawn_at TEXT) STRICT;
CREATE TABLE interviews (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, witness_id TEXT NOT NULL REFERENCES witnesses(id),
    interviewer TEXT NOT NULL, interpreter TEXT, languages TEXT NOT NULL, place TEXT,
    started_at TEXT, ended_at TEXT, codebook_id TEXT NOT NULL, codebook_version TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('draft', 'complete', 'reviewed')),
    FOREIGN KEY (codebook_id, codebook_version) REFERENCES codebooks(id, version)) STRICT;
CREATE TABLE group_instances (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, interview_id TEXT NOT NULL REFERENCES interviews(id),
    group_id TEXT NOT NULL, parent_id TEXT REFERENCES group_instances(id), ordinal INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE TABLE answers (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, interview_id TEXT NOT NULL REFERENCES interviews(id),
    instance_id TEXT REFERENCES group_instances(id), question_id TEXT NOT NULL,
    value TEXT NOT NULL) STRICT;
CREATE UNIQUE INDEX answers_slot ON answers (interview_id, ifnull(instance_id, ''), question_id);
CREATE TABLE notes (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, interview_id TEXT NOT NULL REFERENCES interviews(id),
    question_id TEXT, instance_id TEXT REFERENCES group_instances(id), text TEXT NOT NULL) STRICT;
CREATE TABLE attachments (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, interview_id TEXT NOT NULL REFERENCES interviews(id),
    name TEXT NOT NULL, media_type TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,
    data BLOB NOT NULL) STRICT;
CREATE INDEX interviews_witness ON interviews (witness_id);
CREATE INDEX group_instances_interview ON group_instances (interview_id);
CREATE INDEX notes_interview ON notes (interview_id);
"#;

/// Version 2: full-text search. The trigram tokenizer matches any substring of three or more
/// characters, which works for Hangul (no spaces between morphemes) as well as English;
/// shorter queries fall back to a scan (see search.rs).
const V2_SEARCH: &str = r#"
CREATE VIRTUAL TABLE search_index USING fts5(
    record_id UNINDEXED, interview_id UNINDEXED, kind UNINDEXED, body, tokenize = 'trigram');
INSERT INTO search_index (record_id, interview_id, kind, body)
    SELECT id, interview_id, 'answer', value ->> '$' FROM answers WHERE json_type(value) = 'text';
INSERT INTO search_index (record_id, interview_id, kind, body)
    SELECT id, interview_id, 'answer', value ->> '$.locality' FROM answers
    WHERE json_type(value) = 'object' AND coalesce(value ->> '$.locality', '') <> '';
INSERT INTO search_index (record_id, interview_id, kind, body)
    SELECT id, interview_id, 'note', text FROM notes;
"#;

/// Version 3: the audit log, a hash chain. Triggers make it append-only for SQL; the chain and
/// the head recorded in meta make any edit or deletion detectable by `audit verify`.
const V3_AUDIT: &str = r#"
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, device_id TEXT NOT NULL,
    record_type TEXT NOT NULL, record_id TEXT NOT NULL, action TEXT NOT NULL,
    content_hash TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL) STRICT;
CREATE INDEX audit_record ON audit_log (record_id);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"#;

/// Version 4: bundles. Exports made (the device's bundle chain) and tombstones for deleted
/// records, so that an incremental bundle can carry deletions to the archive.
const V4_BUNDLES: &str = r#"
CREATE TABLE bundle_exports (
    sequence INTEGER PRIMARY KEY, bundle_id TEXT NOT NULL UNIQUE, bundle_hash TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('incremental', 'full')), created_at TEXT NOT NULL,
    audit_from_seq INTEGER NOT NULL, audit_to_seq INTEGER NOT NULL, summary TEXT NOT NULL) STRICT;
CREATE TABLE tombstones (
    record_id TEXT PRIMARY KEY, record_type TEXT NOT NULL, interview_id TEXT NOT NULL,
    device_id TEXT NOT NULL, deleted_at TEXT NOT NULL) STRICT;
"#;

/// Version 5: where each record's text sits in the search index. FTS5 cannot look up a row by
/// an UNINDEXED column, so replacing an answer's text used to scan the whole index: saves got
/// slower as the vault grew (docs/performance.md). The index row is now found by rowid.
const V5_SEARCH_ROWIDS: &str = r#"
CREATE TABLE search_rowids (record_id TEXT PRIMARY KEY, fts_rowid INTEGER NOT NULL) STRICT;
INSERT OR REPLACE INTO search_rowids (record_id, fts_rowid) SELECT record_id, rowid FROM search_index;
"#;

/// Version 6: return bundles (archive → this device) applied here, one row per bundle, so that
/// a replay is recognised and the chain from the archive can be checked.
const V6_RETURN_IMPORTS: &str = r#"
CREATE TABLE return_imports (
    sequence INTEGER PRIMARY KEY, bundle_hash TEXT NOT NULL UNIQUE, archive_key TEXT NOT NULL,
    imported_at TEXT NOT NULL, summary TEXT NOT NULL) STRICT;
"#;

/// Version 7: audio recordings, stored only here (so encrypted at rest). A recording belongs
/// to an interview; its audio is a sequence of chunks of about a second (format in audio.rs and
/// ARCHITECTURE.md), each committed on its own; markers tie moments to questions.
const V7_AUDIO: &str = r#"
CREATE TABLE recordings (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, interview_id TEXT NOT NULL REFERENCES interviews(id),
    started_at TEXT NOT NULL, stopped_at TEXT,
    sample_rate INTEGER NOT NULL CHECK (sample_rate BETWEEN 8000 AND 192000),
    channels INTEGER NOT NULL CHECK (channels BETWEEN 1 AND 2),
    format TEXT NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('recording', 'stopped')),
    samples INTEGER NOT NULL DEFAULT 0, duration_ms INTEGER NOT NULL DEFAULT 0,
    chunks INTEGER NOT NULL DEFAULT 0, audio_sha256 TEXT,
    recovered INTEGER NOT NULL DEFAULT 0) STRICT;
CREATE INDEX recordings_interview ON recordings (interview_id);
CREATE INDEX recordings_status ON recordings (status);
CREATE TABLE audio_chunks (
    recording_id TEXT NOT NULL REFERENCES recordings(id), seq INTEGER NOT NULL,
    segment INTEGER NOT NULL, start_sample INTEGER NOT NULL, n_samples INTEGER NOT NULL CHECK (n_samples > 0),
    sha256 BLOB NOT NULL, data BLOB NOT NULL) STRICT;
CREATE UNIQUE INDEX audio_chunks_seq ON audio_chunks (recording_id, seq);
CREATE UNIQUE INDEX audio_chunks_start ON audio_chunks (recording_id, start_sample);
CREATE TABLE audio_markers (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, recording_id TEXT NOT NULL REFERENCES recordings(id),
    at_ms INTEGER NOT NULL CHECK (at_ms >= 0), question_id TEXT, label TEXT NOT NULL) STRICT;
CREATE INDEX audio_markers_recording ON audio_markers (recording_id, at_ms);
"#;

/// Version 8: transcripts of recordings (transcript.rs). A transcript is made window by window
/// (`transcript_windows` records which windows of the audio are done, so a transcription that
/// was interrupted resumes without repeating or losing one); its segments are records like
/// any other (RecordMeta columns, audited, searchable) and keep the model's own words in
/// `machine_text` beside the reviewed `text`. `transcript_history` keeps every version of a
/// segment (the machine's, each correction, each translation) with who and when.
const V8_TRANSCRIPTS: &str = r#"
CREATE TABLE transcripts (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, recording_id TEXT NOT NULL REFERENCES recordings(id),
    interview_id TEXT NOT NULL REFERENCES interviews(id),
    model TEXT NOT NULL, language TEXT, window_ms INTEGER NOT NULL CHECK (window_ms > 0),
    status TEXT NOT NULL CHECK (status IN ('running', 'done')),
    windows_total INTEGER CHECK (windows_total >= 0)) STRICT;
CREATE INDEX transcripts_recording ON transcripts (recording_id);
CREATE UNIQUE INDEX transcripts_running ON transcripts (recording_id, model) WHERE status = 'running';
CREATE TABLE transcript_windows (
    transcript_id TEXT NOT NULL REFERENCES transcripts(id), window INTEGER NOT NULL CHECK (window >= 0),
    segments INTEGER NOT NULL, saved_at TEXT NOT NULL, PRIMARY KEY (transcript_id, window)) STRICT;
CREATE TABLE transcript_segments (
    id TEXT PRIMARY KEY, device_id TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL,
    version INTEGER NOT NULL, transcript_id TEXT NOT NULL REFERENCES transcripts(id),
    interview_id TEXT NOT NULL REFERENCES interviews(id), seq INTEGER NOT NULL,
    start_ms INTEGER NOT NULL CHECK (start_ms >= 0), end_ms INTEGER NOT NULL CHECK (end_ms >= start_ms),
    text TEXT NOT NULL, machine_text TEXT, language TEXT, confidence REAL,
    translation TEXT, translation_language TEXT,
    speaker TEXT CHECK (speaker IN ('interviewer', 'witness', 'interpreter')),
    reviewed INTEGER NOT NULL DEFAULT 0, redactions TEXT NOT NULL DEFAULT '[]') STRICT;
CREATE INDEX transcript_segments_order ON transcript_segments (transcript_id, start_ms, end_ms, seq);
CREATE TABLE transcript_history (
    id TEXT PRIMARY KEY, segment_id TEXT NOT NULL, transcript_id TEXT NOT NULL,
    at TEXT NOT NULL, actor TEXT NOT NULL, device_id TEXT NOT NULL, action TEXT NOT NULL,
    related_segment TEXT, content TEXT NOT NULL) STRICT;
CREATE INDEX transcript_history_segment ON transcript_history (segment_id);
CREATE INDEX transcript_history_transcript ON transcript_history (transcript_id);
"#;

/// Version 9: the SHA-256 of a stopped recording's canonical WAV form (the file a bundle
/// carries, bundle-format.md), computed once after the recording stops, so that an export
/// need not decode the audio a second time just to list its hash in the manifest. A cache of
/// derived data, not part of the record: never exported, not audited; NULL means not computed
/// yet (the export computes and stores it), and an export still checks the bytes it writes
/// against it.
const V9_WAV_HASH: &str = "ALTER TABLE recordings ADD COLUMN wav_sha256 TEXT;";

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1_RECORDS),
        M::up(V2_SEARCH),
        M::up(V3_AUDIT),
        M::up(V4_BUNDLES),
        M::up(V5_SEARCH_ROWIDS),
        M::up(V6_RETURN_IMPORTS),
        M::up(V7_AUDIO),
        M::up(V8_TRANSCRIPTS),
        M::up(V9_WAV_HASH),
    ])
}

/// The schema version this build creates and reads.
pub const LATEST: u64 = 9;
