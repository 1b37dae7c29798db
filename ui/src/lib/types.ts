// Shapes of what the commands take and return. They are generated from the Rust types into
// ./generated/ipc.ts (by src-tauri/src/ipc_types.rs; `cargo test` fails when that file is out
// of date) and re-exported here; this file adds only what the UI needs beyond them.

import type { ConsentScopes, ModelsInfo, Settings } from './generated/ipc';

export type * from './generated/ipc';

/** The UI's languages (src-tauri settings.rs LANGUAGES). */
export type Lang = Settings['language'];
/** What is spoken in recordings (src-tauri settings.rs SPOKEN). */
export type SpokenLanguage = ModelsInfo['language'];

/** The consent scopes in the order the UI lists them (crates/core/src/model.rs ConsentScope). */
export const SCOPES = [
  'record_audio', 'transcribe', 'share_archive', 'quote_anonymously', 'publish_identified',
] as const satisfies readonly (keyof ConsentScopes)[];
export type Scope = (typeof SCOPES)[number];
export type Scopes = ConsentScopes;

/** The core's reason for refusing what a person did (crates/core/src/reason.rs, serialised
 * `{code, params}`): a code the UI translates (`reason.<code>`) with its parameters. Written
 * by hand: one shape for every code, so that a code from a newer core still shows. */
export interface Reason { code: string; params?: Record<string, string | number> }

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
