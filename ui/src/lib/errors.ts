import { lookup, dictionaries, translate } from './i18n';
import type { AppError, Lang } from './types';
import { ERROR_CODES } from './types';

/** A message for people: the translated code, plus the core's reason where it gave one (a
 * reason code translated with its parameters; English `detail` for the few errors that have
 * no code yet). */
export function errorText(l: Lang, e: AppError | { code: 'local'; detail: string } | null | undefined): string {
  if (!e) return '';
  if (e.code === 'local') return translate(l, e.detail!);
  const code = (ERROR_CODES as readonly string[]).includes(e.code) ? e.code : 'unknown';
  const base = translate(l, `error.${code}`);
  const why = 'reason' in e && e.reason ? reasonText(l, e.reason.code, e.reason.params) : e.detail;
  return why ? `${base} (${why})` : base;
}

/** Parameters that are codes with a name in the dictionaries (interview status, speaker):
 * reason code -> parameter -> key prefix of the name. */
const NAMED_PARAMS: Record<string, Record<string, string>> = {
  status_transition: { from: 'status.', to: 'status.' },
  merge_different_speakers: { first: 'transcript.speaker_', second: 'transcript.speaker_' },
};

/** A reason code in `l`; a code this UI does not know (a newer core) shows as the code itself
 * rather than nothing. */
export function reasonText(l: Lang, code: string, params: Record<string, string | number> = {}): string {
  if (lookup(dictionaries[l], `reason.${code}`) === undefined && lookup(dictionaries.en, `reason.${code}`) === undefined) return code;
  const named = NAMED_PARAMS[code];
  const p = named
    ? Object.fromEntries(
        Object.entries(params).map(([k, v]) => {
          const key = named[k] ? `${named[k]}${v}` : undefined;
          return [k, key && lookup(dictionaries[l], key) !== undefined ? translate(l, key) : v];
        }),
      )
    : params;
  return translate(l, `reason.${code}`, p);
}
