import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { get } from 'svelte/store';
import { afterEach, describe, expect, it, vi } from 'vitest';
import en from '../../src/i18n/en.json';
import ko from '../../src/i18n/ko.json';
import { lookup } from '../../src/lib/i18n';
import {
  isActive, megabytes, percentOf, stopWatching, timeLeft, transcribeAction, transcription, watchTranscription, POLL_MS,
} from '../../src/lib/transcribe';
import { ERROR_CODES } from '../../src/lib/types';
import type { ModelsInfo, Recording, Transcript, TranscriptionState } from '../../src/lib/types';

const rec = (over: Partial<Recording> = {}): Recording => ({
  id: 'r1', device_id: 'd', created_at: '', updated_at: '', version: 1, interview_id: 'i1', started_at: '', stopped_at: '',
  sample_rate: 48000, channels: 1, format: 'pcm16-zstd', status: 'stopped', samples: 48000, duration_ms: 60_000, chunks: 60,
  audio_sha256: 'ab', recovered: false, ...over,
});
const transcript = (status: 'running' | 'done', id = `t-${status}`): Transcript => ({
  id, device_id: 'd', created_at: '', updated_at: '', version: 1, recording_id: 'r1', interview_id: 'i1', model: 'ggml-base.bin',
  language: null, window_ms: 300_000, status, windows_done: 1, windows_total: status === 'done' ? 1 : null,
});
const job = (over: Partial<TranscriptionState> = {}): TranscriptionState => ({
  recording_id: 'r1', interview_id: 'i1', transcript_id: 't', model: 'ggml-base.bin', language: null, resumed: false, phase: 'running',
  percent: 40, eta_seconds: 100, windows_done: 1, windows_total: 3, locked: false, error: null, ...over,
});
const models = (over: Partial<ModelsInfo> = {}): ModelsInfo => ({
  dir: '/m', models: [{ file: 'ggml-base.bin', size_name: 'base', multilingual: true, bytes: 147_951_465 }], invalid: [],
  chosen: 'ggml-base.bin', chosen_ok: true, language: 'auto', ...over,
});

describe('what a recording offers', () => {
  it('Transcribe when a model is chosen and nothing was started', () => {
    expect(transcribeAction(rec(), [], null, models())).toEqual({ kind: 'transcribe' });
  });

  it('says why it cannot run: still recording, empty, no model in the folder, none chosen', () => {
    expect(transcribeAction(rec({ status: 'recording' }), [], null, models())).toEqual({ kind: 'blocked', reason: 'recording' });
    expect(transcribeAction(rec({ duration_ms: 0 }), [], null, models())).toEqual({ kind: 'blocked', reason: 'empty' });
    expect(transcribeAction(rec(), [], null, models({ models: [], chosen: null, chosen_ok: false }))).toEqual({ kind: 'blocked', reason: 'no_model' });
    expect(transcribeAction(rec(), [], null, null)).toEqual({ kind: 'blocked', reason: 'no_model' });
    // A chosen model that is gone from the folder counts as none chosen.
    expect(transcribeAction(rec(), [], null, models({ chosen: 'ggml-gone.bin', chosen_ok: false }))).toEqual({ kind: 'blocked', reason: 'choose_model' });
  });

  it('progress for the recording being transcribed; one at a time for the others', () => {
    expect(transcribeAction(rec(), [], job(), models())).toEqual({ kind: 'busy' });
    expect(transcribeAction(rec(), [], job({ phase: 'loading' }), models())).toEqual({ kind: 'busy' });
    expect(transcribeAction(rec({ id: 'r2' }), [], job(), models())).toEqual({ kind: 'blocked', reason: 'other' });
    // An ended transcription no longer blocks anything.
    expect(transcribeAction(rec({ id: 'r2' }), [], job({ phase: 'cancelled' }), models())).toEqual({ kind: 'transcribe' });
  });

  it('Resume for a transcript left running, with its own model (even when none is chosen now)', () => {
    const t = transcript('running');
    expect(transcribeAction(rec(), [t], job({ phase: 'cancelled' }), models({ chosen: null, chosen_ok: false }))).toEqual({ kind: 'resume', transcript: t });
    expect(transcribeAction(rec(), [t], job({ recording_id: 'r9' }), models())).toEqual({ kind: 'blocked', reason: 'other', transcript: t });
  });

  it('the review once a transcript is done', () => {
    const d = transcript('done');
    expect(transcribeAction(rec(), [d], null, models())).toEqual({ kind: 'review', transcript: d });
    expect(transcribeAction(rec(), [d], job({ phase: 'done' }), null)).toEqual({ kind: 'review', transcript: d });
    // A newer run left unfinished is resumed rather than hidden behind the old review.
    const r = transcript('running');
    expect(transcribeAction(rec(), [d, r], null, models())).toEqual({ kind: 'resume', transcript: r });
  });
});

describe('progress text', () => {
  it('time left in minutes, hours or under a minute; unknown before an estimate', () => {
    expect(timeLeft(null)).toEqual({ key: 'transcribe.left_unknown', n: 0 });
    expect(timeLeft(Number.NaN)).toEqual({ key: 'transcribe.left_unknown', n: 0 });
    expect(timeLeft(0)).toEqual({ key: 'transcribe.left_under_minute', n: 0 });
    expect(timeLeft(59)).toEqual({ key: 'transcribe.left_under_minute', n: 0 });
    expect(timeLeft(60)).toEqual({ key: 'transcribe.left_minutes', n: 1 });
    expect(timeLeft(61)).toEqual({ key: 'transcribe.left_minutes', n: 2 });
    expect(timeLeft(89 * 60)).toEqual({ key: 'transcribe.left_minutes', n: 89 });
    expect(timeLeft(2.5 * 3600)).toEqual({ key: 'transcribe.left_hours', n: 2.5 });
  });

  it('percent: whole, clamped, 100 only when done', () => {
    expect(percentOf(job({ percent: 41.7 }))).toBe(41);
    expect(percentOf(job({ percent: null }))).toBe(0);
    expect(percentOf(job({ percent: 100 }))).toBe(99);
    expect(percentOf(job({ percent: -3 }))).toBe(0);
    expect(percentOf(job({ phase: 'done', percent: 97 }))).toBe(100);
    expect(megabytes(147_951_465)).toBe(148);
    expect(megabytes(10)).toBe(1);
  });

  it('isActive only while loading or running', () => {
    expect(isActive(null)).toBe(false);
    expect(['loading', 'running', 'done', 'cancelled', 'failed'].map((p) => isActive(job({ phase: p as TranscriptionState['phase'] })))).toEqual([true, true, false, false, false]);
  });
});

describe('polling', () => {
  afterEach(() => {
    stopWatching();
    vi.useRealTimers();
    transcription.set(null);
  });

  it('polls into the store until the transcription ended, then stops', async () => {
    vi.useFakeTimers();
    const states = [job({ percent: 10 }), job({ percent: 60 }), job({ phase: 'done', percent: 100 })];
    let calls = 0;
    const status = async () => states[Math.min(calls++, states.length - 1)];
    watchTranscription(status);
    watchTranscription(status); // a second watcher is not started
    await vi.advanceTimersByTimeAsync(0);
    expect(get(transcription)?.percent).toBe(10);
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(get(transcription)?.percent).toBe(60);
    await vi.advanceTimersByTimeAsync(POLL_MS);
    expect(get(transcription)?.phase).toBe('done');
    await vi.advanceTimersByTimeAsync(POLL_MS * 5);
    expect(calls).toBe(3);
  });

  it('stops when the backend refuses (locked)', async () => {
    vi.useFakeTimers();
    let calls = 0;
    watchTranscription(async () => { calls++; throw { code: 'locked', detail: null }; });
    await vi.advanceTimersByTimeAsync(POLL_MS * 4);
    expect(calls).toBe(1);
  });
});

describe('transcription strings and error codes', () => {
  it('every code the backend sends for transcription is known and translated in both languages', () => {
    const src = ['transcribe.rs', 'settings.rs'].map((f) => readFileSync(join(__dirname, '../../../src-tauri/src', f), 'utf8')).join('\n');
    // AppError::code("x") / with_detail("x"), and the core's refusals that
    // transcription_refusal maps to the panel's codes (`Some(Reason::…) => "x"`).
    const codes = [...src.matchAll(/(?:AppError::(?:code|with_detail)\(\s*|Reason::\w+ \{ \.\. \}\) => )"([a-z_]+)"/g)].map((m) => m[1]);
    expect(codes).toContain('no_transcribe_consent');
    expect(codes).toContain('recording_empty');
    expect(codes).toContain('model_truncated');
    for (const c of new Set(codes)) {
      expect(ERROR_CODES as readonly string[], c).toContain(c);
      expect(lookup(en, `error.${c}`), c).toBeTruthy();
      expect(lookup(ko, `error.${c}`), c).toBeTruthy();
    }
  });

  it('keys chosen at run time exist', () => {
    const keys = ['recording', 'empty', 'other', 'no_model', 'choose_model'].map((r) => `transcribe.why_${r}`)
      .concat(['auto', 'ko', 'en'].map((l) => `transcribe.lang_${l}`))
      .concat(['left_unknown', 'left_under_minute', 'left_minutes', 'left_hours'].map((k) => `transcribe.${k}`));
    for (const k of keys) {
      expect(lookup(en, k), k).toBeTruthy();
      expect(lookup(ko, k), k).toBeTruthy();
    }
  });
});
