//! What a process holding the vault's key does about itself before it opens anything.
//!
//! A crash dump is a copy of the process's memory: the vault key, decrypted answers, audio.
//! Core files land in the working directory (or with systemd-coredump or apport, in a
//! system folder), unencrypted, and outlive the session. So the app and the CLI turn them off.

/// Turns off core dumps for this process and everything it starts:
/// - the core file size limit goes to 0 (`RLIMIT_CORE`); children inherit it, so WebKit's
///   web content process (which holds the page, answers included) writes none either, and
///   systemd-coredump does not store a dump for a process with that limit;
/// - on Linux, the process is also made non-dumpable (`PR_SET_DUMPABLE` 0): no core even where
///   the limit is raised again, and other processes of the same user can no longer read its
///   memory through ptrace or `/proc/PID/mem` (root still can). Not inherited across `exec`.
///
/// Returns whether both took effect; a failure leaves the process as it was and the caller
/// goes on (there is nothing better to do than run, and the vault on disk stays encrypted).
pub fn no_core_dumps() -> bool {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: setrlimit only reads the struct passed by reference.
        let limit = unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } == 0;
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_DUMPABLE takes an integer argument and touches no memory of ours.
        let dumpable =
            unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong, 0, 0, 0) } == 0;
        #[cfg(not(target_os = "linux"))]
        let dumpable = true;
        limit && dumpable
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// Panic messages name only where the panic happened, never its payload: a payload could quote
/// whatever the failing code was handling, and stderr ends up in terminal logs, the journal
/// and bug reports. `program` starts the line (`testimony`, `testimony-app`).
pub fn quiet_panics(program: &'static str) {
    std::panic::set_hook(Box::new(move |info| {
        let at = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "{program}: internal error at {at}; nothing after the last saved change was written"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// The child's half of the test below: it turns dumps off in its own process and reports
    /// what the kernel then says (the test process itself stays as it was).
    #[test]
    #[ignore = "run by no_core_dumps_in_a_child_process in its own process"]
    fn child_turns_off_core_dumps() {
        assert!(no_core_dumps());
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: getrlimit writes into the struct it is given.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) }, 0);
        assert_eq!(
            (lim.rlim_cur, lim.rlim_max),
            (0, 0),
            "no core file size left"
        );
        #[cfg(target_os = "linux")]
        {
            // SAFETY: PR_GET_DUMPABLE reads a flag of this process.
            assert_eq!(
                unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) },
                0,
                "not dumpable"
            );
            // The limit cannot be raised again (the hard limit is 0 too, for anyone but root).
            let lim = std::fs::read_to_string("/proc/self/limits").unwrap();
            let line = lim
                .lines()
                .find(|l| l.starts_with("Max core file size"))
                .unwrap();
            assert_eq!(
                line.split_whitespace().filter(|w| *w == "0").count(),
                2,
                "{line}"
            );
        }
        // A child started now inherits the limit.
        let out = Command::new("sh")
            .arg("-c")
            .arg("ulimit -c")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "0");
    }

    #[test]
    #[cfg(unix)]
    fn no_core_dumps_in_a_child_process() {
        let exe = std::env::current_exe().unwrap();
        let out = Command::new(exe)
            .args([
                "--exact",
                "process::tests::child_turns_off_core_dumps",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success() && text.contains("1 passed"), "{text}");
    }
}
