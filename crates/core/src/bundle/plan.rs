//! The consent plan of an export: which witnesses may be shared, and which records of theirs
//! go into this bundle, decided before anything is written.

use std::collections::{HashMap, HashSet};

use super::*;
use crate::error::Result;
use crate::model::ConsentScope;
use crate::records::{CONSENT_COLS, consent_row};
use crate::store::Vault;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Share {
    /// Consent to share with the archive.
    Shared,
    /// Consent withdrawn.
    Withdrawn,
    /// Consent recorded, but not to share.
    NotShared,
    /// No consent recorded.
    NoConsent,
}

/// What goes into one bundle, decided before anything is written.
pub(super) struct Plan {
    pub(super) full: bool,
    pub(super) from: i64,
    pub(super) to: i64,
    /// Witness id → sharing status (every witness of the vault).
    pub(super) share: HashMap<String, Share>,
    /// Witnesses whose identity may be exported.
    pub(super) identity_ok: HashSet<String>,
    /// Records (by id) named by audit entries in the range.
    pub(super) changed: HashSet<String>,
    /// Shared witnesses whose consent changed in the range: all their records go.
    pub(super) all_of: HashSet<String>,
    /// Interview id → (witness id, codebook id, codebook version).
    pub(super) interviews: HashMap<String, (String, String, String)>,
    /// Recording id → interview id, for stopped recordings only: a recording still being
    /// recorded waits for a later bundle (its stop is audited, so that bundle takes it), and
    /// so do its markers.
    pub(super) stopped: HashMap<String, String>,
}

impl Plan {
    pub(super) fn wanted(&self, id: &str, witness: &str) -> bool {
        self.share.get(witness) == Some(&Share::Shared)
            && (self.full || self.changed.contains(id) || self.all_of.contains(witness))
    }
    pub(super) fn considered(&self, id: &str, witness: &str) -> bool {
        self.full || self.changed.contains(id) || self.all_of.contains(witness)
    }
}

impl Vault {
    pub(super) fn plan_export(&self, opts: &ExportOptions) -> Result<Plan> {
        let conn = &self.conn;
        let last_to: i64 = conn.query_row(
            "SELECT ifnull(max(audit_to_seq), 0) FROM bundle_exports",
            [],
            |r| r.get(0),
        )?;
        let to: i64 = conn.query_row("SELECT ifnull(max(seq), 0) FROM audit_log", [], |r| {
            r.get(0)
        })?;
        let from = if opts.full { 1 } else { last_to + 1 };
        if !opts.full && from > to {
            return Err(Error::NothingToExport(
                "nothing changed since the last bundle; use --full to export everything again"
                    .into(),
            ));
        }
        let mut share = HashMap::new();
        let mut identity_ok = HashSet::new();
        let mut consent_witness = HashMap::new();
        {
            let mut consents = HashMap::new();
            let mut st = conn.prepare(&format!("SELECT {CONSENT_COLS} FROM consents"))?;
            for c in st.query_map([], consent_row)? {
                let c = c?;
                consents.insert(c.meta.id.clone(), c);
            }
            let mut st = conn.prepare(
                "SELECT w.id, c.id FROM witnesses w LEFT JOIN consents c ON c.witness_id = w.id",
            )?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
            })?;
            for row in rows {
                let (w, c) = row?;
                let status = match c.as_ref().and_then(|cid| consents.get(cid)) {
                    None => Share::NoConsent,
                    Some(consent) => {
                        consent_witness.insert(consent.meta.id.clone(), w.clone());
                        if consent.withdrawn_at.is_some() {
                            Share::Withdrawn
                        } else if consent.allows(ConsentScope::ShareArchive) {
                            if opts.include_identity
                                && consent.allows(ConsentScope::PublishIdentified)
                            {
                                identity_ok.insert(w.clone());
                            }
                            Share::Shared
                        } else {
                            Share::NotShared
                        }
                    }
                };
                share.insert(w, status);
            }
        }
        let mut changed = HashSet::new();
        let mut all_of = HashSet::new();
        // A full export takes everything shareable: what changed does not matter.
        if !opts.full {
            // Records a return bundle brought (action 'return') came from the archive, which
            // has them: they are not sent back (a received recording's audio can be gigabytes).
            // Their audit entries still go, the chain is whole.
            let mut st = conn.prepare("SELECT DISTINCT record_type, record_id FROM audit_log WHERE seq BETWEEN ?1 AND ?2 AND action <> 'return'")?;
            let rows = st.query_map([from, to], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            for row in rows {
                let (t, id) = row?;
                if t == "consent"
                    && let Some(w) = consent_witness.get(&id)
                    && share.get(w) == Some(&Share::Shared)
                {
                    all_of.insert(w.clone());
                }
                changed.insert(id);
            }
        }
        let mut interviews = HashMap::new();
        {
            let mut st = conn
                .prepare("SELECT id, witness_id, codebook_id, codebook_version FROM interviews")?;
            let rows = st.query_map([], |r| {
                Ok((r.get::<_, String>(0)?, (r.get(1)?, r.get(2)?, r.get(3)?)))
            })?;
            for row in rows {
                let (id, v) = row?;
                interviews.insert(id, v);
            }
        }
        let mut stopped = HashMap::new();
        {
            let mut st =
                conn.prepare("SELECT id, interview_id FROM recordings WHERE status = 'stopped'")?;
            let rows =
                st.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, iv) = row?;
                stopped.insert(id, iv);
            }
        }
        Ok(Plan {
            full: opts.full,
            from,
            to,
            share,
            identity_ok,
            changed,
            all_of,
            interviews,
            stopped,
        })
    }
}
