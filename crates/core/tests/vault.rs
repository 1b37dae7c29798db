//! The vault as a seized laptop, a typo, a second window and a damaged disk would meet it.

mod common;

use common::*;
use serde_json::{Value, json};
use testimony_core::model::*;
use testimony_core::{CreateOptions, Error, Reason, Vault};

fn interview_with_answer(v: &mut Vault, text: &str) -> String {
    let w = v
        .add_witness(
            WitnessProfile::default(),
            Some(WitnessIdentity {
                real_name: Some("SECRETNAME Park".into()),
                ..Default::default()
            }),
        )
        .unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code,
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    v.set_answer(&i.meta.id, None, "cl_anything_else", &json!(text))
        .unwrap();
    i.meta.id
}

#[test]
fn nothing_is_readable_without_the_passphrase() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let secret = "PLAINTEXT-CANARY 보위부 구류장에서 맞았다";
    let id = interview_with_answer(&mut v, secret);
    v.add_note(&id, None, None, "NOTE-CANARY 교화소").unwrap();
    // While open (WAL and shm files present) and after closing, no byte of content shows.
    let check = |phase: &str| {
        let files = snapshot(&dir);
        assert!(
            !files["vault.db"].starts_with(b"SQLite format 3"),
            "database must not be plain SQLite"
        );
        for (name, bytes) in &files {
            for needle in [
                "PLAINTEXT-CANARY",
                "보위부",
                "NOTE-CANARY",
                "SECRETNAME",
                "tester",
                "W-20",
                "cl_anything_else",
            ] {
                assert!(
                    !contains(bytes, needle.as_bytes()),
                    "{phase}: '{needle}' readable in {name}"
                );
            }
        }
    };
    check("open");
    drop(v);
    check("closed");
    let v = Vault::open(&dir, PASS).unwrap();
    assert_eq!(
        v.interview_detail(&id).unwrap().answers[0].value,
        json!(secret)
    );
}

#[test]
fn wrong_passphrase_is_reported_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    drop(new_vault(&dir));
    let before = snapshot(&dir);
    assert!(matches!(
        Vault::open(&dir, "not the passphrase at all"),
        Err(Error::WrongPassphrase)
    ));
    assert_eq!(snapshot(&dir), before);
    assert!(Vault::open(&dir, PASS).is_ok());
}

#[test]
fn not_a_vault() {
    let tmp = tempfile::tempdir().unwrap();
    assert!(matches!(
        Vault::open(&tmp.path().join("missing"), PASS),
        Err(Error::NotAVault { .. })
    ));
    std::fs::write(tmp.path().join("vault.json"), b"{\"hello\": 1}").unwrap();
    let before = snapshot(tmp.path());
    let e = Vault::open(tmp.path(), PASS).unwrap_err();
    assert!(matches!(e, Error::NotAVault { .. }), "{e}");
    assert_eq!(snapshot(tmp.path()), before);
}

#[test]
fn corrupt_or_truncated_database_is_reported_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    interview_with_answer(&mut v, "some answer");
    drop(v);
    let db = dir.join("vault.db");
    let good = std::fs::read(&db).unwrap();

    // A flipped byte in the first page (SQLCipher's HMAC catches it).
    let mut bad = good.clone();
    bad[100] ^= 0x40;
    std::fs::write(&db, &bad).unwrap();
    let before = snapshot(&dir);
    let e = Vault::open(&dir, PASS).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "flipped byte: {e}");
    assert_eq!(snapshot(&dir), before, "a failed open writes nothing");

    // A flipped byte in a later page: found by the integrity check before anything is written.
    let mut bad = good.clone();
    let at = good.len() - 2000;
    bad[at] ^= 0x01;
    std::fs::write(&db, &bad).unwrap();
    let before = snapshot(&dir);
    let e = Vault::open(&dir, PASS).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "late flipped byte: {e}");
    assert_eq!(snapshot(&dir), before);

    // Truncated to half.
    std::fs::write(&db, &good[..good.len() / 2]).unwrap();
    let before = snapshot(&dir);
    let e = Vault::open(&dir, PASS).unwrap_err();
    assert!(matches!(e, Error::Corrupt(_)), "truncated: {e}");
    assert_eq!(snapshot(&dir), before);

    // Damaged header: a bit flip in the wrapped key can't be told from a wrong passphrase,
    // but the header's structure can.
    std::fs::write(&db, &good).unwrap();
    let header = std::fs::read_to_string(dir.join("vault.json")).unwrap();
    std::fs::write(dir.join("vault.json"), &header[..header.len() / 2]).unwrap();
    assert!(matches!(
        Vault::open(&dir, PASS),
        Err(Error::NotAVault { .. })
    ));
    std::fs::write(dir.join("vault.json"), header).unwrap();
    assert!(Vault::open(&dir, PASS).is_ok());
}

#[test]
fn newer_versions_are_refused_and_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    drop(new_vault(&dir));
    // Newer schema inside the database.
    raw_conn(&dir, PASS)
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let before = snapshot(&dir);
    match Vault::open(&dir, PASS) {
        Err(Error::NewerVersion { found: 99, .. }) => {}
        other => panic!("expected NewerVersion, got {:?}", other.err()),
    }
    assert_eq!(snapshot(&dir), before);
    raw_conn(&dir, PASS)
        .pragma_update(None, "user_version", testimony_core::schema::LATEST as i64)
        .unwrap();
    // Newer header format.
    let header = std::fs::read_to_string(dir.join("vault.json")).unwrap();
    assert!(header.contains("\"format\": 2"), "{header}");
    std::fs::write(
        dir.join("vault.json"),
        header.replace("\"format\": 2", "\"format\": 7"),
    )
    .unwrap();
    let before = snapshot(&dir);
    assert!(matches!(
        Vault::open(&dir, PASS),
        Err(Error::NewerVersion { found: 7, .. })
    ));
    assert_eq!(snapshot(&dir), before);
}

#[test]
fn a_second_opener_is_refused_while_the_vault_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let v = new_vault(&dir);
    assert!(matches!(Vault::open(&dir, PASS), Err(Error::Locked(_))));
    assert!(matches!(
        Vault::change_passphrase(&dir, PASS, "another long passphrase"),
        Err(Error::Locked(_))
    ));
    drop(v);
    assert!(Vault::open(&dir, PASS).is_ok());
}

#[test]
fn create_refuses_non_empty_dirs_and_weak_passphrases() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("x"), b"x").unwrap();
    assert!(matches!(
        Vault::create(tmp.path(), PASS, CreateOptions::default()),
        Err(Error::AlreadyExists(_))
    ));
    let e = Vault::create(&tmp.path().join("n"), "short", CreateOptions::default()).unwrap_err();
    assert!(matches!(e, Error::WeakPassphrase(_)));
    assert!(
        !tmp.path().join("n").exists(),
        "nothing is created for a refused passphrase"
    );
}

#[test]
fn passphrase_change_keeps_data_and_swaps_passphrases() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    let id = interview_with_answer(&mut v, "kept across passphrase change");
    drop(v);
    let new = "a different long passphrase";
    assert!(matches!(
        Vault::change_passphrase(&dir, "wrong wrong wrong", new),
        Err(Error::WrongPassphrase)
    ));
    Vault::change_passphrase(&dir, PASS, new).unwrap();
    assert!(matches!(
        Vault::open(&dir, PASS),
        Err(Error::WrongPassphrase)
    ));
    let v = Vault::open(&dir, new).unwrap();
    assert_eq!(
        v.interview_detail(&id).unwrap().answers[0].value,
        json!("kept across passphrase change")
    );
    assert!(!dir.join("vault.json.tmp").exists());
    // A stale temp header from an interrupted change is ignored.
    drop(v);
    std::fs::write(dir.join("vault.json.tmp"), b"garbage").unwrap();
    assert!(Vault::open(&dir, new).is_ok());
}

#[test]
fn hangul_and_english_search() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let a = interview_with_answer(&mut v, "함경북도의 탄광에서 하루 열두 시간 일했습니다");
    let b = interview_with_answer(&mut v, "We made false eyelashes for export to China");
    let c = interview_with_answer(&mut v, "교화소에서 가발을 만들었다");
    v.add_note(&b, None, None, "보위부 구류장 언급").unwrap();
    let ids = |q: &str| -> Vec<String> {
        let mut x: Vec<String> = v
            .search(q, 100)
            .unwrap()
            .into_iter()
            .map(|h| h.interview_id)
            .collect();
        x.sort();
        x
    };
    assert_eq!(ids("탄광"), vec![a.clone()], "two-syllable Korean word");
    assert_eq!(ids("탄광에서"), vec![a.clone()], "Korean with particle");
    assert_eq!(ids("가발"), vec![c.clone()]);
    assert_eq!(ids("교화소"), vec![c.clone()]);
    assert_eq!(ids("EYELASH"), vec![b.clone()], "case-insensitive English");
    assert_eq!(ids("보위부"), vec![b.clone()], "notes are searchable");
    assert_eq!(
        ids("china eyelashes"),
        vec![b.clone()],
        "all terms must match"
    );
    assert!(ids("china 탄광").is_empty());
    assert!(
        ids("\"; DROP TABLE answers; --").is_empty(),
        "query syntax is never interpreted"
    );
    let hit = &v.search("열두", 10).unwrap()[0];
    assert!(hit.snippet.contains("열두 시간"), "{}", hit.snippet);
    // An edited answer is found by its new text only.
    v.set_answer(&a, None, "cl_anything_else", &json!("광산 이야기"))
        .unwrap();
    let ids = |q: &str| -> Vec<String> {
        v.search(q, 100)
            .unwrap()
            .into_iter()
            .map(|h| h.interview_id)
            .collect()
    };
    assert!(ids("탄광").is_empty());
    assert_eq!(ids("광산"), vec![a.clone()]);
    // A cleared answer is found no more.
    v.clear_answer(&a, None, "cl_anything_else").unwrap();
    assert!(v.search("광산", 100).unwrap().is_empty());
    // A blank search or one of too many terms is refused with a code the app translates.
    assert!(matches!(
        v.search("  \n", 100),
        Err(Error::Invalid(Reason::SearchEmpty))
    ));
    let e = v.search(&"ab ".repeat(17), 100).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Invalid(Reason::SearchTooManyTerms {
                max_terms: 16,
                max_bytes: 1000
            })
        ),
        "{e}"
    );
    assert_eq!(e.to_string(), "invalid input: search has too many terms");
    assert_eq!(
        v.search("교화소", 100).unwrap().len(),
        1,
        "other entries are untouched"
    );
}

#[test]
fn records_carry_sync_metadata_and_versions() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let id = interview_with_answer(&mut v, "first");
    let a1 = v.answer(&id, None, "cl_anything_else").unwrap().unwrap();
    assert_eq!(a1.meta.version, 1);
    assert_eq!(a1.meta.device_id, v.device_id());
    assert_eq!(
        uuid::Uuid::parse_str(&a1.meta.id)
            .unwrap()
            .get_version_num(),
        7
    );
    let a2 = v
        .set_answer(&id, None, "cl_anything_else", &json!("second"))
        .unwrap();
    assert_eq!((a2.meta.id.clone(), a2.meta.version), (a1.meta.id, 2));
    assert!(a2.meta.updated_at >= a1.meta.updated_at);
    let w1 = v.add_witness(WitnessProfile::default(), None).unwrap();
    let w2 = v.add_witness(WitnessProfile::default(), None).unwrap();
    let year = &w1.meta.created_at[..4];
    assert_eq!(w2.code, format!("W-{year}-0003"));
}

#[test]
fn consent_rules_are_enforced_by_the_core() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    assert!(
        !v.consent_allows(&w.code, ConsentScope::ShareArchive)
            .unwrap(),
        "no consent recorded means no"
    );
    let only_transcribe = ConsentScopes {
        transcribe: true,
        ..Default::default()
    };
    assert!(
        v.set_consent(&w.code, only_transcribe, "kim", None, ConsentMethod::Oral)
            .is_err()
    );
    let publish = ConsentScopes {
        publish_identified: true,
        ..Default::default()
    };
    assert!(
        v.set_consent(&w.code, publish, "kim", None, ConsentMethod::Oral)
            .is_err()
    );
    let share = ConsentScopes {
        record_audio: true,
        share_archive: true,
        ..Default::default()
    };
    v.set_consent(&w.code, share, "kim", None, ConsentMethod::Written)
        .unwrap();
    assert!(
        v.consent_allows(&w.code, ConsentScope::ShareArchive)
            .unwrap()
    );
    assert!(!v.consent_allows(&w.code, ConsentScope::Transcribe).unwrap());
    let c = v.withdraw_consent(&w.code, None).unwrap();
    assert!(
        c.withdrawn_at.is_some() && c.scopes.share_archive,
        "what was given stays on record"
    );
    assert!(
        !v.consent_allows(&w.code, ConsentScope::ShareArchive)
            .unwrap(),
        "withdrawal ends every scope"
    );
    assert!(
        !v.consent_allows(&w.code, ConsentScope::RecordAudio)
            .unwrap()
    );
}

#[test]
fn invalid_answers_are_refused_with_the_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let id = interview_with_answer(&mut v, "x");
    let bad = [
        (
            "ever_detained",
            json!("maybe"),
            "expected one of yes, no, unknown, refused",
        ),
        ("det_facility_type", json!("kyohwaso"), "inside group"),
        ("nonexistent_question", json!("x"), "not found"),
        ("dep_date", json!("2001-02-30"), "no such day"),
    ];
    for (q, val, msg) in bad {
        let e = v.set_answer(&id, None, q, &val).unwrap_err().to_string();
        assert!(e.contains(msg), "{q}: {e}");
        // What was typed is never repeated: errors can reach logs.
        assert!(
            q == "nonexistent_question" || !e.contains(val.as_str().unwrap()),
            "{q}: {e}"
        );
    }
    assert!(
        v.answer(&id, None, "ever_detained").unwrap().is_none(),
        "nothing saved"
    );

    // Each refusal carries a reason code with its parameters (the app translates them).
    let reason = |v: &mut Vault, q: &str, val: Value| match v.set_answer(&id, None, q, &val) {
        Err(Error::InvalidAnswer { question, reason }) if question == q => reason,
        other => panic!("{q}: {other:?}"),
    };
    assert_eq!(
        reason(&mut v, "ever_detained", json!("maybe")),
        Reason::ExpectedYesNo
    );
    assert_eq!(
        reason(&mut v, "dep_date", json!("2001-02-30")),
        Reason::DateNoSuchDay
    );
    assert_eq!(
        reason(&mut v, "dep_date", json!(1998)),
        Reason::ExpectedPartialDate
    );
    assert_eq!(
        reason(
            &mut v,
            "china_period",
            json!({"from": "2003", "to": "1998"})
        ),
        Reason::DateRangeBackwards
    );
    assert_eq!(
        reason(&mut v, "china_period", json!({})),
        Reason::DateRangeEmpty
    );
    assert_eq!(
        reason(&mut v, "china_period", json!({"from": "1998-13"})),
        Reason::DateMonthRange
    );
    // A wrong shape is refused without quoting the value (serde's own messages would).
    for bad in [
        json!("CANARY-TEXT"),
        json!({"from": ["CANARY-TEXT"]}),
        json!({"from": "1998", "CANARY-TEXT": 1}),
    ] {
        let e = v.set_answer(&id, None, "china_period", &bad).unwrap_err();
        assert!(
            matches!(
                &e,
                Error::InvalidAnswer {
                    reason: Reason::ExpectedDateRange,
                    ..
                }
            ),
            "{e}"
        );
        assert!(!e.to_string().contains("CANARY"), "{e}");
    }
    assert!(
        v.answer(&id, None, "china_period").unwrap().is_none(),
        "nothing saved"
    );
    let saved = v
        .set_answer(
            &id,
            None,
            "china_period",
            &json!({"from": "about 1998", "to": null}),
        )
        .unwrap();
    assert_eq!(saved.value, json!({"from": "about 1998"}));
}

#[test]
fn attachments_are_counted_hashed_and_checked() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let id = interview_with_answer(&mut v, "x");
    let data = b"%PDF-1.4 fake document ATTACH-CANARY".to_vec();
    let a = v
        .add_attachment(&id, "sketch.pdf", "application/pdf", &data)
        .unwrap();
    assert_eq!(v.attachment_data(&a.meta.id).unwrap(), data);
    assert_eq!(v.interview_detail(&id).unwrap().attachments.len(), 1);
    for name in ["../etc/passwd", "/abs", "a/b", ".."] {
        assert!(
            v.add_attachment(&id, name, "text/plain", b"x").is_err(),
            "{name}"
        );
    }
    drop(v);
    for (name, bytes) in snapshot(&tmp.path().join("v")) {
        assert!(
            !contains(&bytes, b"ATTACH-CANARY"),
            "attachment readable in {name}"
        );
    }
}

#[test]
fn stored_codebook_versions_keep_old_interviews_loadable() {
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let small = include_str!("../../../assets/fixtures/small-codebook.toml");
    let cb1 = v.add_codebook(small, "small.toml").unwrap();
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code.clone(),
            languages: vec!["ko".into()],
            codebook: Some((cb1.id.clone(), cb1.version.clone())),
            ..Default::default()
        })
        .unwrap();
    v.set_answer(&i.meta.id, None, "story", &json!("old version answer"))
        .unwrap();
    // Same version with different content is refused: it would change what old answers mean.
    let changed = small.replace("Your account", "Your full account");
    assert!(v.add_codebook(&changed, "small.toml").is_err());
    // A new version is accepted and the old interview still loads with its own version.
    let v2 = v
        .add_codebook(
            &changed.replace("version = \"1\"", "version = \"2\""),
            "small.toml",
        )
        .unwrap();
    assert_eq!(v2.version, "2");
    let d = v.interview_detail(&i.meta.id).unwrap();
    assert_eq!(d.interview.codebook_version, "1");
    assert_eq!(
        v.codebook("test-small", "1")
            .unwrap()
            .question("story")
            .unwrap()
            .label
            .en,
        "Your account"
    );
}

#[test]
fn witness_codes_keep_counting_past_9999() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let w = {
        let mut v = new_vault(&dir);
        v.add_witness(WitnessProfile::default(), None).unwrap()
    };
    let year = &w.code[2..6];
    raw_conn(&dir, PASS)
        .execute("UPDATE witnesses SET code = ?1", [format!("W-{year}-9999")])
        .unwrap();
    let mut v = Vault::open(&dir, PASS).unwrap();
    let a = v.add_witness(WitnessProfile::default(), None).unwrap();
    let b = v.add_witness(WitnessProfile::default(), None).unwrap();
    assert_eq!(a.code, format!("W-{year}-10000"));
    assert_eq!(
        b.code,
        format!("W-{year}-10001"),
        "10000 sorts before 9999 as text; numbering must not"
    );
}

/// Opens the database file as SQLCipher would with the right key and the given page MAC, and
/// reads from it.
fn reads_with_page_mac(dir: &std::path::Path, sha256: bool) -> bool {
    let key = testimony_core::keys::Header::read(dir)
        .unwrap()
        .unseal(PASS)
        .unwrap();
    let c = rusqlite::Connection::open(dir.join("vault.db")).unwrap();
    c.pragma_update(None, "key", format!("x'{}'", hex::encode(key.as_ref())))
        .unwrap();
    if sha256 {
        c.execute_batch("PRAGMA cipher_hmac_algorithm = HMAC_SHA256;")
            .unwrap();
    }
    c.query_row("SELECT count(*) FROM interviews", [], |r| {
        r.get::<_, i64>(0)
    })
    .is_ok()
}

#[test]
fn new_vaults_authenticate_their_pages_with_hmac_sha256_and_keep_it_through_a_passphrase_change() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    let mut v = new_vault(&dir);
    interview_with_answer(&mut v, "page mac");
    drop(v);
    let header = testimony_core::keys::Header::read(&dir).unwrap();
    assert_eq!(header.format, 2);
    assert_eq!(header.page_hmac(), testimony_core::keys::PageHmac::Sha256);
    // The file really is HMAC-SHA256: SQLCipher's default (SHA-512) cannot read it.
    assert!(reads_with_page_mac(&dir, true));
    assert!(!reads_with_page_mac(&dir, false));
    let new_pass = "a different and long passphrase";
    Vault::change_passphrase(&dir, PASS, new_pass).unwrap();
    assert_eq!(testimony_core::keys::Header::read(&dir).unwrap().format, 2);
    let v = Vault::open(&dir, new_pass).unwrap();
    assert_eq!(v.interviews(None, None).unwrap().len(), 1);
}
