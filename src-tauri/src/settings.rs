//! App settings readable before unlocking (the unlock screen needs the language): a small
//! JSON file in the app's config directory holding ONLY the UI language and the idle-lock
//! minutes. Nothing from the vault is ever written here. The archive recipient lives inside
//! the vault (`Vault::set_archive_recipients`).

use std::fs;
use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::AppError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub language: String,
    pub idle_minutes: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { language: "ko".into(), idle_minutes: 5 }
    }
}

pub const LANGUAGES: [&str; 2] = ["ko", "en"];

impl Settings {
    pub fn check(&self) -> Result<(), AppError> {
        if !LANGUAGES.contains(&self.language.as_str()) {
            return Err(AppError::with_detail("invalid", "language must be ko or en"));
        }
        if !(1..=120).contains(&self.idle_minutes) {
            return Err(AppError::with_detail("invalid", "idle time must be between 1 and 120 minutes"));
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

    /// Written beside the target and renamed, so a crash leaves the old or the new file.
    pub fn save(&self, path: &Path) -> Result<(), AppError> {
        self.check()?;
        let dir = path.parent().ok_or_else(|| AppError::code("io"))?;
        fs::create_dir_all(dir).map_err(|_| AppError::code("io"))?;
        let tmp = path.with_extension("json.tmp");
        let body = serde_json::to_vec_pretty(self).map_err(|_| AppError::code("internal"))?;
        let mut f = fs::File::create(&tmp).map_err(|_| AppError::code("io"))?;
        f.write_all(&body).and_then(|_| f.sync_all()).map_err(|_| AppError::code("io"))?;
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
        let s = Settings { language: "en".into(), idle_minutes: 12 };
        s.save(&p).unwrap();
        assert_eq!(Settings::load(&p), s);
        assert!(Settings { language: "fr".into(), idle_minutes: 5 }.save(&p).is_err());
        assert!(Settings { language: "en".into(), idle_minutes: 0 }.save(&p).is_err());
        // Anything but the two fields is refused on load (the defaults are used instead).
        fs::write(&p, r#"{"language":"en","idle_minutes":3,"recipient":"x"}"#).unwrap();
        assert_eq!(Settings::load(&p), Settings::default());
    }
}
