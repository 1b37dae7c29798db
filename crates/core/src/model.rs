//! Record types. Every record carries `RecordMeta`, which incremental bundles and conflict
//! detection rely on: a UUID v7 id, the device that made it, timestamps and a version counter
//! that each change increments.

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RecordMeta {
    pub id: String,
    pub device_id: String,
    pub created_at: String,
    pub updated_at: String,
    pub version: i64,
}

pub const GENDERS: [&str; 4] = ["female", "male", "other", "undisclosed"];
pub const SONGBUN: [&str; 4] = ["core", "wavering", "hostile", "unknown"];

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WitnessProfile {
    pub gender: Option<String>,
    pub birth_year: Option<i64>,
    /// A province code (the default codebook's `province` vocabulary).
    pub home_province: Option<String>,
    pub songbun: Option<String>,
    pub year_left: Option<i64>,
    /// Times forcibly repatriated from China.
    pub repatriations: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Witness {
    #[serde(flatten)]
    pub meta: RecordMeta,
    /// Pseudonymous code such as W-2026-0042: what everyone but the interviewer sees.
    pub code: String,
    #[serde(flatten)]
    pub profile: WitnessProfile,
}

/// Identifying details, stored apart and never exported unless consent and an explicit option
/// both allow it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WitnessIdentity {
    pub real_name: Option<String>,
    pub contact: Option<String>,
    pub notes: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConsentScope {
    RecordAudio,
    Transcribe,
    ShareArchive,
    QuoteAnonymously,
    PublishIdentified,
}

impl ConsentScope {
    pub const ALL: [ConsentScope; 5] = [
        ConsentScope::RecordAudio,
        ConsentScope::Transcribe,
        ConsentScope::ShareArchive,
        ConsentScope::QuoteAnonymously,
        ConsentScope::PublishIdentified,
    ];
    pub fn code(self) -> &'static str {
        match self {
            ConsentScope::RecordAudio => "record_audio",
            ConsentScope::Transcribe => "transcribe",
            ConsentScope::ShareArchive => "share_archive",
            ConsentScope::QuoteAnonymously => "quote_anonymously",
            ConsentScope::PublishIdentified => "publish_identified",
        }
    }
    pub fn parse(s: &str) -> Option<ConsentScope> {
        ConsentScope::ALL.into_iter().find(|c| c.code() == s.trim())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ConsentScopes {
    pub record_audio: bool,
    pub transcribe: bool,
    pub share_archive: bool,
    pub quote_anonymously: bool,
    pub publish_identified: bool,
}

impl ConsentScopes {
    pub fn get(&self, s: ConsentScope) -> bool {
        match s {
            ConsentScope::RecordAudio => self.record_audio,
            ConsentScope::Transcribe => self.transcribe,
            ConsentScope::ShareArchive => self.share_archive,
            ConsentScope::QuoteAnonymously => self.quote_anonymously,
            ConsentScope::PublishIdentified => self.publish_identified,
        }
    }
    pub fn set(&mut self, s: ConsentScope, on: bool) {
        match s {
            ConsentScope::RecordAudio => self.record_audio = on,
            ConsentScope::Transcribe => self.transcribe = on,
            ConsentScope::ShareArchive => self.share_archive = on,
            ConsentScope::QuoteAnonymously => self.quote_anonymously = on,
            ConsentScope::PublishIdentified => self.publish_identified = on,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ConsentMethod {
    Oral,
    Written,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Consent {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub witness_id: String,
    pub scopes: ConsentScopes,
    pub taken_by: String,
    pub taken_at: String,
    pub method: ConsentMethod,
    pub withdrawn_at: Option<String>,
}

impl Consent {
    /// What the core checks before any use of a witness's material: granted and not withdrawn.
    pub fn allows(&self, scope: ConsentScope) -> bool {
        self.withdrawn_at.is_none() && self.scopes.get(scope)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum InterviewStatus {
    Draft,
    Complete,
    Reviewed,
}

impl InterviewStatus {
    pub fn code(self) -> &'static str {
        match self {
            InterviewStatus::Draft => "draft",
            InterviewStatus::Complete => "complete",
            InterviewStatus::Reviewed => "reviewed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "draft" => Some(Self::Draft),
            "complete" => Some(Self::Complete),
            "reviewed" => Some(Self::Reviewed),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Interview {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub witness_id: String,
    pub witness_code: String,
    pub interviewer: String,
    pub interpreter: Option<String>,
    pub languages: Vec<String>,
    /// Coarse place only (a city or county), never an address.
    pub place: Option<String>,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    pub codebook_id: String,
    pub codebook_version: String,
    pub status: InterviewStatus,
}

#[derive(Debug, Clone, Default)]
pub struct NewInterview {
    /// Witness code (W-…) or id.
    pub witness: String,
    pub interpreter: Option<String>,
    pub languages: Vec<String>,
    pub place: Option<String>,
    pub started_at: Option<String>,
    /// Codebook id and version; None: the default codebook.
    pub codebook: Option<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct GroupInstance {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub interview_id: String,
    pub group_id: String,
    pub parent_id: Option<String>,
    pub ordinal: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Answer {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub interview_id: String,
    pub instance_id: Option<String>,
    pub question_id: String,
    #[cfg_attr(feature = "ts", ts(type = "unknown"))]
    pub value: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Note {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub interview_id: String,
    pub question_id: Option<String>,
    pub instance_id: Option<String>,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AttachmentInfo {
    #[serde(flatten)]
    pub meta: RecordMeta,
    pub interview_id: String,
    pub name: String,
    pub media_type: String,
    pub size: i64,
    pub sha256: String,
}

/// An interview with everything recorded in it.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InterviewDetail {
    pub interview: Interview,
    pub instances: Vec<GroupInstance>,
    pub answers: Vec<Answer>,
    pub notes: Vec<Note>,
    pub attachments: Vec<AttachmentInfo>,
}

/// Whether a recording is still being written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum RecordingStatus {
    Recording,
    Stopped,
}

impl RecordingStatus {
    pub fn code(self) -> &'static str {
        match self {
            RecordingStatus::Recording => "recording",
            RecordingStatus::Stopped => "stopped",
        }
    }
}
