//! `testimony archive …` end to end on both back-ends: the embedded store and PostgreSQL
//! (`--postgres URL` or `TESTIMONY_ARCHIVE_POSTGRES`). The PostgreSQL run needs
//! `TESTIMONY_TEST_POSTGRES` (a libpq connection string for a role that may create databases;
//! `./run test` starts a throw-away server and sets it). Without it that run is skipped with a
//! note, except under CI (`CI` set) or `TESTIMONY_REQUIRE_POSTGRES=1`, where it fails.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const VAULT_PASS: &str = "vault passphrase for the archive cli test";
const ARCHIVE_PASS: &str = "archive passphrase for the archive cli test";

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `testimony ARGS` with a clean environment plus `env`.
fn testimony(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testimony"));
    c.args(args);
    for var in [
        "TESTIMONY_VAULT",
        "TESTIMONY_PASSPHRASE",
        "TESTIMONY_ARCHIVE",
        "TESTIMONY_ARCHIVE_PASSPHRASE",
        "TESTIMONY_ARCHIVE_POSTGRES",
    ] {
        c.env_remove(var);
    }
    c.env("TESTIMONY_PASSPHRASE", VAULT_PASS)
        .env("TESTIMONY_ARCHIVE_PASSPHRASE", ARCHIVE_PASS);
    for (k, v) in env {
        c.env(k, v);
    }
    let o = c.stdin(Stdio::null()).output().expect("testimony runs");
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).unwrap(),
        stderr: String::from_utf8(o.stderr).unwrap(),
    }
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> String {
    let r = testimony(args, env);
    assert_eq!(
        r.code,
        Some(0),
        "testimony {args:?} failed:\n{}\n{}",
        r.stdout,
        r.stderr
    );
    r.stdout.trim().to_string()
}

fn json(args: &[&str], env: &[(&str, &str)]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    serde_json::from_str(&ok(&a, env)).expect("JSON output")
}

/// A fresh database on the test server, or `None` (skip) when none is configured and none is
/// required. Returns (admin connection string, database name, its connection string).
fn postgres_database() -> Option<(String, String, String)> {
    let required = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
        || std::env::var("TESTIMONY_REQUIRE_POSTGRES").is_ok_and(|v| v == "1");
    let admin = match std::env::var("TESTIMONY_TEST_POSTGRES") {
        Ok(a) if !a.trim().is_empty() => a,
        _ if required => panic!(
            "the PostgreSQL tests are required here (CI or TESTIMONY_REQUIRE_POSTGRES=1) but TESTIMONY_TEST_POSTGRES is not set; \
             run `./run test`, which starts a throw-away PostgreSQL cluster"
        ),
        _ => {
            eprintln!(
                "note: TESTIMONY_TEST_POSTGRES is not set: the PostgreSQL run of this test is SKIPPED (`./run test` starts a server)"
            );
            return None;
        }
    };
    assert!(
        !admin.contains("://"),
        "use the key=value form for TESTIMONY_TEST_POSTGRES in this test"
    );
    let name = format!(
        "testimony_cli_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| {
            panic!("TESTIMONY_TEST_POSTGRES is set but the server cannot be reached: {e}")
        })
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .unwrap();
    let url = format!("{admin} dbname={name}");
    Some((admin, name, url))
}

/// The whole coordinator flow through the CLI. `pg`: the archive's connection string.
fn coordinator_flow(tmp: &Path, pg: Option<&str>) {
    let vault = tmp.join("vault");
    let v = vault.to_str().unwrap();
    let archive = tmp.join("archive");
    let a = archive.to_str().unwrap();
    ok(&["--vault", v, "init", "--interviewer", "Kim"], &[]);
    let code = ok(
        &[
            "--vault",
            v,
            "witness",
            "add",
            "--gender",
            "female",
            "--birth-year",
            "1975",
        ],
        &[],
    );
    ok(
        &[
            "--vault",
            v,
            "consent",
            "set",
            &code,
            "--scopes",
            "record_audio,share_archive",
            "--taken-by",
            "Kim",
        ],
        &[],
    );
    let interview = ok(&["--vault", v, "interview", "new", "--witness", &code], &[]);
    ok(
        &[
            "--vault",
            v,
            "interview",
            "answer",
            &interview,
            "cl_anything_else",
            "교화소에서 매일 12시간 일했다",
        ],
        &[],
    );
    // Two seconds of a tone, recorded from a WAV file; it goes to the translator with its audio.
    let samples: Vec<i16> = (0..32_000)
        .map(|i| ((i as f64 * 0.07).sin() * 9000.0) as i16)
        .collect();
    let mut wav = testimony_core::audio::wav_header(16_000, 1, 64_000).to_vec();
    wav.extend(samples.iter().flat_map(|s| s.to_le_bytes()));
    let wav_in = tmp.join("interview.wav");
    std::fs::write(&wav_in, &wav).unwrap();
    let recording = ok(
        &[
            "--vault",
            v,
            "record",
            &interview,
            "--from-wav",
            wav_in.to_str().unwrap(),
        ],
        &[],
    )
    .lines()
    .next()
    .unwrap()
    .to_string();
    let key = json(&["--vault", v, "device", "id"], &[])["public_key"]
        .as_str()
        .unwrap()
        .to_string();

    // `--postgres` on init and on every later command, except where the environment carries it.
    let with = |args: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        v.extend(["--archive".to_string(), a.to_string()]);
        if let Some(url) = pg {
            v.extend(["--postgres".to_string(), url.to_string()]);
        }
        v
    };
    let run = |args: &[&str]| {
        ok(
            &with(args).iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )
    };
    let run_json = |args: &[&str]| {
        json(
            &with(args).iter().map(String::as_str).collect::<Vec<_>>(),
            &[],
        )
    };

    let created = run_json(&["archive", "init"]);
    let expected = if pg.is_some() {
        "postgres ("
    } else {
        "embedded"
    };
    assert!(
        created["backend"].as_str().unwrap().starts_with(expected),
        "{created}"
    );
    let recipient = run(&["archive", "recipient"]);
    assert!(recipient.starts_with("age1"), "{recipient}");
    let bundle = tmp.join("b1.tbundle");
    ok(
        &[
            "--vault",
            v,
            "export",
            "--recipient",
            &recipient,
            "--out",
            bundle.to_str().unwrap(),
        ],
        &[],
    );
    let imported = run_json(&["archive", "import", bundle.to_str().unwrap()]);
    assert_eq!(imported[0]["outcome"], "quarantined");
    assert_eq!(
        run_json(&["archive", "quarantine", "list"])
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let trusted = run_json(&["archive", "device", "trust", &key, "--name", "laptop 3"]);
    assert_eq!(trusted["merged"].as_array().unwrap().len(), 1);
    assert_eq!(
        run_json(&["archive", "import", bundle.to_str().unwrap()])[0]["outcome"],
        "already_imported"
    );
    let list = run_json(&["archive", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["id"], interview.as_str());
    let hits = run_json(&["archive", "search", "교화소"]);
    assert_eq!(hits[0]["interview_id"], interview.as_str());
    assert!(run(&["archive", "show", &interview]).contains("교화소에서 매일 12시간 일했다"));
    assert_eq!(run_json(&["archive", "device", "list"])[0]["bundles"], 1);
    assert!(
        run_json(&["archive", "conflicts", "list"])
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Return bundles: the saved recipient, a translator's note back to the interviewer, and a
    // newly published codebook.
    ok(&["--vault", v, "recipient", "set", &recipient], &[]);
    let translator = tmp.join("translator");
    let t = translator.to_str().unwrap();
    ok(&["--vault", t, "init", "--interviewer", "Lee"], &[]);
    ok(&["--vault", t, "recipient", "set", &recipient], &[]);
    let tkey = json(&["--vault", t, "device", "id"], &[])["public_key"]
        .as_str()
        .unwrap()
        .to_string();
    run(&["archive", "device", "trust", &tkey, "--name", "translator"]);
    let t0 = tmp.join("t0.tbundle");
    ok(
        &[
            "--vault",
            t,
            "export",
            "--full",
            "--out",
            t0.to_str().unwrap(),
        ],
        &[],
    );
    run(&["archive", "import", t0.to_str().unwrap()]);
    run(&["archive", "assign", "--device", &tkey, &interview]);
    let archive_id = run_json(&["archive", "id"]);
    let signing = archive_id["signing_key"].as_str().unwrap();
    assert_eq!(archive_id["recipient"], recipient.as_str());
    let r1 = tmp.join("r1.tbundle");
    let ret = run_json(&[
        "archive",
        "return",
        "--device",
        &tkey,
        "--out",
        r1.to_str().unwrap(),
    ]);
    assert_eq!(
        (
            ret["counts"]["interviews"].as_u64(),
            ret["counts"]["recordings"].as_u64()
        ),
        (Some(1), Some(1)),
        "{ret}"
    );
    // Refused until the vault trusts the archive key; then applied once.
    let refused = testimony(&["--vault", t, "import-return", r1.to_str().unwrap()], &[]);
    assert_eq!(refused.code, Some(1), "{}", refused.stderr);
    assert!(
        refused.stderr.contains("trust-archive"),
        "{}",
        refused.stderr
    );
    ok(&["--vault", t, "trust-archive", signing], &[]);
    assert_eq!(
        json(&["--vault", t, "import-return", r1.to_str().unwrap()], &[])["outcome"],
        "applied"
    );
    assert_eq!(
        json(&["--vault", t, "import-return", r1.to_str().unwrap()], &[])["outcome"],
        "already_applied"
    );
    // The translator's laptop now holds the recording: the same audio, byte for byte.
    let listed = json(&["--vault", t, "recording", "list", &interview], &[]);
    assert_eq!(listed[0]["id"], recording.as_str(), "{listed}");
    let (from_t, from_v) = (tmp.join("translator.wav"), tmp.join("interviewer.wav"));
    ok(
        &[
            "--vault",
            t,
            "recording",
            "export-wav",
            &recording,
            "--out",
            from_t.to_str().unwrap(),
        ],
        &[],
    );
    ok(
        &[
            "--vault",
            v,
            "recording",
            "export-wav",
            &recording,
            "--out",
            from_v.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(
        std::fs::read(&from_t).unwrap(),
        std::fs::read(&from_v).unwrap()
    );
    assert_eq!(std::fs::read(&from_t).unwrap(), wav);
    ok(
        &[
            "--vault",
            t,
            "interview",
            "note",
            &interview,
            "Translation: I worked twelve hours a day in the re-education camp",
        ],
        &[],
    );
    let t1 = tmp.join("t1.tbundle");
    ok(
        &["--vault", t, "export", "--out", t1.to_str().unwrap()],
        &[],
    );
    assert_eq!(
        run_json(&["archive", "import", t1.to_str().unwrap()])[0]["conflicts"],
        0
    );
    let cb = tmp.join("newer.toml");
    let default_cb = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../assets/codebook/default.toml"
    ))
    .unwrap();
    let version_line = default_cb
        .lines()
        .find(|l| l.starts_with("version"))
        .unwrap()
        .to_string();
    std::fs::write(
        &cb,
        default_cb.replacen(&version_line, "version = \"9.0.0\"", 1),
    )
    .unwrap();
    run(&["archive", "codebook", "add", cb.to_str().unwrap()]);
    let r2 = tmp.join("r2.tbundle");
    let ret = run_json(&[
        "archive",
        "return",
        "--device",
        &key,
        "--out",
        r2.to_str().unwrap(),
    ]);
    assert_eq!(
        (
            ret["counts"]["notes"].as_u64(),
            ret["codebooks"].as_array().unwrap().len()
        ),
        (Some(1), 1),
        "{ret}"
    );
    assert_eq!(
        ret["counts"]["recordings"], 0,
        "the interviewer's own recording does not go back: {ret}"
    );
    ok(&["--vault", v, "trust-archive", signing], &[]);
    ok(&["--vault", v, "import-return", r2.to_str().unwrap()], &[]);
    assert!(ok(&["--vault", v, "search", "twelve hours"], &[]).contains(&interview));
    assert!(ok(&["--vault", v, "codebook", "list"], &[]).contains("9.0.0"));
    let none = testimony(
        &with(&[
            "archive",
            "return",
            "--device",
            &key,
            "--out",
            tmp.join("r3.tbundle").to_str().unwrap(),
        ])
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        &[],
    );
    assert_eq!(none.code, Some(11), "nothing new to send: {}", none.stderr);

    // The other back-end is refused with a clear message.
    let other = match pg {
        Some(_) => testimony(&["archive", "list", "--archive", a], &[]),
        None => testimony(
            &[
                "archive",
                "list",
                "--archive",
                a,
                "--postgres",
                "host=127.0.0.1 port=1 user=nobody dbname=none",
            ],
            &[],
        ),
    };
    assert_eq!(other.code, Some(1), "{}", other.stderr);
    let hint = if pg.is_some() {
        "open it with --postgres"
    } else {
        "open it without --postgres"
    };
    assert!(other.stderr.contains(hint), "{}", other.stderr);

    if let Some(url) = pg {
        // The connection string may come from the environment instead (keeps a password out
        // of the process list).
        let r = testimony(
            &["--json", "archive", "list", "--archive", a],
            &[("TESTIMONY_ARCHIVE_POSTGRES", url)],
        );
        assert_eq!(r.code, Some(0), "{}", r.stderr);
        // An unreachable server: exit 1, kind "server", no password in the message.
        let r = testimony(
            &[
                "--json",
                "archive",
                "list",
                "--archive",
                a,
                "--postgres",
                "host=127.0.0.1 port=1 user=x password=hunter2 dbname=y",
            ],
            &[],
        );
        assert_eq!(r.code, Some(1));
        let err: Value = serde_json::from_str(r.stderr.trim()).unwrap();
        assert_eq!(err["kind"], "server", "{err}");
        assert!(!r.stderr.contains("hunter2"));
    }
}

#[test]
fn archive_commands_on_the_embedded_store() {
    let tmp = tempfile::tempdir().unwrap();
    coordinator_flow(tmp.path(), None);
}

#[test]
fn archive_commands_on_postgres() {
    let Some((admin, name, url)) = postgres_database() else {
        return;
    };
    let tmp = tempfile::tempdir().unwrap();
    let result = std::panic::catch_unwind(|| coordinator_flow(tmp.path(), Some(&url)));
    if let Ok(mut c) = postgres::Client::connect(&admin, postgres::NoTls) {
        let _ = c.batch_execute(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"));
    }
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
