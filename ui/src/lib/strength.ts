// A passphrase strength estimate for the meter. The core enforces the floor (at least 10
// characters, not too repetitive); this only guides the interviewer towards several words.

export type Strength = 0 | 1 | 2 | 3 | 4;

export function estimateBits(p: string): number {
  if (!p) return 0;
  const chars = [...p];
  let pool = 0;
  if (/[a-z]/.test(p)) pool += 26;
  if (/[A-Z]/.test(p)) pool += 26;
  if (/[0-9]/.test(p)) pool += 10;
  if (/[^a-zA-Z0-9\s\u3131-\u318e\uac00-\ud7a3]/.test(p)) pool += 33;
  if (/\s/.test(p)) pool += 1;
  if (/[\u3131-\u318e\uac00-\ud7a3]/.test(p)) pool += 2350; // common Hangul syllables
  const distinct = new Set(chars).size;
  // Repetition counts for little: scale the length by the share of distinct characters.
  const effective = Math.min(chars.length, distinct * 2);
  let bits = effective * Math.log2(Math.max(pool, 2));
  // Known-weak shapes.
  if (/^(.)\1+$/.test(p)) bits = Math.min(bits, 4);
  if (/^(password|passphrase|testimony|qwerty|123456|비밀번호)/i.test(p)) bits = Math.min(bits, 20);
  if (/^\d+$/.test(p)) bits = Math.min(bits, chars.length * 3.3);
  return Math.round(bits);
}

/** 0 very weak … 4 strong. Below 2 is refused by the core in practice (under 10 chars). */
export function strength(p: string): Strength {
  const b = estimateBits(p);
  if ([...p].length < 10) return b >= 30 ? 1 : 0;
  if (b < 45) return 1;
  if (b < 65) return 2;
  if (b < 90) return 3;
  return 4;
}
