//! The TypeScript declarations of what the commands take and return, generated from the Rust
//! types (ts-rs; the core's derives are behind its `ts` feature, which only these tests enable)
//! into `ui/src/lib/generated/ipc.ts`. The test fails when that file is not what the types
//! give now; `TESTIMONY_UPDATE_IPC_TYPES=1 cargo test -p testimony-app ipc_types` rewrites it.

use std::collections::BTreeSet;
use std::path::Path;

use testimony_core::SearchHit;
use testimony_core::audio::capture::Level;
use testimony_core::audio::{Marker, Recording, RecordingStatus};
use testimony_core::bundle::{Counts, ExportPhase, ExportReport, Withheld, WithheldReasons};
use testimony_core::codebook::{Codebook, Label, Question, QuestionType, Section, Term, Vocab};
use testimony_core::model::{
    Answer, AttachmentInfo, Consent, ConsentMethod, ConsentScopes, GroupInstance, Interview,
    InterviewDetail, InterviewStatus, Note, RecordMeta, Witness, WitnessIdentity, WitnessProfile,
};
use testimony_core::transcript::{
    Redaction, RedactionField, SegmentVersion, Speaker, Transcript, TranscriptSegment,
    TranscriptStatus,
};
use ts_rs::{Config, TS};

use crate::audio::RecordingSummary;
use crate::error::AppError;
use crate::ops::{
    AppInfo, ExportStep, FormState, NewInterviewArgs, StatusAction, VaultInfo, WitnessSummary,
};
use crate::settings::Settings;
use crate::slots::{Phase, RecordingState, TranscriptionState};
use crate::transcribe::{InvalidModel, ModelEntry, ModelsInfo};
use crate::transcript::TranscriptExport;

const FILE: &str = "ui/src/lib/generated/ipc.ts";

const HEADER: &str = "\
// Generated from the Rust types by src-tauri/src/ipc_types.rs (ts-rs): do not edit.
// After changing a type, run: TESTIMONY_UPDATE_IPC_TYPES=1 cargo test -p testimony-app ipc_types
// ui/src/lib/types.ts re-exports these and adds what only the UI needs.

// Written by hand there (crates/core/src/reason.rs: one shape for every code).
import type { Reason } from '../types';
";

/// One declaration: its TypeScript name, its text, and the names it refers to.
struct Decl {
    name: String,
    text: String,
    uses: Vec<String>,
}

fn decl<T: TS + 'static>(cfg: &Config) -> Decl {
    let mut text = T::docs().unwrap_or_default();
    text.push_str("export ");
    text.push_str(&T::decl(cfg));
    Decl {
        name: T::ident(cfg),
        text,
        uses: T::dependencies(cfg)
            .into_iter()
            .map(|d| d.ts_name)
            .collect(),
    }
}

macro_rules! decls {
    ($cfg:expr; $($t:ty),* $(,)?) => { vec![$(decl::<$t>($cfg)),*] };
}

/// The whole file. Integers are `number`: serde_json writes every integer as a JSON number,
/// and no count or length here comes near 2^53.
fn render() -> String {
    let cfg = &Config::new().with_large_int("number");
    let decls = decls![cfg;
        // records (crates/core/src/model.rs)
        RecordMeta, WitnessProfile, Witness, WitnessIdentity, ConsentScopes, ConsentMethod,
        Consent, InterviewStatus, Interview, GroupInstance, Answer, Note, AttachmentInfo,
        InterviewDetail,
        // the codebook (crates/core/src/codebook)
        Label, QuestionType, Term, Vocab, Section, Question, Codebook,
        // the app's own answers (src-tauri/src/ops.rs, settings.rs)
        AppInfo, VaultInfo, WitnessSummary, FormState, NewInterviewArgs, StatusAction, Settings,
        SearchHit,
        // export (crates/core/src/bundle)
        ExportReport, Counts, Withheld, WithheldReasons, ExportPhase, ExportStep,
        // errors (src-tauri/src/error.rs)
        AppError,
        // recordings (crates/core/src/audio.rs; src-tauri/src/slots.rs, audio.rs)
        RecordingStatus, Recording, Marker, RecordingSummary, Level, RecordingState,
        // transcription (src-tauri/src/transcribe.rs, slots.rs)
        ModelEntry, InvalidModel, ModelsInfo, Phase, TranscriptionState,
        // transcripts (crates/core/src/transcript; src-tauri/src/transcript.rs)
        TranscriptStatus, Transcript, Speaker, RedactionField, Redaction, TranscriptSegment,
        SegmentVersion, TranscriptExport,
    ];
    // Self-contained: every type a declaration refers to is declared here, once.
    let names: BTreeSet<&str> = decls.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names.len(),
        decls.len(),
        "a TypeScript name is declared twice"
    );
    for d in &decls {
        for u in &d.uses {
            assert!(
                names.contains(u.as_str()),
                "{} refers to {u}, which is not in the list in ipc_types.rs",
                d.name
            );
        }
    }
    let mut out = HEADER.to_string();
    for d in &decls {
        out.push('\n');
        // ts-rs leaves a space before each field's doc comment at the end of a line.
        for line in d.text.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out
}

#[test]
fn ipc_types_are_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(FILE);
    let want = render();
    if std::env::var_os("TESTIMONY_UPDATE_IPC_TYPES").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{FILE} is not what the Rust types give now (a type the commands take or return \
         changed). Regenerate it with\n    TESTIMONY_UPDATE_IPC_TYPES=1 cargo test -p \
         testimony-app ipc_types\nand commit it with the change."
    );
}
