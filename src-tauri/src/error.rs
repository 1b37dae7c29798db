//! Errors as the UI receives them: a stable code (translated by the UI); for the core's refusals
//! that a person using the app can meet a `reason`, `{code, params}`, which the UI translates
//! too (`reason.<code>` in `ui/src/i18n/*.json`): what was typed (answers, passphrase, witness
//! profile, consent, new interview, notes, archive recipient, search), the form (repeatable
//! group entries, status changes such as complete or reopen, the required questions still
//! unanswered, by codebook path), the transcript review (edit, translate, split, merge,
//! redact) and recordings (input format, markers, a recording already stopped or still
//! running, consent to record or transcribe). The code is `invalid`, `not_allowed` or
//! `incomplete` (`Error::code`).
//!
//! Free English `detail` remains for the core's refusals with `Reason::Detail` that the app
//! does not reach in normal use (bundles, the archive, attachments, the transcription
//! pipeline's own checks of model name, window and segment times, the audio writer's chunk
//! checks), for `not_found` (what was not found) and for `audio` (the audio system's own
//! message); none carries content. Nothing here is logged.

use serde::Serialize;
use testimony_core::{Error, Reason};

#[derive(Debug, Clone, Serialize, PartialEq)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppError {
    pub code: String,
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    // `Reason` is written by hand in ui/src/lib/types.ts: its serde form `{code, params}`
    // (adjacently tagged) is one TypeScript shape for every code, which the UI translates.
    #[cfg_attr(test, ts(type = "Reason | null", optional))]
    pub reason: Option<Reason>,
}

impl AppError {
    pub fn code(code: &str) -> AppError {
        AppError {
            code: code.into(),
            detail: None,
            reason: None,
        }
    }
    pub fn with_detail(code: &str, detail: impl Into<String>) -> AppError {
        AppError {
            code: code.into(),
            detail: Some(detail.into()),
            reason: None,
        }
    }
    #[cfg(test)]
    pub fn with_reason(code: &str, reason: Reason) -> AppError {
        AppError {
            code: code.into(),
            detail: None,
            reason: Some(reason),
        }
    }
    /// The vault is not open (never unlocked, locked by the user, or by the idle timer).
    pub fn locked() -> AppError {
        AppError::code("locked")
    }
}

/// Only the code: an `AppError` passes through the transcription engine's callbacks as a
/// boxed error (see `transcribe.rs`) and comes out again by downcasting.
impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.code)
    }
}

impl std::error::Error for AppError {}

/// The core's own code, reason and showable detail (`Error::code`, `Error::reason`,
/// `Error::shown_detail`): the app adds no mapping of its own.
impl From<Error> for AppError {
    fn from(e: Error) -> AppError {
        AppError {
            code: e.code().into(),
            detail: e.shown_detail(),
            reason: e.reason().cloned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_people_facing_messages_become_details() {
        let e: AppError = Error::Sink("row (\"secret\") violates".into()).into();
        assert_eq!(e, AppError::code("sink"));
        let e: AppError = Error::Corrupt("page 3".into()).into();
        assert_eq!(e, AppError::code("corrupt"));
        let e: AppError = Error::Io(std::io::Error::other("/home/x/file")).into();
        assert_eq!(e, AppError::code("io"));
        let e: AppError = Error::InvalidAnswer {
            question: "q".into(),
            reason: Reason::NotANumber,
        }
        .into();
        assert_eq!(
            e,
            AppError::with_reason("invalid_answer", Reason::NotANumber)
        );
        let e: AppError = Error::Invalid(Reason::BirthYearRange {
            min: 1900,
            max: 2026,
        })
        .into();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "invalid", "detail": null, "reason": {"code": "birth_year_range", "params": {"min": 1900, "max": 2026}}})
        );
        // Status changes and the required questions left: codes with ids, under the same
        // top-level codes as before.
        let e: AppError = Error::NotAllowed(Reason::StatusTransition {
            from: "draft".into(),
            to: "reviewed".into(),
        })
        .into();
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"code": "not_allowed", "detail": null, "reason": {"code": "status_transition", "params": {"from": "draft", "to": "reviewed"}}})
        );
        let e: AppError = Error::Incomplete(Reason::RequiredUnanswered {
            count: 1,
            questions: "sc_knowledge".into(),
        })
        .into();
        assert_eq!(
            e,
            AppError::with_reason(
                "incomplete",
                Reason::RequiredUnanswered {
                    count: 1,
                    questions: "sc_knowledge".into()
                }
            )
        );
        let e: AppError = Error::NotFound("witness", "W-2026-0001".into()).into();
        assert_eq!(e, AppError::with_detail("not_found", "witness"));
        let e: AppError = Error::Audio("cannot open the audio input (device busy)".into()).into();
        assert_eq!(
            e,
            AppError::with_detail("audio", "cannot open the audio input (device busy)")
        );
        assert_eq!(
            AppError::from(Error::Cancelled),
            AppError::code("cancelled")
        );
        let e = Error::DamagedAudio {
            recording_id: "r1".into(),
            chunk: 7,
        };
        assert_eq!(AppError::from(e), AppError::code("damaged_recording"));
        let e = Error::NothingToExport(
            "nothing changed since the last bundle; use --full to export everything again".into(),
        );
        assert_eq!(
            AppError::from(e),
            AppError::code("nothing_to_export"),
            "no CLI advice in the app"
        );
    }

    /// Every error code the core can give (`Error::CODES`) has a message in English and Korean
    /// under `error.<code>`: a new code without messages fails here.
    #[test]
    fn every_error_code_has_a_message_in_english_and_korean() {
        for (lang, text) in [
            ("en", include_str!("../../ui/src/i18n/en.json")),
            ("ko", include_str!("../../ui/src/i18n/ko.json")),
        ] {
            let dict: serde_json::Value = serde_json::from_str(text).unwrap();
            for code in Error::CODES {
                let m = dict["error"][*code].as_str().unwrap_or_default();
                assert!(
                    !m.trim().is_empty(),
                    "{lang}.json: no message for error.{code}"
                );
            }
        }
    }

    /// Every reason code the core can give has a message in both languages, using only the
    /// code's own parameters; and no message is left for a code that no longer exists. Reads
    /// the UI's dictionaries, so a new code without messages fails here.
    #[test]
    fn every_reason_has_a_message_in_english_and_korean() {
        for (lang, text) in [
            ("en", include_str!("../../ui/src/i18n/en.json")),
            ("ko", include_str!("../../ui/src/i18n/ko.json")),
        ] {
            let dict: serde_json::Value = serde_json::from_str(text).unwrap();
            let messages = dict["reason"]
                .as_object()
                .unwrap_or_else(|| panic!("{lang}.json has no \"reason\" section"));
            for (code, params) in Reason::ALL {
                let m = messages
                    .get(*code)
                    .and_then(|m| m.as_str())
                    .unwrap_or_else(|| panic!("{lang}.json: no message for reason.{code}"));
                assert!(!m.trim().is_empty(), "{lang}.json: reason.{code} is empty");
                // Each `{name}` in the message must be a parameter of the code.
                let mut rest = m;
                while let Some(open) = rest.find('{') {
                    let close = rest[open..]
                        .find('}')
                        .map(|c| open + c)
                        .unwrap_or_else(|| panic!("{lang}.json: reason.{code}: unclosed {{"));
                    let name = &rest[open + 1..close];
                    assert!(
                        params.contains(&name),
                        "{lang}.json: reason.{code} uses {{{name}}}, not one of its parameters {params:?}"
                    );
                    rest = &rest[close + 1..];
                }
            }
            for code in messages.keys() {
                assert!(
                    Reason::ALL.iter().any(|(c, _)| c == code),
                    "{lang}.json: reason.{code} is not a code the core gives"
                );
            }
        }
    }
}
