//! The audit chain notices edits, deletions and truncation, even by someone who holds the key
//! and bypasses the append-only triggers.

mod common;

use common::*;
use serde_json::json;
use testimony_core::Error;
use testimony_core::model::*;

fn vault_with_history(dir: &std::path::Path) -> usize {
    let mut v = new_vault(dir);
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code,
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    for n in 0..5 {
        v.set_answer(
            &i.meta.id,
            None,
            "cl_anything_else",
            &json!(format!("answer {n}")),
        )
        .unwrap();
    }
    let r = v.audit_verify().unwrap();
    assert_eq!(r.entries, 7, "witness + interview + 5 answer saves");
    let h = v
        .audit_history(
            &v.answer(&i.meta.id, None, "cl_anything_else")
                .unwrap()
                .unwrap()
                .meta
                .id,
        )
        .unwrap();
    assert_eq!(
        h.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["create", "update", "update", "update", "update"]
    );
    assert!(h.iter().all(|e| e.actor == "tester"));
    r.entries as usize
}

fn verify(dir: &std::path::Path) -> Result<testimony_core::audit::AuditReport, Error> {
    testimony_core::Vault::open(dir, PASS)
        .unwrap()
        .audit_verify()
}

#[test]
fn sql_cannot_edit_or_delete_entries() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_with_history(&dir);
    let c = raw_conn(&dir, PASS);
    assert!(
        c.execute("UPDATE audit_log SET actor = 'x' WHERE seq = 2", [])
            .is_err()
    );
    assert!(
        c.execute("DELETE FROM audit_log WHERE seq = 7", [])
            .is_err()
    );
}

#[test]
fn edited_entry_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_with_history(&dir);
    let c = raw_conn(&dir, PASS);
    c.execute_batch("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'someone else' WHERE seq = 3;").unwrap();
    drop(c);
    let e = verify(&dir).unwrap_err().to_string();
    assert!(e.contains("entry 3 was altered"), "{e}");
}

#[test]
fn deleted_entry_in_the_middle_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_with_history(&dir);
    let c = raw_conn(&dir, PASS);
    c.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq = 4;")
        .unwrap();
    drop(c);
    let e = verify(&dir).unwrap_err().to_string();
    assert!(e.contains("entry 4 is missing"), "{e}");
}

#[test]
fn truncated_log_is_detected() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_with_history(&dir);
    let c = raw_conn(&dir, PASS);
    c.execute_batch("DROP TRIGGER audit_log_no_delete; DELETE FROM audit_log WHERE seq >= 6;")
        .unwrap();
    drop(c);
    let e = verify(&dir).unwrap_err().to_string();
    assert!(e.contains("entries were removed"), "{e}");
}

#[test]
fn rehashed_forgery_is_detected_by_the_chain() {
    // Changing content and recomputing only that entry's hash still breaks the next link.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("v");
    vault_with_history(&dir);
    let c = raw_conn(&dir, PASS);
    c.execute_batch(
        "DROP TRIGGER audit_log_no_update; UPDATE audit_log SET hash = prev_hash WHERE seq = 5;",
    )
    .unwrap();
    drop(c);
    let e = verify(&dir).unwrap_err().to_string();
    assert!(e.contains("entry 5 was altered"), "{e}");
}
