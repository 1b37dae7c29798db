//! Writing and reading records. Every write validates first, then changes the record, its
//! search entry and the audit log in one transaction, committed durably before returning.

use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::audit;
use crate::codebook::{QuestionType, searchable_text, validate_value};
use crate::error::{Error, Result};
use crate::form::Form;
use crate::model::*;
use crate::reason::Reason;
use crate::store::{Ctx, Vault, new_id};

/// Attachments are stored inside the encrypted database; above this, keep the file elsewhere.
pub const MAX_ATTACHMENT_BYTES: usize = 64 * 1024 * 1024;
/// Longest note (characters).
pub const MAX_NOTE_CHARS: usize = 100_000;

pub(crate) fn meta(r: &Row, at: usize) -> rusqlite::Result<RecordMeta> {
    Ok(RecordMeta {
        id: r.get(at)?,
        device_id: r.get(at + 1)?,
        created_at: r.get(at + 2)?,
        updated_at: r.get(at + 3)?,
        version: r.get(at + 4)?,
    })
}

fn new_meta(cx: &Ctx) -> RecordMeta {
    RecordMeta {
        id: new_id(),
        device_id: cx.device_id.clone(),
        created_at: cx.now.clone(),
        updated_at: cx.now.clone(),
        version: 1,
    }
}

pub(crate) const META: &str = "id, device_id, created_at, updated_at, version";

fn current_year() -> i64 {
    time::OffsetDateTime::now_utc().year() as i64
}

fn check_profile(p: &WitnessProfile) -> Result<()> {
    let bad = |m: String| Err(Error::invalid(m));
    if let Some(g) = &p.gender
        && !GENDERS.contains(&g.as_str())
    {
        return bad(format!("gender must be one of {}", GENDERS.join(", ")));
    }
    if let Some(s) = &p.songbun
        && !SONGBUN.contains(&s.as_str())
    {
        return bad(format!("songbun must be one of {}", SONGBUN.join(", ")));
    }
    let year = current_year();
    if p.birth_year.is_some_and(|y| !(1900..=year).contains(&y)) {
        return Err(Error::Invalid(Reason::BirthYearRange {
            min: 1900,
            max: year,
        }));
    }
    if p.year_left.is_some_and(|y| !(1945..=year).contains(&y)) {
        return Err(Error::Invalid(Reason::YearLeftRange {
            min: 1945,
            max: year,
        }));
    }
    if let (Some(b), Some(l)) = (p.birth_year, p.year_left)
        && l < b
    {
        return Err(Error::Invalid(Reason::YearLeftBeforeBirth));
    }
    if p.repatriations.is_some_and(|n| !(0..=100).contains(&n)) {
        return Err(Error::Invalid(Reason::RepatriationsRange {
            min: 0,
            max: 100,
        }));
    }
    if let Some(pr) = &p.home_province
        && (pr.is_empty() || !pr.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
    {
        return bad("home province must be a province code such as north_hamgyong".into());
    }
    Ok(())
}

pub(crate) fn witness_row(r: &Row) -> rusqlite::Result<Witness> {
    Ok(Witness {
        meta: meta(r, 0)?,
        code: r.get(5)?,
        profile: WitnessProfile {
            gender: r.get(6)?,
            birth_year: r.get(7)?,
            home_province: r.get(8)?,
            songbun: r.get(9)?,
            year_left: r.get(10)?,
            repatriations: r.get(11)?,
        },
    })
}
pub(crate) const WITNESS_COLS: &str = "id, device_id, created_at, updated_at, version, code, gender, birth_year, home_province, songbun, year_left, repatriations";

pub(crate) fn consent_row(r: &Row) -> rusqlite::Result<Consent> {
    Ok(Consent {
        meta: meta(r, 0)?,
        witness_id: r.get(5)?,
        scopes: ConsentScopes {
            record_audio: r.get(6)?,
            transcribe: r.get(7)?,
            share_archive: r.get(8)?,
            quote_anonymously: r.get(9)?,
            publish_identified: r.get(10)?,
        },
        taken_by: r.get(11)?,
        taken_at: r.get(12)?,
        method: if r.get::<_, String>(13)? == "written" {
            ConsentMethod::Written
        } else {
            ConsentMethod::Oral
        },
        withdrawn_at: r.get(14)?,
    })
}
pub(crate) const CONSENT_COLS: &str = "id, device_id, created_at, updated_at, version, witness_id, record_audio, transcribe, share_archive, quote_anonymously, publish_identified, taken_by, taken_at, method, withdrawn_at";

pub(crate) fn interview_row(r: &Row) -> rusqlite::Result<Interview> {
    let langs: String = r.get(9)?;
    Ok(Interview {
        meta: meta(r, 0)?,
        witness_id: r.get(5)?,
        witness_code: r.get(6)?,
        interviewer: r.get(7)?,
        interpreter: r.get(8)?,
        languages: langs
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect(),
        place: r.get(10)?,
        started_at: r.get(11)?,
        ended_at: r.get(12)?,
        codebook_id: r.get(13)?,
        codebook_version: r.get(14)?,
        status: InterviewStatus::parse(&r.get::<_, String>(15)?).unwrap_or(InterviewStatus::Draft),
    })
}
pub(crate) const INTERVIEW_SELECT: &str = "SELECT i.id, i.device_id, i.created_at, i.updated_at, i.version, i.witness_id, w.code, i.interviewer, i.interpreter, i.languages, i.place, i.started_at, i.ended_at, i.codebook_id, i.codebook_version, i.status FROM interviews i JOIN witnesses w ON w.id = i.witness_id";

pub(crate) fn instance_row(r: &Row) -> rusqlite::Result<GroupInstance> {
    Ok(GroupInstance {
        meta: meta(r, 0)?,
        interview_id: r.get(5)?,
        group_id: r.get(6)?,
        parent_id: r.get(7)?,
        ordinal: r.get(8)?,
        deleted: r.get(9)?,
    })
}

pub(crate) fn answer_row(r: &Row) -> rusqlite::Result<Answer> {
    let v: String = r.get(8)?;
    Ok(Answer {
        meta: meta(r, 0)?,
        interview_id: r.get(5)?,
        instance_id: r.get(6)?,
        question_id: r.get(7)?,
        value: serde_json::from_str(&v).unwrap_or(Value::Null),
    })
}

/// Languages are short codes: ko, en, zh, ru, ja…
fn check_languages(l: &[String]) -> Result<()> {
    for x in l {
        if x.len() < 2 || x.len() > 8 || !x.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err(Error::Invalid(Reason::NotALanguage { code: x.clone() }));
        }
    }
    Ok(())
}

fn one_line(s: &Option<String>, max: usize, reason: fn(usize) -> Reason) -> Result<()> {
    if let Some(s) = s
        && (s.contains('\n') || s.chars().count() > max)
    {
        return Err(Error::Invalid(reason(max)));
    }
    Ok(())
}

impl Vault {
    // ---- witnesses ---------------------------------------------------------------------

    /// Adds a witness with a new pseudonymous code (W-YEAR-NNNN, numbered per vault).
    pub fn add_witness(
        &mut self,
        profile: WitnessProfile,
        identity: Option<WitnessIdentity>,
    ) -> Result<Witness> {
        check_profile(&profile)?;
        self.write(|tx, cx| {
            let year = &cx.now[..4];
            let last: Option<String> = tx
                .query_row("SELECT code FROM witnesses WHERE code LIKE ?1 ORDER BY length(code) DESC, code DESC LIMIT 1", [format!("W-{year}-%")], |r| r.get(0))
                .optional()?;
            let n = last.and_then(|c| c.rsplit('-').next().and_then(|n| n.parse::<u32>().ok())).unwrap_or(0) + 1;
            let w = Witness { meta: new_meta(cx), code: format!("W-{year}-{n:04}"), profile };
            tx.execute(
                &format!("INSERT INTO witnesses ({WITNESS_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12)"),
                params![w.meta.id, w.meta.device_id, w.meta.created_at, w.meta.updated_at, w.meta.version, w.code,
                    w.profile.gender, w.profile.birth_year, w.profile.home_province, w.profile.songbun, w.profile.year_left, w.profile.repatriations],
            )?;
            audit::append(tx, cx, "witness", &w.meta.id, "create", &w)?;
            if let Some(id) = identity {
                write_identity(tx, cx, &w.meta.id, &id)?;
            }
            Ok(w)
        })
    }

    pub fn update_witness_profile(
        &mut self,
        witness: &str,
        profile: WitnessProfile,
    ) -> Result<Witness> {
        check_profile(&profile)?;
        let mut w = self.witness(witness)?;
        self.write(|tx, cx| {
            w.profile = profile;
            w.meta.version += 1;
            w.meta.updated_at = cx.now.clone();
            tx.execute(
                "UPDATE witnesses SET gender=?2, birth_year=?3, home_province=?4, songbun=?5, year_left=?6, repatriations=?7, version=?8, updated_at=?9 WHERE id=?1",
                params![w.meta.id, w.profile.gender, w.profile.birth_year, w.profile.home_province, w.profile.songbun, w.profile.year_left, w.profile.repatriations, w.meta.version, w.meta.updated_at],
            )?;
            audit::append(tx, cx, "witness", &w.meta.id, "update", &w)?;
            Ok(w)
        })
    }

    pub fn set_witness_identity(&mut self, witness: &str, identity: WitnessIdentity) -> Result<()> {
        let w = self.witness(witness)?;
        self.write(|tx, cx| write_identity(tx, cx, &w.meta.id, &identity))
    }

    /// A witness by code (W-…) or id.
    pub fn witness(&self, code_or_id: &str) -> Result<Witness> {
        self.conn
            .query_row(
                &format!("SELECT {WITNESS_COLS} FROM witnesses WHERE code = ?1 OR id = ?1"),
                [code_or_id],
                witness_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("witness", code_or_id.to_string()))
    }

    pub fn witnesses(&self) -> Result<Vec<Witness>> {
        let mut st = self.conn.prepare(&format!(
            "SELECT {WITNESS_COLS} FROM witnesses ORDER BY code"
        ))?;
        let rows = st.query_map([], witness_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Identifying details; callers show them only on explicit request.
    pub fn witness_identity(&self, witness: &str) -> Result<Option<WitnessIdentity>> {
        let w = self.witness(witness)?;
        Ok(self
            .conn
            .query_row(
                "SELECT real_name, contact, notes FROM witness_identities WHERE witness_id = ?1",
                [&w.meta.id],
                |r| {
                    Ok(WitnessIdentity {
                        real_name: r.get(0)?,
                        contact: r.get(1)?,
                        notes: r.get(2)?,
                    })
                },
            )
            .optional()?)
    }

    // ---- consent -----------------------------------------------------------------------

    /// Records (or replaces) a witness's consent. Scopes that depend on others are checked:
    /// transcription needs audio recording, publishing with identity needs sharing.
    pub fn set_consent(
        &mut self,
        witness: &str,
        scopes: ConsentScopes,
        taken_by: &str,
        taken_at: Option<&str>,
        method: ConsentMethod,
    ) -> Result<Consent> {
        if scopes.transcribe && !scopes.record_audio {
            return Err(Error::Invalid(Reason::TranscribeNeedsAudio));
        }
        if scopes.publish_identified && !scopes.share_archive {
            return Err(Error::Invalid(Reason::PublishNeedsShare));
        }
        if taken_by.trim().is_empty() {
            return Err(Error::Invalid(Reason::ConsentTakerMissing));
        }
        let w = self.witness(witness)?;
        let existing = self.consent(&w.meta.id)?;
        self.write(|tx, cx| {
            let mut c = match existing {
                Some(mut c) => {
                    c.meta.version += 1;
                    c.meta.updated_at = cx.now.clone();
                    c
                }
                None => Consent {
                    meta: new_meta(cx),
                    witness_id: w.meta.id.clone(),
                    scopes,
                    taken_by: String::new(),
                    taken_at: String::new(),
                    method,
                    withdrawn_at: None,
                },
            };
            c.scopes = scopes;
            c.taken_by = taken_by.trim().to_string();
            c.taken_at = taken_at.map_or_else(|| cx.now.clone(), str::to_string);
            c.method = method;
            c.withdrawn_at = None;
            tx.execute(
                &format!("INSERT OR REPLACE INTO consents ({CONSENT_COLS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15)"),
                params![c.meta.id, c.meta.device_id, c.meta.created_at, c.meta.updated_at, c.meta.version, c.witness_id,
                    c.scopes.record_audio, c.scopes.transcribe, c.scopes.share_archive, c.scopes.quote_anonymously, c.scopes.publish_identified,
                    c.taken_by, c.taken_at, if c.method == ConsentMethod::Written { "written" } else { "oral" }, c.withdrawn_at],
            )?;
            audit::append(tx, cx, "consent", &c.meta.id, if c.meta.version == 1 { "create" } else { "update" }, &c)?;
            Ok(c)
        })
    }

    /// Withdrawal ends every scope from `at` (default: now); the record of what was given stays.
    pub fn withdraw_consent(&mut self, witness: &str, at: Option<&str>) -> Result<Consent> {
        let w = self.witness(witness)?;
        let mut c = self
            .consent(&w.meta.id)?
            .ok_or_else(|| Error::NotFound("consent for witness", w.code.clone()))?;
        if c.withdrawn_at.is_some() {
            return Err(Error::Invalid(Reason::ConsentAlreadyWithdrawn {
                witness: w.code.clone(),
            }));
        }
        self.write(|tx, cx| {
            c.withdrawn_at = Some(at.map_or_else(|| cx.now.clone(), str::to_string));
            c.meta.version += 1;
            c.meta.updated_at = cx.now.clone();
            tx.execute(
                "UPDATE consents SET withdrawn_at = ?2, version = ?3, updated_at = ?4 WHERE id = ?1",
                params![c.meta.id, c.withdrawn_at, c.meta.version, c.meta.updated_at],
            )?;
            audit::append(tx, cx, "consent", &c.meta.id, "withdraw", &c)?;
            Ok(c)
        })
    }

    pub fn consent(&self, witness: &str) -> Result<Option<Consent>> {
        let w = self.witness(witness)?;
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {CONSENT_COLS} FROM consents WHERE witness_id = ?1"),
                [&w.meta.id],
                consent_row,
            )
            .optional()?)
    }

    /// The one question every later use asks (export, audio, transcription): no consent
    /// recorded means no.
    pub fn consent_allows(&self, witness: &str, scope: ConsentScope) -> Result<bool> {
        Ok(self.consent(witness)?.is_some_and(|c| c.allows(scope)))
    }

    // ---- interviews --------------------------------------------------------------------

    pub fn new_interview(&mut self, n: NewInterview) -> Result<Interview> {
        let w = self.witness(&n.witness)?;
        check_languages(&n.languages)?;
        if n.languages.is_empty() {
            return Err(Error::Invalid(Reason::NoLanguage));
        }
        one_line(&n.place, 200, |max| Reason::PlaceOneLine { max })?;
        one_line(&n.interpreter, 200, |max| Reason::InterpreterOneLine {
            max,
        })?;
        let cb = match &n.codebook {
            Some((id, v)) => self.codebook(id, v)?,
            None => {
                let d = crate::codebook::Codebook::default_codebook();
                self.codebook(&d.id, &d.version)?
            }
        };
        self.write(|tx, cx| {
            let i = Interview {
                meta: new_meta(cx),
                witness_id: w.meta.id.clone(),
                witness_code: w.code.clone(),
                interviewer: cx.actor.clone(),
                interpreter: n.interpreter.clone(),
                languages: n.languages.clone(),
                place: n.place.clone(),
                started_at: Some(n.started_at.clone().unwrap_or_else(|| cx.now.clone())),
                ended_at: None,
                codebook_id: cb.id.clone(),
                codebook_version: cb.version.clone(),
                status: InterviewStatus::Draft,
            };
            tx.execute(
                "INSERT INTO interviews (id, device_id, created_at, updated_at, version, witness_id, interviewer, interpreter, languages, place, started_at, ended_at, codebook_id, codebook_version, status)
                 VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,'draft')",
                params![i.meta.id, i.meta.device_id, i.meta.created_at, i.meta.updated_at, i.meta.version, i.witness_id, i.interviewer,
                    i.interpreter, i.languages.join(","), i.place, i.started_at, i.ended_at, i.codebook_id, i.codebook_version],
            )?;
            audit::append(tx, cx, "interview", &i.meta.id, "create", &i)?;
            Ok(i)
        })
    }

    pub fn interview(&self, id: &str) -> Result<Interview> {
        self.conn
            .query_row(
                &format!("{INTERVIEW_SELECT} WHERE i.id = ?1"),
                [id],
                interview_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("interview", id.to_string()))
    }

    /// Interviews, newest first, optionally only one status or one witness.
    pub fn interviews(
        &self,
        status: Option<InterviewStatus>,
        witness: Option<&str>,
    ) -> Result<Vec<Interview>> {
        let wid = witness
            .map(|w| self.witness(w))
            .transpose()?
            .map(|w| w.meta.id);
        let mut st = self.conn.prepare(&format!(
            "{INTERVIEW_SELECT} WHERE (?1 IS NULL OR i.status = ?1) AND (?2 IS NULL OR i.witness_id = ?2) ORDER BY i.started_at DESC, i.id DESC"
        ))?;
        let rows = st.query_map(params![status.map(|s| s.code()), wid], interview_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn interview_detail(&self, id: &str) -> Result<InterviewDetail> {
        let interview = self.interview(id)?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {META}, interview_id, group_id, parent_id, ordinal, deleted FROM group_instances WHERE interview_id = ?1 ORDER BY group_id, ordinal"
        ))?;
        let instances = st
            .query_map([id], instance_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {META}, interview_id, instance_id, question_id, value FROM answers WHERE interview_id = ?1 ORDER BY created_at, id"
        ))?;
        let answers = st
            .query_map([id], answer_row)?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {META}, interview_id, question_id, instance_id, text FROM notes WHERE interview_id = ?1 ORDER BY created_at, id"
        ))?;
        let notes = st
            .query_map([id], |r| {
                Ok(Note {
                    meta: meta(r, 0)?,
                    interview_id: r.get(5)?,
                    question_id: r.get(6)?,
                    instance_id: r.get(7)?,
                    text: r.get(8)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        let mut st = self.conn.prepare(&format!(
            "SELECT {META}, interview_id, name, media_type, size, sha256 FROM attachments WHERE interview_id = ?1 ORDER BY created_at, id"
        ))?;
        let attachments = st
            .query_map([id], |r| {
                Ok(AttachmentInfo {
                    meta: meta(r, 0)?,
                    interview_id: r.get(5)?,
                    name: r.get(6)?,
                    media_type: r.get(7)?,
                    size: r.get(8)?,
                    sha256: r.get(9)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(InterviewDetail {
            interview,
            instances,
            answers,
            notes,
            attachments,
        })
    }

    /// Adds an instance of a repeatable group (a detention episode, an incident, a perpetrator).
    /// A nested group needs the instance of its enclosing group as `parent`.
    pub fn add_group_instance(
        &mut self,
        interview_id: &str,
        group_id: &str,
        parent: Option<&str>,
    ) -> Result<GroupInstance> {
        let i = self.interview(interview_id)?;
        let cb = self.codebook(&i.codebook_id, &i.codebook_version)?;
        let q = cb
            .question(group_id)
            .ok_or_else(|| Error::NotFound("question", group_id.to_string()))?;
        if q.kind != QuestionType::Group {
            return Err(Error::Invalid(Reason::NotAGroup {
                question: group_id.to_string(),
            }));
        }
        self.check_instance_parent(interview_id, q.group.as_deref(), parent)?;
        self.write(|tx, cx| {
            let ordinal: i64 = tx.query_row(
                "SELECT coalesce(max(ordinal), 0) + 1 FROM group_instances WHERE interview_id = ?1 AND group_id = ?2 AND ifnull(parent_id, '') = ifnull(?3, '')",
                params![interview_id, group_id, parent],
                |r| r.get(0),
            )?;
            let g = GroupInstance {
                meta: new_meta(cx),
                interview_id: interview_id.to_string(),
                group_id: group_id.to_string(),
                parent_id: parent.map(str::to_string),
                ordinal,
                deleted: false,
            };
            tx.execute(
                &format!("INSERT INTO group_instances ({META}, interview_id, group_id, parent_id, ordinal, deleted) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,0)"),
                params![g.meta.id, g.meta.device_id, g.meta.created_at, g.meta.updated_at, g.meta.version, g.interview_id, g.group_id, g.parent_id, g.ordinal],
            )?;
            audit::append(tx, cx, "group_instance", &g.meta.id, "create", &g)?;
            Ok(g)
        })
    }

    /// Removes an instance from the form. Its answers are kept (hidden), so nothing typed is
    /// lost and the change can travel to the archive like any other.
    pub fn remove_group_instance(&mut self, instance_id: &str) -> Result<()> {
        self.instance(instance_id)?
            .ok_or_else(|| Error::NotFound("group instance", instance_id.to_string()))?;
        self.write(|tx, cx| {
            tx.execute("UPDATE group_instances SET deleted = 1, version = version + 1, updated_at = ?2 WHERE id = ?1", params![instance_id, cx.now])?;
            audit::append(tx, cx, "group_instance", instance_id, "delete", &serde_json::json!({"id": instance_id, "deleted": true}))
        })
    }

    fn instance(&self, id: &str) -> Result<Option<GroupInstance>> {
        Ok(self
            .conn
            .query_row(&format!("SELECT {META}, interview_id, group_id, parent_id, ordinal, deleted FROM group_instances WHERE id = ?1"), [id], instance_row)
            .optional()?)
    }

    /// `instance` must be a live instance of `group` in this interview (None for top level).
    fn check_instance_parent(
        &self,
        interview_id: &str,
        group: Option<&str>,
        instance: Option<&str>,
    ) -> Result<()> {
        match (group, instance) {
            (None, None) => Ok(()),
            (None, Some(_)) => Err(Error::Invalid(Reason::InstanceNotExpected)),
            (Some(g), None) => Err(Error::Invalid(Reason::InstanceNeeded {
                group: g.to_string(),
            })),
            (Some(g), Some(i)) => match self.instance(i)? {
                Some(inst)
                    if inst.interview_id == interview_id && inst.group_id == g && !inst.deleted =>
                {
                    Ok(())
                }
                Some(inst) if inst.deleted => Err(Error::Invalid(Reason::InstanceRemoved {
                    instance: i.to_string(),
                })),
                Some(_) => Err(Error::Invalid(Reason::InstanceElsewhere {
                    instance: i.to_string(),
                    group: g.to_string(),
                })),
                None => Err(Error::NotFound("group instance", i.to_string())),
            },
        }
    }

    /// Saves one answer. Returns only after the commit is on disk.
    pub fn set_answer(
        &mut self,
        interview_id: &str,
        instance: Option<&str>,
        question_id: &str,
        value: &Value,
    ) -> Result<Answer> {
        let i = self.interview(interview_id)?;
        let cb = self.codebook(&i.codebook_id, &i.codebook_version)?;
        let q = cb
            .question(question_id)
            .ok_or_else(|| Error::NotFound("question", question_id.to_string()))?;
        let value = validate_value(&cb, q, value).map_err(|reason| Error::InvalidAnswer {
            question: question_id.to_string(),
            reason,
        })?;
        self.check_instance_parent(interview_id, q.group.as_deref(), instance)?;
        let search_text = searchable_text(q, &value);
        let existing = self.answer(interview_id, instance, question_id)?;
        self.write(|tx, cx| {
            let a = match existing {
                Some(mut a) => {
                    a.value = value;
                    a.meta.version += 1;
                    a.meta.updated_at = cx.now.clone();
                    tx.execute("UPDATE answers SET value = ?2, version = ?3, updated_at = ?4 WHERE id = ?1", params![a.meta.id, a.value.to_string(), a.meta.version, a.meta.updated_at])?;
                    a
                }
                None => {
                    let a = Answer { meta: new_meta(cx), interview_id: interview_id.into(), instance_id: instance.map(str::to_string), question_id: question_id.into(), value };
                    tx.execute(
                        &format!("INSERT INTO answers ({META}, interview_id, instance_id, question_id, value) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
                        params![a.meta.id, a.meta.device_id, a.meta.created_at, a.meta.updated_at, a.meta.version, a.interview_id, a.instance_id, a.question_id, a.value.to_string()],
                    )?;
                    a
                }
            };
            unindex(tx, &a.meta.id)?;
            if let Some(t) = &search_text {
                index(tx, &a.meta.id, interview_id, "answer", t)?;
            }
            audit::append(tx, cx, "answer", &a.meta.id, if a.meta.version == 1 { "create" } else { "update" }, &a)?;
            Ok(a)
        })
    }

    /// Removes an answer (the interviewer cleared the field).
    pub fn clear_answer(
        &mut self,
        interview_id: &str,
        instance: Option<&str>,
        question_id: &str,
    ) -> Result<bool> {
        let Some(a) = self.answer(interview_id, instance, question_id)? else {
            return Ok(false);
        };
        self.write(|tx, cx| {
            tx.execute("DELETE FROM answers WHERE id = ?1", [&a.meta.id])?;
            unindex(tx, &a.meta.id)?;
            tx.execute(
                "INSERT OR REPLACE INTO tombstones (record_id, record_type, interview_id, device_id, deleted_at) VALUES (?1, 'answer', ?2, ?3, ?4)",
                params![a.meta.id, interview_id, cx.device_id, cx.now],
            )?;
            audit::append(tx, cx, "answer", &a.meta.id, "delete", &serde_json::json!({"id": a.meta.id, "deleted": true}))?;
            Ok(true)
        })
    }

    pub fn answer(
        &self,
        interview_id: &str,
        instance: Option<&str>,
        question_id: &str,
    ) -> Result<Option<Answer>> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {META}, interview_id, instance_id, question_id, value FROM answers WHERE interview_id = ?1 AND ifnull(instance_id, '') = ifnull(?2, '') AND question_id = ?3"),
                params![interview_id, instance, question_id],
                answer_row,
            )
            .optional()?)
    }

    /// Marks an interview complete after checking every required, shown question is answered.
    pub fn complete_interview(&mut self, id: &str) -> Result<Interview> {
        let detail = self.interview_detail(id)?;
        let cb = self.codebook(
            &detail.interview.codebook_id,
            &detail.interview.codebook_version,
        )?;
        let missing = Form::new(&cb, &detail.answers, &detail.instances).missing_required();
        if !missing.is_empty() {
            return Err(Error::Incomplete(Reason::RequiredUnanswered {
                count: missing.len(),
                questions: missing.join(", "),
            }));
        }
        self.set_status(id, InterviewStatus::Complete, &[InterviewStatus::Draft])
    }

    /// A reviewer confirms a complete interview.
    pub fn review_interview(&mut self, id: &str) -> Result<Interview> {
        self.set_status(id, InterviewStatus::Reviewed, &[InterviewStatus::Complete])
    }

    /// Back to draft, e.g. to add a forgotten episode; the audit log keeps the history.
    pub fn reopen_interview(&mut self, id: &str) -> Result<Interview> {
        self.set_status(
            id,
            InterviewStatus::Draft,
            &[InterviewStatus::Complete, InterviewStatus::Reviewed],
        )
    }

    fn set_status(
        &mut self,
        id: &str,
        to: InterviewStatus,
        from: &[InterviewStatus],
    ) -> Result<Interview> {
        let mut i = self.interview(id)?;
        if !from.contains(&i.status) {
            return Err(Error::NotAllowed(Reason::StatusTransition {
                from: i.status.code().to_string(),
                to: to.code().to_string(),
            }));
        }
        self.write(|tx, cx| {
            i.status = to;
            i.meta.version += 1;
            i.meta.updated_at = cx.now.clone();
            if to == InterviewStatus::Complete && i.ended_at.is_none() {
                i.ended_at = Some(cx.now.clone());
            }
            tx.execute(
                "UPDATE interviews SET status = ?2, version = ?3, updated_at = ?4, ended_at = ?5 WHERE id = ?1",
                params![i.meta.id, to.code(), i.meta.version, i.meta.updated_at, i.ended_at],
            )?;
            audit::append(tx, cx, "interview", &i.meta.id, to.code(), &i)?;
            Ok(i)
        })
    }

    // ---- notes and attachments ---------------------------------------------------------

    pub fn add_note(
        &mut self,
        interview_id: &str,
        question_id: Option<&str>,
        instance: Option<&str>,
        text: &str,
    ) -> Result<Note> {
        let i = self.interview(interview_id)?;
        if text.trim().is_empty() || text.chars().count() > MAX_NOTE_CHARS {
            return Err(Error::Invalid(Reason::NoteLength {
                max: MAX_NOTE_CHARS,
            }));
        }
        if let Some(q) = question_id {
            let cb = self.codebook(&i.codebook_id, &i.codebook_version)?;
            let qq = cb
                .question(q)
                .ok_or_else(|| Error::NotFound("question", q.to_string()))?;
            self.check_instance_parent(interview_id, qq.group.as_deref(), instance)?;
        }
        self.write(|tx, cx| {
            let n = Note { meta: new_meta(cx), interview_id: interview_id.into(), question_id: question_id.map(str::to_string), instance_id: instance.map(str::to_string), text: text.to_string() };
            tx.execute(
                &format!("INSERT INTO notes ({META}, interview_id, question_id, instance_id, text) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9)"),
                params![n.meta.id, n.meta.device_id, n.meta.created_at, n.meta.updated_at, n.meta.version, n.interview_id, n.question_id, n.instance_id, n.text],
            )?;
            index(tx, &n.meta.id, interview_id, "note", &n.text)?;
            audit::append(tx, cx, "note", &n.meta.id, "create", &n)?;
            Ok(n)
        })
    }

    /// Stores a file (a photo of a document, a sketch map) inside the encrypted database.
    pub fn add_attachment(
        &mut self,
        interview_id: &str,
        name: &str,
        media_type: &str,
        data: &[u8],
    ) -> Result<AttachmentInfo> {
        self.interview(interview_id)?;
        let name = name.trim();
        if name.is_empty()
            || name.len() > 255
            || name.contains(['/', '\\', '\0'])
            || name == "."
            || name == ".."
        {
            return Err(Error::invalid(
                "attachment name must be a plain file name (no folders), at most 255 bytes".into(),
            ));
        }
        if data.len() > MAX_ATTACHMENT_BYTES {
            return Err(Error::invalid(format!(
                "attachment larger than {} MiB",
                MAX_ATTACHMENT_BYTES >> 20
            )));
        }
        if media_type.is_empty() || media_type.len() > 100 || !media_type.contains('/') {
            return Err(Error::invalid(
                "media type must look like type/subtype".into(),
            ));
        }
        self.write(|tx, cx| {
            let a = AttachmentInfo {
                meta: new_meta(cx),
                interview_id: interview_id.into(),
                name: name.into(),
                media_type: media_type.into(),
                size: data.len() as i64,
                sha256: hex::encode(Sha256::digest(data)),
            };
            tx.execute(
                &format!("INSERT INTO attachments ({META}, interview_id, name, media_type, size, sha256, data) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11)"),
                params![a.meta.id, a.meta.device_id, a.meta.created_at, a.meta.updated_at, a.meta.version, a.interview_id, a.name, a.media_type, a.size, a.sha256, data],
            )?;
            audit::append(tx, cx, "attachment", &a.meta.id, "create", &a)?;
            Ok(a)
        })
    }

    /// An attachment's bytes, checked against the hash recorded when it was added.
    pub fn attachment_data(&self, id: &str) -> Result<Vec<u8>> {
        let (data, sha): (Vec<u8>, String) = self
            .conn
            .query_row(
                "SELECT data, sha256 FROM attachments WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .ok_or_else(|| Error::NotFound("attachment", id.to_string()))?;
        if hex::encode(Sha256::digest(&data)) != sha {
            return Err(Error::Corrupt(format!(
                "attachment {id} does not match its recorded hash"
            )));
        }
        Ok(data)
    }
}

fn write_identity(tx: &Connection, cx: &Ctx, witness_id: &str, id: &WitnessIdentity) -> Result<()> {
    let version: Option<i64> = tx
        .query_row(
            "SELECT version FROM witness_identities WHERE witness_id = ?1",
            [witness_id],
            |r| r.get(0),
        )
        .optional()?;
    let v = version.unwrap_or(0) + 1;
    tx.execute(
        "INSERT INTO witness_identities (witness_id, device_id, created_at, updated_at, version, real_name, contact, notes)
         VALUES (?1, ?2, ?3, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (witness_id) DO UPDATE SET updated_at = ?3, version = ?4, real_name = ?5, contact = ?6, notes = ?7",
        params![witness_id, cx.device_id, cx.now, v, id.real_name, id.contact, id.notes],
    )?;
    audit::append(
        tx,
        cx,
        "witness_identity",
        witness_id,
        if v == 1 { "create" } else { "update" },
        id,
    )
}

/// Adds a record's text to the search index and remembers the index row, so that replacing it
/// later is a lookup by rowid rather than a scan of the whole index.
pub(crate) fn index(
    tx: &Connection,
    record_id: &str,
    interview_id: &str,
    kind: &str,
    body: &str,
) -> Result<()> {
    tx.execute(
        "INSERT INTO search_index (record_id, interview_id, kind, body) VALUES (?1, ?2, ?3, ?4)",
        params![record_id, interview_id, kind, body],
    )?;
    let row = tx.last_insert_rowid();
    tx.execute(
        "INSERT OR REPLACE INTO search_rowids (record_id, fts_rowid) VALUES (?1, ?2)",
        params![record_id, row],
    )?;
    Ok(())
}

pub(crate) fn unindex(tx: &Connection, record_id: &str) -> Result<()> {
    let row: Option<i64> = tx
        .query_row(
            "SELECT fts_rowid FROM search_rowids WHERE record_id = ?1",
            [record_id],
            |r| r.get(0),
        )
        .optional()?;
    if let Some(row) = row {
        tx.execute("DELETE FROM search_index WHERE rowid = ?1", [row])?;
        tx.execute(
            "DELETE FROM search_rowids WHERE record_id = ?1",
            [record_id],
        )?;
    }
    Ok(())
}
