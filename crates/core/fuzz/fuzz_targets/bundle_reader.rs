//! Fuzzes the bundle reader behind the encryption: the fuzzer's bytes are the tar stream a
//! decrypted bundle holds (compressed here as the exporter would). Built with `--cfg fuzzing`,
//! the reader skips the signature check, which a fuzzer could never pass, so that the manifest
//! and payload parsers are reached. Run: see docs/testing.md ("Fuzzing").
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use testimony_core::Result;
use testimony_core::bundle::{BundleAuditEntry, BundleSink, Manifest, RecordKind, read_decrypted};

struct Accept;

impl BundleSink for Accept {
    fn manifest(&mut self, _: &Manifest, _: &str) -> Result<bool> {
        Ok(true)
    }
    fn codebook(&mut self, _: &str, _: &str, _: &str) -> Result<()> {
        Ok(())
    }
    fn record(&mut self, _: RecordKind, _: Value) -> Result<()> {
        Ok(())
    }
    fn attachment(&mut self, _: &str, _: &[u8]) -> Result<()> {
        Ok(())
    }
    fn audio(&mut self, _: &str, _: u64, wav: &mut dyn std::io::Read) -> Result<()> {
        std::io::copy(wav, &mut std::io::sink())?;
        Ok(())
    }
    fn audit_entry(&mut self, _: &BundleAuditEntry) -> Result<()> {
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let compressed = zstd::encode_all(data, 1).expect("in-memory compression");
    let _ = read_decrypted(&compressed[..], &mut Accept);
});
