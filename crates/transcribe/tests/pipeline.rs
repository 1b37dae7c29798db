//! The pipeline with test doubles for the model (a real model cannot be made to loop or to
//! report where in the recording it is on demand): windows, margins, ownership of segments,
//! resampling, cancel and resume, repetition-loop recovery.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};

use testimony_transcribe::pipeline::{Flow, Outcome, Pipeline, PipelineConfig, WindowResult};
use testimony_transcribe::{
    Result, SampleSource, Segment, Transcriber, WindowHooks, WindowOptions,
};

/// A signal whose level says which second of the recording it is: second `k` is a constant
/// `(k % 100 + 1) / 200`. Any rate, any channel count.
struct Ramp {
    rate: u32,
    channels: u16,
    frames: u64,
    pos: u64,
    block: u64,
}

impl Ramp {
    fn new(rate: u32, channels: u16, seconds: f64) -> Ramp {
        Ramp {
            rate,
            channels,
            frames: (seconds * rate as f64) as u64,
            pos: 0,
            block: 4096,
        }
    }
}

fn level(second: u64) -> f32 {
    ((second % 100) + 1) as f32 / 200.0
}

impl SampleSource for Ramp {
    fn sample_rate(&self) -> u32 {
        self.rate
    }
    fn channels(&self) -> u16 {
        self.channels
    }
    fn duration_ms(&self) -> Option<u64> {
        Some(self.frames * 1000 / self.rate as u64)
    }
    fn read_block(&mut self, out: &mut Vec<f32>) -> Result<bool> {
        if self.pos >= self.frames {
            return Ok(false);
        }
        let n = self.block.min(self.frames - self.pos);
        for f in self.pos..self.pos + n {
            let v = level(f / self.rate as u64);
            for _ in 0..self.channels {
                out.push(v);
            }
        }
        self.pos += n;
        Ok(true)
    }
}

/// Hears the ramp: one segment per whole second it was given, named after the second of the
/// recording it heard (read from the level in the middle of that second of its input).
#[derive(Default)]
struct Listener {
    calls: Vec<(usize, WindowOptions)>,
    /// Appended to the first attempt's segments (whisper stuck repeating itself).
    loop_first_attempt: bool,
    loop_always: bool,
    /// In the first attempt, four seconds in the middle heard as a phrase repeated eight
    /// times, and the seconds after them heard right (whisper.cpp loops in one 30-second
    /// decode and then goes on).
    loop_middle_first_attempt: bool,
}

fn heard_second(v: f32) -> u64 {
    ((v * 200.0).round() as u64).saturating_sub(1)
}

impl Transcriber for Listener {
    fn transcribe_window(
        &mut self,
        pcm: &[f32],
        opts: &WindowOptions,
        hooks: &mut WindowHooks<'_>,
    ) -> Result<Vec<Segment>> {
        self.calls.push((pcm.len(), opts.clone()));
        let mut out = Vec::new();
        let secs = pcm.len() / 16_000;
        for k in 0..secs {
            if !(hooks.progress)(k as f32 / secs as f32) || hooks.stop.load(Ordering::SeqCst) {
                return Err(testimony_transcribe::Error::Cancelled);
            }
            let v = pcm[k * 16_000 + 8_000];
            out.push(Segment {
                start_ms: k as u64 * 1000,
                end_ms: k as u64 * 1000 + 1000,
                text: format!("second {}", heard_second(v)),
                language: Some("en".into()),
                confidence: Some(0.9),
            });
        }
        if self.loop_middle_first_attempt && opts.use_context && out.len() >= 8 {
            let mid = out.len() / 2 - 2;
            let t = out[mid].start_ms;
            let looped = (0..8u64).map(|j| Segment {
                start_ms: t + j * 500,
                end_ms: t + j * 500 + 400,
                text: "Thank you.".into(),
                language: None,
                confidence: None,
            });
            out.splice(mid..mid + 4, looped);
        }
        let looping = self.loop_always || (self.loop_first_attempt && opts.use_context);
        if looping && !out.is_empty() {
            // From the middle of the window on, the same phrase again and again.
            let mid = out.len() / 2;
            let t = out[mid].start_ms;
            out.truncate(mid);
            for j in 0..12 {
                out.push(Segment {
                    start_ms: t + j * 500,
                    end_ms: t + j * 500 + 400,
                    text: "Thank you.".into(),
                    language: None,
                    confidence: None,
                });
            }
        }
        Ok(out)
    }
    fn model_name(&self) -> String {
        "listener".into()
    }
}

fn config(window_s: u64, lookahead_s: u64) -> PipelineConfig {
    PipelineConfig {
        window_ms: window_s * 1000,
        lookback_ms: window_s * 500,
        lookahead_ms: lookahead_s * 1000,
        ..Default::default()
    }
}

/// A whole run from the start: 20 s windows with 2 s margins over `seconds` of a mono ramp.
fn run_fresh(t: &mut dyn Transcriber, seconds: f64) -> (Result<Outcome>, Vec<WindowResult>) {
    let p = Pipeline::new(config(20, 2)).unwrap();
    run(
        &p,
        t,
        Ramp::new(16_000, 1, seconds),
        &BTreeSet::new(),
        0,
        None,
    )
}

fn run(
    p: &Pipeline,
    t: &mut dyn Transcriber,
    source: Ramp,
    done: &BTreeSet<u32>,
    done_until_ms: u64,
    mut stop_after_window: Option<u32>,
) -> (Result<Outcome>, Vec<WindowResult>) {
    let stop = AtomicBool::new(false);
    let mut windows = Vec::new();
    let mut last_percent = -1f32;
    let r = p.run(
        t,
        source,
        done,
        done_until_ms,
        &stop,
        &mut |pr| {
            let pc = pr.percent.unwrap();
            assert!(
                pc >= last_percent,
                "progress went back from {last_percent} to {pc}"
            );
            last_percent = pc;
            Flow::Continue
        },
        &mut |w| {
            let i = w.index;
            windows.push(w);
            if stop_after_window == Some(i) {
                stop_after_window = None;
                stop.store(true, Ordering::SeqCst);
            }
            Ok(())
        },
    );
    (r, windows)
}

fn seconds_heard(windows: &[WindowResult]) -> Vec<(u64, String)> {
    windows
        .iter()
        .flat_map(|w| w.segments.iter().map(|s| (s.start_ms, s.text.clone())))
        .collect()
}

fn expected(seconds: u64) -> Vec<(u64, String)> {
    (0..seconds)
        .map(|k| (k * 1000, format!("second {k}")))
        .collect()
}

#[test]
fn every_second_once_in_order_with_recording_times() {
    // 95 s in 20 s windows with 2 s margins: 5 windows, the last one short.
    let mut t = Listener::default();
    let (r, windows) = run_fresh(&mut t, 95.0);
    assert_eq!(
        r.unwrap(),
        Outcome::Finished {
            windows: 5,
            duration_ms: 95_000
        }
    );
    assert_eq!(
        windows.iter().map(|w| w.index).collect::<Vec<_>>(),
        [0, 1, 2, 3, 4]
    );
    assert_eq!(seconds_heard(&windows), expected(95));
    // Each window heard from where the last kept segment ended to 2 s past its grid end.
    let lens: Vec<usize> = t.calls.iter().map(|c| c.0 / 16_000).collect();
    assert_eq!(lens, [22, 22, 22, 22, 15]);
    assert_eq!((windows[4].start_ms, windows[4].end_ms), (80_000, 95_000));
}

/// Like [`Listener`], but speaks in sentences of 7 seconds that do not care about windows.
struct Sentences;
impl Transcriber for Sentences {
    fn transcribe_window(
        &mut self,
        pcm: &[f32],
        _: &WindowOptions,
        _: &mut WindowHooks<'_>,
    ) -> Result<Vec<Segment>> {
        // The recording second this pcm starts at, from the ramp's level.
        let first = heard_second(pcm[8_000]);
        let len_ms = (pcm.len() / 16) as u64;
        let mut out = Vec::new();
        // Sentences start at recording seconds 0, 7, 14, ...; one cut by the start of what
        // was heard is heard only in part ("...half").
        let mut s = first.div_ceil(7) * 7;
        if !first.is_multiple_of(7) {
            out.push(Segment {
                start_ms: 0,
                end_ms: (s - first) * 1000,
                text: "...half".into(),
                language: None,
                confidence: None,
            });
        }
        while (s - first) * 1000 < len_ms {
            let (a, e) = ((s - first) * 1000, ((s - first + 7) * 1000).min(len_ms));
            let text = if e - a < 7000 {
                "half...".to_string()
            } else {
                format!("sentence {}", s / 7)
            };
            out.push(Segment {
                start_ms: a,
                end_ms: e,
                text,
                language: None,
                confidence: None,
            });
            s += 7;
        }
        Ok(out)
    }
    fn model_name(&self) -> String {
        "sentences".into()
    }
}

#[test]
fn sentences_across_window_boundaries_are_kept_whole_and_once() {
    let p = Pipeline::new(config(20, 4)).unwrap();
    let (r, windows) = run(
        &p,
        &mut Sentences,
        Ramp::new(16_000, 1, 70.0),
        &BTreeSet::new(),
        0,
        None,
    );
    assert_eq!(
        r.unwrap(),
        Outcome::Finished {
            windows: 4,
            duration_ms: 70_000
        }
    );
    let texts: Vec<String> = windows
        .iter()
        .flat_map(|w| {
            w.segments
                .iter()
                .map(|s| format!("{}@{}", s.text, s.start_ms))
        })
        .collect();
    let want: Vec<String> = (0..10)
        .map(|k| format!("sentence {k}@{}", k * 7000))
        .collect();
    assert_eq!(texts, want);
}

#[test]
fn other_rates_and_stereo_are_resampled_to_16k_mono() {
    for (rate, ch) in [(48_000, 2), (44_100, 1), (8_000, 1), (22_050, 2)] {
        let p = Pipeline::new(config(10, 1)).unwrap();
        let mut t = Listener::default();
        let (r, windows) = run(
            &p,
            &mut t,
            Ramp::new(rate, ch, 31.0),
            &BTreeSet::new(),
            0,
            None,
        );
        assert_eq!(
            r.unwrap(),
            Outcome::Finished {
                windows: 4,
                duration_ms: 31_000
            },
            "{rate} Hz × {ch}"
        );
        assert_eq!(seconds_heard(&windows), expected(31), "{rate} Hz × {ch}");
    }
}

#[test]
fn cancel_keeps_finished_windows_and_resume_does_the_rest() {
    let p = Pipeline::new(config(10, 1)).unwrap();
    let mut t = Listener::default();
    let (r, first) = run(
        &p,
        &mut t,
        Ramp::new(16_000, 1, 64.0),
        &BTreeSet::new(),
        0,
        Some(2),
    );
    assert_eq!(r.unwrap(), Outcome::Cancelled { next_window: 3 });
    assert_eq!(first.iter().map(|w| w.index).collect::<Vec<_>>(), [0, 1, 2]);
    let done: BTreeSet<u32> = first.iter().map(|w| w.index).collect();
    let mut t2 = Listener::default();
    // Resume from where the last saved segment ends, as the vault says.
    let until = first
        .iter()
        .flat_map(|w| &w.segments)
        .map(|s| s.end_ms)
        .max()
        .unwrap();
    let (r, rest) = run(&p, &mut t2, Ramp::new(16_000, 1, 64.0), &done, until, None);
    assert_eq!(
        r.unwrap(),
        Outcome::Finished {
            windows: 7,
            duration_ms: 64_000
        }
    );
    assert_eq!(
        rest.iter().map(|w| w.index).collect::<Vec<_>>(),
        [3, 4, 5, 6],
        "done windows are not transcribed again"
    );
    assert_eq!(t2.calls.len(), 4);
    let mut all = first;
    all.extend(rest);
    assert_eq!(seconds_heard(&all), expected(64));
}

#[test]
fn resume_with_every_window_done_finishes_without_work() {
    let p = Pipeline::new(config(10, 1)).unwrap();
    let mut t = Listener::default();
    let done: BTreeSet<u32> = (0..4).collect();
    let (r, w) = run(&p, &mut t, Ramp::new(16_000, 1, 40.0), &done, 40_000, None);
    assert_eq!(
        r.unwrap(),
        Outcome::Finished {
            windows: 4,
            duration_ms: 40_000
        }
    );
    assert!(w.is_empty() && t.calls.is_empty());
}

#[test]
fn stop_from_the_progress_callback_inside_a_window() {
    let p = Pipeline::new(config(10, 1)).unwrap();
    let mut t = Listener::default();
    let stop = AtomicBool::new(false);
    let mut saved = Vec::new();
    let r = p.run(
        &mut t,
        Ramp::new(16_000, 1, 60.0),
        &BTreeSet::new(),
        0,
        &stop,
        &mut |pr| {
            if pr.done_ms >= 15_000 {
                Flow::Stop
            } else {
                Flow::Continue
            }
        },
        &mut |w| {
            saved.push(w.index);
            Ok(())
        },
    );
    assert_eq!(r.unwrap(), Outcome::Cancelled { next_window: 1 });
    assert_eq!(
        saved,
        [0],
        "the window that was stopped part-way is not handed out"
    );
}

/// 40 s in two windows, each looping on its first attempt: every second is heard once, each
/// window recovered (nothing dropped), after two calls per window.
fn recovers_in_two_windows(t: &mut Listener, why: &str) {
    let (r, windows) = run_fresh(t, 40.0);
    r.unwrap();
    assert_eq!(seconds_heard(&windows), expected(40), "{why}");
    assert!(windows.iter().all(|w| w.loop_recovered && !w.loop_dropped));
    assert_eq!(t.calls.len(), 4);
}

#[test]
fn a_loop_is_retried_without_context_and_recovers() {
    let mut t = Listener {
        loop_first_attempt: true,
        ..Default::default()
    };
    recovers_in_two_windows(&mut t, "the retry's text replaces the loop");
    // Each window: a first attempt with context, then a retry without it, hotter, on the
    // audio from the loop's start only.
    let (first, retry) = (&t.calls[0], &t.calls[1]);
    assert!(first.1.use_context && first.1.temperature == 0.0);
    assert!(!retry.1.use_context && retry.1.temperature > 0.0);
    assert!(retry.0 < first.0);
}

#[test]
fn only_the_stretch_that_looped_is_retried() {
    let mut t = Listener {
        loop_middle_first_attempt: true,
        ..Default::default()
    };
    recovers_in_two_windows(
        &mut t,
        "the retry's text replaces the loop, and what came after it is kept",
    );
    // Each window: a first attempt, then a retry of the four looping seconds only.
    for pair in t.calls.chunks(2) {
        let (first, retry) = (&pair[0], &pair[1]);
        assert!(first.1.use_context && !retry.1.use_context && retry.1.temperature > 0.0);
        assert_eq!(retry.0, 4 * 16_000, "{} samples retried", retry.0);
    }
}

#[test]
fn a_loop_that_persists_is_cut_to_one_occurrence() {
    let mut t = Listener {
        loop_always: true,
        ..Default::default()
    };
    let (r, windows) = run_fresh(&mut t, 20.0);
    r.unwrap();
    let texts: Vec<&str> = windows[0]
        .segments
        .iter()
        .map(|s| s.text.as_str())
        .collect();
    assert_eq!(
        texts.iter().filter(|t| **t == "Thank you.").count(),
        1,
        "{texts:?}"
    );
    assert!(windows[0].loop_dropped);
    assert!(texts.contains(&"second 0"));
}

#[test]
fn bad_window_settings_are_refused() {
    assert!(Pipeline::new(config(0, 0)).is_err());
    assert!(Pipeline::new(config(10, 6)).is_err());
}
