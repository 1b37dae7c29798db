//! Answer values: parsing what an interviewer typed and checking a stored value against its
//! question. The stored shape of each type is documented in docs/codebook.md.

use serde_json::{Value, json};

use super::{Codebook, Question, QuestionType};
use crate::partial_date::{DateRange, PartialDate};
use crate::reason::Reason;

pub const YES_NO: [&str; 4] = ["yes", "no", "unknown", "refused"];

/// Longest text answer accepted (characters); a long answer is a few pages, not a book.
const MAX_TEXT_CHARS: usize = 200_000;

fn vocab_check(cb: &Codebook, q: &Question, code: &str) -> Result<(), Reason> {
    let v = q
        .vocab
        .as_deref()
        .and_then(|v| cb.vocab(v))
        .ok_or(Reason::NoVocabulary)?;
    if v.term(code).is_some() {
        Ok(())
    } else {
        let codes: Vec<&str> = v.terms.iter().map(|t| t.code.as_str()).take(12).collect();
        let more = if v.terms.len() > 12 { ", …" } else { "" };
        Err(Reason::NotInVocabulary {
            vocab: v.id.clone(),
            codes: format!("{}{more}", codes.join(", ")),
        })
    }
}

/// Turns typed text into the stored value for `q` (CLI syntax in docs/codebook.md).
pub fn parse_input(cb: &Codebook, q: &Question, input: &str) -> Result<Value, Reason> {
    let t = input.trim();
    let v = match q.kind {
        QuestionType::Text | QuestionType::LongText => json!(input),
        QuestionType::SingleChoice | QuestionType::YesNo => json!(t),
        QuestionType::MultiChoice => Value::Array(
            t.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| json!(s))
                .collect(),
        ),
        QuestionType::Number => json!(t.parse::<f64>().map_err(|_| Reason::NotANumber)?),
        QuestionType::PartialDate => json!(t.parse::<PartialDate>()?.to_string()),
        QuestionType::DateRange => {
            serde_json::to_value(t.parse::<DateRange>()?).expect("serialisable")
        }
        QuestionType::Place => match t.split_once('/') {
            Some((p, l)) if q.vocab.is_some() && !p.contains(' ') => {
                json!({"province": p.trim(), "locality": l.trim()})
            }
            _ => json!({"province": null, "locality": t}),
        },
        QuestionType::Group => return Err(Reason::GroupHasNoValue),
    };
    validate_value(cb, q, &v)
}

/// A stored date range: `{"from": partial date, "to": partial date}`, either end optional.
/// Read by hand rather than by serde so that an error never quotes the value (serde's messages
/// do) and a bad end gets its partial-date reason.
fn date_range_value(v: &Value) -> Result<DateRange, Reason> {
    let obj = v.as_object().ok_or(Reason::ExpectedDateRange)?;
    if obj.keys().any(|k| k != "from" && k != "to") {
        return Err(Reason::ExpectedDateRange);
    }
    let end = |k: &str| -> Result<Option<PartialDate>, Reason> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => s.parse().map(Some),
            Some(_) => Err(Reason::ExpectedDateRange),
        }
    };
    let r = DateRange {
        from: end("from")?,
        to: end("to")?,
    };
    r.check()?;
    Ok(r)
}

/// Checks a value against its question and returns it normalised (e.g. numbers as integers
/// where whole, duplicate choices removed).
pub fn validate_value(cb: &Codebook, q: &Question, v: &Value) -> Result<Value, Reason> {
    match q.kind {
        QuestionType::Text | QuestionType::LongText => {
            let s = v.as_str().ok_or(Reason::ExpectedText)?;
            if s.trim().is_empty() {
                return Err(Reason::EmptyAnswer);
            }
            if s.chars().count() > MAX_TEXT_CHARS {
                return Err(Reason::TooLong {
                    max: MAX_TEXT_CHARS,
                });
            }
            if q.kind == QuestionType::Text && s.contains('\n') {
                return Err(Reason::NotOneLine);
            }
            Ok(json!(s))
        }
        QuestionType::SingleChoice => {
            let s = v.as_str().ok_or(Reason::ExpectedCode)?;
            vocab_check(cb, q, s)?;
            Ok(json!(s))
        }
        QuestionType::MultiChoice => {
            let arr = v.as_array().ok_or(Reason::ExpectedCodeList)?;
            if arr.is_empty() {
                return Err(Reason::NoneChosen);
            }
            let mut out: Vec<String> = Vec::new();
            for x in arr {
                let s = x.as_str().ok_or(Reason::ExpectedCodeList)?;
                vocab_check(cb, q, s)?;
                if !out.iter().any(|o| o == s) {
                    out.push(s.to_string());
                }
            }
            Ok(json!(out))
        }
        QuestionType::YesNo => {
            let s = v.as_str().ok_or(Reason::ExpectedYesNo)?;
            if !YES_NO.contains(&s) {
                return Err(Reason::ExpectedYesNo);
            }
            Ok(json!(s))
        }
        QuestionType::Number => {
            let n = v
                .as_f64()
                .filter(|n| n.is_finite())
                .ok_or(Reason::NotANumber)?;
            if let Some(min) = q.min.filter(|m| n < *m) {
                return Err(Reason::BelowMin { value: n, min });
            }
            if let Some(max) = q.max.filter(|m| n > *m) {
                return Err(Reason::AboveMax { value: n, max });
            }
            Ok(if n.fract() == 0.0 && n.abs() < 9e15 {
                json!(n as i64)
            } else {
                json!(n)
            })
        }
        QuestionType::PartialDate => {
            let s = v.as_str().ok_or(Reason::ExpectedPartialDate)?;
            Ok(json!(s.parse::<PartialDate>()?.to_string()))
        }
        QuestionType::DateRange => {
            Ok(serde_json::to_value(date_range_value(v)?).expect("serialisable"))
        }
        QuestionType::Place => {
            let obj = v.as_object().ok_or(Reason::ExpectedPlace)?;
            let province = obj.get("province").and_then(Value::as_str);
            let locality = obj
                .get("locality")
                .and_then(Value::as_str)
                .unwrap_or("")
                .trim();
            if let Some(p) = province {
                vocab_check(cb, q, p)?;
            }
            if province.is_none() && locality.is_empty() {
                return Err(Reason::PlaceEmpty);
            }
            if obj.keys().any(|k| k != "province" && k != "locality") {
                return Err(Reason::PlaceExtraFields);
            }
            Ok(json!({"province": province, "locality": locality}))
        }
        QuestionType::Group => Err(Reason::GroupHasNoValue),
    }
}

/// Text for people: choice codes become labels in `lang`.
pub fn display_value(cb: &Codebook, q: &Question, v: &Value, lang: &str) -> String {
    let label = |code: &str| {
        q.vocab
            .as_deref()
            .and_then(|vid| cb.vocab(vid))
            .and_then(|voc| voc.term(code))
            .map_or_else(|| code.to_string(), |t| t.label.get(lang).to_string())
    };
    match (q.kind, v) {
        (QuestionType::SingleChoice, Value::String(s)) => label(s),
        (QuestionType::MultiChoice, Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(label)
            .collect::<Vec<_>>()
            .join(", "),
        (QuestionType::DateRange, _) => serde_json::from_value::<DateRange>(v.clone())
            .map_or_else(|_| v.to_string(), |r| r.to_string()),
        (QuestionType::Place, Value::Object(o)) => {
            let loc = o.get("locality").and_then(Value::as_str).unwrap_or("");
            match o.get("province").and_then(Value::as_str) {
                Some(p) if loc.is_empty() => label(p),
                Some(p) => format!("{loc}, {}", label(p)),
                None => loc.to_string(),
            }
        }
        (_, Value::String(s)) => s.clone(),
        _ => v.to_string(),
    }
}

/// The free text in an answer that full-text search should find.
pub fn searchable_text(q: &Question, v: &Value) -> Option<String> {
    match q.kind {
        QuestionType::Text | QuestionType::LongText => v.as_str().map(str::to_string),
        QuestionType::Place => v
            .get("locality")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        _ => None,
    }
}
