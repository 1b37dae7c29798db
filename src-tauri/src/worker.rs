//! The vault lives on one thread of its own. `Vault` is not `Send` (it caches codebooks in an
//! `Rc`), and one owner also serialises every action, as the core expects. Commands hand the
//! thread a closure and wait for its answer.
//!
//! The thread also enforces the idle lock, whatever the UI does: when no command has arrived
//! for the configured number of minutes, it drops the vault (the UI sends a heartbeat while
//! the interviewer is active, and runs its own, earlier timer).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use crate::audio::{AudioSlot, capturing};
use crate::error::AppError;
use crate::ops::Session;

type Job = Box<dyn FnOnce(&mut Session) + Send>;

#[derive(Clone)]
pub struct Worker {
    tx: mpsc::Sender<Job>,
    pub idle_minutes: Arc<AtomicU32>,
    /// The recording in progress (shared with the session on the vault thread).
    pub audio: AudioSlot,
    /// Set to cancel the export running on the vault thread (checked at each of its steps).
    pub export_cancel: Arc<AtomicBool>,
}

impl Worker {
    pub fn start(dir: PathBuf, idle_minutes: u32) -> Worker {
        let (tx, rx) = mpsc::channel::<Job>();
        let idle = Arc::new(AtomicU32::new(idle_minutes));
        let idle2 = idle.clone();
        let audio = AudioSlot::default();
        let audio2 = audio.clone();
        std::thread::Builder::new()
            .name("vault".into())
            .spawn(move || {
                let mut s = Session::new(dir, audio2);
                let mut last = Instant::now();
                loop {
                    let next = rx.recv_timeout(Duration::from_secs(5));
                    // While audio is being captured the interviewer is at work (listening):
                    // the idle lock waits. A paused recording does not hold it off.
                    if capturing(&s.audio) {
                        last = Instant::now();
                    }
                    match next {
                        Ok(job) => {
                            // A job that arrives after the idle limit finds the vault locked.
                            if idle_expired(last, &idle2) {
                                s.lock();
                            }
                            last = Instant::now();
                            job(&mut s);
                        }
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            if idle_expired(last, &idle2) {
                                s.lock();
                            }
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                }
            })
            .expect("the vault thread starts");
        Worker { tx, idle_minutes: idle, audio, export_cancel: Arc::default() }
    }

    /// Runs `f` on the vault thread and waits for its result.
    pub fn call<R: Send + 'static>(&self, f: impl FnOnce(&mut Session) -> Result<R, AppError> + Send + 'static) -> Result<R, AppError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        self.tx
            .send(Box::new(move |s| {
                let _ = rtx.send(f(s));
            }))
            .map_err(|_| AppError::code("internal"))?;
        rrx.recv().map_err(|_| AppError::code("internal"))?
    }
}

fn idle_expired(last: Instant, minutes: &AtomicU32) -> bool {
    let m = minutes.load(Ordering::Relaxed).max(1) as u64;
    // One extra minute of grace: the UI locks first; this is the backstop.
    last.elapsed() > Duration::from_secs((m + 1) * 60)
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
        assert_eq!(w.call(|s| s.witnesses().map(|_| ())).unwrap_err().code, "locked");
    }

    #[test]
    fn idle_limit() {
        let m = AtomicU32::new(1);
        assert!(!idle_expired(Instant::now(), &m));
        let long_ago = Instant::now().checked_sub(Duration::from_secs(121));
        if let Some(t) = long_ago {
            assert!(idle_expired(t, &m));
        }
    }
}
