// Pure helpers for the codebook-driven form. Which questions are visible is decided by the
// core (FormState.visible); these only convert between stored values and inputs and walk the
// codebook's structure.
import type { Codebook, FormState, GroupInstance, Question, Term, Vocab } from './types';

export function answerKey(questionId: string, instanceId: string | null): string {
  return instanceId ? `${questionId}@${instanceId}` : questionId;
}

export function isVisible(state: FormState, q: Question, instanceId: string | null): boolean {
  return state.visible.includes(answerKey(q.id, instanceId));
}

export type DateRangeInput = { from: string; to: string };
export type PlaceInput = { province: string; locality: string };
export type InputValue = string | string[] | DateRangeInput | PlaceInput;

/** The stored answer as what the field edits. */
export function toInput(q: Question, value: unknown): InputValue {
  switch (q.type) {
    case 'multi_choice':
      return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
    case 'date_range': {
      const v = (value ?? {}) as { from?: string | null; to?: string | null };
      return { from: v.from ?? '', to: v.to ?? '' };
    }
    case 'place': {
      const v = (value ?? {}) as { province?: string | null; locality?: string | null };
      return { province: v.province ?? '', locality: v.locality ?? '' };
    }
    case 'number':
      return typeof value === 'number' ? String(value) : '';
    default:
      return typeof value === 'string' ? value : '';
  }
}

export type Outgoing = { kind: 'clear' } | { kind: 'set'; value: unknown } | { kind: 'error'; key: string };

/** What to send for the field's current input: nothing typed means clear the answer. Only
 * the shape is prepared here; the core validates the value itself. */
export function fromInput(q: Question, input: InputValue): Outgoing {
  switch (q.type) {
    case 'multi_choice': {
      const arr = input as string[];
      return arr.length ? { kind: 'set', value: arr } : { kind: 'clear' };
    }
    case 'date_range': {
      const r = input as DateRangeInput;
      const from = r.from.trim();
      const to = r.to.trim();
      if (!from && !to) return { kind: 'clear' };
      const value: Record<string, string> = {};
      if (from) value.from = from;
      if (to) value.to = to;
      return { kind: 'set', value };
    }
    case 'place': {
      const p = input as PlaceInput;
      if (!p.province && !p.locality.trim()) return { kind: 'clear' };
      return { kind: 'set', value: { province: p.province || null, locality: p.locality.trim() } };
    }
    case 'number': {
      const s = (input as string).trim().replace(',', '.');
      if (!s) return { kind: 'clear' };
      const n = Number(s);
      if (!Number.isFinite(n)) return { kind: 'error', key: 'form.not_a_number' };
      return { kind: 'set', value: n };
    }
    case 'text':
    case 'long_text': {
      const s = input as string;
      return s.trim() ? { kind: 'set', value: s } : { kind: 'clear' };
    }
    default: {
      const s = (input as string).trim();
      return s ? { kind: 'set', value: s } : { kind: 'clear' };
    }
  }
}

/** Terms whose code or label in either language contains the query (case-insensitive). */
export function filterTerms(vocab: Vocab, query: string): Term[] {
  const q = query.trim().toLowerCase();
  if (!q) return vocab.terms;
  return vocab.terms.filter((t) => t.code.includes(q) || t.label.en.toLowerCase().includes(q) || t.label.ko.toLowerCase().includes(q));
}

/** Top-level questions of a section, in codebook order. */
export function sectionQuestions(cb: Codebook, sectionId: string): Question[] {
  return cb.questions.filter((q) => q.section === sectionId && q.group === null);
}

/** Questions directly inside a group. */
export function groupQuestions(cb: Codebook, groupId: string): Question[] {
  return cb.questions.filter((q) => q.group === groupId);
}

/** Live instances of a group under a parent instance (null: top level), in order. */
export function instancesOf(instances: GroupInstance[], groupId: string, parentId: string | null): GroupInstance[] {
  return instances
    .filter((i) => !i.deleted && i.group_id === groupId && (i.parent_id ?? null) === parentId)
    .sort((a, b) => a.ordinal - b.ordinal);
}

/** Questions whose edits are typed (saved after a pause and on leaving the field); the others
 * (choices, yes/no) are saved at once. */
export function isTyped(q: Question): boolean {
  return ['text', 'long_text', 'number', 'partial_date', 'date_range', 'place'].includes(q.type);
}

/** Required-and-missing paths from the core (e.g. `detention_episode#2.det_facility_type`)
 * reduced to question ids, to mark fields. */
export function missingIds(paths: string[]): Set<string> {
  return new Set(paths.map((p) => p.split('.').pop()!.split('#')[0]));
}
