//! Audio recordings, stored only inside the encrypted vault.
//!
//! A recording belongs to an interview (and so to its witness). Its audio is a sequence of
//! chunks of about one second, each committed on its own (WAL, `synchronous = FULL`), so a
//! crash loses at most the chunk being written and never damages the earlier ones. No audio
//! is ever written outside the SQLCipher database, except by [`Vault::export_wav`] to a writer
//! the caller chose.
//!
//! ```text
//! recordings    one row per recording: interview, sample rate, channels, format, status
//!               (recording → stopped), totals once stopped, RecordMeta like every record
//! audio_chunks  (recording_id, seq): segment, start_sample, n_samples, sha256, data
//! audio_markers one row per marker: recording, at_ms, question (optional), label
//! ```
//!
//! Chunk formats (docs/testing.md, "Audio"; `recordings.format` names a recording's): a chunk
//! is one standard zstd frame holding the chunk's frames as 16-bit signed little-endian PCM,
//! channels interleaved. Recordings made now use `pcm16-zstd`: the frame's content is exactly
//! those bytes, as they stand in the WAV file's data, so a bundle can carry the stored frames
//! as they are instead of decoding and compressing the audio again. Recordings made before
//! use `pcm16-delta-zstd` (each value replaced by its wrapping difference from the previous
//! value of the same channel in the chunk, the first from 0) and are read forever. Every chunk
//! decodes on its own. `sha256` is the SHA-256 of the chunk's PCM (little-endian i16,
//! interleaved, before any delta step), checked on every read. "Sample" in column names means
//! a frame: one value per channel.
//!
//! Writing goes through a [`RecordingWriter`], which owns its own connection to the database
//! (and a handle on the vault's lock), so it can run on a capture thread while the vault's
//! own connection keeps saving answers. Lifecycle changes (start, stop, recovery, markers,
//! deletion) are audited like every record change; chunks are not (there is one a second),
//! but the stop entry carries a hash over all chunk hashes.

pub mod capture;

use std::fs::File;
use std::io::{BufReader, Read, Write};

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::audit;
use crate::error::{Error, Result};
use crate::model::{ConsentScope, RecordMeta};
use crate::reason::Reason;
use crate::records::{META, meta};
use crate::store::{Ctx, Vault, new_id};

/// The chunk format this build writes ([`ChunkFormat::Pcm16Zstd`]).
pub const FORMAT: &str = "pcm16-zstd";
/// The chunk format of recordings made before bundles passed chunks through; still read.
pub const DELTA_FORMAT: &str = "pcm16-delta-zstd";
pub const MIN_SAMPLE_RATE: u32 = 8_000;
pub const MAX_SAMPLE_RATE: u32 = 192_000;
pub const MAX_CHANNELS: u16 = 2;
/// A chunk holds at most this many seconds (the recorder writes one second per chunk).
pub const MAX_CHUNK_SECONDS: u32 = 10;
/// Longest marker label (characters, one line).
pub const MAX_MARKER_LABEL_CHARS: usize = 200;
const ZSTD_LEVEL: i32 = 3;

pub use crate::model::RecordingStatus;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Recording {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub interview_id: String,
    pub started_at: String,
    pub stopped_at: Option<String>,
    pub sample_rate: u32,
    pub channels: u16,
    pub format: String,
    pub status: RecordingStatus,
    /// Frames stored (one sample per channel each). While recording: what is committed so far.
    pub samples: u64,
    pub duration_ms: u64,
    pub chunks: u64,
    /// Once stopped: SHA-256 over the chunk hashes (32 bytes each, in order), which together
    /// fix every sample of the recording.
    pub audio_sha256: Option<String>,
    /// Stopped when the vault was next opened, because the process recording it ended without
    /// stopping it (a crash, a kill, power loss). The audio is what was committed by then.
    pub recovered: bool,
}

impl Recording {
    pub fn chunk_format(&self) -> Result<ChunkFormat> {
        ChunkFormat::parse(&self.format)
    }
}

/// A moment in a recording that the interviewer marked, optionally tied to a question.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Marker {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub recording_id: String,
    pub at_ms: u64,
    pub question_id: Option<String>,
    pub label: String,
}

/// Where a chunk sits in its recording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkInfo {
    pub seq: u64,
    /// Pauses split a recording into segments, numbered from 0; the audio itself has no gap.
    pub segment: u32,
    pub start_sample: u64,
    pub samples: u32,
}

/// A decoded chunk: `samples` holds `info.samples × channels` values, channels interleaved.
#[derive(Debug, Clone)]
pub struct Chunk {
    pub info: ChunkInfo,
    pub samples: Vec<i16>,
}

/// A chunk as stored (in its recording's [`ChunkFormat`]), for copying a recording without
/// decoding it (bundles). `sha256` is that of the decoded PCM.
#[derive(Debug, Clone)]
pub struct EncodedChunk {
    pub info: ChunkInfo,
    pub sha256: [u8; 32],
    pub data: Vec<u8>,
}

/// A stretch of a recording between a start (or resume) and a pause (or stop).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub index: u32,
    pub start_sample: u64,
    pub samples: u64,
}

pub(crate) fn check_format(sample_rate: u32, channels: u16) -> Result<()> {
    if !(MIN_SAMPLE_RATE..=MAX_SAMPLE_RATE).contains(&sample_rate) {
        return Err(Error::Invalid(Reason::SampleRateRange {
            min: MIN_SAMPLE_RATE,
            max: MAX_SAMPLE_RATE,
        }));
    }
    if !(1..=MAX_CHANNELS).contains(&channels) {
        return Err(Error::Invalid(Reason::ChannelsRange { max: MAX_CHANNELS }));
    }
    Ok(())
}

pub(crate) fn ms_of(samples: u64, rate: u32) -> u64 {
    samples * 1000 / rate as u64
}

fn sample_at(ms: u64, rate: u32) -> u64 {
    ms.saturating_mul(rate as u64) / 1000
}

/// SHA-256 of PCM as little-endian i16 (interleaved): a chunk's `sha256`.
pub fn pcm_sha256(samples: &[i16]) -> [u8; 32] {
    let mut h = Sha256::new();
    let mut buf = [0u8; 8192];
    for block in samples.chunks(buf.len() / 2) {
        for (i, s) in block.iter().enumerate() {
            buf[2 * i..2 * i + 2].copy_from_slice(&s.to_le_bytes());
        }
        h.update(&buf[..block.len() * 2]);
    }
    h.finalize().into()
}

/// How a recording's chunks are stored (`recordings.format`). Both are one zstd frame of
/// 16-bit little-endian PCM, channels interleaved; they differ only in a delta step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChunkFormat {
    /// `pcm16-zstd` ([`FORMAT`], written now): the frame decompresses to exactly the chunk's
    /// bytes in the WAV file's data, so bundles pass stored frames through.
    Pcm16Zstd,
    /// `pcm16-delta-zstd` ([`DELTA_FORMAT`], written before): each value replaced by its
    /// wrapping difference from the previous value of the same channel in the chunk.
    Pcm16DeltaZstd,
}

impl ChunkFormat {
    pub fn parse(code: &str) -> Result<Self> {
        match code {
            FORMAT => Ok(ChunkFormat::Pcm16Zstd),
            DELTA_FORMAT => Ok(ChunkFormat::Pcm16DeltaZstd),
            _ => Err(Error::Corrupt(format!(
                "unknown audio chunk format {code:?}"
            ))),
        }
    }

    /// Encodes interleaved frames of `channels` as one chunk.
    pub fn encode(self, samples: &[i16], channels: u16) -> Result<Vec<u8>> {
        let mut bytes = Vec::with_capacity(samples.len() * 2);
        match self {
            ChunkFormat::Pcm16Zstd => bytes.extend(samples.iter().flat_map(|s| s.to_le_bytes())),
            ChunkFormat::Pcm16DeltaZstd => {
                let mut prev = [0i16; MAX_CHANNELS as usize];
                for frame in samples.chunks(channels as usize) {
                    for (c, &s) in frame.iter().enumerate() {
                        bytes.extend_from_slice(&s.wrapping_sub(prev[c]).to_le_bytes());
                        prev[c] = s;
                    }
                }
            }
        }
        Ok(zstd::bulk::compress(&bytes, ZSTD_LEVEL)?)
    }

    /// Decodes a chunk that must hold exactly `frames` frames of `channels`.
    pub fn decode(self, data: &[u8], channels: u16, frames: u32) -> Result<Vec<i16>> {
        let ch = channels as usize;
        let mut bytes = Vec::new();
        decompress_chunk(data, frames as usize * ch * 2, &mut bytes)?;
        let mut out: Vec<i16> = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]))
            .collect();
        if self == ChunkFormat::Pcm16DeltaZstd {
            for c in 0..ch {
                let mut prev = 0i16;
                for s in out.iter_mut().skip(c).step_by(ch) {
                    prev = prev.wrapping_add(*s);
                    *s = prev;
                }
            }
        }
        Ok(out)
    }
}

/// Decompresses a stored chunk (either format) into `out`, which is cleared and reused, and
/// checks that it holds exactly `len` bytes. For a `pcm16-zstd` chunk these are the WAV bytes.
pub(crate) fn decompress_chunk(data: &[u8], len: usize, out: &mut Vec<u8>) -> Result<()> {
    // One decompression context per thread: creating one per chunk (once a second of audio)
    // cost more than decompressing a chunk.
    thread_local!(static DCTX: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { std::cell::RefCell::new(None) });
    out.clear();
    // Room for exactly `len`: a chunk that holds more fails to decompress.
    out.reserve_exact(len);
    let n = DCTX
        .with(|d| -> std::io::Result<usize> {
            let mut d = d.borrow_mut();
            let d = match &mut *d {
                Some(d) => d,
                None => d.insert(zstd::bulk::Decompressor::new()?),
            };
            d.decompress_to_buffer(data, out)
        })
        .map_err(|_| {
            Error::Corrupt("an audio chunk does not decompress to its recorded length".into())
        })?;
    if n != len {
        return Err(Error::Corrupt(
            "an audio chunk does not decompress to its recorded length".into(),
        ));
    }
    Ok(())
}

pub(crate) const MARKER_COLS: &str =
    "id, device_id, created_at, updated_at, version, recording_id, at_ms, question_id, label";
pub(crate) const REC_COLS: &str = "id, device_id, created_at, updated_at, version, interview_id, started_at, stopped_at, sample_rate, channels, format, status, samples, duration_ms, chunks, audio_sha256, recovered";

pub(crate) fn recording_row(r: &Row) -> rusqlite::Result<Recording> {
    Ok(Recording {
        meta: meta(r, 0)?,
        interview_id: r.get(5)?,
        started_at: r.get(6)?,
        stopped_at: r.get(7)?,
        sample_rate: r.get(8)?,
        channels: r.get(9)?,
        format: r.get(10)?,
        status: if r.get::<_, String>(11)? == "recording" {
            RecordingStatus::Recording
        } else {
            RecordingStatus::Stopped
        },
        samples: r.get::<_, i64>(12)? as u64,
        duration_ms: r.get::<_, i64>(13)? as u64,
        chunks: r.get::<_, i64>(14)? as u64,
        audio_sha256: r.get(15)?,
        recovered: r.get(16)?,
    })
}

pub(crate) fn marker_row(r: &Row) -> rusqlite::Result<Marker> {
    Ok(Marker {
        meta: meta(r, 0)?,
        recording_id: r.get(5)?,
        at_ms: r.get::<_, i64>(6)? as u64,
        question_id: r.get(7)?,
        label: r.get(8)?,
    })
}

fn get_recording(conn: &Connection, id: &str) -> Result<Recording> {
    let mut rec = conn
        .query_row(
            &format!("SELECT {REC_COLS} FROM recordings WHERE id = ?1"),
            [id],
            recording_row,
        )
        .optional()?
        .ok_or_else(|| Error::NotFound("recording", id.to_string()))?;
    if rec.status == RecordingStatus::Recording {
        live_totals(conn, &mut rec)?;
    }
    Ok(rec)
}

/// For a recording still in progress: what its chunks add up to now.
fn live_totals(conn: &Connection, rec: &mut Recording) -> Result<()> {
    let last: Option<(i64, i64)> = conn
        .query_row(
            "SELECT seq, start_sample + n_samples FROM audio_chunks WHERE recording_id = ?1 ORDER BY seq DESC LIMIT 1",
            [&rec.meta.id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (chunks, samples) = last.map_or((0, 0), |(seq, end)| (seq as u64 + 1, end as u64));
    rec.chunks = chunks;
    rec.samples = samples;
    rec.duration_ms = ms_of(samples, rec.sample_rate);
    Ok(())
}

/// Totals over every chunk, in order, checking that they are contiguous.
struct Totals {
    chunks: u64,
    samples: u64,
    sha256: String,
}

fn totals(conn: &Connection, recording_id: &str) -> Result<Totals> {
    let mut st = conn.prepare("SELECT seq, start_sample, n_samples, sha256 FROM audio_chunks WHERE recording_id = ?1 ORDER BY seq")?;
    let mut rows = st.query([recording_id])?;
    let mut h = Sha256::new();
    let (mut chunks, mut samples) = (0u64, 0u64);
    while let Some(r) = rows.next()? {
        let (seq, start, n): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
        if seq as u64 != chunks || start as u64 != samples {
            return Err(Error::Corrupt(format!(
                "recording {recording_id}: chunk {seq} is out of sequence"
            )));
        }
        let sha: Vec<u8> = r.get(3)?;
        h.update(&sha);
        chunks += 1;
        samples += n as u64;
    }
    Ok(Totals {
        chunks,
        samples,
        sha256: hex::encode(h.finalize()),
    })
}

/// Marks `id` stopped with what its chunks hold. Inside the caller's transaction; the status
/// changes first, so that this transaction holds the write lock before it counts: a writer on
/// another connection can add nothing after the count.
fn finish(tx: &Connection, cx: &Ctx, id: &str, recovered: bool) -> Result<Recording> {
    let n = tx.execute(
        "UPDATE recordings SET status = 'stopped', stopped_at = ?2, updated_at = ?2, version = version + 1, recovered = ?3
         WHERE id = ?1 AND status = 'recording'",
        params![id, cx.now, recovered],
    )?;
    if n == 0 {
        return Err(Error::NotAllowed(Reason::RecordingAlreadyStopped {
            recording: id.to_string(),
        }));
    }
    let t = totals(tx, id)?;
    let rate: u32 = tx.query_row(
        "SELECT sample_rate FROM recordings WHERE id = ?1",
        [id],
        |r| r.get(0),
    )?;
    tx.execute(
        "UPDATE recordings SET samples = ?2, duration_ms = ?3, chunks = ?4, audio_sha256 = ?5 WHERE id = ?1",
        params![id, t.samples as i64, ms_of(t.samples, rate) as i64, t.chunks as i64, t.sha256],
    )?;
    let rec = get_recording(tx, id)?;
    audit::append(
        tx,
        cx,
        "recording",
        id,
        if recovered { "recover" } else { "stop" },
        &rec,
    )?;
    Ok(rec)
}

/// Stops every recording left in status `recording` by a process that ended without
/// stopping it. Called by `Vault::open`, which holds the vault's lock, so no writer of this
/// vault is alive.
pub(crate) fn recover_interrupted(v: &mut Vault) -> Result<Vec<Recording>> {
    let ids: Vec<String> = {
        let mut st = v.conn.prepare(
            "SELECT id FROM recordings WHERE status = 'recording' ORDER BY started_at, id",
        )?;
        st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
    };
    ids.iter()
        .map(|id| v.write(|tx, cx| finish(tx, cx, id, true)))
        .collect()
}

impl Vault {
    /// Starts a recording for an interview. The witness must have consented to audio
    /// recording (consent scope `record_audio`, not withdrawn). Write its audio with a
    /// [`RecordingWriter`] from [`Vault::recording_writer`], then [`Vault::stop_recording`].
    pub fn start_recording(
        &mut self,
        interview_id: &str,
        sample_rate: u32,
        channels: u16,
    ) -> Result<Recording> {
        check_format(sample_rate, channels)?;
        let i = self.interview(interview_id)?;
        if !self.consent_allows(&i.witness_id, ConsentScope::RecordAudio)? {
            return Err(Error::NotAllowed(Reason::NoAudioConsent {
                witness: i.witness_code,
            }));
        }
        self.write(|tx, cx| {
            let id = new_id();
            tx.execute(
                "INSERT INTO recordings (id, device_id, created_at, updated_at, version, interview_id, started_at, sample_rate, channels, format, status)
                 VALUES (?1, ?2, ?3, ?3, 1, ?4, ?3, ?5, ?6, ?7, 'recording')",
                params![id, cx.device_id, cx.now, interview_id, sample_rate, channels, FORMAT],
            )?;
            let rec = get_recording(tx, &id)?;
            audit::append(tx, cx, "recording", &id, "create", &rec)?;
            Ok(rec)
        })
    }

    /// A writer for a recording in progress, with its own database connection: it can be
    /// moved to another thread and commits one chunk per [`RecordingWriter::append`]. It keeps
    /// the vault locked against other processes for as long as it lives. Do not append from
    /// inside [`Vault::batch`] (the batch holds the write lock until it ends).
    pub fn recording_writer(&self, recording_id: &str) -> Result<RecordingWriter> {
        let rec = self.recording(recording_id)?;
        if rec.status != RecordingStatus::Recording {
            return Err(Error::NotAllowed(Reason::RecordingStopped {
                recording: recording_id.to_string(),
            }));
        }
        let format = rec.chunk_format()?;
        let (conn, lock) = self.second_connection()?;
        let last: Option<(i64, i64)> = conn
            .query_row(
                "SELECT seq, segment FROM audio_chunks WHERE recording_id = ?1 ORDER BY seq DESC LIMIT 1",
                [recording_id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        Ok(RecordingWriter {
            conn,
            _lock: lock,
            recording_id: rec.meta.id,
            sample_rate: rec.sample_rate,
            channels: rec.channels,
            format,
            next_seq: last.map_or(0, |(s, _)| s as u64 + 1),
            next_sample: rec.samples,
            // A writer made for a recording that already has audio starts a new segment.
            segment: last.map_or(0, |(_, g)| g as u32 + 1),
            segment_used: false,
            paused: false,
        })
    }

    /// Stops a recording: no more chunks can be added. Records the totals and the hash over
    /// the chunk hashes, and audits the stop.
    /// Then computes the SHA-256 of its WAV form for exports (schema v9): about a second per
    /// hour of 16 kHz mono audio on a two-core laptop.
    pub fn stop_recording(&mut self, recording_id: &str) -> Result<Recording> {
        let rec = self.stop_recording_at_once(recording_id)?;
        // The stop is committed; the WAV hash is only a cache for exports. If it cannot be
        // computed now (a damaged chunk), the next export computes it and reports the damage.
        let _ = self.wav_sha256(recording_id, std::io::sink());
        Ok(rec)
    }

    /// [`Vault::stop_recording`] without computing the WAV hash, for when nothing may wait
    /// (locking the vault): the next export computes it.
    pub fn stop_recording_at_once(&mut self, recording_id: &str) -> Result<Recording> {
        self.recording(recording_id)?;
        self.write(|tx, cx| finish(tx, cx, recording_id, false))
    }

    /// The size and SHA-256 of the recording's canonical WAV form (what a bundle carries), for
    /// a stopped recording: from the cache in the vault, or computed by decoding the audio
    /// once (passing the WAV bytes through `also`, for progress) and then cached.
    pub(crate) fn wav_sha256(&self, recording_id: &str, also: impl Write) -> Result<(u64, String)> {
        let (samples, channels, status, cached): (i64, i64, String, Option<String>) =
            self.conn.query_row(
                "SELECT samples, channels, status, wav_sha256 FROM recordings WHERE id = ?1",
                [recording_id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?;
        let size = 44 + samples as u64 * channels as u64 * 2;
        if let Some(h) = cached {
            return Ok((size, h));
        }
        let mut w = crate::io_util::HashingWriter::new(also);
        let written = self.export_wav(recording_id, &mut w)?;
        let (_, _, sha) = w.finish();
        if written != size {
            return Err(Error::Corrupt(format!(
                "recording {recording_id} holds fewer samples than recorded"
            )));
        }
        if status == "stopped" {
            self.conn.execute(
                "UPDATE recordings SET wav_sha256 = ?2 WHERE id = ?1 AND status = 'stopped'",
                params![recording_id, sha],
            )?;
        }
        Ok((size, sha))
    }

    /// Whether `recording_id` can be transcribed now: it is stopped, holds audio, and its
    /// witness consents to transcription (not withdrawn). The one check every front-end makes
    /// before loading a model; refusals are [`Error::NotAllowed`] with a [`Reason`]
    /// (`recording_still_running`, `recording_empty`, `no_transcribe_consent`). Returns the
    /// recording.
    pub fn check_can_transcribe(&self, recording_id: &str) -> Result<Recording> {
        let rec = self.recording(recording_id)?;
        if rec.status == RecordingStatus::Recording {
            return Err(Error::NotAllowed(Reason::RecordingStillRunning {
                recording: rec.meta.id,
            }));
        }
        if rec.duration_ms == 0 {
            return Err(Error::NotAllowed(Reason::RecordingEmpty {
                recording: rec.meta.id,
            }));
        }
        self.check_transcribe_consent(&rec.interview_id)?;
        Ok(rec)
    }

    pub fn recording(&self, recording_id: &str) -> Result<Recording> {
        get_recording(&self.conn, recording_id)
    }

    /// An interview's recordings, oldest first.
    pub fn recordings(&self, interview_id: &str) -> Result<Vec<Recording>> {
        self.interview(interview_id)?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {REC_COLS} FROM recordings WHERE interview_id = ?1 ORDER BY started_at, id"
        ))?;
        let mut recs = st
            .query_map([interview_id], recording_row)?
            .collect::<Result<Vec<_>, _>>()?;
        for r in recs
            .iter_mut()
            .filter(|r| r.status == RecordingStatus::Recording)
        {
            live_totals(&self.conn, r)?;
        }
        Ok(recs)
    }

    /// The segments of a recording (a pause ends one, resuming starts the next).
    pub fn recording_segments(&self, recording_id: &str) -> Result<Vec<Segment>> {
        self.recording(recording_id)?;
        let mut st = self.conn.prepare(
            "SELECT segment, min(start_sample), sum(n_samples) FROM audio_chunks WHERE recording_id = ?1 GROUP BY segment ORDER BY segment",
        )?;
        let rows = st.query_map([recording_id], |r| {
            Ok(Segment {
                index: r.get(0)?,
                start_sample: r.get::<_, i64>(1)? as u64,
                samples: r.get::<_, i64>(2)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Marks a moment (`at_ms` from the start of the recording's audio), optionally tied to a
    /// question of the interview's codebook. While the recording runs, a marker may lie up to
    /// a few seconds past the audio committed so far (chunks arrive once a second); once it is
    /// stopped, a marker must lie within it.
    pub fn add_marker(
        &mut self,
        recording_id: &str,
        at_ms: u64,
        question_id: Option<&str>,
        label: &str,
    ) -> Result<Marker> {
        let rec = self.recording(recording_id)?;
        let label = label.trim();
        if label.is_empty()
            || label.contains(['\n', '\r'])
            || label.chars().count() > MAX_MARKER_LABEL_CHARS
        {
            return Err(Error::Invalid(Reason::MarkerLabel {
                max: MAX_MARKER_LABEL_CHARS,
            }));
        }
        let limit = match rec.status {
            RecordingStatus::Stopped => rec.duration_ms,
            RecordingStatus::Recording => rec.duration_ms + 1000 * MAX_CHUNK_SECONDS as u64,
        };
        if at_ms > limit || at_ms > i64::MAX as u64 {
            return Err(Error::Invalid(Reason::MarkerPastEnd {
                at_ms,
                duration_ms: rec.duration_ms,
            }));
        }
        if let Some(q) = question_id {
            let i = self.interview(&rec.interview_id)?;
            let cb = self.codebook(&i.codebook_id, &i.codebook_version)?;
            cb.question(q)
                .ok_or_else(|| Error::NotFound("question", q.to_string()))?;
        }
        self.write(|tx, cx| {
            let m = Marker {
                meta: RecordMeta { id: new_id(), device_id: cx.device_id.clone(), created_at: cx.now.clone(), updated_at: cx.now.clone(), version: 1 },
                recording_id: recording_id.to_string(),
                at_ms,
                question_id: question_id.map(str::to_string),
                label: label.to_string(),
            };
            tx.execute(
                &format!("INSERT INTO audio_markers ({META}, recording_id, at_ms, question_id, label) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
                params![m.meta.id, m.meta.device_id, m.meta.created_at, m.meta.updated_at, m.meta.version, m.recording_id, m.at_ms as i64, m.question_id, m.label],
            )?;
            audit::append(tx, cx, "audio_marker", &m.meta.id, "create", &m)?;
            Ok(m)
        })
    }

    /// A recording's markers in time order.
    pub fn markers(&self, recording_id: &str) -> Result<Vec<Marker>> {
        self.recording(recording_id)?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {META}, recording_id, at_ms, question_id, label FROM audio_markers WHERE recording_id = ?1 ORDER BY at_ms, created_at, id"
        ))?;
        let rows = st.query_map([recording_id], marker_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Deletes a stopped recording with its audio, markers and transcripts (each transcript as
    /// [`Vault::delete_transcript`] does), in one transaction, audited. The
    /// rows are overwritten (`secure_delete`), and a WAL checkpoint afterwards keeps old page
    /// images of the audio from lingering there.
    ///
    /// Tombstones for the recording and its markers tell the archive to delete its copies
    /// (audio included) with the next bundle.
    pub fn delete_recording(&mut self, recording_id: &str) -> Result<()> {
        let rec = self.recording(recording_id)?;
        if rec.status == RecordingStatus::Recording {
            return Err(Error::NotAllowed(Reason::RecordingStillRunning {
                recording: recording_id.to_string(),
            }));
        }
        let markers = self.markers(recording_id)?;
        self.write(|tx, cx| {
            tx.execute("DELETE FROM audio_chunks WHERE recording_id = ?1", [recording_id])?;
            let tombstone = |tx: &Connection, id: &str, kind: &str| {
                tx.execute(
                    "INSERT OR REPLACE INTO tombstones (record_id, record_type, interview_id, device_id, deleted_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![id, kind, rec.interview_id, cx.device_id, cx.now],
                )
            };
            for m in &markers {
                tx.execute("DELETE FROM audio_markers WHERE id = ?1", [&m.meta.id])?;
                tombstone(tx, &m.meta.id, "audio_marker")?;
                audit::append(tx, cx, "audio_marker", &m.meta.id, "delete", &serde_json::json!({"id": m.meta.id, "deleted": true}))?;
            }
            crate::transcript::delete_transcripts_of_recording(tx, cx, recording_id)?;
            tx.execute("DELETE FROM recordings WHERE id = ?1", [recording_id])?;
            tombstone(tx, recording_id, "recording")?;
            audit::append(tx, cx, "recording", recording_id, "delete", &serde_json::json!({"id": recording_id, "deleted": true}))
        })?;
        if self.conn.is_autocommit() {
            // Best effort: a reader elsewhere can keep the checkpoint from finishing.
            let _ = self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        }
        Ok(())
    }

    /// The recording's chunks as stored, in order, one at a time (memory stays flat however
    /// long the recording). For copying a recording without decoding it, e.g. into a bundle.
    pub fn encoded_chunks(&self, recording_id: &str) -> Result<EncodedChunks<'_>> {
        let rec = self.recording(recording_id)?;
        Ok(EncodedChunks {
            conn: &self.conn,
            recording_id: rec.meta.id,
            next_seq: 0,
            next_sample: 0,
            end_seq: rec.chunks,
        })
    }

    /// The recording's chunks decoded, in order, one at a time, each checked against its hash.
    pub fn chunks(&self, recording_id: &str) -> Result<Chunks<'_>> {
        let rec = self.recording(recording_id)?;
        Ok(Chunks {
            channels: rec.channels,
            format: rec.chunk_format()?,
            inner: self.encoded_chunks(recording_id)?,
        })
    }

    /// Samples from `from_ms` up to `to_ms` (None: the end as of now), channels interleaved,
    /// in blocks of at most one chunk: only one chunk is decoded and held at a time.
    pub fn read_samples(
        &self,
        recording_id: &str,
        from_ms: u64,
        to_ms: Option<u64>,
    ) -> Result<Samples<'_>> {
        let rec = self.recording(recording_id)?;
        let from = sample_at(from_ms, rec.sample_rate).min(rec.samples);
        let to = to_ms
            .map_or(rec.samples, |t| sample_at(t, rec.sample_rate))
            .min(rec.samples);
        // The chunk that holds `from` (chunks are contiguous, indexed by start_sample).
        let first: i64 = self
            .conn
            .query_row(
                "SELECT seq FROM audio_chunks WHERE recording_id = ?1 AND start_sample <= ?2 ORDER BY start_sample DESC LIMIT 1",
                params![recording_id, from as i64],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let start_sample: i64 = self
            .conn
            .query_row(
                "SELECT start_sample FROM audio_chunks WHERE recording_id = ?1 AND seq = ?2",
                params![recording_id, first],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        Ok(Samples {
            chunks: Chunks {
                channels: rec.channels,
                format: rec.chunk_format()?,
                inner: EncodedChunks {
                    conn: &self.conn,
                    recording_id: rec.meta.id,
                    next_seq: first as u64,
                    next_sample: start_sample as u64,
                    end_seq: rec.chunks,
                },
            },
            from,
            to: to.max(from),
            channels: rec.channels as usize,
        })
    }

    /// Writes the recording as a 16-bit PCM WAV file to `out`, streaming (one chunk in memory
    /// at a time; `out` need not seek). THIS WRITES PLAINTEXT AUDIO: only to where the user
    /// explicitly asked. A recording still in progress is written as far as it is committed
    /// now. Returns the number of bytes written.
    pub fn export_wav(&self, recording_id: &str, out: impl Write) -> Result<u64> {
        let rec = self.recording(recording_id)?;
        let header = wav_header_of(&rec)?;
        let data_len = rec.samples * rec.channels as u64 * 2;
        let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
        out.write_all(&header)?;
        let mut written = 0u64;
        let mut buf = Vec::new();
        for block in self
            .read_samples(recording_id, 0, None)?
            .take_samples(rec.samples)
        {
            let block = block?;
            buf.clear();
            buf.extend(block.iter().flat_map(|s| s.to_le_bytes()));
            out.write_all(&buf)?;
            written += buf.len() as u64;
        }
        if written != data_len {
            return Err(Error::Corrupt(format!(
                "recording {recording_id} holds fewer samples than recorded"
            )));
        }
        out.flush()?;
        Ok(44 + written)
    }

    /// Imports a WAV file as a new, stopped recording of the interview, through the same chunk
    /// writer as live recording (one-second chunks). 16-bit files are stored exactly; 8-, 24-
    /// and 32-bit integer and 32-bit float samples are converted to 16 bits. Consent as for
    /// [`Vault::start_recording`]. A file cut short is imported up to where its data ends. If
    /// it turns out to be unreadable part-way, the partial recording is deleted and the error
    /// returned.
    pub fn import_wav(&mut self, interview_id: &str, wav: impl Read) -> Result<Recording> {
        let mut reader = hound::WavReader::new(BufReader::new(wav)).map_err(wav_error)?;
        let spec = reader.spec();
        check_format(spec.sample_rate, spec.channels)
            .map_err(|e| Error::Audio(format!("the WAV file cannot be stored: {e}")))?;
        if reader.len() == 0 {
            return Err(Error::Audio("the WAV file holds no audio".into()));
        }
        let mut samples = wav_samples(&mut reader)?;
        let rec = self.start_recording(interview_id, spec.sample_rate, spec.channels)?;
        let result = (|| -> Result<()> {
            let mut w = self.recording_writer(&rec.meta.id)?;
            let per_chunk = spec.sample_rate as usize * spec.channels as usize;
            let mut buf: Vec<i16> = Vec::with_capacity(per_chunk);
            for s in &mut samples {
                buf.push(s?);
                if buf.len() == per_chunk {
                    w.append(&buf)?;
                    buf.clear();
                }
            }
            // A file cut inside a frame leaves a partial frame: drop it.
            buf.truncate(buf.len() - buf.len() % spec.channels as usize);
            if !buf.is_empty() {
                w.append(&buf)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => self.stop_recording(&rec.meta.id),
            Err(e) => {
                let _ = self
                    .stop_recording_at_once(&rec.meta.id)
                    .and_then(|_| self.delete_recording(&rec.meta.id));
                Err(e)
            }
        }
    }
}

/// Stores `frames` frames of 16-bit little-endian PCM (channels interleaved, as in a WAV
/// file's data) read from `pcm` as the chunks of recording `recording_id`, whose row the caller
/// inserted, inside the caller's transaction: the variant of [`Vault::import_wav`] for a
/// return bundle, which must apply all of it or nothing. One-second chunks, like live
/// recording and `import_wav`; one chunk in memory at a time. Sets the recording's totals
/// (`chunks`, `audio_sha256`) from the chunks and checks they hold exactly `frames`.
/// `short` is the error for a stream that ends early (a truncated bundle).
pub(crate) fn store_pcm_chunks(
    tx: &Connection,
    recording_id: &str,
    sample_rate: u32,
    channels: u16,
    frames: u64,
    pcm: &mut dyn Read,
    short: impl Fn() -> Error,
) -> Result<()> {
    check_format(sample_rate, channels)?;
    let ch = channels as usize;
    let per_chunk = sample_rate as u64;
    let mut bytes = vec![0u8; per_chunk as usize * ch * 2];
    let mut samples: Vec<i16> = Vec::with_capacity(per_chunk as usize * ch);
    let (mut seq, mut done) = (0i64, 0u64);
    let mut st = tx.prepare_cached("INSERT INTO audio_chunks (recording_id, seq, segment, start_sample, n_samples, sha256, data) VALUES (?1, ?2, 0, ?3, ?4, ?5, ?6)")?;
    while done < frames {
        let n = (frames - done).min(per_chunk);
        let buf = &mut bytes[..n as usize * ch * 2];
        pcm.read_exact(buf).map_err(|_| short())?;
        samples.clear();
        samples.extend(
            buf.chunks_exact(2)
                .map(|b| i16::from_le_bytes([b[0], b[1]])),
        );
        // The format the caller's row names ([`FORMAT`]).
        let data = ChunkFormat::Pcm16Zstd.encode(&samples, channels)?;
        st.execute(params![
            recording_id,
            seq,
            done as i64,
            n as i64,
            &pcm_sha256(&samples)[..],
            data
        ])?;
        seq += 1;
        done += n;
    }
    let t = totals(tx, recording_id)?;
    if t.samples != frames {
        return Err(Error::Corrupt(format!(
            "recording {recording_id}: the stored audio does not add up to its length"
        )));
    }
    tx.execute(
        "UPDATE recordings SET chunks = ?2, audio_sha256 = ?3 WHERE id = ?1",
        params![recording_id, t.chunks as i64, t.sha256],
    )?;
    Ok(())
}

/// The samples of a WAV file as 16-bit values, channels interleaved: 16-bit files exactly;
/// 8-, 24- and 32-bit integer and 32-bit float samples converted. A file that ends before its
/// header said (a recorder that lost power) ends where its data ends.
pub(crate) fn wav_samples<R: Read>(
    reader: &mut hound::WavReader<R>,
) -> Result<Box<dyn Iterator<Item = Result<i16>> + '_>> {
    fn until_eof<T>(r: hound::Result<T>) -> Option<Result<T>> {
        match r {
            Err(hound::Error::IoError(e)) if is_short_read(&e) => None,
            r => Some(r.map_err(wav_error)),
        }
    }
    let spec = reader.spec();
    Ok(match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Float, 32) => Box::new(
            reader
                .samples::<f32>()
                .map_while(until_eof)
                .map(|r| r.map(|s| (s.clamp(-1.0, 1.0) * 32767.0).round() as i16)),
        ),
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let shift = bits as i32 - 16;
            Box::new(reader.samples::<i32>().map_while(until_eof).map(move |r| {
                r.map(|s| {
                    if shift >= 0 {
                        (s >> shift) as i16
                    } else {
                        (s << -shift) as i16
                    }
                })
            }))
        }
        (f, b) => {
            return Err(Error::Audio(format!(
                "unsupported WAV sample format ({b}-bit {f:?})"
            )));
        }
    })
}

/// hound reports a file that ends too early as this error (hound 3.5, `read.rs`).
fn is_short_read(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::UnexpectedEof
        || (e.kind() == std::io::ErrorKind::Other
            && e.to_string() == "Failed to read enough bytes.")
}

fn wav_error(e: hound::Error) -> Error {
    match e {
        hound::Error::IoError(e) if is_short_read(&e) => {
            Error::Audio("not a usable WAV file (it ends too early)".into())
        }
        hound::Error::IoError(e) => Error::Io(e),
        // hound's messages describe the format ("no RIFF tag found"), never the samples.
        e => Error::Audio(format!("not a usable WAV file ({e})")),
    }
}

/// The header of a recording's canonical WAV form (as far as it is committed now).
pub(crate) fn wav_header_of(rec: &Recording) -> Result<[u8; 44]> {
    let data_len = rec.samples * rec.channels as u64 * 2;
    if data_len > (u32::MAX - 36) as u64 {
        return Err(Error::invalid(
            "the recording is too long for a WAV file (over 4 GiB of audio)".into(),
        ));
    }
    Ok(wav_header(rec.sample_rate, rec.channels, data_len as u32))
}

/// The 44-byte header of a canonical PCM WAV file.
pub fn wav_header(sample_rate: u32, channels: u16, data_len: u32) -> [u8; 44] {
    let mut h = [0u8; 44];
    let block_align = channels * 2;
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data_len).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&1u16.to_le_bytes()); // PCM
    h[22..24].copy_from_slice(&channels.to_le_bytes());
    h[24..28].copy_from_slice(&sample_rate.to_le_bytes());
    h[28..32].copy_from_slice(&(sample_rate * block_align as u32).to_le_bytes());
    h[32..34].copy_from_slice(&block_align.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data_len.to_le_bytes());
    h
}

/// Iterator over a recording's stored chunks (see [`Vault::encoded_chunks`]). Each step is
/// one indexed lookup; nothing else is held.
pub struct EncodedChunks<'a> {
    conn: &'a Connection,
    recording_id: String,
    next_seq: u64,
    next_sample: u64,
    end_seq: u64,
}

impl EncodedChunks<'_> {
    fn fetch(&mut self) -> Result<Option<EncodedChunk>> {
        if self.next_seq >= self.end_seq {
            return Ok(None);
        }
        let mut st = self.conn.prepare_cached(
            "SELECT segment, start_sample, n_samples, sha256, data FROM audio_chunks WHERE recording_id = ?1 AND seq = ?2",
        )?;
        let row = st
            .query_row(params![self.recording_id, self.next_seq as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, Vec<u8>>(3)?,
                    r.get::<_, Vec<u8>>(4)?,
                ))
            })
            .optional()
            .map_err(|e| damaged_chunk(e, &self.recording_id, self.next_seq))?;
        let Some((segment, start, n, sha, data)) = row else {
            return Err(Error::Corrupt(format!(
                "recording {}: chunk {} is missing",
                self.recording_id, self.next_seq
            )));
        };
        if start as u64 != self.next_sample {
            return Err(Error::Corrupt(format!(
                "recording {}: chunk {} is out of sequence",
                self.recording_id, self.next_seq
            )));
        }
        let sha256: [u8; 32] = sha
            .try_into()
            .map_err(|_| Error::Corrupt("an audio chunk hash has the wrong length".into()))?;
        let info = ChunkInfo {
            seq: self.next_seq,
            segment: segment as u32,
            start_sample: start as u64,
            samples: n as u32,
        };
        self.next_seq += 1;
        self.next_sample += n as u64;
        Ok(Some(EncodedChunk { info, sha256, data }))
    }
}

/// A chunk whose pages fail SQLCipher's authentication or SQLite's structure checks: damage to
/// this recording, said as such (the check on unlock leaves audio out, see `vault.rs`). Only
/// the first failure is "corrupt": afterwards SQLCipher answers every read on the connection
/// with "out of memory", which is left as it is (the first error already said what to do).
fn damaged_chunk(e: rusqlite::Error, recording_id: &str, seq: u64) -> Error {
    use rusqlite::ErrorCode::{DatabaseCorrupt, NotADatabase};
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, DatabaseCorrupt | NotADatabase) =>
        {
            Error::DamagedAudio {
                recording_id: recording_id.to_owned(),
                chunk: seq,
            }
        }
        _ => Error::Db(e),
    }
}

impl Iterator for EncodedChunks<'_> {
    type Item = Result<EncodedChunk>;
    fn next(&mut self) -> Option<Self::Item> {
        let r = self.fetch();
        if r.is_err() {
            self.end_seq = 0; // stop after an error
        }
        r.transpose()
    }
}

/// Iterator over a recording's decoded chunks (see [`Vault::chunks`]).
pub struct Chunks<'a> {
    channels: u16,
    format: ChunkFormat,
    inner: EncodedChunks<'a>,
}

impl Iterator for Chunks<'_> {
    type Item = Result<Chunk>;
    fn next(&mut self) -> Option<Self::Item> {
        let e = match self.inner.next()? {
            Ok(e) => e,
            Err(err) => return Some(Err(err)),
        };
        let r = self
            .format
            .decode(&e.data, self.channels, e.info.samples)
            .and_then(|samples| {
                if pcm_sha256(&samples) != e.sha256 {
                    return Err(Error::Corrupt(format!(
                        "recording {}: chunk {} does not match its hash",
                        self.inner.recording_id, e.info.seq
                    )));
                }
                Ok(Chunk {
                    info: e.info,
                    samples,
                })
            });
        if r.is_err() {
            self.inner.end_seq = 0;
        }
        Some(r)
    }
}

/// Iterator over a time range of a recording (see [`Vault::read_samples`]): blocks of
/// interleaved samples, at most one chunk long.
pub struct Samples<'a> {
    chunks: Chunks<'a>,
    from: u64,
    to: u64,
    channels: usize,
}

impl Samples<'_> {
    /// Ends the range after `samples` frames from the start of the recording (at most).
    fn take_samples(mut self, samples: u64) -> Self {
        self.to = self.to.min(samples);
        self
    }
}

impl Iterator for Samples<'_> {
    type Item = Result<Vec<i16>>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.from >= self.to {
                return None;
            }
            let c = match self.chunks.next()? {
                Ok(c) => c,
                Err(e) => return Some(Err(e)),
            };
            let (start, end) = (
                c.info.start_sample,
                c.info.start_sample + c.info.samples as u64,
            );
            if end <= self.from {
                continue;
            }
            let a = (self.from.max(start) - start) as usize;
            let b = (self.to.min(end) - start) as usize;
            self.from = start + b as u64;
            let mut v = c.samples;
            v.truncate(b * self.channels);
            v.drain(..a * self.channels);
            return Some(Ok(v));
        }
    }
}

/// Appends chunks to one recording through its own connection (see
/// [`Vault::recording_writer`]). `Send`: it can live on a capture thread.
pub struct RecordingWriter {
    conn: Connection,
    _lock: File,
    recording_id: String,
    sample_rate: u32,
    channels: u16,
    format: ChunkFormat,
    next_seq: u64,
    next_sample: u64,
    segment: u32,
    // Whether the current segment has audio yet (a pause then ends it).
    segment_used: bool,
    paused: bool,
}

impl std::fmt::Debug for RecordingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingWriter")
            .field("recording_id", &self.recording_id)
            .field("next_seq", &self.next_seq)
            .finish_non_exhaustive()
    }
}

impl RecordingWriter {
    pub fn recording_id(&self) -> &str {
        &self.recording_id
    }
    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    pub fn channels(&self) -> u16 {
        self.channels
    }
    /// Frames committed so far (by this writer and any before it).
    pub fn samples_written(&self) -> u64 {
        self.next_sample
    }
    pub fn duration_ms(&self) -> u64 {
        ms_of(self.next_sample, self.sample_rate)
    }

    /// Commits one chunk: `samples` holds whole frames (channels interleaved), at most
    /// [`MAX_CHUNK_SECONDS`] long. Returns once the chunk is durable on disk. Refused while
    /// paused and once the recording is stopped.
    pub fn append(&mut self, samples: &[i16]) -> Result<ChunkInfo> {
        if self.paused {
            return Err(Error::NotAllowed(Reason::RecordingPaused {
                recording: self.recording_id.clone(),
            }));
        }
        let ch = self.channels as usize;
        if samples.is_empty() || !samples.len().is_multiple_of(ch) {
            return Err(Error::invalid(format!(
                "a chunk holds one or more whole frames of {ch} channel(s)"
            )));
        }
        let frames = samples.len() / ch;
        if frames > (self.sample_rate * MAX_CHUNK_SECONDS) as usize {
            return Err(Error::invalid(format!(
                "a chunk holds at most {MAX_CHUNK_SECONDS} seconds"
            )));
        }
        let data = self.format.encode(samples, self.channels)?;
        let sha = pcm_sha256(samples);
        let info = ChunkInfo {
            seq: self.next_seq,
            segment: self.segment,
            start_sample: self.next_sample,
            samples: frames as u32,
        };
        // One autocommit statement: durable when it returns (WAL, synchronous = FULL), and
        // only while the recording is still recording.
        let n = self.conn.prepare_cached(
            "INSERT INTO audio_chunks (recording_id, seq, segment, start_sample, n_samples, sha256, data)
             SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE EXISTS (SELECT 1 FROM recordings WHERE id = ?1 AND status = 'recording')",
        )?
        .execute(params![self.recording_id, info.seq as i64, info.segment, info.start_sample as i64, frames as i64, &sha[..], data])?;
        if n == 0 {
            return Err(Error::NotAllowed(Reason::RecordingClosed {
                recording: self.recording_id.clone(),
            }));
        }
        self.next_seq += 1;
        self.next_sample += frames as u64;
        self.segment_used = true;
        Ok(info)
    }

    /// Pause: nothing is appended until [`RecordingWriter::resume`]; the audio after it
    /// starts a new segment.
    pub fn pause(&mut self) {
        if !self.paused {
            self.paused = true;
            if self.segment_used {
                self.segment += 1;
                self.segment_used = false;
            }
        }
    }

    pub fn resume(&mut self) {
        self.paused = false;
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }
}
