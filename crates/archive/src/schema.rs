//! Archive schema, forward-only migrations (same rules as the vault's, see
//! crates/core/src/schema.rs). Records are stored as the JSON the bundle carried, keyed by
//! type and id, so that the archive keeps exactly what the device sent.
//!
//! Two schemas with the same tables and columns: the embedded one (SQLCipher, `V1`) and the
//! PostgreSQL one (`PG_V1`). An archive on PostgreSQL still has its local SQLCipher database
//! (same `V1` schema), but uses only its `meta` and `secrets` tables; its other tables stay
//! empty. Text keys are `COLLATE "C"` on PostgreSQL so that every `ORDER BY` sorts bytewise,
//! as SQLite does, whatever the database's locale.

use rusqlite_migration::{M, Migrations};

const V1: &str = r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
CREATE TABLE secrets (key TEXT PRIMARY KEY, value BLOB NOT NULL) STRICT;
-- Devices whose bundles are merged; anything else waits in quarantine.
CREATE TABLE devices (
    public_key TEXT PRIMARY KEY, name TEXT NOT NULL, trusted_at TEXT NOT NULL) STRICT;
-- Every bundle merged, by manifest hash; the manifest is kept as received.
CREATE TABLE bundles (
    bundle_hash TEXT PRIMARY KEY, bundle_id TEXT NOT NULL, public_key TEXT NOT NULL,
    device_id TEXT NOT NULL, sequence INTEGER NOT NULL, previous_bundle_hash TEXT,
    kind TEXT NOT NULL, created_at TEXT NOT NULL, imported_at TEXT NOT NULL,
    manifest TEXT NOT NULL, summary TEXT NOT NULL) STRICT;
CREATE INDEX bundles_device ON bundles (public_key, sequence);
-- Bundles from keys not (yet) trusted: the encrypted file is kept beside the database.
CREATE TABLE quarantine (
    bundle_hash TEXT PRIMARY KEY, public_key TEXT NOT NULL, device_id TEXT NOT NULL,
    sequence INTEGER NOT NULL, received_at TEXT NOT NULL, file TEXT NOT NULL,
    counts TEXT NOT NULL) STRICT;
CREATE TABLE records (
    kind TEXT NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, source_key TEXT NOT NULL,
    interview_id TEXT, witness_id TEXT, updated_at TEXT, body TEXT NOT NULL,
    bundle_hash TEXT NOT NULL, PRIMARY KEY (kind, id)) STRICT;
CREATE INDEX records_interview ON records (interview_id);
CREATE INDEX records_witness ON records (witness_id);
-- The same record changed on two devices: both versions kept until a coordinator decides.
CREATE TABLE conflicts (
    id INTEGER PRIMARY KEY, kind TEXT NOT NULL, record_id TEXT NOT NULL,
    current_body TEXT NOT NULL, current_key TEXT NOT NULL,
    incoming_body TEXT NOT NULL, incoming_key TEXT NOT NULL, bundle_hash TEXT NOT NULL,
    detected_at TEXT NOT NULL, resolved_at TEXT, resolution TEXT) STRICT;
-- Attachment bytes, age-encrypted to the archive's own key (also at rest in PostgreSQL).
CREATE TABLE attachments (
    id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, data BLOB NOT NULL) STRICT;
CREATE TABLE codebooks (
    id TEXT NOT NULL, version TEXT NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (id, version)) STRICT;
-- Each device's audit chain as received (redacted entries keep only the chain).
CREATE TABLE device_audit (
    public_key TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (public_key, seq)) STRICT;
-- Deleted records: ids are never reused, so a deletion is final even if an older bundle
-- carrying the record arrives later.
CREATE TABLE tombstones (
    kind TEXT NOT NULL, id TEXT NOT NULL, source_key TEXT NOT NULL, deleted_at TEXT NOT NULL,
    PRIMARY KEY (kind, id)) STRICT;
CREATE VIRTUAL TABLE search_index USING fts5(
    record_id UNINDEXED, interview_id UNINDEXED, kind UNINDEXED, body, tokenize = 'trigram');
"#;

/// Version 2: bundles waiting for an earlier one; return bundles (archive → device). A device's age recipient (learned from its
/// signed bundles), interviews assigned to a device (a translator's), and what each device was
/// sent, so that return bundles are incremental.
const V2_RETURNS: &str = r#"
ALTER TABLE devices ADD COLUMN recipient TEXT;
-- Why a bundle waits: 'untrusted' (its device is not trusted yet) or 'waiting' (it refers to
-- records from an earlier bundle of its device that has not arrived yet).
ALTER TABLE quarantine ADD COLUMN reason TEXT NOT NULL DEFAULT 'untrusted';
CREATE TABLE assignments (
    public_key TEXT NOT NULL, interview_id TEXT NOT NULL, assigned_at TEXT NOT NULL,
    PRIMARY KEY (public_key, interview_id)) STRICT;
CREATE TABLE return_bundles (
    public_key TEXT NOT NULL, sequence INTEGER NOT NULL, bundle_hash TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL, summary TEXT NOT NULL, PRIMARY KEY (public_key, sequence)) STRICT;
CREATE TABLE return_sent (
    public_key TEXT NOT NULL, kind TEXT NOT NULL, id TEXT NOT NULL, sha256 TEXT NOT NULL,
    PRIMARY KEY (public_key, kind, id)) STRICT;
CREATE TABLE return_codebooks (
    public_key TEXT NOT NULL, id TEXT NOT NULL, version TEXT NOT NULL,
    PRIMARY KEY (public_key, id, version)) STRICT;
"#;

/// Version 3 (embedded only): where each record's text sits in the FTS5 index, so replacing it
/// is a lookup by rowid rather than a scan of the whole index (the vault's schema v5 fix).
const V3_SEARCH_ROWIDS: &str = r#"
CREATE TABLE search_rowids (record_id TEXT PRIMARY KEY, fts_rowid INTEGER NOT NULL) STRICT;
INSERT OR REPLACE INTO search_rowids (record_id, fts_rowid) SELECT record_id, rowid FROM search_index;
"#;

/// Version 4: recordings' audio. Each recording's WAV file from its bundle, age-encrypted to
/// the archive's own key as one stream and stored in parts of about 1 MiB, so that neither an
/// import nor a playback holds a whole recording in memory.
const V4_AUDIO: &str = r#"
CREATE TABLE audio (
    recording_id TEXT PRIMARY KEY, sha256 TEXT NOT NULL, size INTEGER NOT NULL, parts INTEGER NOT NULL) STRICT;
CREATE TABLE audio_parts (
    recording_id TEXT NOT NULL, part INTEGER NOT NULL, data BLOB NOT NULL, PRIMARY KEY (recording_id, part)) STRICT;
"#;

pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2_RETURNS),
        M::up(V3_SEARCH_ROWIDS),
        M::up(V4_AUDIO),
    ])
}

pub const LATEST: u64 = 4;

/// The PostgreSQL schema, version 1: the tables of `V1` except `meta`/`secrets` (which stay in
/// the local SQLCipher database), plus `archive_meta` (schema version, archive id) and a plain
/// `search_index` table searched with ILIKE (pg_trgm is not available on every server).
const PG_V1: &str = r#"
CREATE TABLE archive_meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE devices (
    public_key TEXT COLLATE "C" PRIMARY KEY, name TEXT NOT NULL, trusted_at TEXT COLLATE "C" NOT NULL);
CREATE TABLE bundles (
    bundle_hash TEXT COLLATE "C" PRIMARY KEY, bundle_id TEXT NOT NULL, public_key TEXT COLLATE "C" NOT NULL,
    device_id TEXT COLLATE "C" NOT NULL, sequence BIGINT NOT NULL, previous_bundle_hash TEXT,
    kind TEXT NOT NULL, created_at TEXT NOT NULL, imported_at TEXT NOT NULL,
    manifest TEXT NOT NULL, summary TEXT NOT NULL);
CREATE INDEX bundles_device ON bundles (public_key, sequence);
CREATE TABLE quarantine (
    bundle_hash TEXT COLLATE "C" PRIMARY KEY, public_key TEXT COLLATE "C" NOT NULL, device_id TEXT NOT NULL,
    sequence BIGINT NOT NULL, received_at TEXT COLLATE "C" NOT NULL, file TEXT NOT NULL,
    counts TEXT NOT NULL);
CREATE TABLE records (
    kind TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, version BIGINT NOT NULL,
    source_key TEXT NOT NULL, interview_id TEXT COLLATE "C", witness_id TEXT COLLATE "C",
    updated_at TEXT, body TEXT NOT NULL, bundle_hash TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE INDEX records_interview ON records (interview_id);
CREATE INDEX records_witness ON records (witness_id);
CREATE TABLE conflicts (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, kind TEXT NOT NULL, record_id TEXT NOT NULL,
    current_body TEXT NOT NULL, current_key TEXT NOT NULL,
    incoming_body TEXT NOT NULL, incoming_key TEXT NOT NULL, bundle_hash TEXT NOT NULL,
    detected_at TEXT NOT NULL, resolved_at TEXT, resolution TEXT);
CREATE INDEX conflicts_record ON conflicts (kind, record_id);
-- Attachment bytes, age-encrypted to the archive's own key: the server never sees them plain.
CREATE TABLE attachments (
    id TEXT COLLATE "C" PRIMARY KEY, sha256 TEXT NOT NULL, size BIGINT NOT NULL, data BYTEA NOT NULL);
CREATE TABLE codebooks (
    id TEXT COLLATE "C" NOT NULL, version TEXT COLLATE "C" NOT NULL, sha256 TEXT NOT NULL, source TEXT NOT NULL,
    PRIMARY KEY (id, version));
CREATE TABLE device_audit (
    public_key TEXT COLLATE "C" NOT NULL, seq BIGINT NOT NULL, entry TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (public_key, seq));
CREATE TABLE tombstones (
    kind TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, source_key TEXT NOT NULL,
    deleted_at TEXT NOT NULL, PRIMARY KEY (kind, id));
CREATE TABLE search_index (
    record_id TEXT COLLATE "C" NOT NULL, interview_id TEXT COLLATE "C" NOT NULL,
    kind TEXT COLLATE "C" NOT NULL, body TEXT NOT NULL);
CREATE INDEX search_index_record ON search_index (record_id);
"#;

/// PostgreSQL version 2: as `V2_RETURNS`.
const PG_V2_RETURNS: &str = r#"
ALTER TABLE devices ADD COLUMN recipient TEXT;
ALTER TABLE quarantine ADD COLUMN reason TEXT NOT NULL DEFAULT 'untrusted';
CREATE TABLE assignments (
    public_key TEXT COLLATE "C" NOT NULL, interview_id TEXT COLLATE "C" NOT NULL, assigned_at TEXT NOT NULL,
    PRIMARY KEY (public_key, interview_id));
CREATE TABLE return_bundles (
    public_key TEXT COLLATE "C" NOT NULL, sequence BIGINT NOT NULL, bundle_hash TEXT COLLATE "C" NOT NULL UNIQUE,
    created_at TEXT NOT NULL, summary TEXT NOT NULL, PRIMARY KEY (public_key, sequence));
CREATE TABLE return_sent (
    public_key TEXT COLLATE "C" NOT NULL, kind TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL,
    sha256 TEXT NOT NULL, PRIMARY KEY (public_key, kind, id));
CREATE TABLE return_codebooks (
    public_key TEXT COLLATE "C" NOT NULL, id TEXT COLLATE "C" NOT NULL, version TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (public_key, id, version));
"#;

/// PostgreSQL version 3: as `V4_AUDIO`.
const PG_V3_AUDIO: &str = r#"
CREATE TABLE audio (
    recording_id TEXT COLLATE "C" PRIMARY KEY, sha256 TEXT NOT NULL, size BIGINT NOT NULL, parts BIGINT NOT NULL);
CREATE TABLE audio_parts (
    recording_id TEXT COLLATE "C" NOT NULL, part BIGINT NOT NULL, data BYTEA NOT NULL, PRIMARY KEY (recording_id, part));
"#;

/// PostgreSQL migrations, in order; `archive_meta.schema_version` counts those applied.
pub const PG_MIGRATIONS: &[&str] = &[PG_V1, PG_V2_RETURNS, PG_V3_AUDIO];
pub const PG_LATEST: u64 = PG_MIGRATIONS.len() as u64;
