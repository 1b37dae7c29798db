//! Audio files decoded with symphonia, one packet at a time (memory stays flat however long the
//! file): WAV, FLAC, MP3, M4A/MP4 (AAC-LC, ALAC), Ogg Vorbis, MKV/WebM (with those codecs), AIFF,
//! CAF, and Opus (Ogg/Opus, WebM/Opus). symphonia 0.6 has no Opus decoder of its own: Opus is
//! decoded by libopus (built from the C sources inside the `opusic-sys` crate, no system library)
//! through `symphonia-adapter-libopus`, registered beside symphonia's own codecs.

use std::fs::File;
use std::path::Path;
use std::sync::LazyLock;

use symphonia::core::codecs::CodecParameters;
use symphonia::core::codecs::audio::{AudioDecoder, AudioDecoderOptions};
use symphonia::core::codecs::registry::CodecRegistry;
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::probe::Hint;
use symphonia::core::formats::{FormatOptions, FormatReader, TrackType};
use symphonia::core::io::{MediaSourceStream, MediaSourceStreamOptions};
use symphonia::core::meta::MetadataOptions;

use crate::error::{Error, Result};

/// Where samples come from: a decoded file, a recording in the vault, a test signal.
pub trait SampleSource {
    fn sample_rate(&self) -> u32;
    fn channels(&self) -> u16;
    /// The length, when known in advance (for progress and time left).
    fn duration_ms(&self) -> Option<u64>;
    /// Appends the next block of frames (channels interleaved, values in [-1, 1]) to `out`.
    /// Returns false, appending nothing, once the source has ended.
    fn read_block(&mut self, out: &mut Vec<f32>) -> Result<bool>;
    /// Moves to `frame` (counted in this source's frames from its start) if the source can do so
    /// without decoding what lies before; returns false (and stays put) if it cannot, and the
    /// caller then reads and drops the frames instead.
    fn seek_frame(&mut self, _frame: u64) -> Result<bool> {
        Ok(false)
    }
}

/// How much audio one [`PcmBlockSource`] read asks for.
pub const PCM_BLOCK_MS: u64 = 10_000;

/// A stored 16-bit recording as a sample source, read in blocks of whole milliseconds by
/// `read(from_ms, to_ms)` (interleaved frames; the CLI reads its vault directly, the app asks
/// its vault thread). Blocks on a whole-millisecond grid are contiguous in frames, so nothing
/// is skipped or read twice; seeking is allowed to such frames only.
pub struct PcmBlockSource<F> {
    read: F,
    rate: u32,
    channels: u16,
    duration_ms: u64,
    /// The next block starts here.
    pos_ms: u64,
}

impl<F: FnMut(u64, u64) -> Result<Vec<i16>>> PcmBlockSource<F> {
    pub fn new(rate: u32, channels: u16, duration_ms: u64, read: F) -> Self {
        PcmBlockSource {
            read,
            rate,
            channels,
            duration_ms,
            pos_ms: 0,
        }
    }
}

impl<F: FnMut(u64, u64) -> Result<Vec<i16>>> SampleSource for PcmBlockSource<F> {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn channels(&self) -> u16 {
        self.channels
    }
    fn duration_ms(&self) -> Option<u64> {
        Some(self.duration_ms)
    }
    fn read_block(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        if self.pos_ms >= self.duration_ms {
            return Ok(false);
        }
        let to = self.pos_ms + PCM_BLOCK_MS;
        let block = (self.read)(self.pos_ms, to)?;
        let before = out.len();
        out.extend(block.iter().map(|&s| s as f32 / 32768.0));
        self.pos_ms = to;
        Ok(out.len() > before || self.pos_ms < self.duration_ms)
    }
    fn seek_frame(&mut self, frame: u64) -> Result<bool> {
        if !(frame * 1000).is_multiple_of(self.rate as u64) {
            return Ok(false);
        }
        self.pos_ms = frame * 1000 / self.rate as u64;
        Ok(true)
    }
}

/// Consecutive undecodable packets tolerated (a damaged frame in an MP3) before giving up.
const MAX_BAD_PACKETS: u32 = 16;

/// symphonia's codecs (the features enabled in Cargo.toml) plus Opus from libopus.
static CODECS: LazyLock<CodecRegistry> = LazyLock::new(|| {
    let mut registry = CodecRegistry::new();
    symphonia::default::register_enabled_codecs(&mut registry);
    registry.register_audio_decoder::<symphonia_adapter_libopus::OpusDecoder>();
    registry
});

/// An audio file decoded packet by packet.
pub struct AudioFile {
    reader: Box<dyn FormatReader>,
    decoder: Box<dyn AudioDecoder>,
    track_id: u32,
    sample_rate: u32,
    channels: u16,
    duration_ms: Option<u64>,
    /// The first decoded block (decoded at open to learn the real format), not yet handed out.
    pending: Option<Vec<f32>>,
    ended: bool,
    scratch: Vec<f32>,
}

fn sym_error(e: SymError) -> Error {
    match e {
        SymError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            Error::AudioMalformed("it ends too early".into())
        }
        SymError::IoError(e) => Error::Io(e),
        // symphonia's messages describe the container or codec, never the audio.
        SymError::Unsupported(what) => Error::AudioUnsupported(what.to_string()),
        SymError::DecodeError(what) => Error::AudioMalformed(what.to_string()),
        SymError::LimitError(what) => Error::AudioMalformed(format!("a limit was reached: {what}")),
        SymError::SeekError(_) => Error::AudioMalformed("it cannot be read in order".into()),
        SymError::ResetRequired => {
            Error::AudioUnsupported("its tracks change part-way through".into())
        }
        e => Error::AudioMalformed(e.to_string()),
    }
}

impl AudioFile {
    /// Opens and probes `path` and decodes its first packet. The file's extension is only a
    /// hint; the contents decide.
    pub fn open(path: &Path) -> Result<AudioFile> {
        let file = File::open(path)?;
        if file.metadata()?.len() == 0 {
            return Err(Error::AudioEmpty);
        }
        let mss = MediaSourceStream::new(Box::new(file), MediaSourceStreamOptions::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let reader = symphonia::default::get_probe()
            .probe(&hint, mss, FormatOptions::default(), MetadataOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => Error::AudioUnsupported(
                    "not an audio format this build reads (WAV, FLAC, MP3, M4A/AAC, Ogg Vorbis, Opus, MKV/WebM, AIFF, CAF)".into(),
                ),
                e => sym_error(e),
            })?;
        Self::from_reader(reader)
    }

    fn from_reader(reader: Box<dyn FormatReader>) -> Result<AudioFile> {
        let track = reader
            .first_track(TrackType::Audio)
            .ok_or_else(|| Error::AudioUnsupported("the file has no audio track".into()))?;
        let params = match &track.codec_params {
            Some(CodecParameters::Audio(p)) => p.clone(),
            _ => {
                return Err(Error::AudioUnsupported(
                    "the audio track's codec is unknown".into(),
                ));
            }
        };
        let track_id = track.id;
        let duration_frames = track.num_frames;
        let decoder = CODECS
            .make_audio_decoder(&params, &AudioDecoderOptions::default())
            .map_err(|e| match e {
                SymError::Unsupported(_) => {
                    Error::AudioUnsupported("the audio codec is not one this build decodes".into())
                }
                e => sym_error(e),
            })?;
        let mut f = AudioFile {
            reader,
            decoder,
            track_id,
            sample_rate: params.sample_rate.unwrap_or(0),
            channels: params.channels.as_ref().map_or(0, |c| c.count() as u16),
            duration_ms: None,
            pending: None,
            ended: false,
            scratch: Vec::new(),
        };
        // Decode the first block: it fixes the format for sure (some containers leave it out).
        let mut first = Vec::new();
        match f.decode_next(&mut first, true)? {
            Some((rate, channels)) => {
                f.sample_rate = rate;
                f.channels = channels;
                f.pending = Some(first);
            }
            None => return Err(Error::AudioEmpty),
        }
        if f.sample_rate == 0 || f.channels == 0 {
            return Err(Error::AudioUnsupported(
                "the audio has no sample rate or no channels".into(),
            ));
        }
        f.duration_ms = duration_frames.map(|n| n * 1000 / f.sample_rate as u64);
        Ok(f)
    }

    /// Decodes packets until one yields audio; appends it to `out` and returns its format, or
    /// None at the end.
    fn decode_next(&mut self, out: &mut Vec<f32>, first: bool) -> Result<Option<(u32, u16)>> {
        let mut bad = 0u32;
        loop {
            let packet = match self.reader.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(None),
                // Some readers report the end of the data as an early EOF.
                Err(SymError::IoError(e))
                    if e.kind() == std::io::ErrorKind::UnexpectedEof && !first =>
                {
                    return Ok(None);
                }
                Err(e) => return Err(sym_error(e)),
            };
            if packet.track_id != self.track_id {
                continue;
            }
            match self.decoder.decode(&packet) {
                Ok(buf) => {
                    if buf.frames() == 0 {
                        continue;
                    }
                    let rate = buf.spec().rate();
                    let channels = buf.spec().channels().count() as u16;
                    if !first && (rate != self.sample_rate || channels != self.channels) {
                        return Err(Error::AudioUnsupported(
                            "the audio format changes part-way through".into(),
                        ));
                    }
                    // copy_to_vec_interleaved replaces a vector's contents; blocks are appended.
                    buf.copy_to_vec_interleaved::<f32>(&mut self.scratch);
                    out.extend_from_slice(&self.scratch);
                    return Ok(Some((rate, channels)));
                }
                // A damaged packet: skip it, as players do, unless the damage goes on.
                Err(SymError::DecodeError(what)) => {
                    bad += 1;
                    if bad > MAX_BAD_PACKETS {
                        return Err(Error::AudioMalformed(what.to_string()));
                    }
                }
                Err(e) => return Err(sym_error(e)),
            }
        }
    }
}

impl SampleSource for AudioFile {
    fn sample_rate(&self) -> u32 {
        self.sample_rate
    }
    fn channels(&self) -> u16 {
        self.channels
    }
    fn duration_ms(&self) -> Option<u64> {
        self.duration_ms
    }
    fn read_block(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        if let Some(p) = self.pending.take() {
            out.extend_from_slice(&p);
            return Ok(true);
        }
        if self.ended {
            return Ok(false);
        }
        match self.decode_next(out, false)? {
            Some(_) => Ok(true),
            None => {
                self.ended = true;
                Ok(false)
            }
        }
    }
}
