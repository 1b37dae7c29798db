import { describe, expect, it } from 'vitest';
import {
  SPEEDS, WindowedPlayer, formatClock, levelPercent, levelZone, markerLabel, nextSpeed, pcm16ToChannels, questionOnScreen, type PlaybackSink,
} from '../../src/lib/recording';
import type { Codebook, FormState, Question } from '../../src/lib/types';

describe('recording clock', () => {
  it('shows minutes and seconds, hours from one hour on', () => {
    expect(formatClock(0)).toBe('0:00');
    expect(formatClock(999)).toBe('0:00');
    expect(formatClock(5_000)).toBe('0:05');
    expect(formatClock(65_432)).toBe('1:05');
    expect(formatClock(59 * 60_000 + 59_999)).toBe('59:59');
    expect(formatClock(3_600_000)).toBe('1:00:00');
    expect(formatClock(3 * 3_600_000 + 7 * 60_000 + 9_000)).toBe('3:07:09');
    expect(formatClock(-5)).toBe('0:00');
    expect(formatClock(Number.NaN)).toBe('0:00');
  });
});

describe('playback speed', () => {
  it('cycles 1× → 0.75× → 0.5× → 1×, and starts again at 1× from anything else', () => {
    expect([...SPEEDS]).toEqual([1, 0.75, 0.5]);
    expect(nextSpeed(1)).toBe(0.75);
    expect(nextSpeed(0.75)).toBe(0.5);
    expect(nextSpeed(0.5)).toBe(1);
    expect(nextSpeed(2)).toBe(1);
  });
});

describe('level meter', () => {
  it('is logarithmic from -60 dBFS (empty) to full scale', () => {
    expect(levelPercent(0)).toBe(0);
    expect(levelPercent(0.001)).toBe(0); // -60 dBFS
    expect(levelPercent(0.0001)).toBe(0); // below the floor
    expect(levelPercent(0.01)).toBe(33); // -40 dBFS
    expect(levelPercent(0.1)).toBe(67); // -20 dBFS: speech
    expect(levelPercent(1)).toBe(100);
    expect(levelPercent(2)).toBe(100);
    expect(levelPercent(Number.NaN)).toBe(0);
    // Monotonic: a louder input never shows a shorter bar.
    let last = -1;
    for (let r = 0.0005; r <= 1; r *= 1.3) {
      const p = levelPercent(r);
      expect(p).toBeGreaterThanOrEqual(last);
      last = p;
    }
  });

  it('names the zone: silent, quiet, good, clipping', () => {
    expect(levelZone(0, 0)).toBe('silent');
    expect(levelZone(0.0015, 0.01)).toBe('silent');
    expect(levelZone(0.01, 0.05)).toBe('low');
    expect(levelZone(0.1, 0.4)).toBe('good');
    expect(levelZone(0.3, 1)).toBe('clipping');
  });
});

const q = (id: string, section: string, extra: Partial<Question> = {}): Question => ({
  id, section, group: null, type: 'text', label: { en: id, ko: id }, help: null, required: false,
  vocab: null, show_if: null, min: null, max: null, unit: null, ...extra,
});
const cb: Codebook = {
  id: 'c', version: '1', sha256: '', title: { en: 'c', ko: 'c' }, description: null, vocabs: [],
  sections: [
    { id: 'a', title: { en: 'A', ko: 'A' }, help: null, show_if: null },
    { id: 'b', title: { en: 'B', ko: 'B' }, help: null, show_if: null },
    { id: 'c', title: { en: 'C', ko: 'C' }, help: null, show_if: 'x' },
  ],
  questions: [
    q('a1', 'a', { show_if: 'hidden' }), q('a2', 'a'), q('grp', 'b', { type: 'group' }), q('g1', 'b', { group: 'grp' }), q('b2', 'b'), q('c1', 'c'),
  ],
};
const state = (visible: string[], sections = ['a', 'b']): FormState => ({
  detail: { interview: {} as FormState['detail']['interview'], instances: [], answers: [], notes: [], attachments: [] },
  visible, sections, missing_required: [],
});

describe('the question a marker is tied to', () => {
  it('is the focused question when it is on screen', () => {
    expect(questionOnScreen(cb, state(['a2', 'b2']), 'b', 'b2')?.id).toBe('b2');
    // A question inside a group instance counts as shown.
    expect(questionOnScreen(cb, state(['a2', 'grp', 'g1@i1', 'b2']), 'b', 'g1')?.id).toBe('g1');
  });

  it('falls back to the section’s first shown question', () => {
    // Focus was left in another section.
    expect(questionOnScreen(cb, state(['a2', 'b2']), 'b', 'a2')?.id).toBe('b2');
    // a1 is hidden by skip logic: the first shown one is a2.
    expect(questionOnScreen(cb, state(['a2', 'b2']), 'a', null)?.id).toBe('a2');
    // The focused question was hidden meanwhile.
    expect(questionOnScreen(cb, state(['b2']), 'a', 'a2')).toBeNull();
    // A group shown first is the section's current question.
    expect(questionOnScreen(cb, state(['grp', 'b2']), 'b', null)?.id).toBe('grp');
  });

  it('is none in a section skip logic hides', () => {
    expect(questionOnScreen(cb, state(['a2', 'c1'], ['a', 'b']), 'c', 'c1')).toBeNull();
  });
});

describe('marker labels', () => {
  it('are one line of at most 200 characters', () => {
    expect(markerLabel('  Were you\n ever   detained? ', 'Marker')).toBe('Were you ever detained?');
    expect(markerLabel('', 'Marker')).toBe('Marker');
    const long = markerLabel('가'.repeat(300), 'x');
    expect([...long].length).toBe(200);
    expect(long.endsWith('…')).toBe(true);
  });
});

describe('PCM decoding', () => {
  it('splits interleaved little-endian 16-bit samples into channels', () => {
    const pcm = new Int16Array([0, 32767, -32768, 16384, 1, -1]);
    const [l, r] = pcm16ToChannels(pcm.buffer, 2);
    expect(Array.from(l)).toEqual([0, -1, 1 / 32768]);
    expect(Array.from(r)).toEqual([32767 / 32768, 0.5, -1 / 32768]);
    const [mono] = pcm16ToChannels(pcm.buffer, 1);
    expect(mono.length).toBe(6);
  });
});

/** A sink whose clock the test moves; it records what was scheduled. */
class FakeSink implements PlaybackSink {
  t = 0;
  played: { at: number; frames: number; stopped: boolean; speed: number }[] = [];
  now() { return this.t; }
  play(channels: Float32Array[], _rate: number, at: number, speed = 1) {
    const p = { at, frames: channels[0].length, stopped: false, speed };
    this.played.push(p);
    return { stop: () => { p.stopped = true; } };
  }
}

function player(durationMs: number, rate = 8000) {
  const sink = new FakeSink();
  const reads: [number, number][] = [];
  const p = new WindowedPlayer({
    durationMs, sampleRate: rate, channels: 1, sink, windowMs: 4000,
    fetch: async (from, to) => {
      reads.push([from, to]);
      const frames = Math.floor((to * rate) / 1000) - Math.floor((from * rate) / 1000);
      return new Int16Array(frames).buffer;
    },
  });
  return { p, sink, reads };
}

describe('windowed playback', () => {
  it('reads a few seconds ahead, back to back, never the whole recording', async () => {
    const { p, sink, reads } = player(3 * 3_600_000);
    await p.play();
    expect(reads).toEqual([[0, 4000], [4000, 8000]]);
    // Scheduled one after the other, sample-exact.
    expect(sink.played[1].at - sink.played[0].at).toBeCloseTo(4, 9);
    expect(sink.played[0].frames).toBe(32_000);
    // Time passes: more is read as the playhead moves, not before.
    sink.t = 3;
    await p.tick();
    expect(reads.length).toBe(3);
    expect(reads[2]).toEqual([8000, 12000]);
    for (let s = 3; s < 60; s += 0.25) {
      sink.t = s;
      await p.tick();
      expect(p.pending()).toBeLessThanOrEqual(3);
    }
    const pos = p.position();
    expect(pos).toBeGreaterThan(59_000);
    expect(reads.at(-1)![1] - pos).toBeLessThanOrEqual(10_000);
    // Contiguous reads, no gaps or overlaps.
    for (let k = 1; k < reads.length; k++) expect(reads[k][0]).toBe(reads[k - 1][1]);
  });

  it('seeks: drops what was scheduled and reads from the new position', async () => {
    const { p, sink, reads } = player(600_000);
    await p.play();
    sink.t = 1;
    await p.seek(300_000);
    expect(sink.played.slice(0, 2).every((x) => x.stopped)).toBe(true);
    expect(reads.at(-2)).toEqual([300_000, 304_000]);
    expect(p.position()).toBeCloseTo(300_000, -2);
    // Seeking while paused only moves the playhead.
    p.pause();
    const n = reads.length;
    await p.seek(120_000);
    expect(reads.length).toBe(n);
    expect(p.position()).toBe(120_000);
    expect(p.isPlaying).toBe(false);
    // Out of range is clamped.
    await p.seek(-50);
    expect(p.position()).toBe(0);
    await p.seek(10_000_000);
    expect(p.position()).toBe(600_000);
  });

  it('stops at the end and plays again from the start', async () => {
    let ended = 0;
    const sink = new FakeSink();
    const p = new WindowedPlayer({
      durationMs: 5000, sampleRate: 8000, channels: 1, sink, windowMs: 4000, onEnd: () => { ended += 1; },
      fetch: async (from, to) => new Int16Array(Math.floor((to * 8)) - Math.floor(from * 8)).buffer,
    });
    await p.play();
    expect(sink.played.map((x) => x.frames)).toEqual([32_000, 8_000]);
    sink.t = 6;
    await p.tick();
    expect(ended).toBe(1);
    expect(p.isPlaying).toBe(false);
    expect(p.position()).toBe(5000);
    await p.play();
    expect(p.position()).toBe(0);
  });

  it('plays slower from where it is: windows spaced by their slowed length, playhead slowed', async () => {
    const { p, sink, reads } = player(600_000);
    await p.play();
    sink.t = 2;
    await p.tick();
    // Playback starts 50 ms after play().
    expect(p.position()).toBeCloseTo(1950, 6);
    await p.setRate(0.5);
    expect(p.rate).toBe(0.5);
    expect(sink.played.filter((x) => x.speed === 1).every((x) => x.stopped)).toBe(true);
    const slowed = sink.played.filter((x) => x.speed === 0.5);
    expect(slowed.length).toBeGreaterThanOrEqual(2);
    // A 4 s window now lasts 8 s, and the next one starts after it.
    expect(slowed[1].at - slowed[0].at).toBeCloseTo(8, 6);
    expect(reads.at(-2)![0]).toBe(1950);
    const start = p.position();
    sink.t += 4;
    // 4 s of wall time (less the 50 ms start) at half speed.
    expect(p.position() - start).toBeCloseTo(3950 / 2, 6);
    // Clamped, and back to normal.
    await p.setRate(0.01);
    expect(p.rate).toBe(0.25);
    await p.setRate(1);
    expect(sink.played.at(-1)!.speed).toBe(1);
  });

  it('a read that fails stops playback and reports it', async () => {
    let err: unknown = null;
    const sink = new FakeSink();
    const p = new WindowedPlayer({
      durationMs: 60_000, sampleRate: 8000, channels: 1, sink,
      fetch: async () => { throw { code: 'locked', detail: null }; },
      onError: (e) => { err = e; },
    });
    await p.play();
    expect(p.isPlaying).toBe(false);
    expect(err).toEqual({ code: 'locked', detail: null });
  });
});
