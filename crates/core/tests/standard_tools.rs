//! A bundle must stay readable without Testimony, by following docs/bundle-format.md with
//! standard tools: `age -d | zstd -d | tar -x`, a JSON reader, sha256 and Ed25519.
//! `./run test` installs `age` and `zstd` and sets TESTIMONY_REQUIRE_TOOLS=1, so in CI this test
//! cannot skip.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use testimony_core::bundle::ExportOptions;
use testimony_core::model::*;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[test]
fn a_bundle_opens_with_age_zstd_tar_and_verifies_by_the_spec() {
    if !(have("age") && have("zstd") && have("tar")) {
        assert!(
            std::env::var("TESTIMONY_REQUIRE_TOOLS").is_err(),
            "age, zstd and tar are required for this test (Debian packages age zstd tar)"
        );
        eprintln!("SKIPPED: install the Debian packages age and zstd to run this test");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut v = new_vault(&tmp.path().join("v"));
    let w = v.add_witness(WitnessProfile::default(), None).unwrap();
    let mut scopes = ConsentScopes::default();
    scopes.set(ConsentScope::ShareArchive, true);
    scopes.set(ConsentScope::RecordAudio, true);
    v.set_consent(&w.code, scopes, "interviewer", None, ConsentMethod::Written)
        .unwrap();
    let i = v
        .new_interview(NewInterview {
            witness: w.code.clone(),
            languages: vec!["ko".into()],
            ..Default::default()
        })
        .unwrap();
    v.set_answer(
        &i.meta.id,
        None,
        "cl_anything_else",
        &json!("속눈썹 작업반에서 하루 열두 시간"),
    )
    .unwrap();
    v.add_attachment(&i.meta.id, "map.png", "image/png", b"fictional map bytes")
        .unwrap();
    // Ten seconds of audio, stored as `pcm16-zstd`: the bundle carries its stored chunks as
    // zstd frames of their own between the exporter's frames, which the standard zstd tool
    // must read as one stream.
    let rec = v.import_wav(&i.meta.id, &tone_wav(10)[..]).unwrap();
    assert_eq!(rec.format, testimony_core::audio::FORMAT);
    let mut wav = Vec::new();
    v.export_wav(&rec.meta.id, &mut wav).unwrap();

    let identity = age::x25519::Identity::generate();
    let key_file = tmp.path().join("archive-key.txt");
    {
        use age::secrecy::ExposeSecret;
        std::fs::write(&key_file, identity.to_string().expose_secret()).unwrap();
    }
    let bundle = tmp.path().join("b.tbundle");
    v.export_bundle(
        &ExportOptions {
            recipients: vec![identity.to_public().to_string()],
            ..Default::default()
        },
        &bundle,
    )
    .unwrap();

    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("bash")
        .arg("-c")
        .arg("set -euo pipefail; age -d -i \"$1\" \"$2\" | zstd -d -q | tar -x -C \"$3\"")
        .args([
            "bash",
            key_file.to_str().unwrap(),
            bundle.to_str().unwrap(),
            out.to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(status.success(), "age | zstd | tar failed");

    // The manifest is plain JSON; its signature verifies with the key it names.
    let manifest_bytes = std::fs::read(out.join("manifest.json")).unwrap();
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["format"], "testimony-bundle");
    let sig_hex = std::fs::read_to_string(out.join("manifest.sig")).unwrap();
    let key: [u8; 32] = hex::decode(manifest["device_public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let sig: [u8; 64] = hex::decode(sig_hex.trim()).unwrap().try_into().unwrap();
    let mut msg = b"testimony-bundle-signature-v1\n".to_vec();
    msg.extend_from_slice(&manifest_bytes);
    VerifyingKey::from_bytes(&key)
        .unwrap()
        .verify(&msg, &Signature::from_bytes(&sig))
        .expect("signature verifies per the spec");
    assert_eq!(
        manifest["device_public_key"].as_str().unwrap(),
        v.device_public_key().unwrap()
    );

    // Every listed file is there, with the declared size and SHA-256.
    let files = manifest["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"].as_str().unwrap().starts_with("attachments/"))
    );
    for f in files {
        let path = out.join(f["path"].as_str().unwrap());
        let bytes = std::fs::read(&path).unwrap_or_else(|_| panic!("{} missing", path.display()));
        assert_eq!(bytes.len() as u64, f["size"].as_u64().unwrap());
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            f["sha256"].as_str().unwrap()
        );
    }
    // Records are JSON lines anyone can read.
    let answers = std::fs::read_to_string(out.join("records/answers.jsonl")).unwrap();
    let first: Value = serde_json::from_str(answers.lines().next().unwrap()).unwrap();
    assert_eq!(first["value"], json!("속눈썹 작업반에서 하루 열두 시간"));
    assert!(Path::new(&out.join("audit/entries.jsonl")).exists());
    // The audio is a plain WAV file, the recording's exact samples.
    assert_eq!(
        std::fs::read(out.join(format!("audio/{}.wav", rec.meta.id))).unwrap(),
        wav
    );
}

/// A 16 kHz mono 16-bit WAV file: a gliding tone with a little noise.
fn tone_wav(seconds: u32) -> Vec<u8> {
    let n = 16_000 * seconds;
    let mut out = testimony_core::audio::wav_header(16_000, 1, n * 2).to_vec();
    let mut noise = 0x2545_f491u32;
    for k in 0..n {
        noise ^= noise << 13;
        noise ^= noise >> 17;
        noise ^= noise << 5;
        let t = k as f64 / 16_000.0;
        let s = 8000.0 * (2.0 * std::f64::consts::PI * (200.0 + 30.0 * t) * t).sin()
            + (noise % 512) as f64
            - 256.0;
        out.extend_from_slice(&(s as i16).to_le_bytes());
    }
    out
}
