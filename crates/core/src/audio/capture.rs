//! Capturing audio into a recording.
//!
//! An [`AudioSource`] delivers mono 16-bit samples at its own rate on the recorder's capture
//! thread. The [`Recorder`] passes them through a channel to its writer thread, which cuts
//! them into one-second chunks and commits each through a [`RecordingWriter`] (its own
//! database connection), so the vault's main connection stays free for the form. The
//! recorder reports the input level and the elapsed time, and pauses and resumes.
//!
//! Sources: [`CpalSource`] (feature `capture`): the default input device through cpal (ALSA on
//! Linux; PulseAudio and PipeWire through ALSA's plugins). [`WavSource`]: a WAV file, played
//! as if it were a microphone, for tests and machines without one.
//!
//! ```text
//! source thread ── mono i16 blocks ──► channel ──► writer thread: 1 s chunks ──► RecordingWriter
//!      │ level, captured frames                             │ saved frames        (commit each)
//!      └──────────────────────────► Recorder::status() ◄────┘
//! ```

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::RecordingWriter;
use crate::error::{Error, Result};

/// Where audio comes from. `run` is called once, on the recorder's capture thread.
pub trait AudioSource: Send {
    /// Frames per second of what `run` delivers (mono).
    fn sample_rate(&self) -> u32;
    /// Delivers mono samples in blocks (any length) to `deliver` until `stop` is set or the
    /// source ends. An error ends the capture; what was delivered before it is kept.
    fn run(&mut self, stop: &AtomicBool, deliver: &mut dyn FnMut(&[i16])) -> Result<()>;
}

/// Input level of the latest block, as fractions of full scale (0.0 to 1.0).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Level {
    pub rms: f32,
    pub peak: f32,
}

impl Level {
    pub fn of(samples: &[i16]) -> Level {
        if samples.is_empty() {
            return Level::default();
        }
        let (mut sum, mut peak) = (0f64, 0i32);
        for &s in samples {
            sum += (s as f64) * (s as f64);
            peak = peak.max((s as i32).abs());
        }
        Level {
            rms: ((sum / samples.len() as f64).sqrt() / 32768.0) as f32,
            peak: peak as f32 / 32768.0,
        }
    }

    /// RMS in dBFS (−inf for silence).
    pub fn rms_dbfs(&self) -> f32 {
        20.0 * self.rms.log10()
    }
}

/// What a recorder is doing, for a level meter and a clock.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RecorderStatus {
    /// Audio captured while not paused.
    pub elapsed_ms: u64,
    /// Audio committed to the vault (behind `elapsed_ms` by up to a chunk).
    pub saved_ms: u64,
    pub chunks: u64,
    pub paused: bool,
    /// Still capturing: false once the source ended, failed, or the writer failed.
    pub running: bool,
    /// The source or the writer failed; [`Recorder::stop`] returns the error.
    pub failed: bool,
    pub level: Level,
}

/// What a finished recorder committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct RecorderReport {
    pub samples: u64,
    pub chunks: u64,
    pub duration_ms: u64,
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    paused: AtomicBool,
    captured: AtomicU64,
    saved: AtomicU64,
    chunks: AtomicU64,
    rms: AtomicU32,
    peak: AtomicU32,
    running: AtomicBool,
    failed: AtomicBool,
    first_error: Mutex<Option<Error>>,
}

impl Shared {
    fn fail(&self, e: Error) {
        self.failed.store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        let mut slot = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if slot.is_none() {
            *slot = Some(e);
        }
    }
}

enum Msg {
    Samples(Vec<i16>),
    Pause,
    Resume,
}

/// Records from a source into a recording until stopped. Dropping it stops it too (and waits
/// for the last chunk to be committed).
pub struct Recorder {
    shared: Arc<Shared>,
    sample_rate: u32,
    capture: Option<JoinHandle<()>>,
    writer: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder")
            .field("sample_rate", &self.sample_rate)
            .finish_non_exhaustive()
    }
}

impl Recorder {
    /// Starts capturing from `source` into the recording `writer` belongs to, which must be
    /// mono at the source's sample rate (start the recording with `source.sample_rate()`).
    pub fn start(source: impl AudioSource + 'static, writer: RecordingWriter) -> Result<Recorder> {
        let rate = source.sample_rate();
        if writer.channels() != 1 || writer.sample_rate() != rate {
            return Err(Error::invalid(format!(
                "the recording is {} Hz with {} channel(s); this source delivers {rate} Hz mono",
                writer.sample_rate(),
                writer.channels()
            )));
        }
        let shared = Arc::new(Shared {
            running: AtomicBool::new(true),
            ..Default::default()
        });
        let (tx, rx) = mpsc::channel::<Msg>();
        let w_shared = shared.clone();
        let writer = std::thread::Builder::new()
            .name("testimony-audio-writer".into())
            .spawn(move || {
                if let Err(e) = write_chunks(writer, rx, rate as usize, &w_shared) {
                    w_shared.fail(e);
                }
            })?;
        let c_shared = shared.clone();
        let mut source = source;
        let capture = std::thread::Builder::new()
            .name("testimony-audio-capture".into())
            .spawn(move || {
                let sh = &c_shared;
                let mut was_paused = false;
                let result = source.run(&sh.stop, &mut |block: &[i16]| {
                    let level = Level::of(block);
                    sh.rms.store(level.rms.to_bits(), Ordering::Relaxed);
                    sh.peak.store(level.peak.to_bits(), Ordering::Relaxed);
                    // Pause and resume travel in the same channel as the samples, so the writer
                    // sees them exactly between the blocks where they happened.
                    let paused = sh.paused.load(Ordering::SeqCst);
                    if paused != was_paused {
                        let _ = tx.send(if paused { Msg::Pause } else { Msg::Resume });
                        was_paused = paused;
                    }
                    if !paused && !block.is_empty() {
                        sh.captured.fetch_add(block.len() as u64, Ordering::SeqCst);
                        let _ = tx.send(Msg::Samples(block.to_vec()));
                    }
                });
                sh.running.store(false, Ordering::SeqCst);
                if let Err(e) = result {
                    sh.fail(e);
                }
                // Dropping `tx` lets the writer commit what is left and end.
            })?;
        Ok(Recorder {
            shared,
            sample_rate: rate,
            capture: Some(capture),
            writer: Some(writer),
        })
    }

    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn status(&self) -> RecorderStatus {
        let sh = &self.shared;
        let ms = |frames: u64| frames * 1000 / self.sample_rate as u64;
        RecorderStatus {
            elapsed_ms: ms(sh.captured.load(Ordering::SeqCst)),
            saved_ms: ms(sh.saved.load(Ordering::SeqCst)),
            chunks: sh.chunks.load(Ordering::SeqCst),
            paused: sh.paused.load(Ordering::SeqCst),
            running: sh.running.load(Ordering::SeqCst) && !sh.failed.load(Ordering::SeqCst),
            failed: sh.failed.load(Ordering::SeqCst),
            level: Level {
                rms: f32::from_bits(sh.rms.load(Ordering::Relaxed)),
                peak: f32::from_bits(sh.peak.load(Ordering::Relaxed)),
            },
        }
    }

    /// Waits until the source has ended by itself (a file source) or `timeout` passed.
    /// Returns whether it ended.
    pub fn wait_until_source_ends(&self, timeout: Duration) -> bool {
        let until = Instant::now() + timeout;
        while self.shared.running.load(Ordering::SeqCst)
            && !self.shared.failed.load(Ordering::SeqCst)
        {
            if Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Stops capturing, commits the last (partial) chunk and returns what was committed, or
    /// the first error of the source or the writer. Either way the chunks committed before
    /// stay in the vault; call `Vault::stop_recording` afterwards.
    pub fn stop(mut self) -> Result<RecorderReport> {
        self.join();
        if let Some(e) = self
            .shared
            .first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            return Err(e);
        }
        let samples = self.shared.saved.load(Ordering::SeqCst);
        Ok(RecorderReport {
            samples,
            chunks: self.shared.chunks.load(Ordering::SeqCst),
            duration_ms: samples * 1000 / self.sample_rate as u64,
        })
    }

    fn join(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for h in [self.capture.take(), self.writer.take()]
            .into_iter()
            .flatten()
        {
            if h.join().is_err() {
                self.shared
                    .fail(Error::Audio("an audio thread ended unexpectedly".into()));
            }
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.join();
    }
}

fn write_chunks(
    mut w: RecordingWriter,
    rx: mpsc::Receiver<Msg>,
    chunk: usize,
    sh: &Shared,
) -> Result<()> {
    let mut buf: Vec<i16> = Vec::with_capacity(chunk * 2);
    let commit = |w: &mut RecordingWriter, samples: &[i16]| -> Result<()> {
        w.append(samples)?;
        sh.saved.fetch_add(samples.len() as u64, Ordering::SeqCst);
        sh.chunks.fetch_add(1, Ordering::SeqCst);
        Ok(())
    };
    for msg in rx {
        match msg {
            Msg::Samples(v) => {
                buf.extend_from_slice(&v);
                while buf.len() >= chunk {
                    commit(&mut w, &buf[..chunk])?;
                    buf.drain(..chunk);
                }
            }
            Msg::Pause => {
                if !buf.is_empty() {
                    commit(&mut w, &buf)?;
                    buf.clear();
                }
                w.pause();
            }
            Msg::Resume => w.resume(),
        }
    }
    if !buf.is_empty() {
        w.resume();
        commit(&mut w, &buf)?;
    }
    Ok(())
}

/// A WAV file played as if it were a microphone: mixed to mono, converted to 16 bits, in
/// blocks of 20 ms, in real time or as fast as the recorder takes them. For tests and for
/// machines without an input device; it goes through exactly the recorder path a
/// microphone does.
pub struct WavSource {
    reader: hound::WavReader<std::io::BufReader<std::fs::File>>,
    realtime: bool,
}

impl WavSource {
    pub fn open(path: &Path, realtime: bool) -> Result<WavSource> {
        let reader = hound::WavReader::open(path).map_err(super::wav_error)?;
        let spec = reader.spec();
        if !(super::MIN_SAMPLE_RATE..=super::MAX_SAMPLE_RATE).contains(&spec.sample_rate)
            || spec.channels == 0
        {
            return Err(Error::Audio(
                "the WAV file's sample rate or channel count is not supported".into(),
            ));
        }
        let mut reader = reader;
        drop(super::wav_samples(&mut reader)?); // refuses formats it cannot convert
        Ok(WavSource { reader, realtime })
    }
}

impl AudioSource for WavSource {
    fn sample_rate(&self) -> u32 {
        self.reader.spec().sample_rate
    }

    fn run(&mut self, stop: &AtomicBool, deliver: &mut dyn FnMut(&[i16])) -> Result<()> {
        let spec = self.reader.spec();
        let ch = spec.channels as usize;
        let block = (spec.sample_rate / 50) as usize;
        let started = Instant::now();
        let mut sent = 0u64;
        let mut samples = super::wav_samples(&mut self.reader)?;
        let mut out: Vec<i16> = Vec::with_capacity(block);
        loop {
            if stop.load(Ordering::SeqCst) {
                break;
            }
            out.clear();
            let mut ended = false;
            'fill: while out.len() < block {
                let mut sum = 0i32;
                for _ in 0..ch {
                    match samples.next() {
                        Some(s) => sum += s? as i32,
                        // The end (a file cut inside a frame loses that partial frame).
                        None => {
                            ended = true;
                            break 'fill;
                        }
                    }
                }
                out.push((sum / ch as i32) as i16);
            }
            if !out.is_empty() {
                deliver(&out);
                sent += out.len() as u64;
            }
            if ended {
                break;
            }
            if self.realtime {
                let due =
                    started + Duration::from_micros(sent * 1_000_000 / spec.sample_rate as u64);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        }
        Ok(())
    }
}

#[cfg(feature = "capture")]
pub use cpal_source::CpalSource;

#[cfg(feature = "capture")]
mod cpal_source {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
    use cpal::{FromSample, Sample, SampleFormat, SizedSample};

    use super::AudioSource;
    use crate::error::{Error, Result};

    /// The default audio input device (cpal's default host: ALSA on Linux, which reaches
    /// PulseAudio or PipeWire through ALSA's plugins), at the device's own rate, mixed to mono.
    pub struct CpalSource {
        device: cpal::Device,
        config: cpal::SupportedStreamConfig,
        name: String,
    }

    enum Event {
        Data(Vec<i16>),
        Fatal(String),
    }

    impl CpalSource {
        pub fn default_input() -> Result<CpalSource> {
            let host = cpal::default_host();
            let device = host.default_input_device().ok_or_else(|| {
                Error::Audio(
                    "no audio input device found (is a microphone connected and allowed?)".into(),
                )
            })?;
            let config = device.default_input_config().map_err(|e| {
                Error::Audio(format!(
                    "the audio input device offers no usable configuration ({e})"
                ))
            })?;
            let name = device
                .description()
                .map(|d| d.name().to_string())
                .unwrap_or_else(|_| "default input".into());
            Ok(CpalSource {
                device,
                config,
                name,
            })
        }

        /// The device's name as the audio system reports it.
        pub fn device_name(&self) -> &str {
            &self.name
        }

        pub fn channels(&self) -> u16 {
            self.config.channels()
        }

        fn build<T>(&self, tx: mpsc::Sender<Event>) -> Result<cpal::Stream>
        where
            T: SizedSample + Send + 'static,
            i16: FromSample<T>,
        {
            let ch = self.config.channels().max(1) as usize;
            let err_tx = tx.clone();
            self.device
                .build_input_stream::<T, _, _>(
                    self.config.config(),
                    move |data: &[T], _| {
                        // Mix to mono: the mean of the channels of each frame.
                        let mono: Vec<i16> = data
                            .chunks_exact(ch)
                            .map(|f| {
                                (f.iter().map(|&s| i16::from_sample(s) as i32).sum::<i32>()
                                    / ch as i32) as i16
                            })
                            .collect();
                        let _ = tx.send(Event::Data(mono));
                    },
                    move |e: cpal::Error| {
                        // An overrun loses a few milliseconds and the stream goes on; anything
                        // else ends the capture.
                        if !matches!(
                            e.kind(),
                            cpal::ErrorKind::Xrun
                                | cpal::ErrorKind::DeviceChanged
                                | cpal::ErrorKind::RealtimeDenied
                        ) {
                            let _ = err_tx.send(Event::Fatal(e.to_string()));
                        }
                    },
                    None,
                )
                .map_err(|e| Error::Audio(format!("cannot open the audio input ({e})")))
        }
    }

    impl AudioSource for CpalSource {
        fn sample_rate(&self) -> u32 {
            self.config.sample_rate()
        }

        fn run(&mut self, stop: &AtomicBool, deliver: &mut dyn FnMut(&[i16])) -> Result<()> {
            let (tx, rx) = mpsc::channel();
            // The stream lives on this thread only (cpal streams need not be Send).
            let stream = match self.config.sample_format() {
                SampleFormat::I8 => self.build::<i8>(tx),
                SampleFormat::I16 => self.build::<i16>(tx),
                SampleFormat::I32 => self.build::<i32>(tx),
                SampleFormat::U8 => self.build::<u8>(tx),
                SampleFormat::U16 => self.build::<u16>(tx),
                SampleFormat::U32 => self.build::<u32>(tx),
                SampleFormat::F32 => self.build::<f32>(tx),
                SampleFormat::F64 => self.build::<f64>(tx),
                other => Err(Error::Audio(format!(
                    "the audio input's sample format {other} is not supported"
                ))),
            }?;
            stream
                .play()
                .map_err(|e| Error::Audio(format!("cannot start the audio input ({e})")))?;
            let mut result = Ok(());
            while !stop.load(Ordering::SeqCst) {
                match rx.recv_timeout(Duration::from_millis(50)) {
                    Ok(Event::Data(v)) => deliver(&v),
                    Ok(Event::Fatal(m)) => {
                        result = Err(Error::Audio(format!("the audio input failed ({m})")));
                        break;
                    }
                    Err(mpsc::RecvTimeoutError::Timeout) => {}
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            }
            drop(stream);
            // Blocks captured before the stream closed.
            while let Ok(Event::Data(v)) = rx.try_recv() {
                deliver(&v);
            }
            result
        }
    }
}
