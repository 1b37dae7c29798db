//! Encrypted vault vs. plain SQLite: same schema, same code, same run.
//!
//! ```text
//! CARGO_TARGET_DIR=target/bench cargo bench -p testimony-core --features bench-plaintext --bench vault
//! ```
//!
//! The plain vault comes from `Vault::create_plaintext_for_bench` (feature `bench-plaintext`):
//! identical to `Vault::create` (header, Argon2id, migrations, WAL, synchronous = FULL,
//! secure_delete) except that SQLCipher is never given a key. Everything else below calls the
//! public API exactly as the CLI does, so the ratio is the cost of encryption as users see it.
//!
//! Each vault lives in its own worker process (this binary, re-run with
//! `TESTIMONY_BENCH_WORKER` set), driven over stdin/stdout, and the workers take turns. One
//! process would not do: the bundled SQLite is built with SQLITE_ENABLE_MEMORY_MANAGEMENT, so
//! all connections of a process share one page-cache pool, and one vault's big scans would
//! evict the other's pages (costing the encrypted side a decryption per page, the plain side
//! only a copy). An app process holds one vault, as each worker does. Timings are taken inside
//! the workers, so the pipe is not measured.
//!
//! A small harness on `std::time::Instant` rather than criterion (not in Cargo.lock; the
//! workloads here are long and few, so criterion's statistics would add little). Phases:
//!
//! 1. durable single saves: `set_answer` one at a time, each its own fsync'd commit, on a
//!    new vault and again (phase 2b) on the populated one;
//! 2. bulk insert: `demo::populate` (one transaction per witness: witness, consent,
//!    interview, all answers, note, status changes), in 20 chunks alternating between the vaults;
//! 3. search latency over the populated vaults, four kinds of query, encrypted and plain
//!    queries interleaved so drift in the machine hits both alike;
//! 4. open time (Argon2id + key check + quick_check), reported apart: not part of any ratio.
//!
//! Environment (all optional):
//! - `TESTIMONY_BENCH_INTERVIEWS` interviews in the bulk phase (default 10000)
//! - `TESTIMONY_BENCH_SAVES` single saves on the new vault (default 500)
//! - `TESTIMONY_BENCH_SAVES_FULL` single saves on the populated vault (default 100)
//! - `TESTIMONY_BENCH_QUERIES` queries of each kind on each vault (default 200)
//! - `TESTIMONY_BENCH_DIR` where the vaults are made (default: the system temp dir); put it
//!   on the disk you want to measure, fsync cost dominates durable saves.
//! - `TESTIMONY_BENCH_KEEP=1` keeps the two vaults (fictional demo data only; the passphrase
//!   is in this file) for inspection instead of deleting them at the end.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use testimony_core::codebook::{Codebook, QuestionType};
use testimony_core::keys::Header;
use testimony_core::model::{NewInterview, WitnessProfile};
use testimony_core::{CreateOptions, Vault, demo};

const PASS: &str = "correct horse battery staple";
const SEED: u64 = 20_240_601;
const SEARCH_LIMIT: usize = 50; // the CLI's default `--limit`
const THROUGHPUT_TARGET: f64 = 0.8;
const SEARCH_P95_TARGET_MS: f64 = 50.0;
const CHUNKS: usize = 20;
const WORKER_ENV: &str = "TESTIMONY_BENCH_WORKER";
const WORKER_DIR_ENV: &str = "TESTIMONY_BENCH_WORKER_DIR";

fn env_usize(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
        Err(_) => default,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Nearest-rank percentile of already sorted samples.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    pct(&v, 50.0)
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Encrypted,
    Plain,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Encrypted => "encrypted",
            Kind::Plain => "plain",
        }
    }
    fn from_name(s: &str) -> Kind {
        match s {
            "encrypted" => Kind::Encrypted,
            "plain" => Kind::Plain,
            _ => panic!("unknown worker kind {s:?}"),
        }
    }
    fn create(self, dir: &Path) -> Vault {
        let opts = CreateOptions {
            interviewer: "bench".into(),
            ..Default::default()
        };
        match self {
            Kind::Encrypted => Vault::create(dir, PASS, opts),
            Kind::Plain => Vault::create_plaintext_for_bench(dir, PASS, opts),
        }
        .expect("create vault")
    }
    fn open(self, dir: &Path) -> Vault {
        match self {
            Kind::Encrypted => Vault::open(dir, PASS),
            Kind::Plain => Vault::open_plaintext_for_bench(dir, PASS),
        }
        .expect("open vault")
    }
}

// ---- worker: one vault, one process --------------------------------------------------------

/// Runs commands from stdin, one per line, answering each with one line on stdout. Times are
/// nanoseconds measured here, around the vault call only.
fn worker_main(kind: Kind, dir: PathBuf) {
    let text_questions: Vec<String> = Codebook::default_codebook()
        .children(None)
        .filter(|q| matches!(q.kind, QuestionType::Text | QuestionType::LongText))
        .map(|q| q.id.clone())
        .collect();
    assert!(
        !text_questions.is_empty(),
        "default codebook has top-level text questions"
    );
    let mut vault: Option<Vault> = None;
    let mut interview = String::new();
    let mut out = std::io::stdout().lock();
    for line in std::io::stdin().lock().lines() {
        let line = line.expect("stdin");
        let (cmd, arg) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let reply = match cmd {
            "create" => {
                vault = Some(kind.create(&dir));
                "ok".to_string()
            }
            "reopen" => {
                drop(vault.take()); // closes it and releases the lock first
                let t = Instant::now();
                vault = Some(kind.open(&dir));
                t.elapsed().as_nanos().to_string()
            }
            "argon2" => {
                let h = Header::read(&dir).expect("header");
                let t = Instant::now();
                drop(h.unseal(PASS).expect("unseal"));
                t.elapsed().as_nanos().to_string()
            }
            // A new interview for single saves.
            "prepare" => {
                let v = vault.as_mut().expect("open");
                let w = v
                    .add_witness(WitnessProfile::default(), None)
                    .expect("witness");
                interview = v
                    .new_interview(NewInterview {
                        witness: w.code,
                        languages: vec!["ko".into()],
                        ..Default::default()
                    })
                    .expect("interview")
                    .meta
                    .id;
                "ok".to_string()
            }
            // One durable save: the first pass over the text questions inserts, later ones update.
            "save" => {
                let k: usize = arg.parse().expect("save number");
                let q = &text_questions[k % text_questions.len()];
                let text = json!(format!(
                    "{k}번째 저장. 보위부 구류장에서 조사를 받은 뒤 교화소로 이송되었고 탄광에서 일했다고 진술함. Saved #{k}: transferred to a kyohwaso after interrogation."
                ));
                let v = vault.as_mut().expect("open");
                let t = Instant::now();
                v.set_answer(&interview, None, q, &text)
                    .expect("set_answer");
                t.elapsed().as_nanos().to_string()
            }
            "populate" => {
                let (n, seed) = arg.split_once(' ').expect("populate N SEED");
                let v = vault.as_mut().expect("open");
                let t = Instant::now();
                let sum = demo::populate(v, n.parse().expect("N"), seed.parse().expect("SEED"))
                    .expect("populate");
                format!("{} {}", t.elapsed().as_nanos(), sum.answers)
            }
            "search" => {
                let v = vault.as_ref().expect("open");
                let t = Instant::now();
                let hits = v.search(arg, SEARCH_LIMIT).expect("search");
                format!("{} {}", t.elapsed().as_nanos(), hits.len())
            }
            "size" => ["vault.db", "vault.db-wal"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum::<u64>()
                .to_string(),
            "quit" => return,
            _ => panic!("unknown worker command {line:?}"),
        };
        writeln!(out, "{reply}")
            .and_then(|_| out.flush())
            .expect("stdout");
    }
}

struct Worker {
    kind: Kind,
    child: Child,
    to: ChildStdin,
    from: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(kind: Kind, dir: &Path) -> Worker {
        let mut child = Command::new(std::env::current_exe().expect("own path"))
            .env(WORKER_ENV, kind.name())
            .env(WORKER_DIR_ENV, dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start worker");
        let to = child.stdin.take().expect("stdin");
        let from = BufReader::new(child.stdout.take().expect("stdout"));
        Worker {
            kind,
            child,
            to,
            from,
        }
    }
    fn call(&mut self, cmd: &str) -> String {
        writeln!(self.to, "{cmd}")
            .and_then(|_| self.to.flush())
            .expect("worker stdin");
        let mut line = String::new();
        if self.from.read_line(&mut line).expect("worker stdout") == 0 {
            panic!(
                "{} worker died during {cmd:?} (see its message above)",
                self.kind.name()
            );
        }
        line.trim_end().to_string()
    }
    /// A reply that starts with nanoseconds, and the number after it if any.
    fn timed(&mut self, cmd: &str) -> (Duration, usize) {
        let r = self.call(cmd);
        let mut it = r.split(' ');
        let ns: u64 = it
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or_else(|| panic!("bad reply {r:?} to {cmd:?}"));
        (
            Duration::from_nanos(ns),
            it.next().map_or(0, |x| x.parse().expect("count")),
        )
    }
    fn quit(mut self) {
        let _ = writeln!(self.to, "quit").and_then(|_| self.to.flush());
        let _ = self.child.wait();
    }
}

/// Alternates which worker goes first, so neither always runs right after the other.
fn order(k: usize) -> [usize; 2] {
    if k % 2 == 0 { [0, 1] } else { [1, 0] }
}

/// Durable single saves: each `set_answer` is its own transaction, committed and fsync'd
/// before it returns, as when an interviewer moves from one field to the next. Saves
/// alternate between the vaults. Returns sorted latencies and saves/s (from their sum) per side.
fn single_saves(w: &mut [Worker; 2], n: usize) -> [(Vec<Duration>, f64); 2] {
    for x in w.iter_mut() {
        x.call("prepare");
    }
    let mut lat = [Vec::with_capacity(n), Vec::with_capacity(n)];
    for k in 0..n {
        for j in order(k) {
            lat[j].push(w[j].timed(&format!("save {k}")).0);
        }
    }
    lat.map(|mut l| {
        let total: Duration = l.iter().sum();
        l.sort();
        let rate = l.len() as f64 / total.as_secs_f64().max(1e-9);
        (l, rate)
    })
}

struct QueryKind {
    name: &'static str,
    terms: &'static [&'static str],
}

const QUERIES: &[QueryKind] = &[
    // 1–2 character terms: LIKE scan over the search table (search.rs).
    QueryKind {
        name: "Hangul 2-char (LIKE scan)",
        terms: &["탄광", "보위", "구류", "단련"],
    },
    // 3+ characters: FTS5 trigram index.
    QueryKind {
        name: "Hangul 3+ char (trigram)",
        terms: &["교화소", "보위부", "구류장", "집결소", "노동단련대"],
    },
    QueryKind {
        name: "English short (trigram)",
        terms: &["coal", "mine", "cell", "quota", "guard"],
    },
    QueryKind {
        name: "English long (trigram)",
        terms: &["interrogation", "kyohwaso", "eyelashes", "holding cell"],
    },
];

struct SearchStats {
    lat: [Vec<Duration>; 2],
    hits: [usize; 2],
}

fn search_phase(w: &mut [Worker; 2], qk: &QueryKind, n: usize) -> SearchStats {
    // Warm-up: a field worker's second search, not the first after opening.
    for t in qk.terms {
        for x in w.iter_mut() {
            x.timed(&format!("search {t}"));
        }
    }
    let mut st = SearchStats {
        lat: [Vec::with_capacity(n), Vec::with_capacity(n)],
        hits: [0, 0],
    };
    for k in 0..n {
        let term = qk.terms[k % qk.terms.len()];
        for j in order(k) {
            let (d, hits) = w[j].timed(&format!("search {term}"));
            st.lat[j].push(d);
            st.hits[j] += hits;
        }
    }
    for l in st.lat.iter_mut() {
        l.sort();
    }
    st
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "MISSED" }
}

fn main() {
    if let Some(kind) = std::env::var_os(WORKER_ENV) {
        let dir = std::env::var_os(WORKER_DIR_ENV).expect("worker dir");
        worker_main(Kind::from_name(&kind.to_string_lossy()), PathBuf::from(dir));
        return;
    }
    let interviews = env_usize("TESTIMONY_BENCH_INTERVIEWS", 10_000);
    let saves = env_usize("TESTIMONY_BENCH_SAVES", 500);
    let queries = env_usize("TESTIMONY_BENCH_QUERIES", 200);
    let saves_full = env_usize("TESTIMONY_BENCH_SAVES_FULL", 100);
    let root = match std::env::var_os("TESTIMONY_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("temp dir");
    println!(
        "testimony vault benchmark: encrypted (SQLCipher) vs. plain SQLite, same schema and code"
    );
    println!(
        "interviews={interviews} saves={saves} saves on full vault={saves_full} queries/kind={queries} search limit={SEARCH_LIMIT} dir={}",
        root.path().display()
    );
    let cipher: String = rusqlite::Connection::open_in_memory()
        .and_then(|c| c.query_row("PRAGMA cipher_version", [], |r| r.get(0)))
        .unwrap_or_else(|_| "unknown".into());
    println!("SQLite {} with SQLCipher {cipher}", rusqlite::version());
    println!(
        "(set TESTIMONY_BENCH_INTERVIEWS / _SAVES / _SAVES_FULL / _QUERIES / _DIR to change)\n"
    );

    let mut w = [Kind::Encrypted, Kind::Plain]
        .map(|kind| Worker::spawn(kind, &root.path().join(kind.name())));

    // Creating includes one Argon2id derivation (header seal); not timed as a phase.
    for x in w.iter_mut() {
        x.call("create");
    }

    // ---- open time on a fresh vault (Argon2id dominated) ---------------------------------
    let argon2 = median((0..3).map(|_| w[0].timed("argon2").0).collect());
    let open_empty: Vec<Duration> = w
        .iter_mut()
        .map(|x| median((0..3).map(|_| x.timed("reopen").0).collect()))
        .collect();

    // ---- a. durable single saves ------------------------------------------------------------
    eprintln!("{saves} single saves on each new vault…");
    let [(save_lat_e, save_rate_e), (save_lat_p, save_rate_p)] = single_saves(&mut w, saves);
    let (save_lat, save_rate) = ([save_lat_e, save_lat_p], [save_rate_e, save_rate_p]);

    // ---- b. bulk insert -----------------------------------------------------------------
    // In CHUNKS calls, alternating between the vaults (same seed per chunk on both sides, so
    // the same data), which also shows how the rate changes as the vault grows.
    // A multiple of 24: demo::populate varies language, consent and status by n % 3, 4, 6
    // and 8 within each call, so whole multiples keep the mix of the single-call data.
    let chunk = interviews.div_ceil(CHUNKS).div_ceil(24) * 24;
    let mut bulk_secs = [0.0f64; 2];
    let mut bulk_answers = [0usize; 2];
    let mut chunk_rates: [Vec<(usize, f64)>; 2] = [Vec::new(), Vec::new()];
    eprintln!("demo::populate {interviews} interviews into each vault, {chunk} at a time…");
    let (mut done, mut c) = (0, 0usize);
    while done < interviews {
        let n = chunk.min(interviews - done);
        for j in order(c) {
            let (d, answers) = w[j].timed(&format!("populate {n} {}", SEED + c as u64));
            let secs = d.as_secs_f64();
            bulk_secs[j] += secs;
            bulk_answers[j] += answers;
            chunk_rates[j].push((done + n, n as f64 / secs));
        }
        done += n;
        c += 1;
        eprintln!(
            "  {done:>6} interviews: {:.1} / {:.1} interviews/s (encrypted / plain) in this chunk",
            chunk_rates[0][chunk_rates[0].len() - 1].1,
            chunk_rates[1][chunk_rates[1].len() - 1].1
        );
    }
    eprintln!(
        "  total {:.1} s / {:.1} s, {} answers per vault",
        bulk_secs[0], bulk_secs[1], bulk_answers[0]
    );
    assert_eq!(
        bulk_answers[0], bulk_answers[1],
        "same seeds, same data on both sides"
    );

    // ---- 2b. durable single saves again, now on the populated vault ----------------------
    eprintln!("{saves_full} single saves on each populated vault…");
    let [(fl_e, fr_e), (fl_p, fr_p)] = single_saves(&mut w, saves_full);
    let (full_save_lat, full_save_rate) = ([fl_e, fl_p], [fr_e, fr_p]);

    // ---- c. search ----------------------------------------------------------------------
    let mut search = Vec::new();
    for qk in QUERIES {
        eprintln!("search: {} × {queries} per vault…", qk.name);
        search.push(search_phase(&mut w, qk, queries));
    }

    // ---- d. open time on the populated vault (Argon2id + quick_check over the whole file) --
    let open_full: Vec<Duration> = w
        .iter_mut()
        .map(|x| median((0..3).map(|_| x.timed("reopen").0).collect()))
        .collect();
    let sizes: Vec<u64> = w
        .iter_mut()
        .map(|x| x.call("size").parse().expect("size"))
        .collect();
    let names = w.each_ref().map(|x| x.kind.name());
    for x in w {
        x.quit();
    }

    // ---- report -------------------------------------------------------------------------
    println!("\n## Throughput (ratio = encrypted / plain; target ≥ {THROUGHPUT_TARGET})\n");
    println!("| measure | encrypted | plain | ratio | target |");
    println!("|---|---:|---:|---:|---|");
    let row = |name: &str, e: f64, p: f64, unit: &str| {
        let r = e / p;
        println!(
            "| {name} | {e:.1} {unit} | {p:.1} {unit} | {r:.2} | {} |",
            verdict(r >= THROUGHPUT_TARGET)
        );
    };
    row(
        "durable single saves, new vault",
        save_rate[0],
        save_rate[1],
        "saves/s",
    );
    row(
        &format!("durable single saves, {interviews}-interview vault"),
        full_save_rate[0],
        full_save_rate[1],
        "saves/s",
    );
    let iv = |j: usize| interviews as f64 / bulk_secs[j];
    let an = |j: usize| bulk_answers[j] as f64 / bulk_secs[j];
    row(
        "bulk insert (demo::populate), interviews",
        iv(0),
        iv(1),
        "interviews/s",
    );
    row(
        "bulk insert (demo::populate), answers",
        an(0),
        an(1),
        "answers/s",
    );
    let (first, last) = (
        chunk_rates.iter().map(|c| c[0]).collect::<Vec<_>>(),
        chunk_rates
            .iter()
            .map(|c| c[c.len() - 1])
            .collect::<Vec<_>>(),
    );
    row(
        &format!("bulk insert, first {} interviews", first[0].0),
        first[0].1,
        first[1].1,
        "interviews/s",
    );
    row(
        &format!("bulk insert, last chunk (up to {})", last[0].0),
        last[0].1,
        last[1].1,
        "interviews/s",
    );

    println!("\n## Single-save latency (ms)\n");
    println!("| vault | p50 | p95 | max |");
    println!("|---|---:|---:|---:|");
    for (label, lats) in [
        ("new", &save_lat),
        (&*format!("{interviews} interviews"), &full_save_lat),
    ] {
        for (j, name) in names.iter().enumerate() {
            let l = &lats[j];
            println!(
                "| {name} ({label}) | {:.2} | {:.2} | {:.2} |",
                ms(pct(l, 50.0)),
                ms(pct(l, 95.0)),
                ms(pct(l, 100.0))
            );
        }
    }

    println!("\n## Bulk insert rate as the vault grows (interviews/s per chunk)\n");
    println!("| interviews in vault | encrypted | plain | ratio |");
    println!("|---:|---:|---:|---:|");
    for (e, p) in chunk_rates[0].iter().zip(&chunk_rates[1]) {
        println!("| {} | {:.1} | {:.1} | {:.2} |", e.0, e.1, p.1, e.1 / p.1);
    }

    println!(
        "\n## Search latency over {interviews} interviews (ms; {queries} queries per kind per vault, limit {SEARCH_LIMIT}; target p95 < {SEARCH_P95_TARGET_MS} ms encrypted)\n"
    );
    println!(
        "| query kind | terms | enc p50 | enc p95 | plain p50 | plain p95 | p95 ratio enc/plain | avg hits | target |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---|");
    for (qk, st) in QUERIES.iter().zip(&search) {
        let (e50, e95) = (ms(pct(&st.lat[0], 50.0)), ms(pct(&st.lat[0], 95.0)));
        let (p50, p95) = (ms(pct(&st.lat[1], 50.0)), ms(pct(&st.lat[1], 95.0)));
        println!(
            "| {} | {} | {e50:.2} | {e95:.2} | {p50:.2} | {p95:.2} | {:.2} | {:.1} | {} |",
            qk.name,
            qk.terms.join(", "),
            e95 / p95,
            st.hits[0] as f64 / queries.max(1) as f64,
            verdict(e95 < SEARCH_P95_TARGET_MS)
        );
    }

    println!("\n## Open time (not part of any ratio)\n");
    println!("| | encrypted | plain |");
    println!("|---|---:|---:|");
    println!(
        "| Argon2id alone (64 MiB, t=3, p=1), median of 3 | {:.0} ms | (same) |",
        ms(argon2)
    );
    println!(
        "| open, fresh vault, median of 3 | {:.0} ms | {:.0} ms |",
        ms(open_empty[0]),
        ms(open_empty[1])
    );
    println!(
        "| open, {interviews}-interview vault (incl. quick_check), median of 3 | {:.0} ms | {:.0} ms |",
        ms(open_full[0]),
        ms(open_full[1])
    );
    println!(
        "| database size (vault.db + WAL) | {:.1} MiB | {:.1} MiB |",
        sizes[0] as f64 / 1048576.0,
        sizes[1] as f64 / 1048576.0
    );
    println!(
        "\nanswers written by the bulk phase: {} per vault",
        bulk_answers[0]
    );
    if std::env::var_os("TESTIMONY_BENCH_KEEP").is_some() {
        println!("vaults kept in {}", root.keep().display());
    }
}
