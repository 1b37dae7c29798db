//! The vault lives on one thread of its own. `Vault` is not `Send` (it caches codebooks in an
//! `Rc`), and one owner also serialises every action, as the core expects. Commands hand the
//! thread a closure and wait for its answer.
//!
//! The thread also enforces the idle lock, whatever the UI does: when no command has arrived
//! for the configured number of minutes, it drops the vault (the UI sends a heartbeat while
//! the interviewer is active, and runs its own, earlier timer). Background jobs (a
//! transcription reading audio and saving windows, see `transcribe.rs`) do not count as
//! activity: a transcription never holds the idle lock off (it can be resumed; a lock
//! cancels it).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::error::AppError;
use crate::ops::Session;
use crate::slots::{AudioSlot, TranscribeSlot, capturing};

struct Job {
    run: Box<dyn FnOnce(&mut Session) + Send>,
    /// Asked for by the user (a command): resets the idle timer. Background jobs do not.
    user: bool,
}

#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    pub idle_minutes: Arc<AtomicU32>,
    /// The recording in progress (shared with the session on the vault thread).
    pub audio: AudioSlot,
    /// Set to cancel the export running on the vault thread (checked at each of its steps).
    pub export_cancel: Arc<AtomicBool>,
    /// The transcription in the background, if any (shared with the session, whose lock
    /// cancels it).
    pub transcribe: TranscribeSlot,
}

impl Worker {
    pub fn start(dir: PathBuf, idle_minutes: u32) -> Worker {
        Worker::start_with_minute(dir, idle_minutes, Duration::from_secs(60))
    }

    /// `minute` is how long an idle "minute" lasts: a real minute, except in tests.
    fn start_with_minute(dir: PathBuf, idle_minutes: u32, minute: Duration) -> Worker {
        let (tx, rx) = mpsc::channel::<Job>();
        let idle = Arc::new(AtomicU32::new(idle_minutes));
        let idle2 = idle.clone();
        let audio = AudioSlot::default();
        let audio2 = audio.clone();
        let transcribe = TranscribeSlot::default();
        let transcribe2 = transcribe.clone();
        std::thread::Builder::new()
            .name("vault".into())
            .spawn(move || {
                let mut s = Session::new(dir, audio2);
                s.transcribe = transcribe2;
                let mut last = Instant::now();
                loop {
                    let next = rx.recv_timeout(Duration::from_secs(5).min(minute));
                    // While audio is being captured the interviewer is at work (listening):
                    // the idle lock waits. A paused recording does not hold it off.
                    if capturing(&s.audio) {
                        last = Instant::now();
                    }
                    match next {
                        Ok(job) => {
                            // A job that arrives after the idle limit finds the vault locked.
                            if idle_expired(last, &idle2, minute) {
                                s.lock();
                            }
                            let user = job.user;
                            (job.run)(&mut s);
                            // Counted from when the command ended (an export may take
                            // minutes); a transcription's jobs are not the user's activity.
                            if user {
                                last = Instant::now();
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if idle_expired(last, &idle2, minute) {
                                s.lock();
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .expect("the vault thread starts");
        Worker {
            tx,
            idle_minutes: idle,
            audio,
            export_cancel: Arc::default(),
            transcribe,
        }
    }

    /// Runs `f` on the vault thread and waits for its result.
    pub fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, AppError> + Send + 'static,
    ) -> Result<R, AppError> {
        self.send(f, true)
    }

    /// As `call`, for work the user is not doing right now (a transcription's reads and
    /// saves): it does not count as activity for the idle lock.
    pub fn call_background<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, AppError> + Send + 'static,
    ) -> Result<R, AppError> {
        self.send(f, false)
    }

    fn send<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<R, AppError> + Send + 'static,
        user: bool,
    ) -> Result<R, AppError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let run = Box::new(move |s: &mut Session| {
            let _ = rtx.send(f(s));
        });
        self.tx
            .send(Job { run, user })
            .map_err(|_| AppError::code("internal"))?;
        rrx.recv().map_err(|_| AppError::code("internal"))?
    }
}

fn idle_expired(last: Instant, minutes: &AtomicU32, minute: Duration) -> bool {
    let m = minutes.load(Ordering::Relaxed).max(1);
    // One extra minute of grace: the UI locks first; this is the backstop.
    last.elapsed() > minute * (m + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_one_session() {
        let t = tempfile::tempdir().unwrap();
        let w = Worker::start(t.path().join("v"), 5);
        let dir = w.call(|s| Ok(s.dir.clone())).unwrap();
        assert_eq!(dir, t.path().join("v"));
        assert_eq!(
            w.call(|s| s.witnesses().map(|_| ())).unwrap_err().code,
            "locked"
        );
    }

    #[test]
    fn idle_limit() {
        let m = AtomicU32::new(1);
        let minute = Duration::from_secs(60);
        assert!(!idle_expired(Instant::now(), &m, minute));
        let long_ago = Instant::now().checked_sub(Duration::from_secs(121));
        if let Some(t) = long_ago {
            assert!(idle_expired(t, &m, minute));
        }
    }

    /// Commands keep the vault open; a transcription's background jobs do not (the idle lock
    /// never waits for a transcription).
    #[test]
    fn background_jobs_do_not_hold_off_the_idle_lock() {
        let t = tempfile::tempdir().unwrap();
        // An idle "minute" of 300 ms: the backstop locks after 600 ms without a command.
        let w = Worker::start_with_minute(t.path().join("v"), 1, Duration::from_millis(300));
        w.call(|s| s.create_vault("a long enough passphrase for tests", "Kim"))
            .unwrap();
        for _ in 0..20 {
            std::thread::sleep(Duration::from_millis(50));
            assert!(
                w.call(|s| Ok(s.vault.is_some())).unwrap(),
                "commands keep it open"
            );
        }
        let mut open = true;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(50));
            open = w.call_background(|s| Ok(s.vault.is_some())).unwrap();
            if !open {
                break;
            }
        }
        assert!(
            !open,
            "background jobs alone let the idle lock close the vault"
        );
    }
}
