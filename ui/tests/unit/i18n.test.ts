import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import en from '../../src/i18n/en.json';
import ko from '../../src/i18n/ko.json';
import { keysOf, lookup, translate } from '../../src/lib/i18n';
import { ERROR_CODES, SCOPES } from '../../src/lib/types';

const SRC = join(__dirname, '../../src');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : /\.(svelte|ts)$/.test(f) ? [p] : [];
  });
}

/** Keys written literally in the source: t('a.b'), $t('a.b', …), translate(x, 'a.b'). */
function usedKeys(): Map<string, string> {
  const used = new Map<string, string>();
  const re = /(?:\$?\bt\(\s*|\btranslate\([^,()]+,\s*)['"`]([a-z0-9_.]+)['"`]/g;
  for (const f of files(SRC)) {
    for (const m of readFileSync(f, 'utf8').matchAll(re)) used.set(m[1], f);
  }
  return used;
}

/** Template keys such as t(`status.${x}`): the prefix must exist as a table. */
function templatePrefixes(): Map<string, string> {
  const out = new Map<string, string>();
  const re = /\$?\bt\(\s*`([a-z0-9_.]+)\.\$\{/g;
  for (const f of files(SRC)) for (const m of readFileSync(f, 'utf8').matchAll(re)) out.set(m[1], f);
  return out;
}

describe('translations', () => {
  const enKeys = keysOf(en).sort();
  const koKeys = keysOf(ko).sort();

  it('have the same keys in Korean and English', () => {
    expect(koKeys.filter((k) => !enKeys.includes(k))).toEqual([]);
    expect(enKeys.filter((k) => !koKeys.includes(k))).toEqual([]);
  });

  it('have no empty strings and the same placeholders in both languages', () => {
    for (const k of enKeys) {
      const e = lookup(en, k)!;
      const o = lookup(ko, k)!;
      expect(e.trim(), k).not.toBe('');
      expect(o.trim(), k).not.toBe('');
      const ph = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
      expect(ph(o), k).toEqual(ph(e));
    }
  });

  it('Korean strings are really Korean', () => {
    const hangul = koKeys.filter((k) => /[\uac00-\ud7a3]/.test(lookup(ko, k)!));
    // Everything but a few proper names and symbols is in Hangul.
    expect(hangul.length / koKeys.length).toBeGreaterThan(0.95);
  });

  it('define every key the source uses', () => {
    const used = usedKeys();
    expect(used.size).toBeGreaterThan(100);
    const missing = [...used].filter(([k]) => !enKeys.includes(k)).map(([k, f]) => `${k} (${f})`);
    expect(missing).toEqual([]);
  });

  it('define every table a template key points into', () => {
    const prefixes = templatePrefixes();
    expect(prefixes.size).toBeGreaterThan(3);
    for (const [p, f] of prefixes) {
      expect(enKeys.some((k) => k.startsWith(`${p}.`)), `${p} (${f})`).toBe(true);
    }
  });

  it('cover every dynamic key family: errors, scopes, statuses, yes/no, strengths', () => {
    for (const c of ERROR_CODES) expect(enKeys).toContain(`error.${c}`);
    for (const s of SCOPES) expect(enKeys).toContain(`consent.scope.${s}`);
    for (const s of ['draft', 'complete', 'reviewed']) expect(enKeys).toContain(`status.${s}`);
    for (const s of ['yes', 'no', 'unknown', 'refused']) expect(enKeys).toContain(`yes_no.${s}`);
    for (const s of [0, 1, 2, 3, 4]) expect(enKeys).toContain(`strength.s${s}`);
    for (const s of ['idle', 'pending', 'saving', 'saved', 'error']) expect(enKeys).toContain(`save.${s}`);
  });

  it('translate substitutes parameters and falls back to the key', () => {
    expect(translate('en', 'witness.created', { code: 'W-2026-0001' })).toBe('Witness created. Pseudonym: W-2026-0001');
    expect(translate('ko', 'witness.created', { code: 'W-2026-0001' })).toContain('W-2026-0001');
    expect(translate('ko', 'no.such.key')).toBe('no.such.key');
  });
});
