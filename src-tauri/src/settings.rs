//! App settings readable before unlocking (the unlock screen needs the language): a small
//! JSON file in the app's config directory holding ONLY the UI language, the idle-lock
//! minutes, and for transcription the chosen model's file name (in the app's models folder)
//! and the spoken language (auto, ko, en). Nothing from the vault is ever written here. The archive recipient lives inside
//! the vault (`Vault::set_archive_recipients`).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(test, derive(ts_rs::TS))]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[cfg_attr(test, ts(type = r#""ko" | "en""#))]
    pub language: String,
    pub idle_minutes: u32,
    /// The transcription model: a file name in the models folder (see `transcribe.rs`).
    /// Files written before transcription existed have neither field.
    #[serde(default)]
    // Optional in TypeScript: `save_settings` takes settings without either (serde default).
    #[cfg_attr(test, ts(optional = nullable))]
    pub whisper_model: Option<String>,
    /// What is spoken in recordings: "auto" (detected), "ko" or "en".
    #[serde(default = "auto")]
    #[cfg_attr(test, ts(type = r#""auto" | "ko" | "en""#, optional = nullable))]
    pub transcribe_language: String,
}

fn auto() -> String {
    "auto".into()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            language: "ko".into(),
            idle_minutes: 5,
            whisper_model: None,
            transcribe_language: auto(),
        }
    }
}

pub const LANGUAGES: [&str; 2] = ["ko", "en"];
pub const SPOKEN: [&str; 3] = ["auto", "ko", "en"];

/// A model is named by its file name alone: it must lie directly in the models folder.
pub fn is_model_file_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 200
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0', '\n', '\r'])
}

impl Settings {
    pub fn check(&self) -> Result<(), AppError> {
        if !LANGUAGES.contains(&self.language.as_str()) {
            return Err(AppError::with_detail(
                "invalid",
                "language must be ko or en",
            ));
        }
        if !(1..=120).contains(&self.idle_minutes) {
            return Err(AppError::with_detail(
                "invalid",
                "idle time must be between 1 and 120 minutes",
            ));
        }
        if !SPOKEN.contains(&self.transcribe_language.as_str()) {
            return Err(AppError::with_detail(
                "invalid",
                "the spoken language must be auto, ko or en",
            ));
        }
        if self
            .whisper_model
            .as_deref()
            .is_some_and(|m| !is_model_file_name(m))
        {
            return Err(AppError::with_detail(
                "invalid",
                "a model is a file name in the models folder",
            ));
        }
        Ok(())
    }

    /// The saved settings, or the defaults when the file is missing or unreadable.
    pub fn load(path: &Path) -> Settings {
        fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Settings>(&b).ok())
            .filter(|s| s.check().is_ok())
            .unwrap_or_default()
    }

    /// The UI language and idle time from `general`, everything else as saved in `path`: the
    /// general settings screen does not know (and must not reset) the transcription choice.
    pub fn save_general(path: &Path, general: &Settings) -> Result<Settings, AppError> {
        let s = Settings {
            language: general.language.clone(),
            idle_minutes: general.idle_minutes,
            ..Settings::load(path)
        };
        s.save(path)?;
        Ok(s)
    }

    /// Written beside the target and renamed, so a crash leaves the old or the new file.
    pub fn save(&self, path: &Path) -> Result<(), AppError> {
        self.check()?;
        let dir = path.parent().ok_or_else(|| AppError::code("io"))?;
        fs::create_dir_all(dir).map_err(|_| AppError::code("io"))?;
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).map_err(|_| AppError::code("internal"))?;
        let mut f = fs::File::create(&tmp).map_err(|_| AppError::code("io"))?;
        f.write_all(&body)
            .and_then(|_| f.sync_all())
            .map_err(|_| AppError::code("io"))?;
        fs::rename(&tmp, path).map_err(|_| AppError::code("io"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_defaults_and_refusals() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("cfg/settings.json");
        assert_eq!(Settings::load(&p), Settings::default());
        let s = Settings {
            language: "en".into(),
            idle_minutes: 12,
            ..Default::default()
        };
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p), s);
        assert!(
            Settings {
                language: "fr".into(),
                idle_minutes: 5,
                ..Default::default()
            }
            .save(&p)
            .is_err()
        );
        assert!(
            Settings {
                language: "en".into(),
                idle_minutes: 0,
                ..Default::default()
            }
            .save(&p)
            .is_err()
        );
        // The transcription model and language.
        let s = Settings {
            whisper_model: Some("ggml-base.bin".into()),
            transcribe_language: "ko".into(),
            ..s
        };
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p), s);
        for bad in [
            "../ggml-base.bin",
            "models/ggml-base.bin",
            ".hidden.bin",
            "",
        ] {
            assert!(
                Settings {
                    whisper_model: Some(bad.into()),
                    ..s.clone()
                }
                .save(&p)
                .is_err(),
                "{bad}"
            );
        }
        assert!(
            Settings {
                transcribe_language: "fr".into(),
                ..s.clone()
            }
            .save(&p)
            .is_err()
        );
        assert_eq!(Settings::load(&p), s, "refused settings change nothing");
        // Saving the language and idle time keeps the transcription choice.
        let general = Settings {
            language: "ko".into(),
            idle_minutes: 9,
            ..Default::default()
        };
        assert_eq!(
            Settings::save_general(&p, &general).unwrap(),
            Settings {
                language: "ko".into(),
                idle_minutes: 9,
                ..s.clone()
            }
        );
        assert_eq!(
            Settings::load(&p).whisper_model.as_deref(),
            Some("ggml-base.bin")
        );
        // A file from before transcription existed keeps loading.
        fs::write(&p, r#"{"language":"en","idle_minutes":3}"#).unwrap();
        assert_eq!(
            Settings::load(&p),
            Settings {
                language: "en".into(),
                idle_minutes: 3,
                ..Default::default()
            }
        );
        // Anything but the two fields is refused on load (the defaults are used instead).
        fs::write(&p, r#"{"language":"en","idle_minutes":3,"recipient":"x"}"#).unwrap();
        assert_eq!(Settings::load(&p), Settings::default());
    }
}
