import { translate } from './i18n';
import type { AppError, Lang } from './types';
import { ERROR_CODES } from './types';

/** A message for people: the translated code, plus the core's reason where it gave one. */
export function errorText(l: Lang, e: AppError | { code: 'local'; detail: string } | null | undefined): string {
  if (!e) return '';
  if (e.code === 'local') return translate(l, e.detail!);
  const code = (ERROR_CODES as readonly string[]).includes(e.code) ? e.code : 'unknown';
  const base = translate(l, `error.${code}`);
  return e.detail ? `${base} (${e.detail})` : base;
}
