//! Recording and playback, over the core's audio store (`testimony_core::audio`).
//!
//! Where things live:
//! - The `Vault` stays on the vault thread (`worker.rs`). Starting and stopping a recording,
//!   markers, listings and playback reads are jobs there, like every other command.
//! - The running [`Recorder`] lives in an [`AudioSlot`](crate::slots::AudioSlot) beside the worker, not inside a job: its
//!   capture and writer threads commit one-second chunks through their own
//!   `RecordingWriter` connection, so answers keep saving on the vault's connection while it
//!   records. The level meter, the clock, pause and resume read or flip the recorder's atomics
//!   through the slot without waiting for the vault thread.
//! - Locking (the lock command, the idle backstop, the panic shortcut, closing the window,
//!   the app exiting) goes through `Session::lock`, which first stops the recorder (the last
//!   partial chunk is committed), then marks the recording stopped in the vault, and only
//!   then drops the `Vault`. A recording is never left running against a closed vault; if the
//!   process dies instead, the core stops it with what was committed on the next open.
//!
//! Playback sends windows of decoded samples (`read_samples`, a few seconds at a time, as raw
//! little-endian 16-bit PCM in an IPC response) to the webview, which plays them with Web
//! Audio. Nothing is written to disk on the way, the whole recording is never in memory on
//! either side, and the CSP needs no media source, custom scheme or blob: URL.

use serde::Serialize;
use testimony_core::audio::capture::{AudioSource, Recorder};
use testimony_core::audio::{Marker, Recording};
use testimony_core::model::ConsentScope;

use crate::error::AppError;
use crate::ops::Session;
use crate::slots::{Active, RecordingState, audio_slot, recording_state};

/// The longest window of samples one playback read returns.
pub const MAX_WINDOW_MS: u64 = 30_000;

/// A recording with its markers, for the list under the panel.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct RecordingSummary {
    pub recording: Recording,
    pub markers: Vec<Marker>,
}

impl Session {
    /// Starts recording `interview_id` from the source `open` returns. The witness's consent
    /// is checked before the input is opened, so that a missing consent is reported as such
    /// on any machine. The core checks it again in `start_recording`.
    pub fn start_recording<S: AudioSource + 'static>(
        &mut self,
        interview_id: &str,
        open: impl FnOnce() -> Result<S, AppError>,
    ) -> Result<RecordingState, AppError> {
        if audio_slot(&self.audio).is_some() {
            return Err(AppError::code("recording_active"));
        }
        let v = self.vault()?;
        let interview = v.interview(interview_id)?;
        if !v.consent_allows(&interview.witness_id, ConsentScope::RecordAudio)? {
            return Err(AppError::code("no_audio_consent"));
        }
        let source = open()?;
        let rec = v.start_recording(interview_id, source.sample_rate(), 1)?;
        let id = rec.meta.id.clone();
        let started = v
            .recording_writer(&id)
            .and_then(|w| Recorder::start(source, w));
        match started {
            Ok(recorder) => {
                let a = Active {
                    recording_id: id,
                    interview_id: interview_id.to_string(),
                    sample_rate: rec.sample_rate,
                    recorder,
                };
                let st = recording_state(&a);
                *audio_slot(&self.audio) = Some(a);
                Ok(st)
            }
            Err(e) => {
                // Nothing was captured: leave no empty recording behind.
                let _ = v
                    .stop_recording_at_once(&id)
                    .and_then(|_| v.delete_recording(&id));
                Err(e.into())
            }
        }
    }

    /// Stops the recording in progress: the recorder commits its last chunk, then the vault
    /// records the totals. If the input had failed, the audio saved until then is kept and
    /// the failure is returned; a recording that got no audio at all is deleted.
    pub fn stop_recording(&mut self) -> Result<Recording, AppError> {
        let active = audio_slot(&self.audio)
            .take()
            .ok_or_else(|| AppError::code("not_recording"))?;
        let captured = active.recorder.stop();
        let v = self.vault()?;
        let rec = v.stop_recording(&active.recording_id)?;
        match captured {
            Ok(report) if report.samples > 0 => Ok(rec),
            other => {
                if rec.chunks == 0 {
                    v.delete_recording(&rec.meta.id)?;
                }
                Err(match other {
                    Err(e) => e.into(),
                    Ok(_) => AppError::code("no_audio_arrived"),
                })
            }
        }
    }

    /// Called by `lock` before the vault is dropped. Errors are not reported (the app is
    /// locking); a recording that could not be marked stopped is recovered on the next open.
    pub(crate) fn stop_recording_for_lock(&mut self) {
        let Some(active) = audio_slot(&self.audio).take() else {
            return;
        };
        let _ = active.recorder.stop();
        if let Some(v) = self.vault.as_mut() {
            // At once: locking must not wait for the export hash (the next export computes it).
            let _ = v.stop_recording_at_once(&active.recording_id);
        }
    }

    /// A marker at the current position of the recording in progress, tied to the question
    /// on screen (if any). The label is one short line (the core checks it).
    pub fn add_marker(
        &mut self,
        recording_id: &str,
        question_id: Option<&str>,
        label: &str,
    ) -> Result<Marker, AppError> {
        let at_ms = {
            let g = audio_slot(&self.audio);
            match g.as_ref() {
                Some(a) if a.recording_id == recording_id => a.recorder.status().elapsed_ms,
                _ => return Err(AppError::code("not_recording")),
            }
        };
        Ok(self.vault()?.add_marker(
            recording_id,
            at_ms,
            question_id.filter(|q| !q.is_empty()),
            label,
        )?)
    }

    /// An interview's recordings (oldest first), each with its markers.
    pub fn recordings(&mut self, interview_id: &str) -> Result<Vec<RecordingSummary>, AppError> {
        let v = self.vault()?;
        let mut out = Vec::new();
        for recording in v.recordings(interview_id)? {
            let markers = v.markers(&recording.meta.id)?;
            out.push(RecordingSummary { recording, markers });
        }
        Ok(out)
    }

    /// Samples from `from_ms` to `to_ms` (at most [`MAX_WINDOW_MS`]) as little-endian 16-bit
    /// PCM, channels interleaved. Only this window is decoded and held.
    pub fn recording_window(
        &mut self,
        recording_id: &str,
        from_ms: u64,
        to_ms: u64,
    ) -> Result<Vec<u8>, AppError> {
        if to_ms <= from_ms || to_ms - from_ms > MAX_WINDOW_MS {
            return Err(AppError::with_detail(
                "invalid",
                format!("a playback window is 1 to {MAX_WINDOW_MS} ms"),
            ));
        }
        let v = self.vault()?;
        // A recording still in progress is read as far as it is committed.
        let rec = v.recording(recording_id)?;
        let frames = (to_ms - from_ms).min(rec.duration_ms.saturating_sub(from_ms))
            * rec.sample_rate as u64
            / 1000;
        let mut out = Vec::with_capacity(frames as usize * rec.channels as usize * 2 + 64);
        let read = v
            .read_samples(recording_id, from_ms, Some(to_ms))
            .and_then(|blocks| {
                for block in blocks {
                    out.extend(block?.iter().flat_map(|s| s.to_le_bytes()));
                }
                Ok(())
            });
        match read {
            Ok(()) => Ok(out),
            Err(e) => Err(self.audio_read_error(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::{AudioSlot, capturing, pause_recording, recording_status};
    use std::path::{Path, PathBuf};
    use std::time::Duration;
    use testimony_core::audio::RecordingStatus;
    use testimony_core::audio::capture::WavSource;
    use testimony_core::model::{ConsentMethod, ConsentScopes, WitnessProfile};

    use crate::ops::NewInterviewArgs;

    const PASS: &str = "a long enough passphrase for tests";
    const RATE: u32 = 16_000;

    /// A mono 16-bit WAV: a 440 Hz tone of `seconds`.
    fn tone(dir: &Path, seconds: f32) -> PathBuf {
        let p = dir.join("tone.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&p, spec).unwrap();
        for i in 0..(RATE as f32 * seconds) as u32 {
            let t = i as f32 / RATE as f32;
            w.write_sample(((t * 440.0 * std::f32::consts::TAU).sin() * 12_000.0) as i16)
                .unwrap();
        }
        w.finalize().unwrap();
        p
    }

    /// A vault with an interview; `audio_consent` decides the witness's record_audio scope.
    fn setup(audio_consent: bool) -> (tempfile::TempDir, Session, String) {
        let t = tempfile::tempdir().unwrap();
        let mut s = Session::new(t.path().join("vault"), AudioSlot::default());
        s.create_vault(PASS, "Kim").unwrap();
        let w = s.create_witness(WitnessProfile::default()).unwrap();
        let scopes = ConsentScopes {
            record_audio: audio_consent,
            share_archive: true,
            ..Default::default()
        };
        s.set_consent(&w.code, scopes, ConsentMethod::Oral).unwrap();
        let i = s
            .new_interview(NewInterviewArgs {
                witness: w.code,
                languages: vec!["ko".into()],
                place: None,
                interpreter: None,
            })
            .unwrap();
        (t, s, i.meta.id)
    }

    fn wav(p: &Path, realtime: bool) -> impl FnOnce() -> Result<WavSource, AppError> + use<> {
        let p = p.to_path_buf();
        move || Ok(WavSource::open(&p, realtime)?)
    }

    fn wait_saved(s: &Session, ms: u64) {
        for _ in 0..500 {
            if recording_status(&s.audio).is_some_and(|st| st.saved_ms >= ms || !st.running) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("the recorder saved nothing");
    }

    #[test]
    fn record_pause_marker_stop_and_read_back() {
        let (t, mut s, interview) = setup(true);
        let file = tone(t.path(), 2.5);
        let st = s.start_recording(&interview, wav(&file, true)).unwrap();
        assert_eq!(st.sample_rate, RATE);
        // A second recording while one runs is refused.
        assert_eq!(
            s.start_recording(&interview, wav(&file, true))
                .unwrap_err()
                .code,
            "recording_active"
        );
        wait_saved(&s, 1000);
        // Saving answers is not held up by the recording.
        s.set_answer(&interview, None, "ever_detained", &serde_json::json!("yes"))
            .unwrap();
        let m = s
            .add_marker(
                &st.recording_id,
                Some("ever_detained"),
                "Were you ever detained?",
            )
            .unwrap();
        assert!(
            m.at_ms >= 1000,
            "the marker sits at the recorder's position ({} ms)",
            m.at_ms
        );
        assert_eq!(m.question_id.as_deref(), Some("ever_detained"));
        assert!(pause_recording(&s.audio, true).unwrap().paused);
        assert!(!capturing(&s.audio));
        assert!(!pause_recording(&s.audio, false).unwrap().paused);
        // An unknown question is refused by the core and adds nothing.
        assert_eq!(
            s.add_marker(&st.recording_id, Some("no_such_question"), "x")
                .unwrap_err()
                .code,
            "not_found"
        );
        let rec = s.stop_recording().unwrap();
        assert_eq!(rec.status, RecordingStatus::Stopped);
        assert!(
            rec.duration_ms >= 1000 && rec.duration_ms <= 2500,
            "{} ms",
            rec.duration_ms
        );
        assert!(recording_status(&s.audio).is_none());
        assert_eq!(s.stop_recording().unwrap_err().code, "not_recording");

        let list = s.recordings(&interview).unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list[0].markers.len(), 1);
        // A window of 0.9 s: 14,400 frames of 2 bytes, not silent.
        let bytes = s.recording_window(&rec.meta.id, 100, 1000).unwrap();
        assert_eq!(bytes.len(), RATE as usize * 9 / 10 * 2);
        let peak = bytes
            .chunks_exact(2)
            .map(|b| i16::from_le_bytes([b[0], b[1]]).unsigned_abs())
            .max()
            .unwrap();
        assert!(peak > 8000, "the tone is there (peak {peak})");
        // Windows past the end are cut at the end; bad windows are refused.
        let tail = s
            .recording_window(&rec.meta.id, rec.duration_ms - 100, rec.duration_ms + 5000)
            .unwrap();
        assert!(tail.len() <= (RATE as usize / 10 + 16) * 2);
        assert_eq!(
            s.recording_window(&rec.meta.id, 0, MAX_WINDOW_MS + 1)
                .unwrap_err()
                .code,
            "invalid"
        );
        assert_eq!(
            s.recording_window(&rec.meta.id, 500, 500).unwrap_err().code,
            "invalid"
        );
    }

    /// A damaged page in a recording: playback says which recording is damaged, and the rest
    /// of the vault keeps working at once, without a lock (a fresh connection, see
    /// `Session::audio_read_error`).
    #[test]
    fn a_damaged_recording_is_reported_and_the_rest_keeps_working() {
        let (t, mut s, interview) = setup(true);
        // A minute of noise (incompressible): nearly all of the vault file is this recording.
        let file = t.path().join("noise.wav");
        let spec = hound::WavSpec {
            channels: 1,
            sample_rate: RATE,
            bits_per_sample: 16,
            sample_format: hound::SampleFormat::Int,
        };
        let mut w = hound::WavWriter::create(&file, spec).unwrap();
        let mut x: u32 = 0x1234_5678;
        for _ in 0..RATE * 60 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            w.write_sample((x >> 16) as i16).unwrap();
        }
        w.finalize().unwrap();
        s.start_recording(&interview, wav(&file, false)).unwrap();
        wait_saved(&s, 60_000);
        let rec = s.stop_recording().unwrap();
        s.lock();
        let db = t.path().join("vault").join("vault.db");
        let mut bytes = std::fs::read(&db).unwrap();
        assert!(bytes.len() > 1_800_000, "{} bytes", bytes.len());
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(&db, &bytes).unwrap();
        s.unlock(PASS).unwrap();

        let windows: Vec<_> = (0..rec.duration_ms)
            .step_by(MAX_WINDOW_MS as usize)
            .map(|from| s.recording_window(&rec.meta.id, from, from + MAX_WINDOW_MS))
            .collect();
        let e = windows
            .iter()
            .find_map(|w| w.as_ref().err())
            .expect("a window of the damaged recording fails");
        assert_eq!(e.code, "damaged_recording");
        // Without a fresh connection, SQLCipher would refuse these too.
        s.set_answer(&interview, None, "ever_detained", &serde_json::json!("yes"))
            .unwrap();
        assert_eq!(s.recordings(&interview).unwrap().len(), 1);
    }

    #[test]
    fn refused_without_consent_before_the_input_is_opened() {
        let (_t, mut s, interview) = setup(false);
        let opened = std::cell::Cell::new(false);
        let e = s
            .start_recording(&interview, || -> Result<WavSource, AppError> {
                opened.set(true);
                Err(AppError::code("no_audio_device"))
            })
            .unwrap_err();
        assert_eq!(e.code, "no_audio_consent");
        assert!(!opened.get(), "no input was opened");
        assert!(s.recordings(&interview).unwrap().is_empty());
    }

    #[test]
    fn no_input_device_leaves_nothing() {
        let (_t, mut s, interview) = setup(true);
        let e = s
            .start_recording(&interview, || -> Result<WavSource, AppError> {
                Err(AppError::code("no_audio_device"))
            })
            .unwrap_err();
        assert_eq!(e.code, "no_audio_device");
        assert!(s.recordings(&interview).unwrap().is_empty());
        assert!(recording_status(&s.audio).is_none());
    }

    #[test]
    fn locking_stops_the_recording_and_keeps_its_audio() {
        let (t, mut s, interview) = setup(true);
        let file = tone(t.path(), 30.0);
        let st = s.start_recording(&interview, wav(&file, true)).unwrap();
        wait_saved(&s, 1000);
        s.lock();
        assert!(s.vault.is_none());
        assert!(recording_status(&s.audio).is_none());
        s.unlock(PASS).unwrap();
        let list = s.recordings(&interview).unwrap();
        assert_eq!(list.len(), 1);
        let rec = &list[0].recording;
        assert_eq!(rec.meta.id, st.recording_id);
        assert_eq!(rec.status, RecordingStatus::Stopped);
        assert!(
            !rec.recovered,
            "stopped by the lock, not recovered after a crash"
        );
        assert!(
            rec.duration_ms >= 1000 && rec.duration_ms < 30_000,
            "{} ms",
            rec.duration_ms
        );
    }

    #[test]
    fn an_input_that_ends_is_reported_and_its_audio_kept() {
        let (t, mut s, interview) = setup(true);
        let file = tone(t.path(), 1.5);
        s.start_recording(&interview, wav(&file, false)).unwrap();
        for _ in 0..500 {
            if recording_status(&s.audio).is_some_and(|st| !st.running) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            !capturing(&s.audio),
            "a source that ended no longer holds off the idle lock"
        );
        let rec = s.stop_recording().unwrap();
        assert_eq!(rec.duration_ms, 1500);
    }
}
