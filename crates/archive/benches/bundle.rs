//! Bundles: export and import against the `age` and `zstd` command-line tools, same bytes, same run.
//!
//! ```text
//! tools/bench-bundles.sh            # starts a throw-away PostgreSQL cluster, runs this, stops it
//! # or, with a PostgreSQL server of your own (an empty scratch server: databases are created):
//! TESTIMONY_BENCH_POSTGRES="host=127.0.0.1 port=5432 user=me dbname=postgres" \
//!   cargo bench -p testimony-archive --bench bundle
//! ```
//!
//! A vault gets `demo::populate` interviews (all witnesses then consent to sharing, so nothing is
//! withheld) and synthetic speech-like audio as **recordings** (16 kHz mono 16-bit PCM, one
//! clip of `CLIP_SECONDS` per interview in turn, imported into the vault's chunked audio store;
//! a bundle carries each as `audio/<id>.wav`). Two sizes of the same vault are measured, a small
//! one and then (after adding clips) the full one, to show whether memory grows with the bundle.
//! For each size:
//!
//! 1. `Vault::export_bundle` (full) in a worker process;
//! 2. baseline: the bundle is decrypted once with the `age` CLI and `zstd -d` into a plain tar
//!    (synthetic data only; deleted straight after), then `zstd -3 | age -r …` on that tar is
//!    timed: the same work as the exporter (tar → zstd level 3 → age to the same recipients),
//!    ending with an fsync of the output as the exporter's does;
//! 3. `Archive::import` of the bundle into a new embedded archive and into a new PostgreSQL
//!    archive, each in a worker process; baseline `age -d | zstd -d > /dev/null`.
//!
//! Each timed step runs in a child process (this binary with `TESTIMONY_BENCH_BUNDLE_STEP` set),
//! which opens the vault or archive (Argon2id, 64 MiB), resets its peak RSS
//! (`/proc/self/clear_refs`), runs the step and reports its time, CPU time and `VmHWM`. Baseline
//! processes run under `/usr/bin/time`. Throughput is in MB/s (10^6 bytes) of the plain tar.
//!
//! Environment (all optional):
//! - `TESTIMONY_BENCH_INTERVIEWS` interviews (default 1000)
//! - `TESTIMONY_BENCH_AUDIO_HOURS` audio in the full size (default 10)
//! - `TESTIMONY_BENCH_AUDIO_HOURS_SMALL` audio in the small size (default a tenth of the above)
//! - `TESTIMONY_BENCH_CLIP_SECONDS` length of one clip (default 36, so 10 h = 1000 clips)
//! - `TESTIMONY_BENCH_POSTGRES` libpq key=value connection string of a scratch server; without
//!   it the PostgreSQL import is skipped (and the report says so)
//! - `TESTIMONY_BENCH_DIR` where vault, bundles and archives go (default: the system temp dir)
//!
//! Needs `age`, `zstd` and `/usr/bin/time` (Debian: age, zstd, time) on PATH.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use age::secrecy::ExposeSecret;
use testimony_archive::{Archive, Backend};
use testimony_core::bundle::ExportOptions;
use testimony_core::keys::KdfParams;
use testimony_core::model::{ConsentMethod, ConsentScopes};
use testimony_core::{CreateOptions, Vault};

const STEP_ENV: &str = "TESTIMONY_BENCH_BUNDLE_STEP";
/// Synthetic data only: the passphrase may live in the source.
const PASS: &str = "bundle benchmark, synthetic data only";
const RATE: u32 = 16_000;
const TARGET: f64 = 0.9;
const SEED: u64 = 20261124;

fn env_f64(name: &str, default: f64) -> f64 {
    std::env::var(name)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} must be a number"))
        })
        .unwrap_or(default)
}

// ---- synthetic speech-like audio -------------------------------------------------------------

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A WAV file (16 kHz mono 16-bit PCM) of `secs` seconds: low-passed noise under a syllable-rate
/// envelope (3–6 Hz), in phrases of 1.5–4 s separated by pauses of 0.2–0.9 s with a faint noise
/// floor, loudness varying per phrase. Not speech, but neither silence nor a tone: zstd finds
/// about as little to collapse as in real recordings. Each clip has its own seed.
fn wav_clip(seed: u64, secs: f64) -> Vec<u8> {
    let n = (secs * RATE as f64) as usize;
    let data_len = (n * 2) as u32;
    let mut out = Vec::with_capacity(44 + n * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    let mut r = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (mut lp1, mut lp2, mut env_s) = (0.0f64, 0.0f64, 0.0f64);
    let (mut left, mut speaking, mut syl_rate, mut loud, mut phase) =
        (0usize, false, 4.0f64, 0.5f64, 0.0f64);
    for _ in 0..n {
        if left == 0 {
            speaking = !speaking;
            let s = if speaking {
                1.5 + 2.5 * r.unit()
            } else {
                0.2 + 0.7 * r.unit()
            };
            left = (s * RATE as f64) as usize;
            syl_rate = 3.0 + 3.0 * r.unit();
            loud = 0.25 + 0.6 * r.unit();
        }
        left -= 1;
        phase += syl_rate / RATE as f64;
        let syl = (std::f64::consts::PI * phase).sin();
        let target = if speaking {
            loud * (0.1 + 0.9 * syl * syl)
        } else {
            0.01
        };
        env_s += (target - env_s) * 0.004;
        let white = 2.0 * r.unit() - 1.0;
        lp1 = 0.55 * lp1 + 0.45 * white;
        lp2 = 0.8 * lp2 + 0.2 * lp1;
        let s = (0.5 * lp1 + 1.5 * lp2) * env_s * 32767.0 * 1.6;
        out.extend_from_slice(&(s.clamp(-32768.0, 32767.0) as i16).to_le_bytes());
    }
    out
}

// ---- process measurements --------------------------------------------------------------------

fn status_kb(field: &str) -> u64 {
    let s = fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    s.lines()
        .find_map(|l| {
            l.strip_prefix(field)
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// User + system CPU seconds of this process (clock ticks assumed 100 Hz, as on Linux).
fn cpu_secs() -> f64 {
    let s = fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    let rest = &s[s.rfind(')').expect("stat") + 2..];
    let f: Vec<&str> = rest.split(' ').collect();
    // fields 14 and 15 of stat(5); `rest` starts at field 3
    (f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()) as f64 / 100.0
}

/// What a worker reports: wall seconds, CPU seconds, peak RSS of the whole process (KiB,
/// including opening with Argon2id), peak RSS during the step alone (KiB), and a detail.
#[derive(Clone, Debug, Default)]
struct Measured {
    secs: f64,
    cpu: f64,
    rss_process_kib: u64,
    rss_step_kib: u64,
    detail: String,
}

fn worker(step: &str) {
    let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("worker needs {k}"));
    // Opening (Argon2id) is not part of the step: measure its peak, then reset the peak.
    let (before, t0, c0, detail): (u64, Instant, f64, String);
    let result = match step {
        "export" => {
            let mut vault = Vault::open(Path::new(&var("BENCH_VAULT")), PASS).expect("open vault");
            let opts = ExportOptions {
                recipients: var("BENCH_RECIPIENTS")
                    .split(',')
                    .map(str::to_string)
                    .collect(),
                full: true,
                include_identity: false,
            };
            before = status_kb("VmHWM:");
            fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
            (t0, c0) = (Instant::now(), cpu_secs());
            let r = vault
                .export_bundle(&opts, Path::new(&var("BENCH_BUNDLE")))
                .expect("export");
            assert_eq!(
                r.withheld.records, 0,
                "every witness consents: nothing may be withheld"
            );
            detail = format!(
                "{} interviews, {} answers, {} recordings, {} bytes",
                r.counts.interviews, r.counts.answers, r.counts.recordings, r.bytes
            );
            (t0.elapsed().as_secs_f64(), cpu_secs() - c0)
        }
        "import" => {
            let pg = var("BENCH_PG");
            let backend = if pg.is_empty() {
                Backend::Embedded
            } else {
                Backend::Postgres(pg)
            };
            let mut archive =
                Archive::open_with_backend(Path::new(&var("BENCH_ARCHIVE")), PASS, &backend)
                    .expect("open archive");
            before = status_kb("VmHWM:");
            fs::write("/proc/self/clear_refs", "5").expect("reset peak RSS");
            (t0, c0) = (Instant::now(), cpu_secs());
            let r = archive
                .import(Path::new(&var("BENCH_BUNDLE")))
                .expect("import");
            assert_eq!(r.outcome, "imported", "{}", r.message);
            detail = format!(
                "{} added, {} recordings with audio",
                r.added, r.recordings_audio
            );
            (t0.elapsed().as_secs_f64(), cpu_secs() - c0)
        }
        other => panic!("unknown step {other}"),
    };
    let step_peak = status_kb("VmHWM:");
    println!(
        "RESULT {} {} {} {} {}",
        result.0,
        result.1,
        before.max(step_peak),
        step_peak,
        detail
    );
}

fn run_worker(step: &str, vars: &[(&str, &str)]) -> Measured {
    let mut cmd = Command::new(std::env::current_exe().expect("own path"));
    cmd.env(STEP_ENV, step).stderr(Stdio::inherit());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("worker");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "worker {step} failed: {text}");
    let line = text
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no result from {step}: {text}"));
    let mut it = line.splitn(5, ' ');
    let mut num = || it.next().expect("field").to_string();
    let (secs, cpu, p, s) = (num(), num(), num(), num());
    let m = Measured {
        secs: secs.parse().unwrap(),
        cpu: cpu.parse().unwrap(),
        rss_process_kib: p.parse().unwrap(),
        rss_step_kib: s.parse().unwrap(),
        detail: it.next().unwrap_or("").into(),
    };
    eprintln!(
        "  {step}: {:.1} s, CPU {:.1} s, peak RSS {:.0} MiB (step) / {:.0} MiB (process)",
        m.secs,
        m.cpu,
        mib(m.rss_step_kib),
        mib(m.rss_process_kib)
    );
    m
}

/// Runs a shell pipeline whose processes write `/usr/bin/time -f "%M %U %S"` to `t1`, `t2` …;
/// returns wall seconds, summed CPU seconds and each process's peak RSS (KiB).
fn run_shell(script: &str, times: &[&Path]) -> (f64, f64, Vec<u64>) {
    let t0 = Instant::now();
    let st = Command::new("bash")
        .arg("-o")
        .arg("pipefail")
        .arg("-c")
        .arg(script)
        .status()
        .expect("bash");
    let secs = t0.elapsed().as_secs_f64();
    assert!(st.success(), "failed: {script}");
    if !times.is_empty() {
        eprintln!("  baseline: {secs:.1} s");
    }
    let (mut cpu, mut rss) = (0.0, Vec::new());
    for t in times {
        let s = fs::read_to_string(t).expect("time output");
        let f: Vec<&str> = s.split_whitespace().rev().take(3).collect();
        // last line: "%M %U %S"
        cpu += f[0].parse::<f64>().unwrap() + f[1].parse::<f64>().unwrap();
        rss.push(f[2].parse().unwrap());
        let _ = fs::remove_file(t);
    }
    (secs, cpu, rss)
}

fn q(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

// ---- the vault -------------------------------------------------------------------------------

/// Adds clips `from..to` to the vault as recordings (clip k goes to the k-th interview by id,
/// round robin), each through `Vault::import_wav`: the vault's own chunked audio store.
fn add_clips(dir: &Path, from: usize, to: usize, clip_secs: f64) -> f64 {
    let mut vault = Vault::open(dir, PASS).expect("open vault");
    let mut ids: Vec<String> = vault
        .interviews(None, None)
        .expect("interviews")
        .into_iter()
        .map(|i| i.meta.id)
        .collect();
    ids.sort();
    let t0 = Instant::now();
    for c in from..to {
        let wav = wav_clip(SEED + c as u64, clip_secs);
        vault
            .import_wav(&ids[c % ids.len()], &wav[..])
            .expect("add clip");
    }
    t0.elapsed().as_secs_f64()
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}
fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}
fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct SizeResult {
    label: String,
    clips: usize,
    tar_bytes: u64,
    zstd_bytes: u64,
    bundle_bytes: u64,
    export: Measured,
    base_export: (f64, f64, Vec<u64>),
    import_emb: Measured,
    import_pg: Option<Measured>,
    base_import: (f64, f64, Vec<u64>),
}

fn main() {
    if let Ok(step) = std::env::var(STEP_ENV) {
        worker(&step);
        return;
    }
    let interviews = env_f64("TESTIMONY_BENCH_INTERVIEWS", 1000.0) as usize;
    let hours = env_f64("TESTIMONY_BENCH_AUDIO_HOURS", 10.0);
    let hours_small = env_f64("TESTIMONY_BENCH_AUDIO_HOURS_SMALL", hours / 10.0);
    let clip_secs = env_f64("TESTIMONY_BENCH_CLIP_SECONDS", 36.0);
    let pg_base = std::env::var("TESTIMONY_BENCH_POSTGRES")
        .ok()
        .filter(|s| !s.is_empty());
    let root = match std::env::var_os("TESTIMONY_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    let dir = root.path();
    let clips = |h: f64| (h * 3600.0 / clip_secs).round() as usize;
    println!(
        "testimony bundle benchmark: export and import against age + zstd (CLI), same bytes, same run"
    );
    println!(
        "interviews={interviews} audio={hours} h and {hours_small} h ({} and {} clips of {clip_secs} s, 16 kHz mono 16-bit recordings) dir={}",
        clips(hours),
        clips(hours_small),
        dir.display()
    );
    let tool = |c: &str| {
        Command::new(c)
            .arg("--version")
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .unwrap_or_else(|_| panic!("{c} not found"))
    };
    println!(
        "age {} · {} · PostgreSQL: {}",
        tool("age"),
        tool("zstd"),
        if pg_base.is_some() {
            "yes"
        } else {
            "NOT MEASURED (TESTIMONY_BENCH_POSTGRES unset)"
        }
    );
    println!("load average at start: {}\n", loadavg());

    // Baseline identity, also one of the bundle's recipients.
    let bench_id = age::x25519::Identity::generate();
    let id_file = dir.join("bench-identity.txt");
    fs::write(
        &id_file,
        format!("{}\n", bench_id.to_string().expose_secret()),
    )
    .expect("identity");
    let bench_recipient = bench_id.to_public().to_string();

    // ---- the vault: demo interviews, everyone consents -----------------------------------
    let vdir = dir.join("vault");
    let device_key;
    {
        let mut vault = Vault::create(&vdir, PASS, CreateOptions::default()).expect("create vault");
        let t0 = Instant::now();
        let s = testimony_core::demo::populate(&mut vault, interviews, SEED).expect("populate");
        let scopes = ConsentScopes {
            record_audio: true,
            transcribe: true,
            share_archive: true,
            quote_anonymously: true,
            publish_identified: false,
        };
        let codes: Vec<String> = vault
            .witnesses()
            .expect("witnesses")
            .into_iter()
            .map(|w| w.code)
            .collect();
        vault
            .batch(|v| {
                for c in &codes {
                    v.set_consent(c, scopes, "benchmark", None, ConsentMethod::Oral)?;
                }
                Ok(())
            })
            .expect("consent");
        eprintln!(
            "populated {} interviews, {} answers in {:.1} s (all witnesses now consent to sharing)",
            s.interviews,
            s.answers,
            t0.elapsed().as_secs_f64()
        );
        device_key = vault.device_public_key().expect("device key");
    }

    // zstd on the audio alone: the first 20 clips (not timed).
    let audio_ratio = {
        let p = dir.join("clips.raw");
        let mut f = fs::File::create(&p).expect("clips");
        for c in 0..20 {
            f.write_all(&wav_clip(SEED + c, clip_secs)).expect("write");
        }
        drop(f);
        let raw = fs::metadata(&p).unwrap().len();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!("zstd -3 -q -c {} | wc -c", q(&p)))
            .output()
            .expect("zstd");
        let z: u64 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("size");
        fs::remove_file(&p).unwrap();
        raw as f64 / z as f64
    };

    let mut results = Vec::new();
    let mut have = 0usize;
    for h in [hours_small, hours] {
        let want = clips(h);
        if want > have {
            let s = add_clips(&vdir, have, want, clip_secs);
            eprintln!("added clips {have}..{want} in {s:.1} s");
            have = want;
        }
        let label = format!("{h} h");
        let tag = label.replace([' ', '.'], "");
        // New archives for this size (embedded; PostgreSQL in a new database).
        let emb_dir = dir.join(format!("archive-{tag}"));
        let pg_dir = dir.join(format!("archive-pg-{tag}"));
        let pg_url = pg_base.as_ref().map(|base| {
            let db = format!("testimony_bench_{tag}_{}", std::process::id());
            let mut c = postgres::Client::connect(base, postgres::NoTls)
                .expect("connect to TESTIMONY_BENCH_POSTGRES");
            c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"))
                .expect("drop database");
            c.batch_execute(&format!("CREATE DATABASE {db}"))
                .expect("create database");
            format!("{base} dbname={db}")
        });
        let mut recipients = vec![bench_recipient.clone()];
        {
            let mut a =
                Archive::create_with(&emb_dir, PASS, KdfParams::default()).expect("archive");
            a.trust_device(&device_key, "benchmark laptop")
                .expect("trust");
            recipients.push(a.recipient());
        }
        if let Some(url) = &pg_url {
            let mut a = Archive::create_with_backend(
                &pg_dir,
                PASS,
                &Backend::Postgres(url.clone()),
                KdfParams::default(),
            )
            .expect("pg archive");
            a.trust_device(&device_key, "benchmark laptop")
                .expect("trust");
            recipients.push(a.recipient());
        }
        let rec_args: String = recipients.iter().map(|r| format!(" -r {r}")).collect();

        // 1. our export
        let bundle = dir.join(format!("{tag}.tbundle"));
        eprintln!("[{label}] export…");
        let export = run_worker(
            "export",
            &[
                ("BENCH_VAULT", &vdir.display().to_string()),
                ("BENCH_RECIPIENTS", &recipients.join(",")),
                ("BENCH_BUNDLE", &bundle.display().to_string()),
            ],
        );
        let bundle_bytes = fs::metadata(&bundle).unwrap().len();

        // 2. baseline export on the same tar
        let tar = dir.join("plain.tar");
        run_shell(
            &format!(
                "age -d -i {} {} | zstd -d -q -c > {}",
                q(&id_file),
                q(&bundle),
                q(&tar)
            ),
            &[],
        );
        let tar_bytes = fs::metadata(&tar).unwrap().len();
        let zstd_bytes: u64 = {
            let out = Command::new("bash")
                .arg("-c")
                .arg(format!("zstd -3 -q -c {} | wc -c", q(&tar)))
                .output()
                .expect("zstd");
            String::from_utf8_lossy(&out.stdout)
                .trim()
                .parse()
                .expect("size")
        };
        let base_out = dir.join("baseline.age");
        let (t1, t2) = (dir.join("t1"), dir.join("t2"));
        eprintln!("[{label}] baseline zstd -3 | age …");
        let base_export = run_shell(
            &format!(
                "/usr/bin/time -o {} -f '%M %U %S' zstd -3 -q -c {} | /usr/bin/time -o {} -f '%M %U %S' age{rec_args} -o {} && sync {}",
                q(&t1),
                q(&tar),
                q(&t2),
                q(&base_out),
                q(&base_out)
            ),
            &[&t1, &t2],
        );
        fs::remove_file(&tar).unwrap();
        fs::remove_file(&base_out).unwrap();

        // 3. imports and their baseline
        eprintln!("[{label}] import (embedded)…");
        let b = bundle.display().to_string();
        let import_emb = run_worker(
            "import",
            &[
                ("BENCH_ARCHIVE", &emb_dir.display().to_string()),
                ("BENCH_PG", ""),
                ("BENCH_BUNDLE", &b),
            ],
        );
        let import_pg = pg_url.as_ref().map(|url| {
            eprintln!("[{label}] import (PostgreSQL)…");
            run_worker(
                "import",
                &[
                    ("BENCH_ARCHIVE", &pg_dir.display().to_string()),
                    ("BENCH_PG", url),
                    ("BENCH_BUNDLE", &b),
                ],
            )
        });
        eprintln!("[{label}] baseline age -d | zstd -d …");
        let base_import = run_shell(
            &format!(
                "/usr/bin/time -o {} -f '%M %U %S' age -d -i {} {} | /usr/bin/time -o {} -f '%M %U %S' zstd -d -q -c > /dev/null",
                q(&t1),
                q(&id_file),
                q(&bundle),
                q(&t2)
            ),
            &[&t1, &t2],
        );
        fs::remove_file(&bundle).unwrap();
        let _ = fs::remove_dir_all(&emb_dir);
        let _ = fs::remove_dir_all(&pg_dir);
        if let (Some(base), Some(url)) = (&pg_base, &pg_url) {
            let db = url.rsplit("dbname=").next().unwrap().to_string();
            if let Ok(mut c) = postgres::Client::connect(base, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS {db}"));
            }
        }
        eprintln!(
            "[{label}] done: export {}; import {}",
            export.detail, import_emb.detail
        );
        results.push(SizeResult {
            label,
            clips: want,
            tar_bytes,
            zstd_bytes,
            bundle_bytes,
            export,
            base_export,
            import_emb,
            import_pg,
            base_import,
        });
    }
    let load_end = loadavg();

    // ---- report ---------------------------------------------------------------------------
    println!(
        "\n## Throughput (MB/s of the plain tar; ratio = ours / baseline, target ≥ {TARGET} for export)\n"
    );
    println!(
        "| audio | step | ours | ours MB/s | ours CPU s | baseline | baseline MB/s | baseline CPU s | ratio | target |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in &results {
        let tp = |s: f64| mb(r.tar_bytes) / s;
        let (bs, bc, _) = &r.base_export;
        let ratio = tp(r.export.secs) / tp(*bs);
        println!(
            "| {} | export (`Vault::export_bundle`) vs `zstd -3 \\| age` | {:.1} s | {:.1} | {:.1} | {:.1} s | {:.1} | {:.1} | {:.2} | {} |",
            r.label,
            r.export.secs,
            tp(r.export.secs),
            r.export.cpu,
            bs,
            tp(*bs),
            bc,
            ratio,
            verdict(ratio >= TARGET)
        );
        let (bs, bc, _) = &r.base_import;
        let mut imp = vec![("embedded (SQLCipher)", &r.import_emb)];
        if let Some(p) = &r.import_pg {
            imp.push(("PostgreSQL", p));
        }
        for (name, m) in imp {
            println!(
                "| {} | import into {name} vs `age -d \\| zstd -d` | {:.1} s | {:.1} | {:.1} | {:.1} s | {:.1} | {:.1} | {:.2} | – |",
                r.label,
                m.secs,
                tp(m.secs),
                m.cpu,
                bs,
                tp(*bs),
                bc,
                tp(m.secs) / tp(*bs)
            );
        }
        if r.import_pg.is_none() {
            println!(
                "| {} | import into PostgreSQL | not measured | | | | | | | |",
                r.label
            );
        }
    }
    if let (Some(a), Some(b)) = (results[0].import_pg.as_ref(), results[1].import_pg.as_ref()) {
        println!(
            "\nimport time PostgreSQL / embedded: {:.2} ({}), {:.2} ({})",
            a.secs / results[0].import_emb.secs,
            results[0].label,
            b.secs / results[1].import_emb.secs,
            results[1].label
        );
    }

    println!(
        "\n## Peak RSS (MiB): step alone (peak reset after opening) / whole process incl. Argon2id open\n"
    );
    println!(
        "| step | {} | {} | ratio full/small (step) |",
        results[0].label, results[1].label
    );
    println!("|---|---:|---:|---:|");
    let row = |name: &str, a: &Measured, b: &Measured| {
        println!(
            "| {name} | {:.0} / {:.0} | {:.0} / {:.0} | {:.2} |",
            mib(a.rss_step_kib),
            mib(a.rss_process_kib),
            mib(b.rss_step_kib),
            mib(b.rss_process_kib),
            b.rss_step_kib as f64 / a.rss_step_kib as f64
        );
    };
    row("export", &results[0].export, &results[1].export);
    row(
        "import, embedded",
        &results[0].import_emb,
        &results[1].import_emb,
    );
    if let (Some(a), Some(b)) = (&results[0].import_pg, &results[1].import_pg) {
        row("import, PostgreSQL (client side only)", a, b);
    }
    let pr = |v: &Vec<u64>| {
        v.iter()
            .map(|k| format!("{:.0}", mib(*k)))
            .collect::<Vec<_>>()
            .join(" + ")
    };
    println!(
        "| baseline export (zstd + age) | {} | {} | |",
        pr(&results[0].base_export.2),
        pr(&results[1].base_export.2)
    );
    println!(
        "| baseline import (age + zstd) | {} | {} | |",
        pr(&results[0].base_import.2),
        pr(&results[1].base_import.2)
    );

    println!("\n## Sizes\n");
    println!("| audio | clips | plain tar | zstd -3 of tar | ratio | bundle (ours) |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &results {
        println!(
            "| {} | {} | {:.1} MB | {:.1} MB | {:.3} | {:.1} MB |",
            r.label,
            r.clips,
            mb(r.tar_bytes),
            mb(r.zstd_bytes),
            r.tar_bytes as f64 / r.zstd_bytes as f64,
            mb(r.bundle_bytes)
        );
    }
    println!("\nzstd -3 on the synthetic audio alone (20 clips): ratio {audio_ratio:.3}");
    for r in &results {
        println!(
            "{}: export {}; import {}",
            r.label, r.export.detail, r.import_emb.detail
        );
    }
    println!("load average at start / end: see above / {load_end}");
}
