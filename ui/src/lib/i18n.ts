import { derived, writable, get } from 'svelte/store';
import en from '../i18n/en.json';
import ko from '../i18n/ko.json';
import type { Label, Lang } from './types';

type Dict = { [k: string]: string | Dict };
export const dictionaries: Record<Lang, Dict> = { en, ko };

export const lang = writable<Lang>('ko');

export function lookup(dict: Dict, key: string): string | undefined {
  let cur: string | Dict | undefined = dict;
  for (const part of key.split('.')) {
    if (cur === undefined || typeof cur === 'string') return undefined;
    cur = cur[part];
  }
  return typeof cur === 'string' ? cur : undefined;
}

/** Translates `key`, replacing `{name}` with params. A missing key shows the key itself
 * (and the unit test fails), never an empty string. */
export function translate(l: Lang, key: string, params: Record<string, string | number> = {}): string {
  const s = lookup(dictionaries[l], key) ?? lookup(dictionaries.en, key) ?? key;
  return s.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

export const t = derived(lang, (l) => (key: string, params?: Record<string, string | number>) => translate(l, key, params));

/** A codebook label in the UI language. */
export function lbl(l: Label | null | undefined, which: Lang = get(lang)): string {
  return l ? l[which] : '';
}

/** Every key of a dictionary, dotted. */
export function keysOf(d: Dict, prefix = ''): string[] {
  return Object.entries(d).flatMap(([k, v]) => (typeof v === 'string' ? [prefix + k] : keysOf(v, `${prefix}${k}.`)));
}
