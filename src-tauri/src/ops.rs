//! What each command does, as plain functions over the session (no Tauri types), so that the
//! tests can drive them without a window. Every rule is the core's: these functions only
//! translate arguments, call `testimony_core`, and shape the answer for the UI.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use testimony_core::bundle::{ExportOptions, ExportPhase, ExportProgress, ExportReport};
use testimony_core::codebook::Codebook;
use testimony_core::form::Form;
use testimony_core::model::{
    Consent, ConsentMethod, ConsentScopes, Interview, InterviewDetail, InterviewStatus,
    NewInterview, Note, Witness, WitnessIdentity, WitnessProfile,
};
use testimony_core::{CreateOptions, SearchHit, Vault};

use crate::error::AppError;
use crate::slots::AudioSlot;
use crate::slots::TranscribeSlot;

/// The vault directory and, while unlocked, the open vault. Locking drops the `Vault`: the
/// database connection closes and SQLCipher wipes the key it held.
pub struct Session {
    pub dir: PathBuf,
    pub vault: Option<Vault>,
    /// The recording in progress; shared with the commands that read its level and clock
    /// without going through the vault thread (see `audio.rs`).
    pub audio: AudioSlot,
    /// Counts locks, so that a delayed fallback lock can tell whether one happened since
    /// (and a background transcription, whether its vault is still the one it started with).
    pub locks: u64,
    /// The transcription in the background (see `transcribe.rs`); a lock cancels it.
    pub transcribe: TranscribeSlot,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct AppInfo {
    pub vault_dir: String,
    pub vault_exists: bool,
    pub unlocked: bool,
    pub demo: bool,
    /// Ctrl+Shift+L is registered system-wide (X11), not only inside the window.
    pub global_panic: bool,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct VaultInfo {
    pub interviewer: String,
    pub device_id: String,
    pub device_key: String,
    /// The device key in groups of four, for reading aloud to the coordinator.
    pub fingerprint: String,
    pub recipient: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct WitnessSummary {
    pub witness: Witness,
    pub consent: Option<Consent>,
    pub has_identity: bool,
}

/// An interview as the form shows it: the records, plus what the core decides about them
/// (which questions are visible where, which required ones are missing).
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct FormState {
    pub detail: InterviewDetail,
    /// `question_id` for top-level questions, `question_id@instance_id` inside an instance.
    pub visible: Vec<String>,
    /// Section ids whose skip logic shows them.
    pub sections: Vec<String>,
    pub missing_required: Vec<String>,
}

/// Export progress as the export screen shows it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct ExportStep {
    pub phase: ExportPhase,
    /// The whole export, 0 to 1.
    pub fraction: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
pub struct NewInterviewArgs {
    pub witness: String,
    pub languages: Vec<String>,
    pub place: Option<String>,
    pub interpreter: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum StatusAction {
    Complete,
    Review,
    Reopen,
}

pub fn vault_exists(dir: &Path) -> bool {
    dir.join("vault.json").is_file()
}

fn empty_to_none(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
}

impl Session {
    pub fn new(dir: PathBuf, audio: AudioSlot) -> Session {
        Session {
            dir,
            vault: None,
            audio,
            locks: 0,
            transcribe: TranscribeSlot::default(),
        }
    }

    pub fn vault(&mut self) -> Result<&mut Vault, AppError> {
        self.vault.as_mut().ok_or_else(AppError::locked)
    }

    /// A core error from reading audio, as the app reports it. After a damaged recording
    /// (`DamagedAudio`) SQLCipher refuses every later read on the vault's connection, so the
    /// vault gets a fresh one first: the rest of it keeps working without a lock.
    pub fn audio_read_error(&mut self, e: testimony_core::Error) -> AppError {
        if matches!(e, testimony_core::Error::DamagedAudio { .. })
            && let Some(v) = self.vault.as_mut()
        {
            let _ = v.reconnect();
        }
        e.into()
    }

    pub fn info(&self, demo: bool) -> AppInfo {
        AppInfo {
            vault_dir: self.dir.display().to_string(),
            vault_exists: vault_exists(&self.dir),
            unlocked: self.vault.is_some(),
            demo,
            global_panic: false,
        }
    }

    pub fn create_vault(&mut self, passphrase: &str, interviewer: &str) -> Result<(), AppError> {
        self.lock();
        let v = Vault::create(
            &self.dir,
            passphrase,
            CreateOptions {
                interviewer: interviewer.trim().to_string(),
                ..Default::default()
            },
        )?;
        self.vault = Some(v);
        Ok(())
    }

    pub fn unlock(&mut self, passphrase: &str) -> Result<(), AppError> {
        self.lock();
        self.vault = Some(Vault::open(&self.dir, passphrase)?);
        Ok(())
    }

    /// Stops a recording in progress first (its audio so far is kept, the recording ends
    /// stopped) and tells a transcription to stop (without waiting: its finished windows are
    /// kept and it can be resumed), then drops the vault.
    pub fn lock(&mut self) {
        self.cancel_transcription_for_lock();
        self.stop_recording_for_lock();
        self.vault = None;
        self.locks += 1;
    }

    /// The vault must be closed for the header to be replaced (the core takes the vault's
    /// lock); it is reopened with whichever passphrase is now valid.
    pub fn change_passphrase(&mut self, old: &str, new: &str) -> Result<(), AppError> {
        self.vault()?;
        // Checked before the vault is closed, so that a mistyped passphrase leaves it open.
        testimony_core::keys::check_passphrase_strength(new)?;
        drop(testimony_core::keys::Header::read(&self.dir)?.unseal(old)?);
        self.lock();
        let changed = Vault::change_passphrase(&self.dir, old, new);
        let reopen = if changed.is_ok() { new } else { old };
        self.vault = Some(Vault::open(&self.dir, reopen)?);
        changed?;
        Ok(())
    }

    pub fn vault_info(&mut self) -> Result<VaultInfo, AppError> {
        let v = self.vault()?;
        let key = v.device_public_key()?;
        let fingerprint = key
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(VaultInfo {
            interviewer: v.interviewer().to_string(),
            device_id: v.device_id().to_string(),
            device_key: key,
            fingerprint,
            recipient: Some(v.archive_recipients()?.join(" ")).filter(|r| !r.is_empty()),
        })
    }

    /// Saves the archive recipients (`age1…`, separated by spaces or commas) in the vault, where
    /// the CLI's `recipient set` keeps them too; nothing clears them. The core checks each key.
    pub fn set_recipient(&mut self, recipient: Option<String>) -> Result<(), AppError> {
        let list: Vec<String> = recipient
            .unwrap_or_default()
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect();
        self.vault()?.set_archive_recipients(&list)?;
        Ok(())
    }

    // ---- witnesses and consent -------------------------------------------------------------

    pub fn witnesses(&mut self) -> Result<Vec<WitnessSummary>, AppError> {
        let v = self.vault()?;
        let mut out = Vec::new();
        for w in v.witnesses()? {
            let consent = v.consent(&w.meta.id)?;
            let has_identity = v.witness_identity(&w.meta.id)?.is_some();
            out.push(WitnessSummary {
                witness: w,
                consent,
                has_identity,
            });
        }
        Ok(out)
    }

    pub fn create_witness(&mut self, profile: WitnessProfile) -> Result<Witness, AppError> {
        let profile = WitnessProfile {
            gender: empty_to_none(profile.gender),
            home_province: empty_to_none(profile.home_province),
            songbun: empty_to_none(profile.songbun),
            ..profile
        };
        Ok(self.vault()?.add_witness(profile, None)?)
    }

    pub fn identity(&mut self, witness: &str) -> Result<Option<WitnessIdentity>, AppError> {
        Ok(self.vault()?.witness_identity(witness)?)
    }

    pub fn set_identity(
        &mut self,
        witness: &str,
        identity: WitnessIdentity,
    ) -> Result<(), AppError> {
        let identity = WitnessIdentity {
            real_name: empty_to_none(identity.real_name),
            contact: empty_to_none(identity.contact),
            notes: empty_to_none(identity.notes),
        };
        self.vault()?.set_witness_identity(witness, identity)?;
        Ok(())
    }

    /// Consent is taken by the vault's interviewer, now.
    pub fn set_consent(
        &mut self,
        witness: &str,
        scopes: ConsentScopes,
        method: ConsentMethod,
    ) -> Result<Consent, AppError> {
        let v = self.vault()?;
        let by = v.interviewer().to_string();
        Ok(v.set_consent(witness, scopes, &by, None, method)?)
    }

    pub fn withdraw_consent(&mut self, witness: &str) -> Result<Consent, AppError> {
        Ok(self.vault()?.withdraw_consent(witness, None)?)
    }

    // ---- codebook and interviews -----------------------------------------------------------

    pub fn codebook(
        &mut self,
        id: Option<&str>,
        version: Option<&str>,
    ) -> Result<Codebook, AppError> {
        let v = self.vault()?;
        let cb = match (id, version) {
            (Some(id), Some(ver)) => v.codebook(id, ver)?,
            _ => {
                let d = Codebook::default_codebook();
                v.codebook(&d.id, &d.version)?
            }
        };
        Ok((*cb).clone())
    }

    pub fn interviews(
        &mut self,
        status: Option<&str>,
        witness: Option<&str>,
    ) -> Result<Vec<Interview>, AppError> {
        let status = match status.filter(|s| !s.is_empty()) {
            Some(s) => Some(
                InterviewStatus::parse(s)
                    .ok_or_else(|| AppError::with_detail("invalid", "unknown status"))?,
            ),
            None => None,
        };
        Ok(self
            .vault()?
            .interviews(status, witness.filter(|w| !w.is_empty()))?)
    }

    pub fn search(&mut self, query: &str) -> Result<Vec<SearchHit>, AppError> {
        Ok(self.vault()?.search(query, 500)?)
    }

    pub fn new_interview(&mut self, a: NewInterviewArgs) -> Result<Interview, AppError> {
        let n = NewInterview {
            witness: a.witness,
            languages: a.languages,
            place: empty_to_none(a.place),
            interpreter: empty_to_none(a.interpreter),
            ..Default::default()
        };
        Ok(self.vault()?.new_interview(n)?)
    }

    pub fn form(&mut self, interview_id: &str) -> Result<FormState, AppError> {
        let v = self.vault()?;
        let detail = v.interview_detail(interview_id)?;
        let cb = v.codebook(
            &detail.interview.codebook_id,
            &detail.interview.codebook_version,
        )?;
        let form = Form::new(&cb, &detail.answers, &detail.instances);
        // Skip logic is the core's (`Form`): the app only passes it on.
        let visible = form.visible_questions();
        let sections = form.visible_sections();
        let missing_required = form.missing_required();
        Ok(FormState {
            detail: detail.clone(),
            visible,
            sections,
            missing_required,
        })
    }

    pub fn set_answer(
        &mut self,
        interview_id: &str,
        instance: Option<&str>,
        question_id: &str,
        value: &Value,
    ) -> Result<FormState, AppError> {
        self.vault()?
            .set_answer(interview_id, instance, question_id, value)?;
        self.form(interview_id)
    }

    pub fn clear_answer(
        &mut self,
        interview_id: &str,
        instance: Option<&str>,
        question_id: &str,
    ) -> Result<FormState, AppError> {
        self.vault()?
            .clear_answer(interview_id, instance, question_id)?;
        self.form(interview_id)
    }

    pub fn add_group_instance(
        &mut self,
        interview_id: &str,
        group_id: &str,
        parent: Option<&str>,
    ) -> Result<FormState, AppError> {
        self.vault()?
            .add_group_instance(interview_id, group_id, parent)?;
        self.form(interview_id)
    }

    pub fn remove_group_instance(
        &mut self,
        interview_id: &str,
        instance_id: &str,
    ) -> Result<FormState, AppError> {
        let v = self.vault()?;
        // The instance must belong to the interview the form shows.
        let detail = v.interview_detail(interview_id)?;
        if !detail.instances.iter().any(|i| i.meta.id == instance_id) {
            return Err(AppError::code("not_found"));
        }
        v.remove_group_instance(instance_id)?;
        self.form(interview_id)
    }

    pub fn add_note(
        &mut self,
        interview_id: &str,
        question_id: Option<&str>,
        instance: Option<&str>,
        text: &str,
    ) -> Result<Note, AppError> {
        Ok(self
            .vault()?
            .add_note(interview_id, question_id, instance, text)?)
    }

    pub fn set_status(
        &mut self,
        interview_id: &str,
        action: StatusAction,
    ) -> Result<Interview, AppError> {
        let v = self.vault()?;
        Ok(match action {
            StatusAction::Complete => v.complete_interview(interview_id)?,
            StatusAction::Review => v.review_interview(interview_id)?,
            StatusAction::Reopen => v.reopen_interview(interview_id)?,
        })
    }

    // ---- export ------------------------------------------------------------------------------

    /// Exports what changed since the last bundle to a new file in `dest_dir`, encrypted to the
    /// saved archive recipient. `report` hears the progress (at most about once per percent);
    /// setting `cancel` stops the export at its next step: the core then leaves no file and
    /// records no bundle, and this returns the code `cancelled`.
    pub fn export(
        &mut self,
        dest_dir: &str,
        cancel: &AtomicBool,
        report: &mut dyn FnMut(ExportStep),
    ) -> Result<ExportReport, AppError> {
        let v = self.vault()?;
        let recipients = v.archive_recipients()?;
        if recipients.is_empty() {
            return Err(AppError::code("no_recipient"));
        }
        let dest = Path::new(dest_dir.trim());
        if dest_dir.trim().is_empty() || !dest.is_absolute() || !dest.is_dir() {
            return Err(AppError::code("bad_destination"));
        }
        let stamp: String = testimony_core::vault::now()
            .chars()
            .filter(|c| c.is_ascii_digit())
            .take(14)
            .collect();
        let device: String = v
            .device_id()
            .chars()
            .filter(|c| c.is_ascii_hexdigit())
            .rev()
            .take(8)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let out = dest.join(format!("testimony-{device}-{stamp}.tbundle"));
        if out.exists() {
            return Err(AppError::code("bad_destination"));
        }
        let opts = ExportOptions {
            recipients,
            full: false,
            include_identity: false,
        };
        let mut last: Option<ExportStep> = None;
        let mut progress = |p: ExportProgress| {
            if cancel.load(Ordering::SeqCst) {
                return ControlFlow::Break(());
            }
            let step = ExportStep {
                phase: p.phase,
                fraction: p.fraction(),
            };
            if last.is_none_or(|l| {
                l.phase != step.phase
                    || step.fraction - l.fraction >= 0.01
                    || step.fraction >= 1.0 && l.fraction < 1.0
            }) {
                report(step);
                last = Some(step);
            }
            ControlFlow::Continue(())
        };
        let exported = v.export_bundle_with_progress(&opts, &out, &mut progress);
        exported.map_err(|e| self.audio_read_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use testimony_core::Reason;

    const PASS: &str = "a long enough passphrase for tests";

    fn session() -> (tempfile::TempDir, Session) {
        let t = tempfile::tempdir().unwrap();
        let s = Session::new(t.path().join("vault"), AudioSlot::default());
        (t, s)
    }

    #[test]
    fn create_lock_unlock_and_errors() {
        let (_t, mut s) = session();
        assert!(!s.info(false).vault_exists);
        let e = s.create_vault("short", "Kim").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            (
                "weak_passphrase",
                Some(Reason::PassphraseTooShort { min: 10 })
            )
        );
        s.create_vault(PASS, "Kim").unwrap();
        assert!(s.info(false).unlocked);
        s.lock();
        assert!(s.vault.is_none());
        assert_eq!(s.witnesses().unwrap_err().code, "locked");
        assert_eq!(
            s.unlock("wrong passphrase here").unwrap_err().code,
            "wrong_passphrase"
        );
        s.unlock(PASS).unwrap();
        assert_eq!(s.vault_info().unwrap().interviewer, "Kim");
        // A second create refuses to overwrite.
        assert_eq!(
            s.create_vault(PASS, "Kim").unwrap_err().code,
            "already_exists"
        );
    }

    #[test]
    fn witness_consent_interview_skip_logic_and_groups() {
        let (_t, mut s) = session();
        s.create_vault(PASS, "Kim").unwrap();
        let w = s
            .create_witness(WitnessProfile {
                gender: Some("female".into()),
                birth_year: Some(1975),
                ..Default::default()
            })
            .unwrap();
        assert!(w.code.starts_with("W-"));
        s.set_identity(
            &w.code,
            WitnessIdentity {
                real_name: Some("Real Name".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            s.identity(&w.code).unwrap().unwrap().real_name.as_deref(),
            Some("Real Name")
        );
        // The core refuses transcription without audio recording.
        let bad = ConsentScopes {
            transcribe: true,
            ..Default::default()
        };
        let e = s
            .set_consent(&w.code, bad, ConsentMethod::Oral)
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            ("invalid", Some(Reason::TranscribeNeedsAudio))
        );
        let e = s
            .create_witness(WitnessProfile {
                birth_year: Some(1980),
                year_left: Some(1970),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(e.reason, Some(Reason::YearLeftBeforeBirth));
        let c = s
            .set_consent(
                &w.code,
                ConsentScopes {
                    share_archive: true,
                    ..Default::default()
                },
                ConsentMethod::Oral,
            )
            .unwrap();
        assert_eq!(c.taken_by, "Kim");
        let list = s.witnesses().unwrap();
        assert!(list[0].has_identity && list[0].consent.is_some());
        assert!(s.withdraw_consent(&w.code).unwrap().withdrawn_at.is_some());

        let i = s
            .new_interview(NewInterviewArgs {
                witness: w.code.clone(),
                languages: vec!["ko".into()],
                place: None,
                interpreter: None,
            })
            .unwrap();
        let f = s.form(&i.meta.id).unwrap();
        assert!(f.sections.contains(&"detention".to_string()));
        assert!(f.visible.contains(&"ever_detained".to_string()));
        assert!(
            !f.visible.contains(&"detention_episode".to_string()),
            "episodes hidden until ever_detained is yes"
        );
        let f = s
            .set_answer(&i.meta.id, None, "ever_detained", &json!("yes"))
            .unwrap();
        assert!(f.visible.contains(&"detention_episode".to_string()));
        assert!(
            f.missing_required
                .contains(&"ctx_consent_script_read".to_string()),
            "required questions are reported"
        );
        let f = s
            .add_group_instance(&i.meta.id, "detention_episode", None)
            .unwrap();
        let inst = f.detail.instances[0].meta.id.clone();
        assert!(f.visible.contains(&format!("det_facility_type@{inst}")));
        let f = s
            .set_answer(
                &i.meta.id,
                Some(&inst),
                "det_facility_type",
                &json!("kyohwaso"),
            )
            .unwrap();
        assert_eq!(f.detail.answers.len(), 2);
        // Validation is the core's: an unknown vocabulary code is refused with a reason.
        let e = s
            .set_answer(
                &i.meta.id,
                Some(&inst),
                "det_facility_type",
                &json!("nonsense"),
            )
            .unwrap_err();
        assert_eq!(e.code, "invalid_answer");
        assert_eq!(
            e.reason.as_ref().map(Reason::code),
            Some("not_in_vocabulary")
        );
        // A partial date's problem comes as its own code.
        let e = s
            .set_answer(&i.meta.id, None, "dep_date", &json!("2001-02-30"))
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            ("invalid_answer", Some(Reason::DateNoSuchDay))
        );
        let f = s
            .clear_answer(&i.meta.id, Some(&inst), "det_facility_type")
            .unwrap();
        assert_eq!(f.detail.answers.len(), 1);
        let f = s.remove_group_instance(&i.meta.id, &inst).unwrap();
        assert!(!f.visible.iter().any(|k| k.ends_with(&inst)));
        assert_eq!(
            s.remove_group_instance(&i.meta.id, "no-such-instance")
                .unwrap_err()
                .code,
            "not_found"
        );
        // The form's refusals come as codes the UI says in Korean or English, never as the
        // core's English: a removed entry, a group that is not one, status changes, and the
        // required questions left (by codebook path, never an answer).
        let e = s
            .set_answer(
                &i.meta.id,
                Some(&inst),
                "det_facility_type",
                &json!("kyohwaso"),
            )
            .unwrap_err();
        assert_eq!(
            (
                e.code.as_str(),
                e.detail.as_deref(),
                e.reason.as_ref().map(Reason::code)
            ),
            ("invalid", None, Some("instance_removed"))
        );
        let e = s
            .add_group_instance(&i.meta.id, "ever_detained", None)
            .unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            (
                "invalid",
                Some(Reason::NotAGroup {
                    question: "ever_detained".into()
                })
            )
        );
        let e = s.set_status(&i.meta.id, StatusAction::Review).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            (
                "not_allowed",
                Some(Reason::StatusTransition {
                    from: "draft".into(),
                    to: "reviewed".into()
                })
            )
        );
        let e = s
            .set_status(&i.meta.id, StatusAction::Complete)
            .unwrap_err();
        assert_eq!(e.code, "incomplete");
        match e.reason {
            Some(Reason::RequiredUnanswered { count, questions }) => {
                assert!(
                    count >= 1
                        && questions
                            .split(", ")
                            .any(|q| q == "ctx_consent_script_read"),
                    "{questions}"
                );
            }
            other => panic!("{other:?}"),
        }
        let e = s.search("   ").unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            ("invalid", Some(Reason::SearchEmpty))
        );
        assert_eq!(s.interviews(Some("draft"), None).unwrap().len(), 1);
        assert_eq!(s.interviews(Some("complete"), None).unwrap().len(), 0);
    }

    #[test]
    fn recipient_and_export_destination_are_checked() {
        let (t, mut s) = session();
        s.create_vault(PASS, "Kim").unwrap();
        assert_eq!(
            s.export(
                t.path().to_str().unwrap(),
                &AtomicBool::new(false),
                &mut |_| {}
            )
            .unwrap_err()
            .code,
            "no_recipient"
        );
        let e = s.set_recipient(Some("not-a-key".into())).unwrap_err();
        assert_eq!(
            (e.code.as_str(), e.reason),
            (
                "invalid",
                Some(Reason::NotARecipient {
                    recipient: "not-a-key".into()
                })
            )
        );
        let key = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";
        s.set_recipient(Some(format!(" {key}, {key} "))).unwrap();
        assert_eq!(
            s.vault_info().unwrap().recipient.as_deref(),
            Some(format!("{key} {key}").as_str())
        );
        s.set_recipient(Some(key.into())).unwrap();
        assert_eq!(s.vault_info().unwrap().recipient.as_deref(), Some(key));
        assert_eq!(
            s.export("relative/dir", &AtomicBool::new(false), &mut |_| {})
                .unwrap_err()
                .code,
            "bad_destination"
        );
    }

    /// A vault with a shared interview and the archive recipient saved.
    fn exportable() -> (tempfile::TempDir, Session) {
        let (t, mut s) = session();
        s.create_vault(PASS, "Kim").unwrap();
        let w = s
            .create_witness(WitnessProfile {
                birth_year: Some(1975),
                ..Default::default()
            })
            .unwrap();
        s.set_consent(
            &w.code,
            ConsentScopes {
                share_archive: true,
                ..Default::default()
            },
            ConsentMethod::Oral,
        )
        .unwrap();
        let i = s
            .new_interview(NewInterviewArgs {
                witness: w.code,
                languages: vec!["ko".into()],
                place: None,
                interpreter: None,
            })
            .unwrap();
        s.set_answer(
            &i.meta.id,
            None,
            "cl_anything_else",
            &json!("교화소에서 매일 12시간 일했다"),
        )
        .unwrap();
        s.set_recipient(Some(
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".into(),
        ))
        .unwrap();
        (t, s)
    }

    #[test]
    fn export_reports_progress_to_the_end() {
        let (t, mut s) = exportable();
        let dest = t.path().join("usb");
        std::fs::create_dir(&dest).unwrap();
        let mut steps = Vec::new();
        let r = s
            .export(dest.to_str().unwrap(), &AtomicBool::new(false), &mut |p| {
                steps.push(p)
            })
            .unwrap();
        assert!(r.path.is_file());
        assert!(!steps.is_empty());
        assert!(
            steps.windows(2).all(|w| w[1].fraction >= w[0].fraction),
            "progress never goes back: {steps:?}"
        );
        assert_eq!(steps.last().unwrap().fraction, 1.0, "{steps:?}");
        assert_eq!(steps.last().unwrap().phase, ExportPhase::Writing);
    }

    #[test]
    fn a_cancelled_export_leaves_no_file_and_the_next_one_takes_everything() {
        let (t, mut s) = exportable();
        let dest = t.path().join("usb");
        std::fs::create_dir(&dest).unwrap();
        // Cancelled at its first step (as the cancel button does while it runs).
        let cancel = AtomicBool::new(false);
        let e = s
            .export(dest.to_str().unwrap(), &cancel, &mut |_| {
                cancel.store(true, Ordering::SeqCst);
            })
            .unwrap_err();
        assert_eq!(e.code, "cancelled");
        assert_eq!(
            std::fs::read_dir(&dest).unwrap().count(),
            0,
            "no bundle and no partial file"
        );
        // Cancelled before it began.
        assert_eq!(
            s.export(dest.to_str().unwrap(), &AtomicBool::new(true), &mut |_| {})
                .unwrap_err()
                .code,
            "cancelled"
        );
        assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 0);
        // Nothing was recorded as exported: the next export carries the interview.
        let r = s
            .export(dest.to_str().unwrap(), &AtomicBool::new(false), &mut |_| {})
            .unwrap();
        assert_eq!(r.counts.interviews, 1);
        assert_eq!(r.sequence, 1);
    }

    #[test]
    fn change_passphrase_reopens_with_the_new_one() {
        let (_t, mut s) = session();
        s.create_vault(PASS, "Kim").unwrap();
        assert_eq!(
            s.change_passphrase("wrong old passphrase", "another long passphrase")
                .unwrap_err()
                .code,
            "wrong_passphrase"
        );
        assert!(s.vault.is_some(), "a refused change leaves the vault open");
        s.change_passphrase(PASS, "another long passphrase")
            .unwrap();
        assert!(s.vault.is_some());
        s.lock();
        assert_eq!(s.unlock(PASS).unwrap_err().code, "wrong_passphrase");
        s.unlock("another long passphrase").unwrap();
    }
}
