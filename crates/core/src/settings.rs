//! Small, non-secret per-vault settings (for example the archive's age recipient that the app
//! exports to), kept inside the encrypted database in the `meta` table under `setting.` keys.
//! Not records: they are not audited and never leave the device in a bundle.

use rusqlite::{OptionalExtension, params};

use crate::error::{Error, Result};
use crate::vault::Vault;

/// Longest setting value (characters).
pub const MAX_SETTING_CHARS: usize = 4096;

fn key_of(name: &str) -> Result<String> {
    if name.is_empty() || name.len() > 64 || !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        return Err(Error::Invalid("a setting name is [a-z0-9_]+, at most 64 characters".into()));
    }
    Ok(format!("setting.{name}"))
}

impl Vault {
    /// A setting stored with [`Vault::set_setting`]; None when it was never set.
    pub fn setting(&self, name: &str) -> Result<Option<String>> {
        let key = key_of(name)?;
        Ok(self.conn.query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    }

    /// Stores (or with None removes) a setting; committed before returning.
    pub fn set_setting(&mut self, name: &str, value: Option<&str>) -> Result<()> {
        let key = key_of(name)?;
        match value {
            Some(v) => {
                if v.chars().count() > MAX_SETTING_CHARS {
                    return Err(Error::Invalid(format!("a setting is at most {MAX_SETTING_CHARS} characters")));
                }
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    params![key, v],
                )?;
            }
            None => {
                self.conn.execute("DELETE FROM meta WHERE key = ?1", [key])?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::keys::KdfParams;
    use crate::vault::{CreateOptions, Vault};

    #[test]
    fn settings_round_trip_and_survive_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v");
        let pass = "correct horse battery staple";
        let mut v = Vault::create(&path, pass, CreateOptions { interviewer: "t".into(), kdf: KdfParams::default() }).unwrap();
        assert_eq!(v.setting("archive_recipient").unwrap(), None);
        v.set_setting("archive_recipient", Some("age1abc")).unwrap();
        v.set_setting("archive_recipient", Some("age1def")).unwrap();
        assert!(v.set_setting("Bad Name", Some("x")).is_err());
        assert!(v.set_setting("device_id", Some("x")).is_ok(), "stored as setting.device_id, not the real key");
        let device = v.device_id().to_string();
        drop(v);
        let mut v = Vault::open(&path, pass).unwrap();
        assert_eq!(v.device_id(), device);
        assert_eq!(v.setting("archive_recipient").unwrap().as_deref(), Some("age1def"));
        v.set_setting("archive_recipient", None).unwrap();
        assert_eq!(v.setting("archive_recipient").unwrap(), None);
    }
}
