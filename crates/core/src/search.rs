//! Full-text search over answers and notes (later transcripts), inside the encrypted database.
//! FTS5's trigram tokenizer finds any substring of 3+ characters, so Korean works without a
//! morphological analyser; terms of 1–2 characters (common in Korean: 탄광, 감옥) are matched
//! with LIKE over the same table, which is a scan but stays fast at vault sizes.

use rusqlite::params_from_iter;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::reason::Reason;
use crate::store::Vault;

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    pub interview_id: String,
    pub witness_code: String,
    pub record_id: String,
    pub kind: String,
    /// The matching text around the first hit, at most ~120 characters.
    pub snippet: String,
}

fn snippet(body: &str, terms: &[String]) -> String {
    let lower = body.to_lowercase();
    let pos = terms
        .iter()
        .filter_map(|t| lower.find(&t.to_lowercase()))
        .min()
        .unwrap_or(0);
    let chars: Vec<char> = body.chars().collect();
    // `pos` is a byte offset into `lower`, and lower-casing can change lengths (İ becomes two
    // chars): count the chars of `body` whose lower-case form starts before it.
    let mut seen = 0;
    let at = body
        .chars()
        .take_while(|c| {
            let before = seen < pos;
            seen += c.to_lowercase().map(char::len_utf8).sum::<usize>();
            before
        })
        .count();
    let start = at.saturating_sub(40);
    let end = (at + 80).min(chars.len());
    let mut s: String = chars[start..end]
        .iter()
        .collect::<String>()
        .replace('\n', " ");
    if start > 0 {
        s.insert(0, '…');
    }
    if end < chars.len() {
        s.push('…');
    }
    s
}

/// The most terms a search may have, and the longest query in bytes.
pub const MAX_TERMS: usize = 16;
pub const MAX_QUERY_BYTES: usize = 1000;

impl Vault {
    /// Every whitespace-separated term must occur (case-insensitive substring match).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchHit>> {
        let terms: Vec<String> = query.split_whitespace().map(str::to_string).collect();
        if terms.is_empty() {
            return Err(Error::Invalid(Reason::SearchEmpty));
        }
        if terms.len() > MAX_TERMS || query.len() > MAX_QUERY_BYTES {
            return Err(Error::Invalid(Reason::SearchTooManyTerms {
                max_terms: MAX_TERMS,
                max_bytes: MAX_QUERY_BYTES,
            }));
        }
        let (long, short): (Vec<&String>, Vec<&String>) =
            terms.iter().partition(|t| t.chars().count() >= 3);
        let mut sql = String::from(
            "SELECT s.interview_id, w.code, s.record_id, s.kind, s.body FROM search_index s
             JOIN interviews i ON i.id = s.interview_id JOIN witnesses w ON w.id = i.witness_id WHERE 1",
        );
        let mut args: Vec<String> = Vec::new();
        if !long.is_empty() {
            sql.push_str(" AND search_index MATCH ?");
            // Each term as an FTS5 string literal: no operator in user input is interpreted.
            args.push(
                long.iter()
                    .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        for t in &short {
            sql.push_str(" AND s.body LIKE ? ESCAPE '\\'");
            args.push(format!(
                "%{}%",
                t.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            ));
        }
        // Newest entries first, in index order: SQLite can walk the index backwards and stop
        // at the limit instead of sorting every match (docs/performance.md).
        sql.push_str(&format!(
            " ORDER BY s.rowid DESC LIMIT {}",
            limit.min(10_000)
        ));
        let mut st = self.conn.prepare(&sql)?;
        let rows = st.query_map(params_from_iter(args.iter()), |r| {
            let body: String = r.get(4)?;
            Ok(SearchHit {
                interview_id: r.get(0)?,
                witness_code: r.get(1)?,
                record_id: r.get(2)?,
                kind: r.get(3)?,
                snippet: snippet(&body, &terms),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
