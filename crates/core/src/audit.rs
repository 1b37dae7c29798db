//! The audit log: one entry per change, in the same transaction as the change, each entry
//! hashing the one before it. The head (last sequence number and hash) is kept in `meta`, so
//! removing entries from the end is detected too.

use rusqlite::{Connection, params};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::store::{Ctx, Vault};

#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub device_id: String,
    pub record_type: String,
    pub record_id: String,
    pub action: String,
    pub content_hash: String,
    pub prev_hash: String,
    pub hash: String,
}

/// SHA-256 of a record's canonical JSON: proves what the content was without storing it twice.
pub fn content_hash(content: &impl Serialize) -> String {
    hex::encode(Sha256::digest(
        serde_json::to_vec(content).expect("serialisable"),
    ))
}

pub(crate) fn entry_hash(e: &AuditEntry) -> String {
    let mut h = Sha256::new();
    h.update(b"testimony-audit-v1");
    h.update(e.seq.to_be_bytes());
    // Length-prefixed fields: no two different entries hash the same bytes.
    for f in [
        &e.at,
        &e.actor,
        &e.device_id,
        &e.record_type,
        &e.record_id,
        &e.action,
        &e.content_hash,
        &e.prev_hash,
    ] {
        h.update((f.len() as u64).to_be_bytes());
        h.update(f.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Appends an entry inside the caller's transaction.
pub(crate) fn append(
    tx: &Connection,
    cx: &Ctx,
    record_type: &str,
    record_id: &str,
    action: &str,
    content: &impl Serialize,
) -> Result<()> {
    let head = |k: &str| -> Result<String> {
        Ok(tx.query_row("SELECT value FROM meta WHERE key = ?1", [k], |r| r.get(0))?)
    };
    let seq: i64 = head("audit_head_seq")?
        .parse()
        .map_err(|_| Error::Corrupt("audit head".into()))?;
    let mut e = AuditEntry {
        seq: seq + 1,
        at: cx.now.clone(),
        actor: cx.actor.clone(),
        device_id: cx.device_id.clone(),
        record_type: record_type.into(),
        record_id: record_id.into(),
        action: action.into(),
        content_hash: content_hash(content),
        prev_hash: head("audit_head_hash")?,
        hash: String::new(),
    };
    e.hash = entry_hash(&e);
    tx.execute(
        "INSERT INTO audit_log (seq, at, actor, device_id, record_type, record_id, action, content_hash, prev_hash, hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![e.seq, e.at, e.actor, e.device_id, e.record_type, e.record_id, e.action, e.content_hash, e.prev_hash, e.hash],
    )?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'audit_head_seq'",
        [e.seq.to_string()],
    )?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'audit_head_hash'",
        [&e.hash],
    )?;
    Ok(())
}

#[derive(Debug, Clone, Serialize)]
pub struct AuditReport {
    pub entries: i64,
    pub head_hash: String,
}

impl Vault {
    /// Walks the whole chain. Any edited, inserted, reordered or deleted entry is an error
    /// naming the first sequence number where the chain breaks.
    pub fn audit_verify(&self) -> Result<AuditReport> {
        let mut st = self.conn.prepare(
            "SELECT seq, at, actor, device_id, record_type, record_id, action, content_hash, prev_hash, hash FROM audit_log ORDER BY seq",
        )?;
        let mut rows = st.query([])?;
        let mut expected_prev = hex::encode([0u8; 32]);
        let mut expected_seq = 1i64;
        while let Some(r) = rows.next()? {
            let e = AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                device_id: r.get(3)?,
                record_type: r.get(4)?,
                record_id: r.get(5)?,
                action: r.get(6)?,
                content_hash: r.get(7)?,
                prev_hash: r.get(8)?,
                hash: r.get(9)?,
            };
            if e.seq != expected_seq {
                return Err(Error::AuditBroken(format!(
                    "entry {expected_seq} is missing (next is {})",
                    e.seq
                )));
            }
            if e.prev_hash != expected_prev {
                return Err(Error::AuditBroken(format!(
                    "entry {} does not follow entry {}",
                    e.seq,
                    e.seq - 1
                )));
            }
            if entry_hash(&e) != e.hash {
                return Err(Error::AuditBroken(format!("entry {} was altered", e.seq)));
            }
            expected_prev = e.hash;
            expected_seq += 1;
        }
        let head_seq: String = self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'audit_head_seq'",
            [],
            |r| r.get(0),
        )?;
        let head_hash: String = self.conn.query_row(
            "SELECT value FROM meta WHERE key = 'audit_head_hash'",
            [],
            |r| r.get(0),
        )?;
        if head_seq != (expected_seq - 1).to_string() || head_hash != expected_prev {
            let recorded: i64 = head_seq.parse().unwrap_or(-1);
            let what = if recorded < expected_seq - 1 {
                "entries were added outside the vault"
            } else {
                "entries were removed"
            };
            return Err(Error::AuditBroken(format!(
                "the log ends at entry {} but the vault recorded {head_seq} entries: {what}",
                expected_seq - 1
            )));
        }
        Ok(AuditReport {
            entries: expected_seq - 1,
            head_hash,
        })
    }

    /// Entries about one record, oldest first (history of a witness, an answer, …).
    pub fn audit_history(&self, record_id: &str) -> Result<Vec<AuditEntry>> {
        let mut st = self.conn.prepare(
            "SELECT seq, at, actor, device_id, record_type, record_id, action, content_hash, prev_hash, hash
             FROM audit_log WHERE record_id = ?1 ORDER BY seq",
        )?;
        let rows = st.query_map([record_id], |r| {
            Ok(AuditEntry {
                seq: r.get(0)?,
                at: r.get(1)?,
                actor: r.get(2)?,
                device_id: r.get(3)?,
                record_type: r.get(4)?,
                record_id: r.get(5)?,
                action: r.get(6)?,
                content_hash: r.get(7)?,
                prev_hash: r.get(8)?,
                hash: r.get(9)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
