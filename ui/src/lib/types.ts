// Shapes of what the commands return (serialised testimony-core types; snake_case fields).

export type Lang = 'ko' | 'en';
export interface Label { en: string; ko: string }

export interface RecordMeta { id: string; device_id: string; created_at: string; updated_at: string; version: number }

export interface WitnessProfile {
  gender?: string | null;
  birth_year?: number | null;
  home_province?: string | null;
  songbun?: string | null;
  year_left?: number | null;
  repatriations?: number | null;
}
export interface Witness extends RecordMeta, WitnessProfile { code: string }
export interface WitnessIdentity { real_name?: string | null; contact?: string | null; notes?: string | null }

export const SCOPES = ['record_audio', 'transcribe', 'share_archive', 'quote_anonymously', 'publish_identified'] as const;
export type Scope = (typeof SCOPES)[number];
export type Scopes = Record<Scope, boolean>;
export interface Consent extends RecordMeta {
  witness_id: string;
  scopes: Scopes;
  taken_by: string;
  taken_at: string;
  method: 'oral' | 'written';
  withdrawn_at: string | null;
}
export interface WitnessSummary { witness: Witness; consent: Consent | null; has_identity: boolean }

export type InterviewStatus = 'draft' | 'complete' | 'reviewed';
export interface Interview extends RecordMeta {
  witness_id: string;
  witness_code: string;
  interviewer: string;
  interpreter: string | null;
  languages: string[];
  place: string | null;
  started_at: string | null;
  ended_at: string | null;
  codebook_id: string;
  codebook_version: string;
  status: InterviewStatus;
}

export type QuestionType =
  | 'text' | 'long_text' | 'single_choice' | 'multi_choice' | 'number'
  | 'partial_date' | 'date_range' | 'place' | 'yes_no' | 'group';
export interface Term { code: string; label: Label; help: Label | null }
export interface Vocab { id: string; label: Label; terms: Term[] }
export interface Section { id: string; title: Label; help: Label | null; show_if: string | null }
export interface Question {
  id: string;
  section: string;
  group: string | null;
  type: QuestionType;
  label: Label;
  help: Label | null;
  required: boolean;
  vocab: string | null;
  show_if: string | null;
  min: number | null;
  max: number | null;
  unit: Label | null;
}
export interface Codebook { id: string; version: string; title: Label; description: Label | null; vocabs: Vocab[]; sections: Section[]; questions: Question[] }

export interface GroupInstance extends RecordMeta { interview_id: string; group_id: string; parent_id: string | null; ordinal: number; deleted: boolean }
export interface Answer extends RecordMeta { interview_id: string; instance_id: string | null; question_id: string; value: unknown }
export interface Note extends RecordMeta { interview_id: string; question_id: string | null; instance_id: string | null; text: string }
export interface InterviewDetail { interview: Interview; instances: GroupInstance[]; answers: Answer[]; notes: Note[]; attachments: unknown[] }
export interface FormState { detail: InterviewDetail; visible: string[]; sections: string[]; missing_required: string[] }

export interface SearchHit { interview_id: string; witness_code: string; record_id: string; kind: string; snippet: string }
export interface AppInfo { vault_dir: string; vault_exists: boolean; unlocked: boolean; demo: boolean; global_panic: boolean }
export interface VaultInfo { interviewer: string; device_id: string; device_key: string; fingerprint: string; recipient: string | null }
export interface Settings {
  language: Lang;
  idle_minutes: number;
  /** Transcription (changed through transcribe_settings; save_settings keeps them). */
  whisper_model?: string | null;
  transcribe_language?: SpokenLanguage;
}
export interface ExportReport {
  path: string;
  bundle_id: string;
  sequence: number;
  kind: string;
  bytes: number;
  counts: Record<string, number>;
  withheld: { witnesses: number; records: number; reasons: { no_share_consent: number; consent_withdrawn: number; no_consent_recorded: number } };
}

/** Export progress (src-tauri ops.rs ExportStep): `fraction` of the whole export, 0–1. */
export interface ExportStep { phase: 'checking' | 'writing'; fraction: number }

/** The recording in progress (src-tauri audio.rs RecordingState). */
export interface RecordingState {
  recording_id: string;
  interview_id: string;
  sample_rate: number;
  elapsed_ms: number;
  saved_ms: number;
  paused: boolean;
  running: boolean;
  failed: boolean;
  level: { rms: number; peak: number };
}
export interface Recording extends RecordMeta {
  interview_id: string;
  started_at: string;
  stopped_at: string | null;
  sample_rate: number;
  channels: number;
  format: string;
  status: 'recording' | 'stopped';
  samples: number;
  duration_ms: number;
  chunks: number;
  audio_sha256: string | null;
  recovered: boolean;
}
export interface Marker extends RecordMeta { recording_id: string; at_ms: number; question_id: string | null; label: string }
export interface RecordingSummary { recording: Recording; markers: Marker[] }

/** The error every command rejects with. `code` is translated; `detail` is the core's own
 * people-facing reason (never content). */
/** The core's reason for refusing what was typed (crates/core/src/reason.rs): a code the UI
 * translates (`reason.<code>`) with its parameters. */
export interface Reason { code: string; params?: Record<string, string | number> }
export interface AppError { code: string; detail: string | null; reason?: Reason | null }

/** Every code the backend can send (src-tauri/src/error.rs); each has an `error.CODE` string. */
export const ERROR_CODES = [
  'wrong_passphrase', 'not_a_vault', 'corrupt', 'newer_version', 'vault_in_use', 'already_exists',
  'weak_passphrase', 'invalid_answer', 'not_found', 'not_allowed', 'invalid', 'incomplete',
  'nothing_to_export', 'audit_broken', 'codebook', 'io', 'storage', 'internal', 'locked',
  'no_recipient', 'bad_destination', 'audio', 'no_audio_device', 'no_audio_consent', 'no_audio_arrived',
  'recording_active', 'not_recording', 'cancelled',
  'no_transcribe_consent', 'no_model', 'model_missing', 'model_not_ggml', 'model_truncated', 'model_invalid',
  'model_load', 'model_english_only', 'model_gone', 'models_folder', 'transcription_active',
  'recording_not_stopped', 'recording_empty', 'transcribe_failed',
  'unknown',
] as const;

// ---- transcription in the app (src-tauri/src/transcribe.rs) ----
export type SpokenLanguage = 'auto' | 'ko' | 'en';
export interface ModelEntry { file: string; size_name: string; multilingual: boolean; bytes: number }
export interface InvalidModel { file: string; error: AppError }
export interface ModelsInfo {
  dir: string;
  models: ModelEntry[];
  invalid: InvalidModel[];
  chosen: string | null;
  chosen_ok: boolean;
  language: SpokenLanguage;
}
export type TranscriptionPhase = 'loading' | 'running' | 'done' | 'cancelled' | 'failed';
export interface TranscriptionState {
  recording_id: string;
  interview_id: string;
  transcript_id: string | null;
  model: string;
  language: string | null;
  resumed: boolean;
  phase: TranscriptionPhase;
  percent: number | null;
  eta_seconds: number | null;
  windows_done: number;
  windows_total: number | null;
  locked: boolean;
  error: AppError | null;
}

// ---- transcripts (crates/core/src/transcript.rs) ----
export type Speaker = 'interviewer' | 'witness' | 'interpreter';
export interface Transcript extends RecordMeta {
  recording_id: string;
  interview_id: string;
  model: string;
  language: string | null;
  window_ms: number;
  status: 'running' | 'done';
  windows_done: number;
  windows_total: number | null;
}
export interface Redaction { id: string; field: 'text' | 'translation'; start: number; end: number; label: string }
export interface TranscriptSegment extends RecordMeta {
  transcript_id: string;
  interview_id: string;
  seq: number;
  start_ms: number;
  end_ms: number;
  text: string;
  machine_text: string | null;
  language: string | null;
  confidence: number | null;
  translation: string | null;
  translation_language: string | null;
  speaker: Speaker | null;
  reviewed: boolean;
  redactions: Redaction[];
}
export interface SegmentVersion { at: string; actor: string; device_id: string; action: string; related_segment: string | null; segment: TranscriptSegment }
export interface TranscriptExport { path: string; segments: number }
