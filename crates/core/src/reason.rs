//! Why the core refused what a person did (typed input, a form or status change, a transcript
//! edit, a recording step): a stable code with its parameters, so that each interface can say
//! it in its own language. `Display` is the English the CLI prints;
//! the app sends `{code, params}` to its UI, which has a message for every code in English and
//! Korean (`ui/src/i18n/*.json`, key `reason.<code>`; a test in src-tauri checks every code in
//! [`Reason::ALL`] against both files).
//!
//! Parameters never carry interview content (core invariant 4): limits, codebook codes and
//! question ids, status/speaker/language codes, witness pseudonym codes (W-…) and numbers. A
//! number that is out of range is the one exception already made before this type existed: it
//! names the typed number, which identifies nobody. A few codes also carry a record's random id
//! (group instance, segment, redaction, recording) only because the CLI's English names it;
//! the UI's messages do not show those.

use std::fmt;

use serde::Serialize;

/// Defines the enum and [`Reason::ALL`] from one list, so a new code cannot be missing from it.
macro_rules! reasons {
    ($( $(#[$doc:meta])* $code:literal => $name:ident $({ $($field:ident : $ty:ty),* $(,)? })? ;)*) => {
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(tag = "code", content = "params")]
        pub enum Reason {
            $( $(#[$doc])* #[serde(rename = $code)] $name $({ $($field: $ty),* })?, )*
        }

        impl Reason {
            /// Every code with the names of its parameters (the keys of `params`).
            pub const ALL: &'static [(&'static str, &'static [&'static str])] =
                &[ $( ($code, &[ $($(stringify!($field)),*)? ]) ),* ];

            /// The stable code (what the UI translates).
            pub fn code(&self) -> &'static str {
                match self {
                    $( Reason::$name { .. } => $code, )*
                }
            }
        }
    };
}

reasons! {
    /// A refusal with fixed English and no code of its own yet: bundles, the archive,
    /// attachments, the CLI's options and internal checks, which the app does not reach in
    /// normal use. `message` is the core's English and never quotes content; the app shows it
    /// as the error's detail beside the translated top-level code.
    "detail" => Detail { message: String };
    // ---- answers (codebook/values.rs) ----
    "no_vocabulary" => NoVocabulary;
    /// `codes`: up to 12 of the vocabulary's codes, comma-separated, "…" when there are more.
    "not_in_vocabulary" => NotInVocabulary { vocab: String, codes: String };
    "expected_text" => ExpectedText;
    "empty_answer" => EmptyAnswer;
    "too_long" => TooLong { max: usize };
    "not_one_line" => NotOneLine;
    "expected_code" => ExpectedCode;
    "expected_code_list" => ExpectedCodeList;
    "none_chosen" => NoneChosen;
    "expected_yes_no" => ExpectedYesNo;
    "not_a_number" => NotANumber;
    "below_min" => BelowMin { value: f64, min: f64 };
    "above_max" => AboveMax { value: f64, max: f64 };
    "expected_partial_date" => ExpectedPartialDate;
    "expected_date_range" => ExpectedDateRange;
    "expected_place" => ExpectedPlace;
    "place_empty" => PlaceEmpty;
    "place_extra_fields" => PlaceExtraFields;
    "group_has_no_value" => GroupHasNoValue;
    /// The CLI's `--raw` answers: where the JSON went wrong (never the text itself).
    "not_json" => NotJson { line: usize, column: usize };
    // ---- partial dates and date ranges (partial_date.rs) ----
    "date_qualifier" => DateQualifier;
    "date_shape" => DateShape;
    "date_digits" => DateDigits;
    "date_year_range" => DateYearRange { min: u16, max: u16 };
    "date_day_needs_month" => DateDayNeedsMonth;
    "date_month_range" => DateMonthRange;
    "date_no_such_day" => DateNoSuchDay;
    "not_a_date_range" => NotADateRange;
    "date_range_empty" => DateRangeEmpty;
    "date_range_backwards" => DateRangeBackwards;
    // ---- witness profile (records.rs) ----
    "birth_year_range" => BirthYearRange { min: i64, max: i64 };
    "year_left_range" => YearLeftRange { min: i64, max: i64 };
    "year_left_before_birth" => YearLeftBeforeBirth;
    "repatriations_range" => RepatriationsRange { min: i64, max: i64 };
    // ---- consent (records.rs) ----
    "transcribe_needs_audio" => TranscribeNeedsAudio;
    "publish_needs_share" => PublishNeedsShare;
    "consent_taker_missing" => ConsentTakerMissing;
    /// `witness`: the witness's pseudonym code (W-…), never a name.
    "consent_already_withdrawn" => ConsentAlreadyWithdrawn { witness: String };
    // ---- interviews and notes (records.rs) ----
    "no_language" => NoLanguage;
    /// `code`: what was given as a language code (a short code, not content).
    "not_a_language" => NotALanguage { code: String };
    "place_one_line" => PlaceOneLine { max: usize };
    "interpreter_one_line" => InterpreterOneLine { max: usize };
    "note_length" => NoteLength { max: usize };
    // ---- repeatable groups, interview status (records.rs) ----
    /// `question`: a codebook question id.
    "not_a_group" => NotAGroup { question: String };
    "instance_not_expected" => InstanceNotExpected;
    /// `group`: the codebook id of the group the question belongs to.
    "instance_needed" => InstanceNeeded { group: String };
    /// `instance`: the group instance's record id (random; the UI does not show it).
    "instance_removed" => InstanceRemoved { instance: String };
    "instance_elsewhere" => InstanceElsewhere { instance: String, group: String };
    /// `from`, `to`: interview status codes (draft, complete, reviewed); the UI names them.
    "status_transition" => StatusTransition { from: String, to: String };
    /// `questions`: the unanswered required questions as codebook paths
    /// (`detention_episode#2.facility_type`), comma-separated; `count`: how many.
    "required_unanswered" => RequiredUnanswered { count: usize, questions: String };
    // ---- search (search.rs) ----
    "search_empty" => SearchEmpty;
    "search_too_many_terms" => SearchTooManyTerms { max_terms: usize, max_bytes: usize };
    // ---- transcript review (transcript.rs) ----
    "segment_text_empty" => SegmentTextEmpty;
    "segment_text_too_long" => SegmentTextTooLong { max: usize };
    "translation_empty" => TranslationEmpty;
    "translation_too_long" => TranslationTooLong { max: usize };
    /// `what`: which language was given (translation language, transcript language, segment
    /// language), in English, for the CLI; the UI does not show it.
    "not_a_language_code" => NotALanguageCode { what: String };
    /// `segment`: the segment's record id (random; the UI does not show it).
    "no_translation" => NoTranslation { segment: String };
    "redaction_label" => RedactionLabel { max: usize };
    "redact_no_translation" => RedactNoTranslation { segment: String };
    /// `field`: text or translation; `len`: its length in characters.
    "redaction_range" => RedactionRange { field: String, len: u32 };
    /// `redaction`: the record id of the redaction it overlaps (not shown by the UI);
    /// `start`, `end`: that redaction's character positions.
    "redaction_overlap" => RedactionOverlap { redaction: String, start: u32, end: u32 };
    "split_time_outside" => SplitTimeOutside { start_ms: u64, end_ms: u64 };
    "split_text_position" => SplitTextPosition { max: u32 };
    "split_translation_position" => SplitTranslationPosition { max: u32 };
    "split_needs_translation_position" => SplitNeedsTranslationPosition;
    "split_no_translation" => SplitNoTranslation;
    "merge_same_segment" => MergeSameSegment;
    "merge_different_transcripts" => MergeDifferentTranscripts;
    /// `between`: how many segments lie between the two.
    "merge_not_neighbours" => MergeNotNeighbours { between: usize };
    /// `first`, `second`: speaker codes (witness, interviewer, …); the UI names them.
    "merge_different_speakers" => MergeDifferentSpeakers { first: String, second: String };
    /// `first`, `second`: language codes.
    "merge_translation_languages" => MergeTranslationLanguages { first: String, second: String };
    // ---- recordings (audio.rs) ----
    "sample_rate_range" => SampleRateRange { min: u32, max: u32 };
    "channels_range" => ChannelsRange { max: u16 };
    "marker_label" => MarkerLabel { max: usize };
    "marker_past_end" => MarkerPastEnd { at_ms: u64, duration_ms: u64 };
    /// `recording`: the recording's record id (random; the UI does not show it).
    "recording_already_stopped" => RecordingAlreadyStopped { recording: String };
    "recording_stopped" => RecordingStopped { recording: String };
    "recording_still_running" => RecordingStillRunning { recording: String };
    "recording_paused" => RecordingPaused { recording: String };
    "recording_closed" => RecordingClosed { recording: String };
    "recording_empty" => RecordingEmpty { recording: String };
    /// `witness`: the witness's pseudonym code (W-…), never a name.
    "no_audio_consent" => NoAudioConsent { witness: String };
    "no_transcribe_consent" => NoTranscribeConsent { witness: String };
    // ---- passphrases (keys.rs) ----
    "passphrase_too_short" => PassphraseTooShort { min: usize };
    "passphrase_repetitive" => PassphraseRepetitive;
    // ---- archive recipients (bundle/export.rs) ----
    /// `recipient`: the public key as given (public by design).
    "not_a_recipient" => NotARecipient { recipient: String };
}

/// What a partial-date message adds after the specific problem (unchanged from before codes).
const DATE_EXAMPLES: &str =
    "(expected e.g. 1998, 1998-03, 1998-03-12, about 1998, before 2001-05, after 2003)";

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let date = |f: &mut fmt::Formatter<'_>, what: &str| {
            write!(f, "not a partial date: {what} {DATE_EXAMPLES}")
        };
        let split = |f: &mut fmt::Formatter<'_>, what: &str, max: u32| {
            write!(
                f,
                "the split position in the {what} must leave text on both sides (a character position between 1 and {max})"
            )
        };
        match self {
            Reason::Detail { message } => f.write_str(message),
            Reason::NoVocabulary => f.write_str("question has no vocabulary"),
            Reason::NotInVocabulary { vocab, codes } => write!(f, "not a code of vocabulary '{vocab}' (codes: {codes})"),
            Reason::ExpectedText => f.write_str("expected text"),
            Reason::EmptyAnswer => f.write_str("empty answer (clear the answer instead)"),
            Reason::TooLong { max } => write!(f, "answer longer than {max} characters"),
            Reason::NotOneLine => f.write_str("a short text answer is one line; this question is not long_text"),
            Reason::ExpectedCode => f.write_str("expected one code"),
            Reason::ExpectedCodeList => f.write_str("expected a list of codes"),
            Reason::NoneChosen => f.write_str("choose at least one (clear the answer instead)"),
            Reason::ExpectedYesNo => f.write_str("expected one of yes, no, unknown, refused"),
            Reason::NotANumber => f.write_str("not a number"),
            Reason::BelowMin { value, min } => write!(f, "{value} is below the minimum {min}"),
            Reason::AboveMax { value, max } => write!(f, "{value} is above the maximum {max}"),
            Reason::ExpectedPartialDate => f.write_str("expected a partial date"),
            Reason::ExpectedDateRange => f.write_str("expected a date range {from, to}, each a partial date"),
            Reason::ExpectedPlace => f.write_str("expected a place {province, locality}"),
            Reason::PlaceEmpty => f.write_str("a place needs a province or a locality"),
            Reason::PlaceExtraFields => f.write_str("a place has only province and locality"),
            Reason::GroupHasNoValue => f.write_str("a group has no value; add an instance instead"),
            Reason::NotJson { line, column } => write!(f, "not JSON (line {line}, column {column})"),
            Reason::DateQualifier => date(f, "unknown qualifier (use about, before or after)"),
            Reason::DateShape => date(f, "expected YYYY, YYYY-MM or YYYY-MM-DD"),
            Reason::DateDigits => date(f, "expected YYYY, YYYY-MM or YYYY-MM-DD with digits"),
            Reason::DateYearRange { min, max } => date(f, &format!("year out of range {min}-{max}")),
            Reason::DateDayNeedsMonth => date(f, "a day needs a month"),
            Reason::DateMonthRange => date(f, "month must be 01-12"),
            Reason::DateNoSuchDay => date(f, "no such day in that month"),
            Reason::NotADateRange => f.write_str("not a date range (expected FROM..TO, e.g. about 1998..2001-05)"),
            Reason::DateRangeEmpty => f.write_str("a date range needs at least one end"),
            Reason::DateRangeBackwards => f.write_str("the range starts after it ends"),
            Reason::BirthYearRange { min, max } => write!(f, "birth year must be between {min} and {max}"),
            Reason::YearLeftRange { min, max } => write!(f, "year of leaving must be between {min} and {max}"),
            Reason::YearLeftBeforeBirth => f.write_str("year of leaving is before the birth year"),
            Reason::RepatriationsRange { min, max } => write!(f, "number of forced repatriations must be between {min} and {max}"),
            Reason::TranscribeNeedsAudio => f.write_str("consent to transcribe needs consent to record audio"),
            Reason::PublishNeedsShare => {
                f.write_str("consent to publish with identifying details needs consent to share with the archive")
            }
            Reason::ConsentTakerMissing => f.write_str("say who took the consent"),
            Reason::ConsentAlreadyWithdrawn { witness } => write!(f, "consent of {witness} is already withdrawn"),
            Reason::NoLanguage => f.write_str("name at least one interview language (e.g. ko)"),
            Reason::NotALanguage { code } => write!(f, "'{code}' is not a language code (use e.g. ko, en)"),
            Reason::PlaceOneLine { max } => write!(f, "place must be one line of at most {max} characters"),
            Reason::InterpreterOneLine { max } => write!(f, "interpreter must be one line of at most {max} characters"),
            Reason::NoteLength { max } => write!(f, "a note must have between 1 and {max} characters"),
            Reason::NotAGroup { question } => write!(f, "'{question}' is not a repeatable group"),
            Reason::InstanceNotExpected => f.write_str("this question is not inside a repeatable group; give no instance"),
            Reason::InstanceNeeded { group } => write!(f, "this question is inside group '{group}'; say which instance (add one first)"),
            Reason::InstanceRemoved { instance } => write!(f, "group instance {instance} was removed"),
            Reason::InstanceElsewhere { instance, group } => write!(f, "group instance {instance} is not an instance of '{group}' in this interview"),
            Reason::StatusTransition { from, to } => write!(f, "interview is {from}, cannot become {to}"),
            Reason::RequiredUnanswered { questions, .. } => write!(f, "required questions are unanswered: {questions}"),
            Reason::SearchEmpty => f.write_str("empty search"),
            Reason::SearchTooManyTerms { .. } => f.write_str("search has too many terms"),
            Reason::SegmentTextEmpty => f.write_str("segment text is empty"),
            Reason::SegmentTextTooLong { max } => write!(f, "segment text is longer than {max} characters"),
            Reason::TranslationEmpty => f.write_str("translation is empty"),
            Reason::TranslationTooLong { max } => write!(f, "translation is longer than {max} characters"),
            Reason::NotALanguageCode { what } => write!(f, "{what} must be a language code such as ko or en"),
            Reason::NoTranslation { segment } => write!(f, "segment {segment} has no translation"),
            Reason::RedactionLabel { max } => {
                write!(f, "a redaction label is 1 to {max} lower-case letters, digits, _ or - (e.g. name, place)")
            }
            Reason::RedactNoTranslation { segment } => write!(f, "segment {segment} has no translation to redact"),
            Reason::RedactionRange { field, len } => {
                write!(f, "a redaction must be a non-empty range inside the {field} (characters 0 to {len})")
            }
            Reason::RedactionOverlap { redaction, start, end } => write!(f, "the range overlaps redaction {redaction} ({start}..{end})"),
            Reason::SplitTimeOutside { start_ms, end_ms } => {
                write!(f, "the split time must be inside the segment, after {start_ms} ms and before {end_ms} ms")
            }
            Reason::SplitTextPosition { max } => split(f, "text", *max),
            Reason::SplitTranslationPosition { max } => split(f, "translation", *max),
            Reason::SplitNeedsTranslationPosition => f.write_str("the segment has a translation: say where to split it too"),
            Reason::SplitNoTranslation => f.write_str("the segment has no translation to split"),
            Reason::MergeSameSegment => f.write_str("a segment cannot be merged with itself"),
            Reason::MergeDifferentTranscripts => f.write_str("the segments belong to different transcripts"),
            Reason::MergeNotNeighbours { between } => {
                write!(f, "the segments are not next to each other ({between} segment(s) between them); merge neighbours only")
            }
            Reason::MergeDifferentSpeakers { first, second } => {
                write!(f, "the segments have different speakers ({first} and {second}); set one speaker first")
            }
            Reason::MergeTranslationLanguages { first, second } => {
                write!(f, "the translations are in different languages ({first} and {second})")
            }
            Reason::SampleRateRange { min, max } => write!(f, "sample rate must be between {min} and {max} Hz"),
            Reason::ChannelsRange { max } => write!(f, "a recording has 1 to {max} channels"),
            Reason::MarkerLabel { max } => write!(f, "a marker label is one line of 1 to {max} characters"),
            Reason::MarkerPastEnd { at_ms, duration_ms } => {
                write!(f, "marker at {at_ms} ms lies past the end of the recording ({duration_ms} ms)")
            }
            Reason::RecordingAlreadyStopped { recording } => write!(f, "recording {recording} is already stopped"),
            Reason::RecordingStopped { recording } => write!(f, "recording {recording} is stopped; start a new one"),
            Reason::RecordingStillRunning { recording } => write!(f, "recording {recording} is still recording; stop it first"),
            Reason::RecordingPaused { recording } => write!(f, "recording {recording} is paused; resume it first"),
            Reason::RecordingEmpty { recording } => write!(f, "recording {recording} holds no audio: there is nothing to transcribe"),
            Reason::RecordingClosed { recording } => {
                write!(f, "recording {recording} was stopped or deleted; no more audio can be added")
            }
            Reason::NoAudioConsent { witness } => write!(
                f,
                "witness {witness} has not consented to audio recording (consent scope record_audio), or withdrew consent"
            ),
            Reason::NoTranscribeConsent { witness } => write!(
                f,
                "witness {witness} has not consented to transcription (consent scope transcribe), or withdrew consent"
            ),
            Reason::PassphraseTooShort { min } => write!(f, "use at least {min} characters (a few words is best)"),
            Reason::PassphraseRepetitive => f.write_str("too repetitive"),
            Reason::NotARecipient { recipient } => write!(f, "'{recipient}' is not an age X25519 recipient (age1…)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_params_match_the_serialised_form() {
        let mut codes: Vec<&str> = Reason::ALL.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), Reason::ALL.len(), "a code is listed twice");

        let r = Reason::BelowMin {
            value: 3.0,
            min: 5.0,
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"code": "below_min", "params": {"value": 3.0, "min": 5.0}})
        );
        assert_eq!(r.code(), "below_min");
        assert_eq!(r.to_string(), "3 is below the minimum 5");
        // A code without parameters has no `params`.
        assert_eq!(
            serde_json::to_value(Reason::PlaceEmpty).unwrap(),
            serde_json::json!({"code": "place_empty"})
        );
        let listed = Reason::ALL
            .iter()
            .find(|(c, _)| *c == "below_min")
            .unwrap()
            .1;
        assert_eq!(listed, ["value", "min"]);
    }

    /// The refusals that became codes read in the CLI exactly as before.
    #[test]
    fn converted_refusals_keep_the_cli_english() {
        use crate::error::Error;
        let cases = [
            (
                Error::NotAllowed(Reason::StatusTransition {
                    from: "draft".into(),
                    to: "reviewed".into(),
                }),
                "not allowed: interview is draft, cannot become reviewed",
            ),
            (
                Error::Incomplete(Reason::RequiredUnanswered {
                    count: 2,
                    questions: "a, b#1.c".into(),
                }),
                "cannot complete the interview; required questions are unanswered: a, b#1.c",
            ),
            (
                Error::Invalid(Reason::SearchEmpty),
                "invalid input: empty search",
            ),
            (
                Error::Invalid(Reason::SegmentTextEmpty),
                "invalid input: segment text is empty",
            ),
            (
                Error::Invalid(Reason::TranslationTooLong { max: 20_000 }),
                "invalid input: translation is longer than 20000 characters",
            ),
            (
                Error::Invalid(Reason::SplitTextPosition { max: 6 }),
                "invalid input: the split position in the text must leave text on both sides (a character position between 1 and 6)",
            ),
            (
                Error::Invalid(Reason::NotALanguageCode {
                    what: "translation language".into(),
                }),
                "invalid input: translation language must be a language code such as ko or en",
            ),
            (
                Error::NotAllowed(Reason::RecordingPaused {
                    recording: "r1".into(),
                }),
                "not allowed: recording r1 is paused; resume it first",
            ),
            (
                Error::NotAllowed(Reason::NoAudioConsent {
                    witness: "W-2026-0001".into(),
                }),
                "not allowed: witness W-2026-0001 has not consented to audio recording (consent scope record_audio), or withdrew consent",
            ),
        ];
        for (e, english) in cases {
            assert_eq!(e.to_string(), english);
        }
    }
}
