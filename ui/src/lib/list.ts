import type { Interview, SearchHit } from './types';

export interface ListFilter {
  status: string;
  witness: string;
  sort: 'newest' | 'oldest';
  /** Search results, or null when no search is active. */
  hits: SearchHit[] | null;
}

/** Filters by status, witness and search hits; sorts by interview date. */
export function filterInterviews(all: Interview[], f: ListFilter): Interview[] {
  const ids = f.hits ? new Set(f.hits.map((h) => h.interview_id)) : null;
  const out = all.filter(
    (i) => (!f.status || i.status === f.status) && (!f.witness || i.witness_code === f.witness) && (!ids || ids.has(i.id)),
  );
  const key = (i: Interview) => i.started_at ?? i.created_at;
  out.sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0) * (f.sort === 'newest' ? -1 : 1));
  return out;
}
