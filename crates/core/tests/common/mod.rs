#![allow(dead_code)]
use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::Connection;
use testimony_core::keys::Header;
use testimony_core::{CreateOptions, Vault};

pub const PASS: &str = "correct horse battery staple";

pub fn new_vault(dir: &Path) -> Vault {
    Vault::create(
        dir,
        PASS,
        CreateOptions {
            interviewer: "tester".into(),
            ..Default::default()
        },
    )
    .unwrap()
}

/// Every file in `dir` with its bytes: "changes nothing" means this is equal before and after.
pub fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut m = BTreeMap::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_file() {
            m.insert(
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            );
        }
    }
    m
}

/// What someone holding the passphrase (and so the key) can do to the file directly: used to
/// simulate tampering and old schema versions.
pub fn raw_conn(dir: &Path, pass: &str) -> Connection {
    let header = Header::read(dir).unwrap();
    let key = header.unseal(pass).unwrap();
    testimony_core::vault::open_encrypted_db(&dir.join("vault.db"), &key, false, header.page_hmac())
        .unwrap()
}

pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
