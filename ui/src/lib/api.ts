// The only place the UI talks to the backend. Each function is one Tauri command; the rules
// are enforced there (in testimony-core), not here.
import { Channel, invoke } from '@tauri-apps/api/core';
import type {
  AppError, AppInfo, Codebook, Consent, ExportReport, ExportStep, FormState, Interview, Marker, Note, Recording,
  RecordingState, RecordingSummary, Scopes, SearchHit, Settings, VaultInfo, Witness, WitnessIdentity,
  WitnessProfile, WitnessSummary, Transcript, TranscriptSegment, SegmentVersion, TranscriptExport, Speaker,
  ModelsInfo, SpokenLanguage, TranscriptionState,
} from './types';

export function asAppError(e: unknown): AppError {
  if (e && typeof e === 'object' && 'code' in e && typeof (e as AppError).code === 'string') {
    const a = e as AppError;
    return { code: a.code, detail: a.detail ?? null, reason: a.reason ?? null };
  }
  return { code: 'unknown', detail: null };
}

/** Called with every error; the app uses it to notice that the vault was locked. */
let onError: (e: AppError) => void = () => {};
export function setErrorHook(f: (e: AppError) => void) { onError = f; }

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  try {
    return await invoke<T>(cmd, args);
  } catch (e) {
    const err = asAppError(e);
    onError(err);
    throw err;
  }
}

export const api = {
  appInfo: () => call<AppInfo>('app_info'),
  createVault: (passphrase: string, interviewer: string) => call<void>('create_vault', { passphrase, interviewer }),
  unlock: (passphrase: string) => call<void>('unlock', { passphrase }),
  lock: () => call<void>('lock'),
  heartbeat: () => call<boolean>('heartbeat'),
  passphraseCheck: (passphrase: string) => call<void>('passphrase_check', { passphrase }),
  changePassphrase: (old: string, next: string) => call<void>('change_passphrase', { old, new: next }),
  vaultInfo: () => call<VaultInfo>('vault_info'),
  setRecipient: (recipient: string | null) => call<void>('set_recipient', { recipient }),
  getSettings: () => call<Settings>('get_settings'),
  saveSettings: (settings: Settings) => call<void>('save_settings', { settings }),
  listWitnesses: () => call<WitnessSummary[]>('list_witnesses'),
  createWitness: (profile: WitnessProfile) => call<Witness>('create_witness', { profile }),
  getIdentity: (witness: string) => call<WitnessIdentity | null>('get_identity', { witness }),
  setIdentity: (witness: string, identity: WitnessIdentity) => call<void>('set_identity', { witness, identity }),
  setConsent: (witness: string, scopes: Scopes, method: 'oral' | 'written') => call<Consent>('set_consent', { witness, scopes, method }),
  withdrawConsent: (witness: string) => call<Consent>('withdraw_consent', { witness }),
  getCodebook: (id?: string, version?: string) => call<Codebook>('get_codebook', { id: id ?? null, version: version ?? null }),
  listInterviews: (status: string | null, witness: string | null) => call<Interview[]>('list_interviews', { status, witness }),
  search: (query: string) => call<SearchHit[]>('search', { query }),
  newInterview: (args: { witness: string; languages: string[]; place: string | null; interpreter: string | null }) =>
    call<Interview>('new_interview', { args }),
  interviewForm: (interview_id: string) => call<FormState>('interview_form', { interview_id }),
  setAnswer: (interview_id: string, instance_id: string | null, question_id: string, value: unknown) =>
    call<FormState>('set_answer', { interview_id, instance_id, question_id, value }),
  clearAnswer: (interview_id: string, instance_id: string | null, question_id: string) =>
    call<FormState>('clear_answer', { interview_id, instance_id, question_id }),
  addGroupInstance: (interview_id: string, group_id: string, parent_id: string | null) =>
    call<FormState>('add_group_instance', { interview_id, group_id, parent_id }),
  removeGroupInstance: (interview_id: string, instance_id: string) =>
    call<FormState>('remove_group_instance', { interview_id, instance_id }),
  addNote: (interview_id: string, question_id: string | null, instance_id: string | null, text: string) =>
    call<Note>('add_note', { interview_id, question_id, instance_id, text }),
  setInterviewStatus: (interview_id: string, action: 'complete' | 'review' | 'reopen') =>
    call<Interview>('set_interview_status', { interview_id, action }),
  closeWindow: () => call<void>('close_window'),
  /** Progress arrives on a channel (no event permission needed); `exportCancel` stops it. */
  exportBundle: (dest_dir: string, onProgress: (p: ExportStep) => void = () => {}) =>
    call<ExportReport>('export_bundle', { dest_dir, on_progress: new Channel<ExportStep>(onProgress) }),
  exportCancel: () => call<void>('export_cancel'),
  recordingStart: (interview_id: string) => call<RecordingState>('recording_start', { interview_id }),
  recordingStatus: () => call<RecordingState | null>('recording_status'),
  recordingPause: (paused: boolean) => call<RecordingState>('recording_pause', { paused }),
  recordingStop: () => call<Recording>('recording_stop'),
  recordingMarker: (recording_id: string, question_id: string | null, label: string) =>
    call<Marker>('recording_marker', { recording_id, question_id, label }),
  listRecordings: (interview_id: string) => call<RecordingSummary[]>('list_recordings', { interview_id }),
  /** Raw 16-bit PCM of a stretch of a recording (see src-tauri audio.rs). */
  recordingWindow: async (recording_id: string, from_ms: number, to_ms: number): Promise<ArrayBuffer> =>
    asArrayBuffer(await call<unknown>('recording_window', { recording_id, from_ms: Math.floor(from_ms), to_ms: Math.ceil(to_ms) })),
  // Transcript review (rules in crates/core/src/transcript.rs).
  listTranscripts: (recording_id: string) => call<Transcript[]>('list_transcripts', { recording_id }),
  transcriptSegments: (transcript_id: string) => call<TranscriptSegment[]>('transcript_segments', { transcript_id }),
  segmentEditText: (segment_id: string, text: string) => call<TranscriptSegment>('segment_edit_text', { segment_id, text }),
  /** A blank translation clears it. */
  segmentSetTranslation: (segment_id: string, text: string, language: string) =>
    call<TranscriptSegment>('segment_set_translation', { segment_id, text, language }),
  segmentSetSpeaker: (segment_id: string, speaker: Speaker | null) => call<TranscriptSegment>('segment_set_speaker', { segment_id, speaker }),
  segmentSetReviewed: (segment_id: string, reviewed: boolean) => call<TranscriptSegment>('segment_set_reviewed', { segment_id, reviewed }),
  segmentSplit: (segment_id: string, at_ms: number, text_at: number, translation_at: number | null) =>
    call<TranscriptSegment[]>('segment_split', { segment_id, at_ms, text_at, translation_at }),
  segmentMerge: (first_id: string, second_id: string) => call<TranscriptSegment>('segment_merge', { first_id, second_id }),
  segmentRedact: (segment_id: string, field: 'text' | 'translation', start: number, end: number, label: string) =>
    call<TranscriptSegment>('segment_redact', { segment_id, field, start, end, label }),
  segmentUnredact: (segment_id: string, redaction_id: string) => call<TranscriptSegment>('segment_unredact', { segment_id, redaction_id }),
  segmentHistory: (segment_id: string) => call<SegmentVersion[]>('segment_history', { segment_id }),
  exportTranscript: (transcript_id: string, format: 'text' | 'srt' | 'vtt' | 'bilingual', redact: boolean, dest_dir: string) =>
    call<TranscriptExport>('export_transcript', { transcript_id, format, redact, dest_dir }),
  // Transcription in the background (src-tauri/src/transcribe.rs).
  transcribeModels: () => call<ModelsInfo>('transcribe_models'),
  transcribeSettings: (model: string | null, language: SpokenLanguage) => call<ModelsInfo>('transcribe_settings', { model, language }),
  /** Returns at once; progress through transcribeStatus. */
  transcribeStart: (recording_id: string) => call<TranscriptionState>('transcribe_start', { recording_id }),
  transcribeStatus: () => call<TranscriptionState | null>('transcribe_status'),
  transcribeCancel: () => call<TranscriptionState | null>('transcribe_cancel'),
};

/** A raw IPC response arrives as an ArrayBuffer (or, over a fallback channel, as a byte array). */
function asArrayBuffer(v: unknown): ArrayBuffer {
  if (v instanceof ArrayBuffer) return v;
  if (ArrayBuffer.isView(v)) return v.buffer.slice(v.byteOffset, v.byteOffset + v.byteLength) as ArrayBuffer;
  if (Array.isArray(v)) return Uint8Array.from(v as number[]).buffer;
  throw { code: 'internal', detail: null };
}
