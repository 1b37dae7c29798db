//! The `testimony` binary as a user or a script meets it: real processes, real vault
//! directories, passphrases from the environment, exit codes and `--json` output.
//!
//! Every vault open costs one Argon2id derivation (64 MiB), so each test keeps its number of
//! invocations modest; the tests run in parallel.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

const PASS: &str = "correct horse battery staple";

/// One finished invocation.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// A `testimony` command with a clean environment: only what the test sets reaches it.
fn command(vault: &Path, pass: Option<&str>, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_testimony"));
    c.arg("--vault").arg(vault).args(args);
    for var in [
        "TESTIMONY_VAULT",
        "TESTIMONY_PASSPHRASE",
        "TESTIMONY_NEW_PASSPHRASE",
    ] {
        c.env_remove(var);
    }
    if let Some(p) = pass {
        c.env("TESTIMONY_PASSPHRASE", p);
    }
    c.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn finish(o: Output) -> Run {
    Run {
        code: o.status.code(),
        stdout: String::from_utf8(o.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(o.stderr).expect("stderr is UTF-8"),
    }
}

fn run_with(vault: &Path, pass: Option<&str>, args: &[&str]) -> Run {
    finish(command(vault, pass, args).output().expect("testimony runs"))
}

fn run(vault: &Path, args: &[&str]) -> Run {
    run_with(vault, Some(PASS), args)
}

/// Runs with `input` piped to standard input.
fn run_stdin(vault: &Path, args: &[&str], input: &str) -> Run {
    let mut child = command(vault, Some(PASS), args)
        .stdin(Stdio::piped())
        .spawn()
        .expect("testimony runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    finish(child.wait_with_output().unwrap())
}

/// Runs and insists on success; returns trimmed stdout.
fn ok(vault: &Path, args: &[&str]) -> String {
    let r = run(vault, args);
    assert_eq!(
        r.code,
        Some(0),
        "testimony {args:?} failed: {}",
        r.describe()
    );
    r.stdout.trim().to_string()
}

/// Runs with `--json`, insists on success, and parses stdout.
fn json(vault: &Path, args: &[&str]) -> Value {
    let mut a = vec!["--json"];
    a.extend_from_slice(args);
    let out = ok(vault, &a);
    serde_json::from_str(&out)
        .unwrap_or_else(|e| panic!("testimony {args:?} printed invalid JSON ({e}):\n{out}"))
}

/// Runs and insists on the given failure exit code; returns the run for further checks.
fn fails(vault: &Path, pass: Option<&str>, args: &[&str], code: i32) -> Run {
    let r = run_with(vault, pass, args);
    assert_eq!(
        r.code,
        Some(code),
        "testimony {args:?}: expected exit {code}: {}",
        r.describe()
    );
    assert!(
        r.stderr.starts_with("testimony: ") || r.stderr.starts_with('{'),
        "an error message is printed: {}",
        r.describe()
    );
    r
}

fn init(vault: &Path) {
    let out = ok(vault, &["init", "--interviewer", "Kim Interviewer"]);
    assert!(out.contains("Created vault"), "{out}");
    assert!(vault.join("vault.json").is_file() && vault.join("vault.db").is_file());
}

/// Every file under `dir` (recursively) with its bytes: equal before and after means the
/// command changed nothing on disk.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, m: &mut BTreeMap<PathBuf, Vec<u8>>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            if e.file_type().unwrap().is_dir() {
                walk(root, &p, m);
            } else {
                m.insert(
                    p.strip_prefix(root).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    let mut m = BTreeMap::new();
    walk(dir, dir, &mut m);
    m
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// A vault with one witness and one draft interview; returns (witness code, interview id).
fn vault_with_interview(vault: &Path) -> (String, String) {
    init(vault);
    let code = ok(
        vault,
        &["witness", "add", "--gender", "male", "--birth-year", "1968"],
    );
    let id = ok(vault, &["interview", "new", "--witness", &code]);
    (code, id)
}

fn hit_ids(hits: &Value) -> Vec<String> {
    hits.as_array()
        .expect("search --json prints a list")
        .iter()
        .map(|h| h["interview_id"].as_str().unwrap().to_string())
        .collect()
}

// ---- 1 + 7: the whole interview, then a look at the disk -----------------------------------

#[test]
fn full_interview_flow_then_no_plaintext_on_disk() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    init(v);

    // Witness with a profile and identifying details.
    let code = ok(
        v,
        &[
            "witness",
            "add",
            "--gender",
            "female",
            "--birth-year",
            "1975",
            "--home-province",
            "north_hamgyong",
            "--songbun",
            "wavering",
            "--year-left",
            "2008",
            "--repatriations",
            "2",
            "--real-name",
            "SECRETNAME Lee",
        ],
    );
    assert!(
        code.starts_with("W-") && code.len() == "W-2026-0001".len(),
        "witness add prints the code: {code}"
    );

    let consent = ok(
        v,
        &[
            "consent",
            "set",
            &code,
            "--scopes",
            "record_audio,transcribe,quote_anonymously",
            "--taken-by",
            "Kim",
            "--method",
            "written",
        ],
    );
    assert!(
        consent.contains("[x] transcribe") && consent.contains("[ ] share_archive"),
        "{consent}"
    );
    let bad_scope = fails(
        v,
        Some(PASS),
        &[
            "consent",
            "set",
            &code,
            "--scopes",
            "sell_to_press",
            "--taken-by",
            "Kim",
        ],
        1,
    );
    assert!(
        bad_scope.stderr.contains("unknown consent scope"),
        "{}",
        bad_scope.describe()
    );

    let id = ok(
        v,
        &[
            "interview",
            "new",
            "--witness",
            &code,
            "--languages",
            "ko,en",
            "--place",
            "Seoul",
            "--interpreter",
            "Park",
        ],
    );
    assert_eq!(id.len(), 36, "interview new prints a UUID: {id}");

    // Answers of several types.
    let english = "Zanzibar-canary: we sewed false EYELASHES for export to China";
    let hangul = "보위부 구류장에서 사흘 동안 조사를 받았다";
    let workplace = "회령 제3탄광 채탄공";
    ok(
        v,
        &["interview", "answer", &id, "ctx_setting", "ngo_office"],
    );
    ok(v, &["interview", "answer", &id, "bg_workplace", workplace]);
    ok(
        v,
        &["interview", "answer", &id, "cl_anything_else", english],
    );
    ok(
        v,
        &["interview", "answer", &id, "dep_date", "about 1998-03"],
    );
    ok(v, &["interview", "answer", &id, "ever_repatriated", "yes"]);
    let rep = ok(v, &["interview", "add-group", &id, "repatriation"]);
    assert_eq!(rep.len(), 36, "add-group prints the instance id: {rep}");
    ok(
        v,
        &[
            "interview",
            "answer",
            &id,
            "rep_date",
            "2001-11",
            "--instance",
            &rep,
        ],
    );
    ok(
        v,
        &[
            "interview",
            "answer",
            &id,
            "rep_interrogation",
            hangul,
            "--instance",
            &rep,
        ],
    );
    ok(v, &["interview", "answer", &id, "ever_detained", "yes"]);
    let det = ok(v, &["interview", "add-group", &id, "detention_episode"]);
    let note_text = "Witness asked for a pause after the Quokka-canary section";
    let note_id = ok(v, &["interview", "note", &id, note_text]);
    assert_eq!(note_id.len(), 36, "{note_id}");

    // Invalid input is refused, names the question, and does not echo what was typed.
    let bad = fails(
        v,
        Some(PASS),
        &[
            "interview",
            "answer",
            &id,
            "dep_date",
            "spring Typed-canary 1998",
        ],
        1,
    );
    assert!(
        bad.stderr.contains("dep_date") && !bad.stderr.contains("Typed-canary"),
        "{}",
        bad.describe()
    );
    let bad = fails(
        v,
        Some(PASS),
        &["interview", "answer", &id, "ctx_setting", "kitchen"],
        1,
    );
    assert!(bad.stderr.contains("ctx_setting"), "{}", bad.describe());
    // A question inside a repeatable group needs its instance.
    let bad = fails(
        v,
        Some(PASS),
        &["interview", "answer", &id, "rep_date", "2003"],
        1,
    );
    assert!(bad.stderr.contains("repatriation"), "{}", bad.describe());

    // `show` renders what was recorded, with vocabulary labels, and what is still missing.
    let show = ok(v, &["interview", "show", &id]);
    for want in [
        id.as_str(),
        code.as_str(),
        "status draft",
        "Organisation's office",
        workplace,
        english,
        "about 1998-03",
        "2001-11",
        hangul,
        note_text,
        &format!("instance {rep}"),
        &format!("instance {det}"),
    ] {
        assert!(show.contains(want), "show lacks '{want}':\n{show}");
    }
    assert!(
        !show.contains("Typed-canary") && !show.contains("kitchen"),
        "refused answers were not stored:\n{show}"
    );
    let ko = ok(v, &["--lang", "ko", "interview", "show", &id]);
    assert!(
        ko.contains("단체 사무실"),
        "Korean labels with --lang ko:\n{ko}"
    );

    // Completing with required questions unanswered fails and names each of them.
    let r = fails(v, Some(PASS), &["interview", "complete", &id], 1);
    for missing in [
        "ctx_consent_script_read",
        "detention_episode#1.det_facility_type",
        "sc_knowledge",
    ] {
        assert!(
            r.stderr.contains(missing),
            "complete names {missing}: {}",
            r.describe()
        );
    }
    for answered in ["ever_repatriated", "ever_detained"] {
        assert!(
            !r.stderr.contains(answered),
            "{answered} is answered: {}",
            r.describe()
        );
    }
    assert_eq!(
        json(v, &["interview", "list", "--status", "complete"]),
        serde_json::json!([]),
        "a refused complete changes nothing"
    );

    ok(
        v,
        &["interview", "answer", &id, "ctx_consent_script_read", "yes"],
    );
    ok(
        v,
        &["interview", "answer", &id, "ctx_consent_understood", "yes"],
    );
    ok(
        v,
        &[
            "interview",
            "answer",
            &id,
            "det_facility_type",
            "kyohwaso",
            "--instance",
            &det,
        ],
    );
    ok(v, &["interview", "answer", &id, "sc_knowledge", "no"]);
    let done = ok(v, &["interview", "complete", &id]);
    assert_eq!(done, format!("{id} is complete"));
    let complete = json(v, &["interview", "list", "--status", "complete"]);
    assert_eq!(complete.as_array().unwrap().len(), 1);
    assert_eq!(complete[0]["id"], id.as_str());
    assert_eq!(complete[0]["status"], "complete");

    // Search: a three-syllable and a two-syllable Korean word, English in another case.
    for term in ["구류장", "사흘", "eyelashes", "탄광"] {
        let hits = json(v, &["search", term]);
        assert_eq!(hit_ids(&hits), vec![id.clone()], "search {term}: {hits}");
        assert_eq!(hits[0]["witness_code"], code.as_str());
    }
    let note_hit = json(v, &["search", "Quokka-canary"]);
    assert_eq!(
        note_hit[0]["kind"], "note",
        "notes are searchable: {note_hit}"
    );
    assert_eq!(
        ok(v, &["search", "탈곡장"]),
        "No matches.",
        "a word that is nowhere finds nothing"
    );

    let audit = ok(v, &["audit", "verify"]);
    let entries: u64 = audit
        .strip_prefix("Audit log intact: ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected audit output: {audit}"));
    // Witness, identity, consent, interview, 2 group instances, 12 answers, 1 note, 1 status
    // change; the refused answers, scope and completion left no entry.
    assert_eq!(
        entries, 20,
        "every change, and only those, is in the audit log: {audit}"
    );

    // 7. Nothing recorded is readable on disk, in any file.
    let files = snapshot(v);
    assert!(
        files.len() >= 3 && files.values().map(Vec::len).sum::<usize>() > 4096,
        "the vault has content: {:?}",
        files.keys()
    );
    for (name, bytes) in &files {
        for needle in [
            english,
            "Zanzibar-canary",
            hangul,
            "구류장",
            workplace,
            note_text,
            "SECRETNAME",
            "Kim Interviewer",
            &code,
        ] {
            assert!(
                !contains(bytes, needle.as_bytes()),
                "'{needle}' is readable in {}",
                name.display()
            );
        }
    }
}

// ---- 2: --json output ---------------------------------------------------------------------

#[test]
fn json_output_of_list_and_show_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    init(v);
    let w = json(
        v,
        &[
            "witness",
            "add",
            "--gender",
            "female",
            "--birth-year",
            "1980",
            "--home-province",
            "ryanggang",
            "--real-name",
            "Hidden Name",
        ],
    );
    let code = w["code"]
        .as_str()
        .expect("witness add --json has the code")
        .to_string();
    assert_eq!(w["birth_year"], 1980);
    assert_eq!(w["home_province"], "ryanggang");
    assert!(
        w.get("real_name").is_none(),
        "identifying details are not part of the witness record: {w}"
    );
    ok(
        v,
        &[
            "consent",
            "set",
            &code,
            "--scopes",
            "record_audio,share_archive",
            "--taken-by",
            "Kim",
            "--taken-at",
            "2026-01-05T10:00:00Z",
        ],
    );
    let i = json(
        v,
        &[
            "interview",
            "new",
            "--witness",
            &code,
            "--languages",
            "ko,en",
        ],
    );
    let id = i["id"].as_str().unwrap().to_string();
    assert_eq!(i["witness_code"], code.as_str());
    assert_eq!(i["languages"], serde_json::json!(["ko", "en"]));
    assert_eq!(i["status"], "draft");
    let a = json(
        v,
        &[
            "interview",
            "answer",
            &id,
            "dep_reasons",
            "food_economic, family,food_economic",
        ],
    );
    assert_eq!(
        a["value"],
        serde_json::json!(["food_economic", "family"]),
        "multi choice parsed and de-duplicated"
    );

    let list = json(v, &["witness", "list"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["code"], code.as_str());
    assert_eq!(list[0]["gender"], "female");

    let shown = json(v, &["witness", "show", &code]);
    assert_eq!(shown["witness"]["code"], code.as_str());
    assert_eq!(shown["interviews"], serde_json::json!([id]));
    assert_eq!(shown["consent"]["scopes"]["share_archive"], true);
    assert_eq!(shown["consent"]["scopes"]["publish_identified"], false);
    assert_eq!(shown["consent"]["taken_at"], "2026-01-05T10:00:00Z");
    assert!(
        shown["identity"].is_null(),
        "identity only on request: {shown}"
    );
    assert!(
        !serde_json::to_string(&shown)
            .unwrap()
            .contains("Hidden Name")
    );
    let with_identity = json(v, &["witness", "show", &code, "--identity"]);
    assert_eq!(with_identity["identity"]["real_name"], "Hidden Name");

    let consent = json(v, &["consent", "show", &code]);
    assert_eq!(consent["method"], "oral");
    assert_eq!(consent["scopes"]["record_audio"], true);
    assert_eq!(consent["scopes"]["transcribe"], false);
    assert!(consent["withdrawn_at"].is_null());

    let interviews = json(v, &["interview", "list", "--witness", &code]);
    assert_eq!(interviews.as_array().unwrap().len(), 1);
    assert_eq!(interviews[0]["id"], id.as_str());
    assert_eq!(
        json(v, &["interview", "list", "--status", "reviewed"]),
        serde_json::json!([])
    );

    let detail = json(v, &["interview", "show", &id]);
    assert_eq!(detail["interview"]["id"], id.as_str());
    let answers = detail["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0]["question_id"], "dep_reasons");
    assert_eq!(
        answers[0]["value"],
        serde_json::json!(["food_economic", "family"])
    );

    let books = json(v, &["codebook", "list"]);
    assert!(
        books
            .as_array()
            .unwrap()
            .iter()
            .any(|b| b["id"] == "nk-detention-forced-labor" && b["version"] == "1.0.0"),
        "{books}"
    );
    let audit = json(v, &["audit", "verify"]);
    assert_eq!(
        audit["entries"], 5,
        "witness, identity, consent, interview, answer: {audit}"
    );
    let history = json(v, &["audit", "history", &id]);
    assert_eq!(history[0]["action"], "create", "{history}");

    // Errors in JSON mode are JSON on stderr with a machine-readable kind.
    let r = fails(
        v,
        Some(PASS),
        &["--json", "interview", "show", "no-such-interview"],
        1,
    );
    let err: Value = serde_json::from_str(r.stderr.trim())
        .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", r.describe()));
    assert_eq!(err["kind"], "not_found", "{err}");
    assert!(
        r.stdout.is_empty(),
        "nothing on stdout for a failure: {}",
        r.describe()
    );
    // Refusals that the app shows as reason codes keep the CLI's kinds, exit code and English.
    for (args, kind, message) in [
        (
            vec!["--json", "interview", "review", id.as_str()],
            "not_allowed",
            "not allowed: interview is draft, cannot become reviewed",
        ),
        (
            vec!["--json", "interview", "reopen", id.as_str()],
            "not_allowed",
            "not allowed: interview is draft, cannot become draft",
        ),
        (
            vec!["--json", "search", "  "],
            "invalid",
            "invalid input: empty search",
        ),
    ] {
        let r = fails(v, Some(PASS), &args, 1);
        let err: Value = serde_json::from_str(r.stderr.trim())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {}", r.describe()));
        assert_eq!(
            (err["kind"].as_str(), err["error"].as_str()),
            (Some(kind), Some(message)),
            "{args:?}"
        );
    }
    let r = fails(v, Some(PASS), &["--json", "interview", "complete", &id], 1);
    let err: Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(err["kind"], "incomplete", "{err}");
    assert!(
        err["error"]
            .as_str()
            .unwrap()
            .starts_with("cannot complete the interview; required questions are unanswered: "),
        "{err}"
    );
    let r = fails(v, Some(PASS), &["interview", "review", &id], 1);
    assert_eq!(
        r.stderr.trim(),
        "testimony: not allowed: interview is draft, cannot become reviewed"
    );
}

// ---- 3: exit codes ------------------------------------------------------------------------

#[test]
fn wrong_passphrase_exits_3_and_changes_no_byte() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let (code, _) = vault_with_interview(v);
    let before = snapshot(v);
    let r = fails(
        v,
        Some("not the right passphrase at all"),
        &["witness", "list"],
        3,
    );
    assert!(r.stderr.contains("wrong passphrase"), "{}", r.describe());
    assert!(r.stdout.is_empty(), "{}", r.describe());
    let r = fails(
        v,
        Some("not the right passphrase at all"),
        &[
            "--json",
            "interview",
            "answer",
            "x",
            "cl_anything_else",
            "hi",
        ],
        3,
    );
    assert!(
        r.stderr.contains("\"wrong_passphrase\""),
        "{}",
        r.describe()
    );
    assert_eq!(
        snapshot(v),
        before,
        "a failed open must not touch the vault"
    );
    // And the right passphrase still opens it.
    assert!(ok(v, &["witness", "list"]).contains(&code));
}

#[test]
fn non_vault_directory_exits_4_and_is_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    std::fs::write(d.join("notes.txt"), "not a vault").unwrap();
    let before = snapshot(d);
    let r = fails(d, Some(PASS), &["witness", "list"], 4);
    assert!(
        r.stderr.contains("not a Testimony vault"),
        "{}",
        r.describe()
    );
    fails(d, Some(PASS), &["audit", "verify"], 4);
    fails(d, Some(PASS), &["passwd"], 4);
    assert_eq!(
        snapshot(d),
        before,
        "nothing is created in a directory that is not a vault"
    );
    // A path that does not exist: the same code, and nothing is created.
    let missing = d.join("typo");
    fails(&missing, Some(PASS), &["interview", "list"], 4);
    assert!(!missing.exists());
    // The header is checked before the passphrase is needed.
    fails(d, None, &["witness", "list"], 4);
}

#[test]
fn vault_open_elsewhere_exits_7() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    init(v);
    let held = testimony_core::Vault::open(v, PASS).expect("the test process opens the vault");
    let r = fails(v, Some(PASS), &["witness", "list"], 7);
    assert!(
        r.stderr.contains("open in another Testimony process"),
        "{}",
        r.describe()
    );
    let r = run_with(v, Some(PASS), &["passwd"]);
    assert_eq!(r.code, Some(1), "no new passphrase given: {}", r.describe());
    let r = finish(
        command(v, Some(PASS), &["passwd"])
            .env("TESTIMONY_NEW_PASSPHRASE", "another long passphrase here")
            .output()
            .unwrap(),
    );
    assert_eq!(
        r.code,
        Some(7),
        "passwd is refused while open: {}",
        r.describe()
    );
    drop(held);
    assert_eq!(
        ok(v, &["witness", "list"]),
        "No witnesses.",
        "usable once the other process closes it"
    );
}

/// The small test codebook with one line replaced; returns the file text and the 1-based line
/// of the replacement.
fn broken_codebook(from: &str, to: &str) -> (String, usize) {
    let src = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/fixtures/small-codebook.toml"),
    )
    .unwrap();
    assert!(src.contains(from), "fixture has '{from}'");
    let src = src.replacen(from, to, 1);
    let line = src.lines().position(|l| l.contains(to)).unwrap() + 1;
    (src, line)
}

#[test]
fn codebook_check_reports_errors_with_line_and_exit_9() {
    let tmp = tempfile::tempdir().unwrap();
    let nowhere = tmp.path().join("no-vault-needed");
    let default = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../assets/codebook/default.toml");
    let out = ok(&nowhere, &["codebook", "check", default.to_str().unwrap()]);
    assert!(
        out.starts_with("OK: nk-detention-forced-labor version 1.0.0"),
        "{out}"
    );
    let info = json(&nowhere, &["codebook", "check", default.to_str().unwrap()]);
    assert!(info["questions"].as_u64().unwrap() >= 40, "{info}");

    let cases = [
        ("unknown type", "type = \"long_text\"", "type = \"essay\""),
        (
            "show_if names an unknown question",
            "show_if = \"labor has 'coal_mining'\"",
            "show_if = \"no_such_question == 'yes'\"",
        ),
    ];
    for (what, from, to) in cases {
        let (src, line) = broken_codebook(from, to);
        let file = tmp.path().join("broken.toml");
        std::fs::write(&file, src).unwrap();
        let r = fails(
            &nowhere,
            None,
            &["codebook", "check", file.to_str().unwrap()],
            9,
        );
        assert!(
            r.stderr.contains(&format!("broken.toml:{line}:")),
            "{what}: stderr names line {line}: {}",
            r.describe()
        );
        assert!(r.stdout.is_empty(), "{what}: {}", r.describe());
    }
    assert!(
        !nowhere.exists(),
        "checking a codebook needs no vault and creates none"
    );
}

#[test]
fn tampered_audit_log_exits_8() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    vault_with_interview(v);
    {
        // Someone who has the key edits the log directly, bypassing the append-only triggers.
        let header = testimony_core::keys::Header::read(v).unwrap();
        let key = header.unseal(PASS).unwrap();
        let c = testimony_core::vault::open_encrypted_db(
            &v.join("vault.db"),
            &key,
            false,
            header.page_hmac(),
        )
        .unwrap();
        c.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else' WHERE seq = 1;").unwrap();
    }
    let r = fails(v, Some(PASS), &["audit", "verify"], 8);
    assert!(
        r.stderr.contains("audit log check failed"),
        "{}",
        r.describe()
    );
}

// ---- 4: passwd ----------------------------------------------------------------------------

#[test]
fn passwd_swaps_passphrases_and_keeps_data() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let (code, id) = vault_with_interview(v);
    ok(
        v,
        &[
            "interview",
            "answer",
            &id,
            "cl_anything_else",
            "kept across the passphrase change",
        ],
    );
    let new = "a quite different long passphrase";

    let passwd = |old: &str, new: &str| {
        finish(
            command(v, Some(old), &["passwd"])
                .env("TESTIMONY_NEW_PASSPHRASE", new)
                .output()
                .unwrap(),
        )
    };
    let r = passwd("wrong wrong wrong wrong", new);
    assert_eq!(
        r.code,
        Some(3),
        "wrong current passphrase: {}",
        r.describe()
    );
    let r = passwd(PASS, "short");
    assert_eq!(
        r.code,
        Some(1),
        "weak new passphrase refused: {}",
        r.describe()
    );
    assert!(r.stderr.contains("too weak"), "{}", r.describe());
    let r = passwd(PASS, new);
    assert_eq!(r.code, Some(0), "{}", r.describe());
    assert!(r.stdout.contains("Passphrase changed"), "{}", r.describe());

    fails(v, Some(PASS), &["witness", "list"], 3);
    let r = run_with(v, Some(new), &["--json", "interview", "show", &id]);
    assert_eq!(
        r.code,
        Some(0),
        "the new passphrase opens the vault: {}",
        r.describe()
    );
    let detail: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(detail["interview"]["witness_code"], code.as_str());
    assert_eq!(
        detail["answers"][0]["value"],
        "kept across the passphrase change"
    );
}

// ---- 5: demo ------------------------------------------------------------------------------

#[test]
fn demo_fills_a_new_vault_and_refuses_an_existing_one() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("demo");
    let out = ok(v, &["demo"]);
    assert!(out.contains("fictional"), "{out}");
    let list = json(v, &["interview", "list"]);
    let n = list.as_array().unwrap().len();
    assert!(n >= 20, "demo made {n} interviews");

    // Running it again must not mix more made-up testimony into the vault.
    let before = snapshot(v);
    let r = run(v, &["demo", "--seed", "7"]);
    assert_ne!(
        r.code,
        Some(0),
        "demo on an existing vault: {}",
        r.describe()
    );
    assert!(r.stderr.contains("already exist"), "{}", r.describe());
    assert_eq!(snapshot(v), before, "a refused demo writes nothing");

    // Nor into a real vault.
    let real = &tmp.path().join("real");
    init(real);
    let before = snapshot(real);
    let r = run(real, &["demo"]);
    assert_ne!(r.code, Some(0), "demo on a real vault: {}", r.describe());
    assert_eq!(snapshot(real), before);
    assert_eq!(json(real, &["interview", "list"]), serde_json::json!([]));
}

// ---- 6: values from standard input --------------------------------------------------------

#[test]
fn answer_and_note_read_from_stdin() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let (_, id) = vault_with_interview(v);
    // A long_text answer keeps its inner line break; only the final newline is dropped.
    let story = "교화소에서 가발을 만들었다.\n하루 열두 시간 일했다.";
    let r = run_stdin(
        v,
        &["interview", "answer", &id, "cl_anything_else", "-"],
        &format!("{story}\n"),
    );
    assert_eq!(r.code, Some(0), "{}", r.describe());
    let note = "통역 없이 진행함 — stdin note";
    let r = run_stdin(v, &["interview", "note", &id, "-"], &format!("{note}\r\n"));
    assert_eq!(r.code, Some(0), "{}", r.describe());
    // A one-line text question refuses a multi-line value from stdin.
    let r = run_stdin(
        v,
        &["interview", "answer", &id, "bg_workplace", "-"],
        "line one\nline two\n",
    );
    assert_eq!(r.code, Some(1), "{}", r.describe());

    let d = json(v, &["interview", "show", &id]);
    let answers = d["answers"].as_array().unwrap();
    assert_eq!(answers.len(), 1, "{d}");
    assert_eq!(answers[0]["question_id"], "cl_anything_else");
    assert_eq!(
        answers[0]["value"], story,
        "stored exactly as piped, not as '-'"
    );
    assert_eq!(d["notes"][0]["text"], note);
    assert_eq!(
        hit_ids(&json(v, &["search", "가발"])),
        vec![id.clone()],
        "stdin answers are searchable"
    );
}

// ---- search over text whose lower case is longer --------------------------------------------

#[test]
fn search_snippet_survives_text_that_changes_length_when_lower_cased() {
    let tmp = tempfile::tempdir().unwrap();
    let v = &tmp.path().join("vault");
    let (_, id) = vault_with_interview(v);
    // 'İ' (as in İzmir) lower-cases to two chars; the snippet used to be cut at the wrong
    // place, and with enough of them the search crashed.
    let text = format!(
        "{} then by bus to the Dandong-canary crossing",
        "İZMİR ".repeat(60)
    );
    ok(v, &["interview", "answer", &id, "cl_anything_else", &text]);
    let hits = json(v, &["search", "dandong-canary"]);
    assert_eq!(hit_ids(&hits), vec![id]);
    let snippet = hits[0]["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("Dandong-canary"),
        "the snippet shows the match: {snippet}"
    );
    assert!(snippet.starts_with('…'), "and is cut around it: {snippet}");
}
