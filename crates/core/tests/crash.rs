//! Crash safety: a child process saving answers in a loop is killed with SIGKILL at random
//! moments. After every kill the vault must open, the audit chain must verify, and every save
//! the child saw return must be there. The child is this test binary run again (the ignored
//! tests below are its entry points, selected through an environment variable).

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use rand::{Rng, SeedableRng};
use serde_json::json;
use testimony_core::model::*;
use testimony_core::{Error, Vault};

const CHILD_ENV: &str = "TESTIMONY_CRASH_CHILD";

/// The two crash tests run one after the other: a child spawned by one briefly holds copies
/// of the parent's file descriptors (until exec closes them), including a vault's lock, which
/// made the other test's reopen fail with "locked" now and then.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn iterations() -> usize {
    std::env::var("TESTIMONY_CRASH_ITERATIONS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

/// Child: open the vault named in the environment and save answers until killed, printing a
/// line only after each save returned.
#[test]
#[ignore = "entry point for the crash test's child process"]
fn crash_child_writer() {
    let Ok(spec) = std::env::var(CHILD_ENV) else {
        return;
    };
    let mut parts = spec.splitn(3, '|');
    let (dir, interview, run) = (
        parts.next().unwrap(),
        parts.next().unwrap().to_string(),
        parts.next().unwrap().to_string(),
    );
    let mut v = Vault::open(Path::new(dir), PASS).unwrap();
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    for n in 0.. {
        let inst = v
            .add_group_instance(&interview, "detention_episode", None)
            .unwrap();
        let name = format!("facility {run}-{n} 교화소");
        v.set_answer(
            &interview,
            Some(&inst.meta.id),
            "det_facility_name",
            &json!(name),
        )
        .unwrap();
        writeln!(out, "saved {} {run}-{n}", inst.meta.id).unwrap();
        let story = format!("story {run}-{n}");
        v.set_answer(&interview, None, "cl_anything_else", &json!(story))
            .unwrap();
        writeln!(out, "story {run}-{n}").unwrap();
        out.flush().unwrap();
    }
}

fn spawn_child(test: &str, spec: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            test,
            "--ignored",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(CHILD_ENV, spec)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Kills the child: during start-up (while it may be opening the vault) when `during_startup`,
/// otherwise at a random moment after its first save returned. Returns every line it printed.
fn kill_at_random(
    mut child: std::process::Child,
    rng: &mut impl Rng,
    startup_ms: u64,
    during_startup: bool,
) -> Vec<String> {
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    if during_startup {
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..startup_ms)));
    } else {
        // Wait for the first line after "ready" (the test harness may print its own text before
        // ours on the same line), then let the child write for a random while.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let mut ready = false;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(std::time::Instant::now())) {
                Ok(l) => {
                    let was_ready = ready;
                    ready |= l.ends_with("ready");
                    lines.push(l);
                    if was_ready {
                        break;
                    }
                }
                Err(_) => panic!("the child did not start writing within 60 s"),
            }
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..60)));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    reader.join().unwrap();
    lines.extend(rx.try_iter());
    lines
}

#[test]
fn sigkill_while_saving_never_loses_a_saved_answer_or_corrupts_the_vault() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir: PathBuf = tmp.path().join("v");
    let interview = {
        let mut v = new_vault(&dir);
        let w = v.add_witness(WitnessProfile::default(), None).unwrap();
        let i = v
            .new_interview(NewInterview {
                witness: w.code,
                languages: vec!["ko".into()],
                ..Default::default()
            })
            .unwrap();
        v.set_answer(&i.meta.id, None, "ever_detained", &json!("yes"))
            .unwrap();
        i.meta.id
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(
        std::env::var("TESTIMONY_CRASH_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(7),
    );
    let mut saved: Vec<(String, String)> = Vec::new();
    let mut kills_while_writing = 0;
    for run in 0..iterations() {
        let child = spawn_child(
            "crash_child_writer",
            &format!("{}|{interview}|{run}", dir.display()),
        );
        let lines = kill_at_random(child, &mut rng, 400, run % 5 == 0);
        let mut last_story = None;
        for l in &lines {
            let mut p = l.split(' ');
            match p.next() {
                Some("saved") => {
                    saved.push((p.next().unwrap().to_string(), p.next().unwrap().to_string()))
                }
                Some("story") => last_story = Some(p.next().unwrap().to_string()),
                _ => {}
            }
        }
        if lines.iter().any(|l| l.starts_with("saved ")) {
            kills_while_writing += 1;
        }
        let v = Vault::open(&dir, PASS)
            .unwrap_or_else(|e| panic!("run {run}: vault does not open after SIGKILL: {e}"));
        v.audit_verify()
            .unwrap_or_else(|e| panic!("run {run}: {e}"));
        let d = v.interview_detail(&interview).unwrap();
        let names: std::collections::HashMap<&str, &serde_json::Value> = d
            .answers
            .iter()
            .filter(|a| a.question_id == "det_facility_name")
            .map(|a| (a.instance_id.as_deref().unwrap(), &a.value))
            .collect();
        for (inst, tag) in &saved {
            let v = names
                .get(inst.as_str())
                .unwrap_or_else(|| panic!("run {run}: saved answer {tag} lost"));
            assert_eq!(**v, json!(format!("facility {tag} 교화소")), "run {run}");
        }
        if let Some(tag) = last_story {
            // The save the child saw return, or one it started after it.
            let story = v
                .answer(&interview, None, "cl_anything_else")
                .unwrap()
                .unwrap();
            let got = story
                .value
                .as_str()
                .unwrap()
                .trim_start_matches("story ")
                .to_string();
            let (r, n) = tag.split_once('-').unwrap();
            let next = format!("{r}-{}", n.parse::<u64>().unwrap() + 1);
            assert!(
                got == tag || got == next,
                "run {run}: story is {got}, last returned save was {tag}"
            );
        }
    }
    assert!(
        kills_while_writing >= iterations() / 2,
        "most kills should land while writing ({kills_while_writing})"
    );
    assert!(
        saved.len() >= iterations(),
        "the children saved answers ({} saves)",
        saved.len()
    );
}

const A: &str = "first passphrase for the crash test";
const B: &str = "second passphrase for the crash test";

#[test]
#[ignore = "entry point for the passphrase crash test's child process"]
fn crash_child_passwd() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let dir = Path::new(&dir);
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        let (from, to) = if Vault::open(dir, A).is_ok() {
            (A, B)
        } else {
            (B, A)
        };
        Vault::change_passphrase(dir, from, to).unwrap();
        writeln!(out, "now {}", if to == A { "A" } else { "B" }).unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn sigkill_during_passphrase_change_leaves_one_passphrase_working() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    drop(Vault::create(&dir, A, Default::default()).unwrap());
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    for run in 0..(iterations() / 5).max(10) {
        let child = spawn_child("crash_child_passwd", &dir.display().to_string());
        kill_at_random(child, &mut rng, 300, run % 5 == 0);
        let a = Vault::open(&dir, A).map(drop);
        let b = Vault::open(&dir, B).map(drop);
        match (&a, &b) {
            (Ok(()), Err(Error::WrongPassphrase)) | (Err(Error::WrongPassphrase), Ok(())) => {}
            _ => panic!("run {run}: A {a:?}, B {b:?}"),
        }
    }
}
