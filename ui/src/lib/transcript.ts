// Pure logic of the transcript review screen: which segment plays at a time, moving between
// segments, the time text of a row. The rules on segments are the core's
// (crates/core/src/transcript.rs); this only helps the screen.
import type { TranscriptSegment } from './types';

/** A textarea selection (UTF-16 offsets, as the DOM gives them) as character offsets, the
 * unit the core counts redaction spans in; null when nothing is selected. */
export function selectionChars(value: string, from: number, to: number): { start: number; end: number } | null {
  const a = Math.min(from, to);
  const b = Math.max(from, to);
  if (b <= a) return null;
  const start = [...value.slice(0, a)].length;
  return { start, end: start + [...value.slice(a, b)].length };
}

/** The characters a redaction span covers (for showing what is hidden). */
export function spanText(value: string, start: number, end: number): string {
  return [...value].slice(start, end).join('');
}

/** Index of the segment playing at `ms` (segments in time order): the last one that has
 * started and not yet ended; -1 when none. Overlapping segments: the later start wins. */
export function segmentAt(segs: Pick<TranscriptSegment, 'start_ms' | 'end_ms'>[], ms: number): number {
  let lo = 0;
  let hi = segs.length;
  // First segment starting after ms.
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (segs[mid].start_ms <= ms) lo = mid + 1;
    else hi = mid;
  }
  for (let i = lo - 1; i >= 0 && i >= lo - 8; i--) {
    if (ms < segs[i].end_ms) return i;
  }
  return -1;
}

/** The index `delta` away from `i`, kept inside `0..n` (-1 with no segments). From no
 * selection (-1), going forward starts at the first. */
export function step(i: number, delta: number, n: number): number {
  if (n <= 0) return -1;
  if (i < 0) return delta >= 0 ? 0 : n - 1;
  return Math.max(0, Math.min(n - 1, i + delta));
}

/** `m:ss.t` (or `h:mm:ss.t`): segments are often shorter than a second apart. */
export function formatSegmentTime(ms: number): string {
  const v = Math.max(0, Math.floor(Number.isFinite(ms) ? ms : 0));
  const total = Math.floor(v / 1000);
  const tenth = Math.floor((v % 1000) / 100);
  const h = Math.floor(total / 3600);
  const m = Math.floor((total % 3600) / 60);
  const s = String(total % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${s}.${tenth}` : `${m}:${s}.${tenth}`;
}

/** The language a translation is written in: English for a Korean (or unknown) original,
 * Korean for an English one. */
export function translationLanguage(seg: Pick<TranscriptSegment, 'language' | 'translation_language'>): string {
  if (seg.translation_language) return seg.translation_language;
  return seg.language === 'en' ? 'ko' : 'en';
}

/** Where "Split" cuts a segment, from the caret in its original text (a character count):
 * the time in proportion to the caret's place in the text, and the translation (if any) at the
 * same proportion (the translator corrects both halves afterwards). Null when the caret leaves
 * no text on one side or the segment is too short to cut. */
export function splitPoint(
  seg: Pick<TranscriptSegment, 'start_ms' | 'end_ms' | 'text' | 'translation'>,
  caret: number,
): { at_ms: number; text_at: number; translation_at: number | null } | null {
  const n = [...seg.text].length;
  if (!(caret >= 1 && caret < n) || seg.end_ms - seg.start_ms < 2) return null;
  const ratio = caret / n;
  const at_ms = Math.max(seg.start_ms + 1, Math.min(seg.end_ms - 1, Math.round(seg.start_ms + (seg.end_ms - seg.start_ms) * ratio)));
  let translation_at: number | null = null;
  if (seg.translation !== null && seg.translation !== '') {
    const tn = [...seg.translation].length;
    if (tn < 2) return null;
    translation_at = Math.max(1, Math.min(tn - 1, Math.round(tn * ratio)));
  }
  return { at_ms, text_at: caret, translation_at };
}

/** What the core writes in a segment's history; anything else is shown as it is. */
export const HISTORY_ACTIONS = [
  'create', 'edit', 'translate', 'clear_translation', 'speaker', 'review', 'unreview', 'redact', 'unredact', 'split', 'merge',
  'merged_into', 'return',
] as const;
export function historyActionKey(action: string): string | null {
  return (HISTORY_ACTIONS as readonly string[]).includes(action) ? `transcript.action_${action}` : null;
}
