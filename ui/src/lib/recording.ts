// Pure logic of the recording panel and the player: clock text, level meter scale, which
// question a marker belongs to, and playing a recording from the vault a window at a time.
// The audio itself is captured, stored and read by the backend (src-tauri/src/audio.rs).
import { writable } from 'svelte/store';
import { sectionQuestions } from './form';
import type { Codebook, FormState, Question, RecordingState } from './types';

/** The recording in progress as last seen by the panel (the header shows an indicator). */
export const activeRecording = writable<RecordingState | null>(null);

/** `m:ss`, or `h:mm:ss` from one hour on. Negative or missing values read as 0:00. */
export function formatClock(ms: number): string {
  const total = Math.max(0, Math.floor((Number.isFinite(ms) ? ms : 0) / 1000));
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = total % 60;
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The meter's floor: quieter than this shows as an empty bar. */
export const METER_FLOOR_DB = -60;

/** An RMS level (fraction of full scale) on the meter, 0–100, in decibels from
 * METER_FLOOR_DB (empty) to 0 dBFS (full): speech at about −20 dBFS fills two thirds. */
export function levelPercent(rms: number): number {
  if (!(rms > 0)) return 0;
  const db = 20 * Math.log10(Math.min(rms, 1));
  return Math.round(Math.max(0, Math.min(100, ((db - METER_FLOOR_DB) / -METER_FLOOR_DB) * 100)));
}

/** How loud the input is, for a word beside the meter. */
export function levelZone(rms: number, peak: number): 'silent' | 'low' | 'good' | 'clipping' {
  if (peak >= 0.99) return 'clipping';
  const p = levelPercent(rms);
  if (p < 10) return 'silent';
  if (p < 40) return 'low';
  return 'good';
}

/** The question a marker is tied to: the one whose field last had the focus if it belongs to
 * the section on screen and is shown there, else the section's first shown question. */
export function questionOnScreen(cb: Codebook, state: FormState, section: string, focused: string | null): Question | null {
  const shown = (q: Question) => state.visible.some((k) => k === q.id || k.startsWith(`${q.id}@`));
  if (!state.sections.includes(section)) return null;
  if (focused) {
    const q = cb.questions.find((x) => x.id === focused);
    if (q && q.section === section && shown(q)) return q;
  }
  return sectionQuestions(cb, section).find(shown) ?? null;
}

/** A marker's label: one line of at most 200 characters (the core's rule). */
export function markerLabel(text: string, fallback: string): string {
  const one = text.replace(/\s+/g, ' ').trim();
  const chars = [...(one || fallback)];
  return chars.length > 200 ? `${chars.slice(0, 199).join('')}…` : chars.join('');
}

/** 16-bit little-endian PCM, channels interleaved, as one Float32Array per channel. */
export function pcm16ToChannels(bytes: ArrayBuffer, channels: number): Float32Array[] {
  const view = new DataView(bytes);
  const frames = Math.floor(bytes.byteLength / 2 / channels);
  const out = Array.from({ length: channels }, () => new Float32Array(frames));
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < channels; c++) out[c][f] = view.getInt16((f * channels + c) * 2, true) / 32768;
  }
  return out;
}

/** Where audio goes: Web Audio in the app, a fake in tests. Times in seconds. */
export interface PlaybackSink {
  now(): number;
  /** Plays the samples at sink time `at` (or at once if that has passed). */
  /** `rate` below 1 plays slower (and lower): a translator slowing a fast speaker down. */
  play(channels: Float32Array[], sampleRate: number, at: number, rate?: number): { stop(): void };
}

export interface PlayerOptions {
  durationMs: number;
  sampleRate: number;
  channels: number;
  /** Reads the recording's samples from `fromMs` to `toMs` (raw 16-bit PCM). */
  fetch: (fromMs: number, toMs: number) => Promise<ArrayBuffer>;
  sink: PlaybackSink;
  /** Length of one read; about this much audio is held ahead, never the whole recording. */
  windowMs?: number;
  onEnd?: () => void;
  onError?: (e: unknown) => void;
}

/** Plays a recording by fetching it a window at a time and scheduling each window right
 * after the previous one. At most two windows are scheduled ahead of the playhead; seeking
 * drops them and starts again from the new position. */
export class WindowedPlayer {
  readonly windowMs: number;
  private base = 0; // position (ms) at sink time `startAt`, or the paused position
  private startAt = 0;
  private playing = false;
  private scheduledUntil = 0; // recording position (ms) up to which windows are scheduled
  private generation = 0;
  private filling = false;
  private sources: { stop(): void; until: number }[] = [];
  private speed = 1;

  constructor(private o: PlayerOptions) {
    this.windowMs = o.windowMs ?? 4000;
  }

  /** Playback speed (1 = as recorded). */
  get rate(): number {
    return this.speed;
  }

  /** Changes the speed, from the current position; clamped to 0.25–2. */
  async setRate(rate: number): Promise<void> {
    const r = Math.max(0.25, Math.min(2, rate));
    if (r === this.speed) return;
    const was = this.playing;
    this.pause();
    this.speed = r;
    if (was) await this.play();
  }

  get isPlaying(): boolean {
    return this.playing;
  }

  get durationMs(): number {
    return this.o.durationMs;
  }

  /** The playhead in ms. */
  position(): number {
    if (!this.playing) return this.base;
    return Math.min(this.o.durationMs, this.base + Math.max(0, this.o.sink.now() - this.startAt) * 1000 * this.speed);
  }

  /** Frames before `ms`, as the backend counts them (whole frames, rounded down). */
  private frame(ms: number): number {
    return Math.floor((ms * this.o.sampleRate) / 1000);
  }

  async play(): Promise<void> {
    if (this.playing) return;
    if (this.base >= this.o.durationMs) this.base = 0;
    this.generation += 1;
    this.playing = true;
    this.startAt = this.o.sink.now() + 0.05;
    this.scheduledUntil = this.base;
    await this.fill();
  }

  pause(): void {
    const pos = this.position();
    this.playing = false;
    this.generation += 1;
    this.base = pos;
    for (const s of this.sources) s.stop();
    this.sources = [];
  }

  async seek(ms: number): Promise<void> {
    const was = this.playing;
    this.pause();
    this.base = Math.max(0, Math.min(this.o.durationMs, Math.round(ms)));
    if (was) await this.play();
  }

  /** Called a few times a second while playing: keeps windows coming, notices the end. */
  async tick(): Promise<void> {
    if (!this.playing) return;
    if (this.position() >= this.o.durationMs) {
      this.pause();
      this.base = this.o.durationMs;
      this.o.onEnd?.();
      return;
    }
    await this.fill();
  }

  /** How many windows are scheduled and not yet over (for tests: memory stays bounded). */
  pending(): number {
    const pos = this.position();
    return this.sources.filter((s) => s.until > pos).length;
  }

  private async fill(): Promise<void> {
    if (this.filling) return;
    this.filling = true;
    const gen = this.generation;
    try {
      while (this.playing && gen === this.generation && this.scheduledUntil < this.o.durationMs
        && this.scheduledUntil - this.position() < this.windowMs * 1.5) {
        const from = this.scheduledUntil;
        const to = Math.min(this.o.durationMs, from + this.windowMs);
        const bytes = await this.o.fetch(from, to);
        if (gen !== this.generation) return; // paused or sought meanwhile
        const data = pcm16ToChannels(bytes, this.o.channels);
        const at = this.startAt + (this.frame(from) - this.frame(this.base)) / this.o.sampleRate / this.speed;
        if (data[0]?.length) {
          const src = this.o.sink.play(data, this.o.sampleRate, at, this.speed);
          this.sources.push({ stop: () => src.stop(), until: to });
        }
        this.scheduledUntil = to;
        const pos = this.position();
        this.sources = this.sources.filter((s) => s.until > pos - this.windowMs);
      }
    } catch (e) {
      this.pause();
      this.o.onError?.(e);
    } finally {
      this.filling = false;
    }
  }
}

/** A PlaybackSink on Web Audio. */
export function webAudioSink(ctx: AudioContext): PlaybackSink {
  return {
    now: () => ctx.currentTime,
    play(channels, sampleRate, at, rate = 1) {
      const buf = ctx.createBuffer(channels.length, channels[0].length, sampleRate);
      channels.forEach((d, i) => buf.copyToChannel(d as Float32Array<ArrayBuffer>, i));
      const src = ctx.createBufferSource();
      src.buffer = buf;
      src.playbackRate.value = rate;
      src.connect(ctx.destination);
      src.start(Math.max(at, ctx.currentTime));
      return {
        stop() {
          try { src.stop(); } catch { /* not started or already over */ }
          src.disconnect();
        },
      };
    },
  };
}

/** Playback speeds (slowing a fast speaker down; Web Audio lowers the pitch with the speed).
 * The Speed button and Alt+S cycle through them. */
export const SPEEDS = [1, 0.75, 0.5] as const;

/** The speed after `s` (1× after the slowest; 1× for anything not in the list). */
export function nextSpeed(s: number): number {
  const i = SPEEDS.indexOf(s as (typeof SPEEDS)[number]);
  return i < 0 ? SPEEDS[0] : SPEEDS[(i + 1) % SPEEDS.length];
}

/** A recording's player on its own AudioContext (the recording player and the transcript
 * view each open one when first used). */
export interface Playback {
  player: WindowedPlayer;
  /** Browsers start an AudioContext suspended until a user gesture: call before playing. */
  resume(): Promise<void>;
  /** Stops the sound and releases the audio device. */
  close(): void;
}

export function openPlayback(
  rec: { duration_ms: number; sample_rate: number; channels: number },
  o: Pick<PlayerOptions, 'fetch' | 'onEnd' | 'onError'>,
): Playback {
  let ctx: AudioContext;
  try {
    ctx = new AudioContext();
  } catch {
    // No audio output (or Web Audio unavailable): a translated message, not a crash.
    throw { code: 'local', detail: 'recording.no_playback' };
  }
  const player = new WindowedPlayer({
    durationMs: rec.duration_ms,
    sampleRate: rec.sample_rate,
    channels: rec.channels,
    sink: webAudioSink(ctx),
    ...o,
  });
  return {
    player,
    resume: () => ctx.resume(),
    close() {
      player.pause();
      void ctx.close().catch(() => {});
    },
  };
}
