// Transcription in the app: the state of the one background transcription (polled from the
// backend, src-tauri/src/transcribe.rs, which runs it) and the pure rules of what the
// recordings list offers for each recording. The work itself, every check (consent, model
// file) and the saving are the backend's and the core's.
import { writable } from 'svelte/store';
import type { ModelsInfo, Recording, Transcript, TranscriptionState } from './types';

/** The transcription in the background as last polled (the header shows it anywhere). */
export const transcription = writable<TranscriptionState | null>(null);

/** Still working (model loading or windows being transcribed). */
export function isActive(s: TranscriptionState | null | undefined): boolean {
  return !!s && (s.phase === 'loading' || s.phase === 'running');
}

export const POLL_MS = 500;
let timer: ReturnType<typeof setInterval> | null = null;

/** Polls `status` every POLL_MS into `transcription` until the transcription has ended (or
 * the backend stops answering, e.g. locked). One poller for the whole app. The poll goes
 * around the vault thread and is not activity: it never holds the idle lock off. */
export function watchTranscription(status: () => Promise<TranscriptionState | null>): void {
  if (timer) return;
  const tick = async () => {
    try {
      const s = await status();
      transcription.set(s);
      if (!isActive(s)) stopWatching();
    } catch {
      stopWatching();
    }
  };
  timer = setInterval(() => void tick(), POLL_MS);
  void tick();
}

export function stopWatching(): void {
  if (timer) clearInterval(timer);
  timer = null;
}

/** Time left as a translation key and its number (minutes or hours). */
export function timeLeft(seconds: number | null | undefined): { key: string; n: number } {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return { key: 'transcribe.left_unknown', n: 0 };
  if (seconds < 60) return { key: 'transcribe.left_under_minute', n: 0 };
  if (seconds < 90 * 60) return { key: 'transcribe.left_minutes', n: Math.ceil(seconds / 60) };
  return { key: 'transcribe.left_hours', n: Math.round(seconds / 360) / 10 };
}

/** Percent for the bar and the text: whole numbers, 0–100, and never 100 before it is done. */
export function percentOf(s: TranscriptionState): number {
  if (s.phase === 'done') return 100;
  const p = s.percent ?? 0;
  return Math.max(0, Math.min(99, Math.floor(p)));
}

export type TranscribeAction =
  /** This recording is being transcribed: progress and Cancel. */
  | { kind: 'busy' }
  /** A transcript is finished: the review (Transcript button) is the way on. */
  | { kind: 'review'; transcript: Transcript }
  /** A transcript was started and not finished (cancelled, locked, crashed). */
  | { kind: 'resume'; transcript: Transcript }
  | { kind: 'transcribe' }
  /** Cannot run now; `reason` is said beside the disabled button. */
  | { kind: 'blocked'; reason: 'recording' | 'empty' | 'other' | 'no_model' | 'choose_model'; transcript?: Transcript };

/** What the recordings list offers for `rec`, given its transcripts (oldest first), the
 * transcription in the background and the models folder (null while not known yet). */
export function transcribeAction(rec: Recording, transcripts: Transcript[], job: TranscriptionState | null, models: ModelsInfo | null): TranscribeAction {
  if (rec.status === 'recording') return { kind: 'blocked', reason: 'recording' };
  if (isActive(job) && job?.recording_id === rec.id) return { kind: 'busy' };
  const running = [...transcripts].reverse().find((x) => x.status === 'running');
  const done = [...transcripts].reverse().find((x) => x.status === 'done');
  if (done && !running) return { kind: 'review', transcript: done };
  // One transcription at a time.
  if (isActive(job)) return { kind: 'blocked', reason: 'other', transcript: running };
  // A resumed transcript goes on with its own model (the backend checks it is still there).
  if (running) return { kind: 'resume', transcript: running };
  if (rec.duration_ms === 0) return { kind: 'blocked', reason: 'empty' };
  if (!models || models.models.length === 0) return { kind: 'blocked', reason: 'no_model' };
  if (!models.chosen_ok) return { kind: 'blocked', reason: 'choose_model' };
  return { kind: 'transcribe' };
}

/** A model's size for people: "142 MB". */
export function megabytes(bytes: number): number {
  return Math.max(1, Math.round(bytes / 1_000_000));
}
