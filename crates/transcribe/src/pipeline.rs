//! Long audio in windows.
//!
//! The recording is cut into a fixed grid of windows: window `k` is responsible for the
//! segments that *start* between `k × window_ms` and `(k + 1) × window_ms`. Boundaries are
//! where whisper goes wrong (a sentence cut in two, heard twice or half), so a window does not
//! start exactly on the grid, and does not stop there:
//!
//! - it starts where the last segment kept so far ends (never more than `lookback_ms` before
//!   its grid start, and at its grid start less `lookback_ms` if nothing was kept), so the
//!   next sentence is heard from its beginning;
//! - it hears `lookahead_ms` past its grid end, so a sentence that starts just before the end
//!   is heard to its end;
//! - it keeps the segments that start before its grid end, except one that runs into the end
//!   of what it heard (cut off): that one, and what follows, is left to the next window, which
//!   starts where the last kept segment ends.
//!
//! So every sentence is transcribed whole, once. Inside a window whisper.cpp runs its own
//! 30-second seek loop, as `whisper-cli` does on a whole file; the cost over one long run is
//! the re-heard lookahead and lookback, and one partial decode per window.
//!
//! Why a grid: window numbers mean the same audio on every run, so a transcript can be resumed
//! after a crash or a cancel by skipping the windows already saved (the vault stores each
//! window's segments in one transaction, with the window size) and starting from the end of
//! the last saved segment, exactly where an uninterrupted run would have started. The default
//! window is thirty minutes. Each boundary costs time: the audio heard past the grid end is
//! decoded again by the next window, and a window starts without the text before it, which on
//! the benchmark hour made whisper.cpp choose shorter 30-second steps for the whole window (with
//! fifteen-minute windows, 133 encoder runs against 121 in one call: about 1.09x its time;
//! thirty minutes: 123 runs; docs/performance.md). Against that, a crash or cancel loses at most
//! one window's work (about 3 minutes of tiny.en on one core), and the audio held in memory
//! (window, lookback and lookahead at 16 kHz f32, about 120 MB, and whisper.cpp's spectrogram
//! of it, about 60 MB) does not depend on the recording's length.
//!
//! The source is read block by block ([`SampleSource`], [`Mono16k`]); only the current window
//! is buffered. Segments go to the caller window by window and are not kept here.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::decode::SampleSource;
use crate::error::{Error, Result};
use crate::repetition::{collapse, find_loop, find_loop_span};
use crate::resample::{Mono16k, RATE};
use crate::{Segment, Transcriber, WindowHooks, WindowOptions};

const PER_MS: u64 = RATE as u64 / 1000;

#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// The grid step: window `k` keeps the segments starting in `[k, k + 1) × window_ms`.
    pub window_ms: u64,
    /// How far a window may start before its grid start (see the module docs).
    pub lookback_ms: u64,
    /// How far a window hears past its grid end.
    pub lookahead_ms: u64,
    pub options: WindowOptions,
    /// Temperature for the retry of a window part that looped (with previous-text context off).
    pub retry_temperature: f32,
}

pub const DEFAULT_WINDOW_MS: u64 = 1_800_000;
/// Whisper's segments are at most 30 s long.
pub const DEFAULT_LOOKBACK_MS: u64 = 30_000;
pub const DEFAULT_LOOKAHEAD_MS: u64 = 5_000;
/// A segment that ends this close to the end of what a window heard counts as cut off.
pub const CUT_MS: u64 = 1_000;

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            window_ms: DEFAULT_WINDOW_MS,
            lookback_ms: DEFAULT_LOOKBACK_MS,
            lookahead_ms: DEFAULT_LOOKAHEAD_MS,
            options: WindowOptions::default(),
            retry_temperature: 0.6,
        }
    }
}

impl PipelineConfig {
    /// A window of `window_ms` with the default lookback and lookahead, shortened to fit a short
    /// window (half of it, a quarter).
    pub fn for_window(window_ms: u64, options: WindowOptions) -> PipelineConfig {
        PipelineConfig {
            window_ms,
            lookback_ms: DEFAULT_LOOKBACK_MS.min(window_ms / 2),
            lookahead_ms: DEFAULT_LOOKAHEAD_MS.min(window_ms / 4),
            options,
            ..Default::default()
        }
    }
}

/// Whether to go on, from a progress callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Where a run is. Carries no text: safe to show or log.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The window being worked on (or just finished).
    pub window: u32,
    /// How many windows the recording has, when its length is known.
    pub windows_total: Option<u32>,
    /// Audio done (windows finished now or in an earlier run, and the part of the current one).
    pub done_ms: u64,
    pub total_ms: Option<u64>,
    pub percent: Option<f32>,
    /// Time left at the speed of this run so far (None until there is something to go by).
    pub eta: Option<Duration>,
}

/// One window's result, handed to the caller to save before the next window starts.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    pub index: u32,
    /// The audio the window heard (ms from the start of the recording).
    pub start_ms: u64,
    pub end_ms: u64,
    /// The segments it keeps, in order, times from the recording's start.
    pub segments: Vec<Segment>,
    /// A loop was found and the retry got rid of it.
    pub loop_recovered: bool,
    /// A loop was found, persisted in the retry, and was cut down to its first occurrence.
    pub loop_dropped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Every window is done (this run or earlier); `windows` is how many the recording has.
    Finished { windows: u32, duration_ms: u64 },
    /// Stopped by the progress callback or the stop flag; finished windows were handed out.
    Cancelled { next_window: u32 },
}

pub struct Pipeline {
    pub config: PipelineConfig,
}

/// The buffered 16 kHz audio: `buf[0]` is sample `start` of the recording.
struct Buffer<S: SampleSource> {
    stream: Mono16k<S>,
    buf: Vec<f32>,
    start: u64,
    eof: bool,
}

impl<S: SampleSource> Buffer<S> {
    fn end(&self) -> u64 {
        self.start + self.buf.len() as u64
    }
    /// Forgets samples before `from`.
    fn drop_before(&mut self, from: u64) {
        if from <= self.start {
            return;
        }
        let n = ((from - self.start) as usize).min(self.buf.len());
        self.buf.drain(..n);
        self.start += n as u64;
        if self.buf.is_empty() && self.start < from {
            // Nothing buffered: seek the source there if it can, else read and drop on the way.
            if self.stream.position() == self.start && self.stream.try_seek(from).unwrap_or(false) {
                self.start = from;
            }
        }
    }
    /// Reads until `to` is buffered or the audio ends, dropping what comes before `keep_from`.
    fn fill(&mut self, keep_from: u64, to: u64, stop: &AtomicBool) -> Result<()> {
        self.drop_before(keep_from);
        while !self.eof && self.end() < to {
            if stop.load(Ordering::SeqCst) {
                return Err(Error::Cancelled);
            }
            if !self.stream.read(&mut self.buf)? {
                self.eof = true;
            }
            self.drop_before(keep_from);
        }
        Ok(())
    }
}

impl Pipeline {
    pub fn new(config: PipelineConfig) -> Result<Pipeline> {
        if config.window_ms < 1_000 || config.window_ms > 3_600_000 {
            return Err(Error::Invalid(
                "the window must be between 1 second and 1 hour".into(),
            ));
        }
        if config.lookback_ms * 2 > config.window_ms
            || config.lookahead_ms * 2 > config.window_ms
            || config.lookback_ms < CUT_MS * 2
        {
            return Err(Error::Invalid(
                "lookback and lookahead must be at most half a window, and lookback at least 2 s"
                    .into(),
            ));
        }
        Ok(Pipeline { config })
    }

    /// Transcribes `source` window by window.
    ///
    /// - `done`: windows already saved (by an earlier run); they are skipped.
    /// - `done_until_ms`: the end of the last segment saved by an earlier run (0 if none): the
    ///   first window after the skipped ones starts there.
    /// - `stop`: set (from any thread) to cancel; the window in progress is abandoned.
    /// - `on_progress`: called often (at least once per window and per 30 s of audio); return
    ///   [`Flow::Stop`] to cancel.
    /// - `on_window`: receives each finished window; an error from it ends the run.
    #[allow(clippy::too_many_arguments)] // each is documented above; a struct would only rename them
    pub fn run<S: SampleSource>(
        &self,
        transcriber: &mut dyn Transcriber,
        source: S,
        done: &BTreeSet<u32>,
        done_until_ms: u64,
        stop: &AtomicBool,
        on_progress: &mut dyn FnMut(&Progress) -> Flow,
        on_window: &mut dyn FnMut(WindowResult) -> Result<()>,
    ) -> Result<Outcome> {
        let cfg = &self.config;
        let step = cfg.window_ms * PER_MS;
        let lookback = cfg.lookback_ms * PER_MS;
        let lookahead = cfg.lookahead_ms * PER_MS;
        let stream = Mono16k::new(source)?;
        let total_ms = stream.duration_ms();
        let windows_total = total_ms.map(|t| t.div_ceil(cfg.window_ms).max(1) as u32);
        let mut b = Buffer {
            stream,
            buf: Vec::new(),
            start: 0,
            eof: false,
        };
        let started = Instant::now();
        // Audio transcribed in this run (for the time left), and windows counted as done.
        let mut worked_ms: u64 = 0;
        let mut done_ms: u64 = 0;
        // The end of the last segment kept so far (16 kHz samples).
        let mut kept_until: u64 = done_until_ms * PER_MS;
        let owned_ms = |i: u32| -> u64 {
            let s = i as u64 * cfg.window_ms;
            match total_ms {
                Some(t) => t.saturating_sub(s).min(cfg.window_ms),
                None => cfg.window_ms,
            }
        };
        let progress_at = |window: u32, done_ms: u64, worked_ms: u64| -> Progress {
            let done_ms = total_ms.map_or(done_ms, |t| done_ms.min(t));
            let percent = total_ms.map(|t| {
                if t == 0 {
                    100.0
                } else {
                    (done_ms as f32 * 100.0 / t as f32).min(100.0)
                }
            });
            let elapsed = started.elapsed();
            let eta = match total_ms {
                Some(t) if worked_ms > 0 && elapsed > Duration::from_millis(200) => {
                    let left = t.saturating_sub(done_ms);
                    Some(elapsed.mul_f64(left as f64 / worked_ms as f64))
                }
                _ => None,
            };
            Progress {
                window,
                windows_total,
                done_ms,
                total_ms,
                percent,
                eta,
            }
        };
        let cancelled = |i: u32| Ok(Outcome::Cancelled { next_window: i });
        let finished = |i: u32, b: &Buffer<S>| {
            Ok(Outcome::Finished {
                windows: i,
                duration_ms: b.end() / PER_MS,
            })
        };
        let mut i: u32 = 0;
        loop {
            if stop.load(Ordering::SeqCst) {
                return cancelled(i);
            }
            let own_start = i as u64 * step;
            let own_end = own_start + step;
            if done.contains(&i) {
                // Already saved: only what the next window may need is kept from here.
                match b.fill(own_end.saturating_sub(lookback), own_end, stop) {
                    Err(Error::Cancelled) => return cancelled(i),
                    r => r?,
                }
                if i > 0 && b.eof && b.end() <= own_start {
                    return finished(i, &b);
                }
                done_ms += owned_ms(i);
                if on_progress(&progress_at(i, done_ms, worked_ms)) == Flow::Stop {
                    stop.store(true, Ordering::SeqCst);
                }
                i += 1;
                if b.eof && b.end() <= own_end {
                    return finished(i, &b);
                }
                continue;
            }
            let start = kept_until
                .max(own_start.saturating_sub(lookback))
                .max(b.start);
            match b.fill(start, own_end + lookahead, stop) {
                Err(Error::Cancelled) => return cancelled(i),
                r => r?,
            }
            if i > 0 && b.eof && b.end() <= own_start {
                return finished(i, &b);
            }
            let last = b.eof && b.end() <= own_end;
            let start = start.min(b.end());
            let heard_end = b.end().min(own_end + lookahead);
            let pcm = &b.buf[(start - b.start) as usize..(heard_end - b.start) as usize];
            let this_ms = owned_ms(i);
            if on_progress(&progress_at(i, done_ms, worked_ms)) == Flow::Stop {
                stop.store(true, Ordering::SeqCst);
                return cancelled(i);
            }
            // Progress inside the window, never going backwards (a retry starts over).
            let mut frac_seen = 0f32;
            let mut progress = |f: f32| -> bool {
                frac_seen = frac_seen.max(f);
                let part = (this_ms as f32 * frac_seen) as u64;
                on_progress(&progress_at(i, done_ms + part, worked_ms + part)) == Flow::Continue
            };
            let mut hooks = WindowHooks {
                progress: &mut progress,
                stop,
            };
            let (segments, recovered, dropped) =
                match transcribe_with_recovery(transcriber, pcm, cfg, &mut hooks) {
                    Err(Error::Cancelled) => return cancelled(i),
                    r => r?,
                };
            // Recording times; keep what starts before the grid end and was heard whole.
            let base_ms = start / PER_MS;
            let heard_end_ms = heard_end / PER_MS;
            let audio_ended = b.eof && heard_end == b.end();
            let mut kept = Vec::with_capacity(segments.len());
            for mut s in segments {
                s.start_ms = (base_ms + s.start_ms).min(heard_end_ms);
                s.end_ms = (base_ms + s.end_ms).clamp(s.start_ms, heard_end_ms);
                if !last && s.start_ms >= own_end / PER_MS {
                    break;
                }
                if !audio_ended && s.end_ms + CUT_MS >= heard_end_ms {
                    // Cut off by the end of what this window heard: the next window hears it whole.
                    break;
                }
                kept.push(s);
            }
            if let Some(e) = kept.iter().map(|s| s.end_ms).max() {
                kept_until = kept_until.max(e * PER_MS);
            }
            on_window(WindowResult {
                index: i,
                start_ms: base_ms,
                end_ms: heard_end_ms,
                segments: kept,
                loop_recovered: recovered,
                loop_dropped: dropped,
            })?;
            done_ms += this_ms;
            worked_ms += this_ms;
            i += 1;
            if on_progress(&progress_at(i - 1, done_ms, worked_ms)) == Flow::Stop {
                stop.store(true, Ordering::SeqCst);
            }
            if last {
                return finished(i, &b);
            }
        }
    }
}

/// One window, with repetition-loop recovery: when the segments loop, the audio the loop
/// covers is transcribed again without previous-text context and at a higher temperature (the
/// two things that break whisper's loops), and if the result still loops, the loop is cut down
/// to its first occurrence. Returns (segments, recovered, dropped).
///
/// The retry hears only the looping stretch: from the loop's first segment to the start of the
/// first segment after it (whisper.cpp's next 30-second decode starts at the loop's last
/// timestamp, so what follows was transcribed from audio after the loop), or to the end of the
/// window when the loop runs to the end. The segments after the loop are kept. (Retrying
/// everything from the loop to the end of the window, as this did before, re-transcribed up to
/// a whole window at the retry's temperature for one looping 30-second decode: on the hour of
/// benchmark audio, where whisper.cpp loops once 52 minutes in, that alone made the pipeline
/// 1.07-1.09x whisper.cpp's time in one 60-minute window; docs/performance.md.)
pub fn transcribe_with_recovery(
    t: &mut dyn Transcriber,
    pcm: &[f32],
    cfg: &PipelineConfig,
    hooks: &mut WindowHooks<'_>,
) -> Result<(Vec<Segment>, bool, bool)> {
    let mut segments = t.transcribe_window(pcm, &cfg.options, hooks)?;
    let Some((k, end)) = find_loop_span(&segments) else {
        return Ok((segments, false, false));
    };
    let from_ms = segments[k].start_ms;
    let from = ((from_ms * PER_MS) as usize).min(pcm.len());
    // Where the first attempt is past the loop. A loop whose stretch is under a second by its
    // timestamps (they cannot be trusted then) is retried to the end of the window.
    let resume_ms = segments
        .get(end)
        .map(|s| s.start_ms)
        .filter(|&r| r >= from_ms + 1_000 && ((r * PER_MS) as usize) < pcm.len());
    let (to, rest) = match resume_ms {
        Some(r) => ((r * PER_MS) as usize, segments.split_off(end)),
        None => (pcm.len(), Vec::new()),
    };
    let retry_opts = WindowOptions {
        temperature: cfg.retry_temperature,
        use_context: false,
        ..cfg.options.clone()
    };
    let mut retry = t.transcribe_window(&pcm[from..to], &retry_opts, hooks)?;
    let to_ms = from_ms + ((to - from) as u64) / PER_MS;
    for s in &mut retry {
        s.start_ms = (s.start_ms + from_ms).min(to_ms);
        s.end_ms = (s.end_ms + from_ms).clamp(s.start_ms, to_ms);
    }
    segments.truncate(k);
    segments.extend(retry);
    segments.extend(rest);
    if find_loop(&segments).is_some() {
        collapse(&mut segments);
        Ok((segments, false, true))
    } else {
        Ok((segments, true, false))
    }
}
