//! Any source, as 16 kHz mono f32 (what whisper takes), produced block by block: channels are
//! averaged, then resampled with rubato's FFT resampler (fixed ratio, band-limited), keeping
//! only one block of input and output in memory.

use rubato::audioadapter_buffers::direct::InterleavedSlice;
use rubato::{Fft, FixedSync, Indexing, Resampler};

use crate::decode::SampleSource;
use crate::error::{Error, Result};

pub const RATE: u32 = 16_000;
const CHUNK: usize = 1024;

/// 16 kHz mono samples from a [`SampleSource`], with their position.
pub struct Mono16k<S: SampleSource> {
    source: S,
    rate: u32,
    channels: usize,
    resampler: Option<Fft<f32>>,
    /// Source frames read (mono) and not yet resampled.
    input: Vec<f32>,
    output: Vec<f32>,
    block: Vec<f32>,
    /// Resampler output still to drop (its delay), after a start or a seek.
    delay_left: usize,
    /// Source frames fed to the resampler since the last start or seek, and output produced.
    fed: u64,
    produced: u64,
    /// 16 kHz samples handed out so far (the position of the next one).
    position: u64,
    source_ended: bool,
    flushed: bool,
}

impl<S: SampleSource> Mono16k<S> {
    pub fn new(source: S) -> Result<Self> {
        let rate = source.sample_rate();
        let channels = source.channels() as usize;
        if rate == 0 || channels == 0 {
            return Err(Error::AudioUnsupported(
                "the audio has no sample rate or no channels".into(),
            ));
        }
        let resampler = if rate == RATE {
            None
        } else {
            Some(
                Fft::<f32>::new(rate as usize, RATE as usize, CHUNK, 1, FixedSync::Input)
                    .map_err(|e| Error::Resample(e.to_string()))?,
            )
        };
        let delay_left = resampler.as_ref().map_or(0, |r| r.output_delay());
        Ok(Mono16k {
            source,
            rate,
            channels,
            resampler,
            input: Vec::new(),
            output: Vec::new(),
            block: Vec::new(),
            delay_left,
            fed: 0,
            produced: 0,
            position: 0,
            source_ended: false,
            flushed: false,
        })
    }

    /// The length in 16 kHz samples, when the source knows its length.
    pub fn duration_ms(&self) -> Option<u64> {
        self.source.duration_ms()
    }

    /// The position (in 16 kHz samples) of the next sample [`Mono16k::read`] hands out.
    pub fn position(&self) -> u64 {
        self.position
    }

    pub fn source(&self) -> &S {
        &self.source
    }

    /// Appends the next samples to `out`; false (nothing appended) at the end.
    pub fn read(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        loop {
            if self.resampler.is_none() {
                // Already 16 kHz: only mix down.
                self.block.clear();
                if !self.source.read_block(&mut self.block)? {
                    return Ok(false);
                }
                let before = out.len();
                mix_down(&self.block, self.channels, out);
                self.position += (out.len() - before) as u64;
                return Ok(true);
            }
            if self.flushed {
                return Ok(false);
            }
            if !self.source_ended && self.input.len() < CHUNK {
                self.block.clear();
                if self.source.read_block(&mut self.block)? {
                    mix_down(&self.block, self.channels, &mut self.input);
                    continue;
                }
                self.source_ended = true;
            }
            let before = out.len();
            if self.input.len() >= CHUNK {
                self.process(CHUNK, out)?;
            } else {
                // The end: what is left, then silence until the delayed tail is out.
                let expected =
                    (self.fed + self.input.len() as u64) * RATE as u64 / self.rate as u64;
                let n = self.input.len();
                self.process(n, out)?;
                while self.produced < expected {
                    self.process(0, out)?;
                }
                let extra = (self.produced - expected) as usize;
                out.truncate(out.len() - extra.min(out.len() - before));
                self.produced = expected;
                self.flushed = true;
            }
            let grown = out.len() - before;
            self.position += grown as u64;
            if grown > 0 {
                return Ok(true);
            }
            if self.flushed {
                return Ok(false);
            }
        }
    }

    /// Feeds `n` frames from the front of `input` (0 to `CHUNK`; fewer than `CHUNK` are padded
    /// with silence) and appends the output, less the resampler's delay.
    fn process(&mut self, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let r = self.resampler.as_mut().expect("resampling");
        let out_max = r.output_frames_max();
        self.output.resize(out_max, 0.0);
        let mut padded;
        let input: &[f32] = if n == CHUNK {
            &self.input[..CHUNK]
        } else {
            padded = self.input[..n].to_vec();
            padded.resize(CHUNK, 0.0);
            &padded
        };
        let inp =
            InterleavedSlice::new(input, 1, CHUNK).map_err(|e| Error::Resample(e.to_string()))?;
        let mut outp = InterleavedSlice::new_mut(&mut self.output, 1, out_max)
            .map_err(|e| Error::Resample(e.to_string()))?;
        let indexing = Indexing::new().partial_len(n);
        let (_, written) = r
            .process_into_buffer(&inp, &mut outp, Some(&indexing))
            .map_err(|e| Error::Resample(e.to_string()))?;
        self.input.drain(..n);
        self.fed += n as u64;
        let skip = self.delay_left.min(written);
        self.delay_left -= skip;
        out.extend_from_slice(&self.output[skip..written]);
        self.produced += (written - skip) as u64;
        Ok(())
    }

    /// Moves to 16 kHz sample `target` (after the current position) if the source can seek
    /// there; false (nothing changed) if it cannot, and the caller reads on instead.
    pub fn try_seek(&mut self, target: u64) -> Result<bool> {
        if target <= self.position {
            return Ok(false);
        }
        let frame = target * self.rate as u64 / RATE as u64;
        if !self.source.seek_frame(frame)? {
            return Ok(false);
        }
        self.input.clear();
        self.position = target;
        self.fed = 0;
        self.produced = 0;
        self.source_ended = false;
        self.flushed = false;
        if let Some(r) = self.resampler.as_mut() {
            r.reset();
            self.delay_left = r.output_delay();
        }
        Ok(true)
    }
}

/// Appends the average of each frame's channels.
fn mix_down(interleaved: &[f32], channels: usize, out: &mut Vec<f32>) {
    if channels == 1 {
        out.extend_from_slice(interleaved);
    } else {
        let k = 1.0 / channels as f32;
        out.extend(
            interleaved
                .chunks_exact(channels)
                .map(|f| f.iter().sum::<f32>() * k),
        );
    }
}
