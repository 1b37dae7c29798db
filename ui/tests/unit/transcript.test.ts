import { describe, expect, it } from 'vitest';
import { formatSegmentTime, historyActionKey, segmentAt, selectionChars, spanText, splitPoint, step, translationLanguage } from '../../src/lib/transcript';
import { translate } from '../../src/lib/i18n';

const segs = [
  { start_ms: 0, end_ms: 900 },
  { start_ms: 1000, end_ms: 1900 },
  { start_ms: 2000, end_ms: 3900 },
  { start_ms: 2500, end_ms: 3000 },
];

describe('segmentAt', () => {
  it('finds the segment playing at a time', () => {
    expect(segmentAt(segs, 0)).toBe(0);
    expect(segmentAt(segs, 899)).toBe(0);
    expect(segmentAt(segs, 1500)).toBe(1);
    expect(segmentAt(segs, 2100)).toBe(2);
  });
  it('returns -1 in gaps, before, after and with no segments', () => {
    expect(segmentAt(segs, 950)).toBe(-1);
    expect(segmentAt(segs, 5000)).toBe(-1);
    expect(segmentAt(segs, -10)).toBe(-1);
    expect(segmentAt([], 10)).toBe(-1);
  });
  it('prefers the later start where segments overlap, and falls back to the longer one after it ends', () => {
    expect(segmentAt(segs, 2600)).toBe(3);
    expect(segmentAt(segs, 3500)).toBe(2);
  });
  it('is fast on a long transcript', () => {
    const many = Array.from({ length: 20000 }, (_, i) => ({ start_ms: i * 1000, end_ms: i * 1000 + 800 }));
    expect(segmentAt(many, 12_345_500)).toBe(12345);
    expect(segmentAt(many, 12_345_900)).toBe(-1);
  });
});

describe('step', () => {
  it('moves and stays inside the list', () => {
    expect(step(0, 1, 4)).toBe(1);
    expect(step(3, 1, 4)).toBe(3);
    expect(step(0, -1, 4)).toBe(0);
    expect(step(-1, 1, 4)).toBe(0);
    expect(step(-1, -1, 4)).toBe(3);
    expect(step(2, 1, 0)).toBe(-1);
  });
});

describe('formatSegmentTime', () => {
  it('shows tenths, hours from one hour on', () => {
    expect(formatSegmentTime(0)).toBe('0:00.0');
    expect(formatSegmentTime(61_250)).toBe('1:01.2');
    expect(formatSegmentTime(3_600_000 + 5_999)).toBe('1:00:05.9');
    expect(formatSegmentTime(-5)).toBe('0:00.0');
    expect(formatSegmentTime(Number.NaN)).toBe('0:00.0');
  });
});

describe('translationLanguage', () => {
  it('is English for Korean or unknown, Korean for English, or what was saved', () => {
    expect(translationLanguage({ language: 'ko', translation_language: null })).toBe('en');
    expect(translationLanguage({ language: null, translation_language: null })).toBe('en');
    expect(translationLanguage({ language: 'en', translation_language: null })).toBe('ko');
    expect(translationLanguage({ language: 'ko', translation_language: 'fr' })).toBe('fr');
  });
});

describe('splitPoint', () => {
  const seg = { start_ms: 1000, end_ms: 3000, text: '가나다라', translation: null };
  it('cuts time in proportion to the caret in the text', () => {
    expect(splitPoint(seg, 2)).toEqual({ at_ms: 2000, text_at: 2, translation_at: null });
    expect(splitPoint(seg, 1)).toEqual({ at_ms: 1500, text_at: 1, translation_at: null });
  });
  it('cuts the translation at the same proportion, leaving text on both sides', () => {
    expect(splitPoint({ ...seg, translation: 'abcdefgh' }, 2)).toEqual({ at_ms: 2000, text_at: 2, translation_at: 4 });
    expect(splitPoint({ ...seg, translation: 'ab' }, 3)?.translation_at).toBe(1);
    expect(splitPoint({ ...seg, translation: 'a' }, 2)).toBeNull();
  });
  it('refuses a caret at either end, and a segment too short to cut', () => {
    expect(splitPoint(seg, 0)).toBeNull();
    expect(splitPoint(seg, 4)).toBeNull();
    expect(splitPoint(seg, -1)).toBeNull();
    expect(splitPoint({ ...seg, end_ms: 1001 }, 2)).toBeNull();
  });
  it('counts characters, not UTF-16 units', () => {
    expect(splitPoint({ ...seg, text: '😀😀' }, 1)?.text_at).toBe(1);
  });
});

describe('history actions', () => {
  it('every action the core writes has a label in both languages; others show as they are', () => {
    for (const a of ['create', 'edit', 'translate', 'clear_translation', 'speaker', 'review', 'unreview', 'redact', 'unredact', 'split', 'merge', 'merged_into', 'return']) {
      const k = historyActionKey(a)!;
      expect(k).not.toBeNull();
      expect(translate('en', k)).not.toBe(k);
      expect(translate('ko', k)).not.toBe(k);
    }
    expect(historyActionKey('something_new')).toBeNull();
  });
});

describe('redaction spans from a selection', () => {
  it('counts characters, not UTF-16 units, so spans match the core', () => {
    // '😀' is two UTF-16 units but one character.
    const v = '😀 김철수 씨';
    expect(selectionChars(v, 3, 6)).toEqual({ start: 2, end: 5 });
    expect(spanText(v, 2, 5)).toBe('김철수');
    // Backwards selections are the same span; an empty one is nothing.
    expect(selectionChars(v, 6, 3)).toEqual({ start: 2, end: 5 });
    expect(selectionChars(v, 4, 4)).toBeNull();
    expect(spanText('abc', 1, 9)).toBe('bc');
  });
});
