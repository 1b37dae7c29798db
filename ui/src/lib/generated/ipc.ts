// Generated from the Rust types by src-tauri/src/ipc_types.rs (ts-rs): do not edit.
// After changing a type, run: TESTIMONY_UPDATE_IPC_TYPES=1 cargo test -p testimony-app ipc_types
// ui/src/lib/types.ts re-exports these and adds what only the UI needs.

// Written by hand there (crates/core/src/reason.rs: one shape for every code).
import type { Reason } from '../types';

export type RecordMeta = { id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type WitnessProfile = { gender: string | null, birth_year: number | null,
/**
 * A province code (the default codebook's `province` vocabulary).
 */
home_province: string | null, songbun: string | null, year_left: number | null,
/**
 * Times forcibly repatriated from China.
 */
repatriations: number | null, };

export type Witness = {
/**
 * Pseudonymous code such as W-2026-0042: what everyone but the interviewer sees.
 */
code: string, id: string, device_id: string, created_at: string, updated_at: string, version: number, gender: string | null, birth_year: number | null,
/**
 * A province code (the default codebook's `province` vocabulary).
 */
home_province: string | null, songbun: string | null, year_left: number | null,
/**
 * Times forcibly repatriated from China.
 */
repatriations: number | null, };

/**
 * Identifying details, stored apart and never exported unless consent and an explicit option
 * both allow it.
 */
export type WitnessIdentity = { real_name: string | null, contact: string | null, notes: string | null, };

export type ConsentScopes = { record_audio: boolean, transcribe: boolean, share_archive: boolean, quote_anonymously: boolean, publish_identified: boolean, };

export type ConsentMethod = "oral" | "written";

export type Consent = { witness_id: string, scopes: ConsentScopes, taken_by: string, taken_at: string, method: ConsentMethod, withdrawn_at: string | null, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type InterviewStatus = "draft" | "complete" | "reviewed";

export type Interview = { witness_id: string, witness_code: string, interviewer: string, interpreter: string | null, languages: Array<string>,
/**
 * Coarse place only (a city or county), never an address.
 */
place: string | null, started_at: string | null, ended_at: string | null, codebook_id: string, codebook_version: string, status: InterviewStatus, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type GroupInstance = { interview_id: string, group_id: string, parent_id: string | null, ordinal: number, deleted: boolean, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type Answer = { interview_id: string, instance_id: string | null, question_id: string, value: unknown, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type Note = { interview_id: string, question_id: string | null, instance_id: string | null, text: string, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type AttachmentInfo = { interview_id: string, name: string, media_type: string, size: number, sha256: string, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

/**
 * An interview with everything recorded in it.
 */
export type InterviewDetail = { interview: Interview, instances: Array<GroupInstance>, answers: Array<Answer>, notes: Array<Note>, attachments: Array<AttachmentInfo>, };

export type Label = { en: string, ko: string, };

export type QuestionType = "text" | "long_text" | "single_choice" | "multi_choice" | "number" | "partial_date" | "date_range" | "place" | "yes_no" | "group";

export type Term = { code: string, label: Label, help: Label | null, };

export type Vocab = { id: string, label: Label, terms: Array<Term>, };

export type Section = { id: string, title: Label, help: Label | null, show_if: string | null, };

export type Question = { id: string, section: string, group: string | null, type: QuestionType, label: Label, help: Label | null, required: boolean, vocab: string | null, show_if: string | null, min: number | null, max: number | null, unit: Label | null, };

export type Codebook = { id: string, version: string, title: Label, description: Label | null, vocabs: Array<Vocab>, sections: Array<Section>, questions: Array<Question>,
/**
 * SHA-256 of the source text, so two files claiming the same version can be told apart.
 */
sha256: string, };

export type AppInfo = { vault_dir: string, vault_exists: boolean, unlocked: boolean, demo: boolean,
/**
 * Ctrl+Shift+L is registered system-wide (X11), not only inside the window.
 */
global_panic: boolean, };

export type VaultInfo = { interviewer: string, device_id: string, device_key: string,
/**
 * The device key in groups of four, for reading aloud to the coordinator.
 */
fingerprint: string, recipient: string | null, };

export type WitnessSummary = { witness: Witness, consent: Consent | null, has_identity: boolean, };

/**
 * An interview as the form shows it: the records, plus what the core decides about them
 * (which questions are visible where, which required ones are missing).
 */
export type FormState = { detail: InterviewDetail,
/**
 * `question_id` for top-level questions, `question_id@instance_id` inside an instance.
 */
visible: Array<string>,
/**
 * Section ids whose skip logic shows them.
 */
sections: Array<string>, missing_required: Array<string>, };

export type NewInterviewArgs = { witness: string, languages: Array<string>, place: string | null, interpreter: string | null, };

export type StatusAction = "complete" | "review" | "reopen";

export type Settings = { language: "ko" | "en", idle_minutes: number,
/**
 * The transcription model: a file name in the models folder (see `transcribe.rs`).
 * Files written before transcription existed have neither field.
 */
whisper_model?: string | null,
/**
 * What is spoken in recordings: "auto" (detected), "ko" or "en".
 */
transcribe_language?: "auto" | "ko" | "en", };

export type SearchHit = { interview_id: string, witness_code: string, record_id: string, kind: string,
/**
 * The matching text around the first hit, at most ~120 characters.
 */
snippet: string, };

export type ExportReport = { path: string, bundle_id: string, bundle_hash: string, sequence: number, kind: string, counts: Counts, withheld: Withheld, bytes: number, };

export type Counts = { witnesses: number, witness_identities: number, consents: number, interviews: number, group_instances: number, answers: number, notes: number, recordings: number, audio_markers: number, transcripts: number, transcript_segments: number, attachments: number, tombstones: number, audit_entries: number, };

export type Withheld = {
/**
 * Witnesses whose records were left out.
 */
witnesses: number,
/**
 * Records left out (all types together).
 */
records: number, reasons: WithheldReasons, };

export type WithheldReasons = { no_share_consent: number, consent_withdrawn: number, no_consent_recorded: number, };

export type ExportPhase = "checking" | "writing";

/**
 * Export progress as the export screen shows it.
 */
export type ExportStep = { phase: ExportPhase,
/**
 * The whole export, 0 to 1.
 */
fraction: number, };

export type AppError = { code: string, detail: string | null, reason?: Reason | null, };

/**
 * Whether a recording is still being written.
 */
export type RecordingStatus = "recording" | "stopped";

export type Recording = { interview_id: string, started_at: string, stopped_at: string | null, sample_rate: number, channels: number, format: string, status: RecordingStatus,
/**
 * Frames stored (one sample per channel each). While recording: what is committed so far.
 */
samples: number, duration_ms: number, chunks: number,
/**
 * Once stopped: SHA-256 over the chunk hashes (32 bytes each, in order), which together
 * fix every sample of the recording.
 */
audio_sha256: string | null,
/**
 * Stopped when the vault was next opened, because the process recording it ended without
 * stopping it (a crash, a kill, power loss). The audio is what was committed by then.
 */
recovered: boolean, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

/**
 * A moment in a recording that the interviewer marked, optionally tied to a question.
 */
export type Marker = { recording_id: string, at_ms: number, question_id: string | null, label: string, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

/**
 * A recording with its markers, for the list under the panel.
 */
export type RecordingSummary = { recording: Recording, markers: Array<Marker>, };

/**
 * Input level of the latest block, as fractions of full scale (0.0 to 1.0).
 */
export type Level = { rms: number, peak: number, };

/**
 * What the recording panel shows: the clock, the level meter, the state.
 */
export type RecordingState = { recording_id: string, interview_id: string, sample_rate: number,
/**
 * Audio captured while not paused: the position a marker gets.
 */
elapsed_ms: number,
/**
 * Audio committed to the vault so far.
 */
saved_ms: number, paused: boolean,
/**
 * False once the input ended or failed: the UI then stops the recording to learn why.
 */
running: boolean, failed: boolean, level: Level, };

/**
 * A model file in the models folder, as the settings screen lists it.
 */
export type ModelEntry = { file: string,
/**
 * tiny, base, small, medium, large (from the file's header), or unknown.
 */
size_name: string,
/**
 * False for English-only models (`*.en.bin`): they cannot transcribe Korean.
 */
multilingual: boolean, bytes: number, };

/**
 * A file in the models folder that is not a usable model, and why.
 */
export type InvalidModel = { file: string, error: AppError, };

export type ModelsInfo = {
/**
 * Where the user copies model files (created when missing).
 */
dir: string, models: Array<ModelEntry>, invalid: Array<InvalidModel>,
/**
 * The model chosen in Settings, and whether it is among `models`.
 */
chosen: string | null, chosen_ok: boolean,
/**
 * auto, ko or en.
 */
language: "auto" | "ko" | "en", };

export type TranscriptionPhase = "loading" | "running" | "done" | "cancelled" | "failed";

/**
 * What the UI shows about the transcription. No content: ids, numbers, an error code.
 */
export type TranscriptionState = { recording_id: string, interview_id: string,
/**
 * Known once the vault has started (or resumed) the transcript.
 */
transcript_id: string | null,
/**
 * The model's file name.
 */
model: string,
/**
 * The language whisper is told (None: detected).
 */
language: string | null,
/**
 * An earlier run saved windows of this transcript.
 */
resumed: boolean, phase: TranscriptionPhase, percent: number | null, eta_seconds: number | null,
/**
 * Windows saved in the vault (by this run and earlier ones).
 */
windows_done: number, windows_total: number | null,
/**
 * Stopped because the vault was locked.
 */
locked: boolean, error: AppError | null, };

export type TranscriptStatus = "running" | "done";

export type Transcript = { recording_id: string, interview_id: string,
/**
 * The model's name as the engine gave it (e.g. the GGML file name).
 */
model: string,
/**
 * The language forced for the run (ko, en), or None for automatic detection.
 */
language: string | null,
/**
 * Window `n` covers `[n × window_ms, (n + 1) × window_ms)` of the recording.
 */
window_ms: number, status: TranscriptStatus,
/**
 * Windows saved so far (not stored: counted from `transcript_windows`).
 */
windows_done: number,
/**
 * Known once finished.
 */
windows_total: number | null, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

export type Speaker = "interviewer" | "witness" | "interpreter";

/**
 * Which text of a segment a redaction span marks.
 */
export type RedactionField = "text" | "translation";

/**
 * A span of a segment's text or translation to hide in exports meant for publication:
 * characters `[start, end)` (Unicode scalar values, not bytes), replaced by `[label]`.
 */
export type Redaction = { id: string, field: RedactionField, start: number, end: number,
/**
 * What is hidden, e.g. name, place (lower-case letters, digits, `_`, `-`).
 */
label: string, };

export type TranscriptSegment = { transcript_id: string, interview_id: string,
/**
 * Creation order within the transcript; segments are ordered by (start_ms, end_ms, seq).
 */
seq: number, start_ms: number, end_ms: number,
/**
 * The current text (the model's, or the reviewer's correction).
 */
text: string,
/**
 * What the model wrote, never changed. None for the second part of a split (which the
 * model never wrote as such; its history starts with the split).
 */
machine_text: string | null, language: string | null, confidence: number | null, translation: string | null, translation_language: string | null, speaker: Speaker | null, reviewed: boolean, redactions: Array<Redaction>, id: string, device_id: string, created_at: string, updated_at: string, version: number, };

/**
 * One version of a segment, as [`Vault::segment_history`] shows it: who made it, when, by
 * which action, and the segment as it was right after.
 */
export type SegmentVersion = { at: string, actor: string, device_id: string,
/**
 * `create` (the model's text), `edit`, `translate`, `clear_translation`, `speaker`,
 * `review`, `unreview`, `redact`, `unredact`, `split`, `merge`, `merged_into`.
 */
action: string,
/**
 * For split and merge: the other segment.
 */
related_segment: string | null, segment: TranscriptSegment, };

/**
 * Where an exported transcript went.
 */
export type TranscriptExport = { path: string, segments: number, };
