//! The translator's review: corrections, translations, speakers, splits, merges and
//! redactions of segments, each kept as a version with who and when.

use super::*;

/// One version of a segment, as [`Vault::segment_history`] shows it: who made it, when, by
/// which action, and the segment as it was right after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SegmentVersion {
    pub at: String,
    pub actor: String,
    pub device_id: String,
    /// `create` (the model's text), `edit`, `translate`, `clear_translation`, `speaker`,
    /// `review`, `unreview`, `redact`, `unredact`, `split`, `merge`, `merged_into`.
    pub action: String,
    /// For split and merge: the other segment.
    pub related_segment: Option<String>,
    pub segment: TranscriptSegment,
}

fn chars_len(s: &str) -> u32 {
    s.chars().count() as u32
}

/// Characters `[from, to)` of `s`.
fn char_slice(s: &str, from: u32, to: u32) -> String {
    s.chars()
        .skip(from as usize)
        .take(to.saturating_sub(from) as usize)
        .collect()
}

/// Moves a field's redaction spans from `old` to `new` text. Spans before and after the
/// changed stretch (found as the common prefix and suffix) keep covering the same characters;
/// a span that overlaps or touches the changed stretch grows to cover all of it, because a
/// corrected name must stay hidden ("Kim" → "Kimm", "Kim" → "Mr Kim"): the rule over-redacts
/// rather than leaks. A span whose text was deleted with nothing in its place goes.
fn carry_redactions(redactions: &mut Vec<Redaction>, field: RedactionField, old: &str, new: &str) {
    let (o, n): (Vec<char>, Vec<char>) = (old.chars().collect(), new.chars().collect());
    let p = o.iter().zip(&n).take_while(|(a, b)| a == b).count();
    let max_s = o.len().min(n.len()) - p;
    let s = o
        .iter()
        .rev()
        .zip(n.iter().rev())
        .take(max_s)
        .take_while(|(a, b)| a == b)
        .count();
    let (old_end, new_end) = ((o.len() - s) as u32, (n.len() - s) as u32);
    let (p, delta) = (p as u32, n.len() as i64 - o.len() as i64);
    redactions.retain_mut(|r| {
        if r.field != field {
            return true;
        }
        if r.end < p {
            // before the change
        } else if r.start > old_end {
            r.start = (r.start as i64 + delta) as u32;
            r.end = (r.end as i64 + delta) as u32;
        } else {
            r.start = r.start.min(p);
            r.end = if r.end > old_end {
                (r.end as i64 + delta) as u32
            } else {
                new_end
            };
        }
        r.start < r.end
    });
}

/// Splits a field's spans at character `at` of a text whose second part loses `lead` leading
/// whitespace characters and whose first part is `first_len` characters long.
fn split_redactions(
    rs: &[Redaction],
    field: RedactionField,
    at: u32,
    first_len: u32,
    lead: u32,
) -> (Vec<Redaction>, Vec<Redaction>) {
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for r in rs.iter().filter(|r| r.field == field) {
        if r.start < first_len {
            a.push(Redaction {
                end: r.end.min(first_len),
                ..r.clone()
            });
        }
        let from = at + lead;
        if r.end > from {
            b.push(Redaction {
                id: new_id(),
                start: r.start.max(from) - from,
                end: r.end - from,
                ..r.clone()
            });
        }
    }
    (a, b)
}

fn join_text(a: &str, b: &str) -> String {
    format!("{a} {b}")
}

fn check_label(label: &str) -> Result<()> {
    if label.is_empty()
        || label.chars().count() > MAX_LABEL_CHARS
        || !label
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
    {
        return Err(Error::Invalid(Reason::RedactionLabel {
            max: MAX_LABEL_CHARS,
        }));
    }
    Ok(())
}

fn update_columns(tx: &Connection, s: &TranscriptSegment) -> Result<()> {
    tx.execute(
        "UPDATE transcript_segments SET version = ?2, updated_at = ?3, start_ms = ?4, end_ms = ?5, text = ?6, translation = ?7,
         translation_language = ?8, speaker = ?9, reviewed = ?10, redactions = ?11, confidence = ?12 WHERE id = ?1",
        params![
            s.meta.id,
            s.meta.version,
            s.meta.updated_at,
            s.start_ms as i64,
            s.end_ms as i64,
            s.text,
            s.translation,
            s.translation_language,
            s.speaker.map(Speaker::code),
            s.reviewed,
            serde_json::to_string(&s.redactions).expect("serialisable"),
            s.confidence.map(f64::from),
        ],
    )?;
    Ok(())
}

impl Vault {
    /// Applies `change` to a segment and saves the result as a new version (audited, in the
    /// history, search entry updated). `change` validates; on error nothing is written. A
    /// change that leaves the segment as it was writes nothing.
    fn update_segment(
        &mut self,
        segment_id: &str,
        action: &str,
        change: impl FnOnce(&mut TranscriptSegment) -> Result<()>,
    ) -> Result<TranscriptSegment> {
        let mut s = get_segment(&self.conn, segment_id)?;
        let before = s.clone();
        change(&mut s)?;
        if s == before {
            return Ok(s);
        }
        self.write(|tx, cx| {
            s.meta.version += 1;
            s.meta.updated_at = cx.now.clone();
            update_columns(tx, &s)?;
            record_version(tx, cx, &s, action, None)?;
            Ok(s)
        })
    }

    /// Replaces a segment's text (a correction). `machine_text` keeps what the model wrote.
    /// Redaction spans on the text follow it (see the rule on spans that touch the change).
    pub fn edit_segment_text(&mut self, segment_id: &str, text: &str) -> Result<TranscriptSegment> {
        check_text(RedactionField::Text, text)?;
        self.update_segment(segment_id, "edit", |s| {
            carry_redactions(&mut s.redactions, RedactionField::Text, &s.text, text);
            s.text = text.to_string();
            Ok(())
        })
    }

    /// Writes or replaces a segment's translation (one per segment, in `language`: en, ko, …).
    pub fn set_segment_translation(
        &mut self,
        segment_id: &str,
        text: &str,
        language: &str,
    ) -> Result<TranscriptSegment> {
        check_text(RedactionField::Translation, text)?;
        check_language("translation language", language)?;
        self.update_segment(segment_id, "translate", |s| {
            carry_redactions(
                &mut s.redactions,
                RedactionField::Translation,
                s.translation.as_deref().unwrap_or(""),
                text,
            );
            s.translation = Some(text.to_string());
            s.translation_language = Some(language.to_string());
            Ok(())
        })
    }

    /// Removes a segment's translation (and the redaction spans on it).
    pub fn clear_segment_translation(&mut self, segment_id: &str) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "clear_translation", |s| {
            if s.translation.is_none() {
                return Err(Error::Invalid(Reason::NoTranslation {
                    segment: s.meta.id.clone(),
                }));
            }
            s.translation = None;
            s.translation_language = None;
            s.redactions
                .retain(|r| r.field != RedactionField::Translation);
            Ok(())
        })
    }

    /// Who speaks in a segment (None: not said).
    pub fn set_segment_speaker(
        &mut self,
        segment_id: &str,
        speaker: Option<Speaker>,
    ) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "speaker", |s| {
            s.speaker = speaker;
            Ok(())
        })
    }

    /// Marks a segment reviewed (or not).
    pub fn set_segment_reviewed(
        &mut self,
        segment_id: &str,
        reviewed: bool,
    ) -> Result<TranscriptSegment> {
        self.update_segment(
            segment_id,
            if reviewed { "review" } else { "unreview" },
            |s| {
                s.reviewed = reviewed;
                Ok(())
            },
        )
    }

    /// Marks characters `[start, end)` of the segment's text or translation to be hidden in
    /// exports made with `redact` (shown as `[label]`). Spans of one field may not overlap.
    pub fn add_redaction(
        &mut self,
        segment_id: &str,
        field: RedactionField,
        start: u32,
        end: u32,
        label: &str,
    ) -> Result<Redaction> {
        check_label(label)?;
        let id = new_id();
        let s = self.update_segment(segment_id, "redact", |s| {
            let len = match field {
                RedactionField::Text => chars_len(&s.text),
                RedactionField::Translation => {
                    chars_len(s.translation.as_deref().ok_or_else(|| {
                        Error::Invalid(Reason::RedactNoTranslation {
                            segment: s.meta.id.clone(),
                        })
                    })?)
                }
            };
            if start >= end || end > len {
                return Err(Error::Invalid(Reason::RedactionRange {
                    field: field.code().to_string(),
                    len,
                }));
            }
            if let Some(o) = s
                .redactions
                .iter()
                .find(|r| r.field == field && r.start < end && start < r.end)
            {
                return Err(Error::Invalid(Reason::RedactionOverlap {
                    redaction: o.id.clone(),
                    start: o.start,
                    end: o.end,
                }));
            }
            s.redactions.push(Redaction {
                id: id.clone(),
                field,
                start,
                end,
                label: label.to_string(),
            });
            s.redactions.sort_by_key(|r| (r.field.code(), r.start));
            Ok(())
        })?;
        Ok(s.redactions
            .into_iter()
            .find(|r| r.id == id)
            .expect("just added"))
    }

    pub fn remove_redaction(
        &mut self,
        segment_id: &str,
        redaction_id: &str,
    ) -> Result<TranscriptSegment> {
        self.update_segment(segment_id, "unredact", |s| {
            let before = s.redactions.len();
            s.redactions.retain(|r| r.id != redaction_id);
            if s.redactions.len() == before {
                return Err(Error::NotFound("redaction", redaction_id.to_string()));
            }
            Ok(())
        })
    }

    /// Splits a segment in two at `at_ms` (strictly inside it) and at character `text_at` of
    /// its text (and `translation_at` of its translation, required when it has one). The first
    /// part keeps the id, history and `machine_text`; the second is a new segment starting at
    /// `at_ms`. Both keep speaker and language and become unreviewed; redaction spans go with
    /// the characters they cover. Returns both parts.
    pub fn split_segment(
        &mut self,
        segment_id: &str,
        at_ms: u64,
        text_at: u32,
        translation_at: Option<u32>,
    ) -> Result<(TranscriptSegment, TranscriptSegment)> {
        let s = get_segment(&self.conn, segment_id)?;
        if at_ms <= s.start_ms || at_ms >= s.end_ms {
            return Err(Error::Invalid(Reason::SplitTimeOutside {
                start_ms: s.start_ms,
                end_ms: s.end_ms,
            }));
        }
        // (first part, second part, characters trimmed at the start of the second part)
        let cut = |field: RedactionField, text: &str, at: u32| -> Result<(String, String, u32)> {
            let len = chars_len(text);
            let (a, b) = (char_slice(text, 0, at), char_slice(text, at, len));
            if at == 0 || at >= len || a.trim().is_empty() || b.trim().is_empty() {
                let max = len.saturating_sub(1);
                return Err(Error::Invalid(match field {
                    RedactionField::Text => Reason::SplitTextPosition { max },
                    RedactionField::Translation => Reason::SplitTranslationPosition { max },
                }));
            }
            let lead = chars_len(&b) - chars_len(b.trim_start());
            Ok((a.trim_end().to_string(), b.trim_start().to_string(), lead))
        };
        let (t1, t2, lead) = cut(RedactionField::Text, &s.text, text_at)?;
        let translation = match (&s.translation, translation_at) {
            (Some(tr), Some(at)) => Some(cut(RedactionField::Translation, tr, at)?),
            (Some(_), None) => {
                return Err(Error::Invalid(Reason::SplitNeedsTranslationPosition));
            }
            (None, Some(_)) => {
                return Err(Error::Invalid(Reason::SplitNoTranslation));
            }
            (None, None) => None,
        };
        let (mut r1, mut r2) = split_redactions(
            &s.redactions,
            RedactionField::Text,
            text_at,
            chars_len(&t1),
            lead,
        );
        if let (Some((tr1, _, lead)), Some(at)) = (&translation, translation_at) {
            let (a, b) = split_redactions(
                &s.redactions,
                RedactionField::Translation,
                at,
                chars_len(tr1),
                *lead,
            );
            r1.extend(a);
            r2.extend(b);
        }
        self.write(|tx, cx| {
            let seq: i64 = tx.query_row(
                "SELECT ifnull(max(seq), -1) + 1 FROM transcript_segments WHERE transcript_id = ?1",
                [&s.transcript_id],
                |r| r.get(0),
            )?;
            let mut first = s.clone();
            first.meta.version += 1;
            first.meta.updated_at = cx.now.clone();
            first.end_ms = at_ms;
            first.text = t1;
            first.reviewed = false;
            first.redactions = r1;
            let second = TranscriptSegment {
                meta: RecordMeta {
                    id: new_id(),
                    device_id: cx.device_id.clone(),
                    created_at: cx.now.clone(),
                    updated_at: cx.now.clone(),
                    version: 1,
                },
                seq: seq as u32,
                start_ms: at_ms,
                end_ms: s.end_ms,
                text: t2,
                machine_text: None,
                translation: translation.as_ref().map(|t| t.1.clone()),
                reviewed: false,
                redactions: r2,
                ..s.clone()
            };
            first.translation = translation.map(|t| t.0);
            update_columns(tx, &first)?;
            insert_segment(tx, &second)?;
            record_version(tx, cx, &first, "split", Some(&second.meta.id))?;
            record_version(tx, cx, &second, "split", Some(&first.meta.id))?;
            Ok((first, second))
        })
    }

    /// Merges two neighbouring segments of one transcript (in either order) into the earlier
    /// one: times from the first start to the last end, texts and translations joined with a
    /// space, redaction spans kept, unreviewed. The later segment is deleted (tombstone) and its
    /// history kept. Refused for segments that are not neighbours, that name different
    /// speakers, or whose translations are in different languages.
    pub fn merge_segments(&mut self, first_id: &str, second_id: &str) -> Result<TranscriptSegment> {
        if first_id == second_id {
            return Err(Error::Invalid(Reason::MergeSameSegment));
        }
        let x = get_segment(&self.conn, first_id)?;
        let y = get_segment(&self.conn, second_id)?;
        if x.transcript_id != y.transcript_id {
            return Err(Error::Invalid(Reason::MergeDifferentTranscripts));
        }
        let order: Vec<String> = self
            .transcript_segments(&x.transcript_id)?
            .into_iter()
            .map(|s| s.meta.id)
            .collect();
        let (px, py) = (
            order.iter().position(|i| *i == x.meta.id),
            order.iter().position(|i| *i == y.meta.id),
        );
        let (Some(px), Some(py)) = (px, py) else {
            return Err(Error::Corrupt(
                "a segment is missing from its transcript".into(),
            ));
        };
        if px.abs_diff(py) != 1 {
            return Err(Error::Invalid(Reason::MergeNotNeighbours {
                between: px.abs_diff(py) - 1,
            }));
        }
        let (a, b) = if px < py { (x, y) } else { (y, x) };
        if let (Some(sa), Some(sb)) = (a.speaker, b.speaker)
            && sa != sb
        {
            return Err(Error::Invalid(Reason::MergeDifferentSpeakers {
                first: sa.code().to_string(),
                second: sb.code().to_string(),
            }));
        }
        if let (Some(la), Some(lb)) = (&a.translation_language, &b.translation_language)
            && la != lb
        {
            return Err(Error::Invalid(Reason::MergeTranslationLanguages {
                first: la.clone(),
                second: lb.clone(),
            }));
        }
        let mut m = a.clone();
        m.start_ms = a.start_ms.min(b.start_ms);
        m.end_ms = a.end_ms.max(b.end_ms);
        m.text = join_text(&a.text, &b.text);
        let text_shift = chars_len(&a.text) + 1;
        let tr_shift = a.translation.as_deref().map_or(0, |t| chars_len(t) + 1);
        m.translation = match (&a.translation, &b.translation) {
            (Some(ta), Some(tb)) => Some(join_text(ta, tb)),
            (Some(t), None) | (None, Some(t)) => Some(t.clone()),
            (None, None) => None,
        };
        m.translation_language = a
            .translation_language
            .clone()
            .or(b.translation_language.clone());
        m.speaker = a.speaker.or(b.speaker);
        m.confidence = match (a.confidence, b.confidence) {
            (Some(ca), Some(cb)) => Some(ca.min(cb)),
            (c, d) => c.or(d),
        };
        m.reviewed = false;
        for r in &b.redactions {
            let shift = if r.field == RedactionField::Text {
                text_shift
            } else {
                tr_shift
            };
            m.redactions.push(Redaction {
                start: r.start + shift,
                end: r.end + shift,
                ..r.clone()
            });
        }
        m.redactions.sort_by_key(|r| (r.field.code(), r.start));
        self.write(|tx, cx| {
            m.meta.version += 1;
            m.meta.updated_at = cx.now.clone();
            update_columns(tx, &m)?;
            record_version(tx, cx, &m, "merge", Some(&b.meta.id))?;
            // The later segment's last version stays in the history, then it goes.
            tx.execute(
                "INSERT INTO transcript_history (id, segment_id, transcript_id, at, actor, device_id, action, related_segment, content)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'merged_into', ?7, ?8)",
                params![new_id(), b.meta.id, b.transcript_id, cx.now, cx.actor, cx.device_id, m.meta.id, serde_json::to_string(&b).expect("serialisable")],
            )?;
            unindex(tx, &b.meta.id)?;
            tx.execute("DELETE FROM transcript_segments WHERE id = ?1", [&b.meta.id])?;
            tombstone(tx, cx, "transcript_segment", &b.meta.id, &b.interview_id)?;
            Ok(m)
        })
    }

    /// Every version of a segment, oldest first: the model's text, each correction, each
    /// translation, with who and when. Also for a segment merged into another (its versions
    /// up to the merge).
    pub fn segment_history(&self, segment_id: &str) -> Result<Vec<SegmentVersion>> {
        let mut st = self.conn.prepare(
            "SELECT at, actor, device_id, action, related_segment, content FROM transcript_history WHERE segment_id = ?1 ORDER BY rowid",
        )?;
        let rows = st.query_map([segment_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, String>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (at, actor, device_id, action, related_segment, content) = row?;
            let segment = serde_json::from_str(&content).map_err(|_| {
                Error::Corrupt(format!(
                    "a history entry of segment {segment_id} cannot be read"
                ))
            })?;
            out.push(SegmentVersion {
                at,
                actor,
                device_id,
                action,
                related_segment,
                segment,
            });
        }
        if out.is_empty() {
            return Err(Error::NotFound(
                "transcript segment",
                segment_id.to_string(),
            ));
        }
        Ok(out)
    }
}
