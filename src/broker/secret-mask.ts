// Masks secret values in what a job prints, before the broker stores it. A value is replaced by
// `***` wherever it appears whole; a multi-line value is also masked line by line (a program may
// print a key one line at a time). Values shorter than MIN_MASKED are left alone: masking every
// "abc" in a log would destroy it and hide nothing.
//
// A log arrives in chunks, and a value may be cut between two of them. The stream masker holds
// back the end of a chunk that could be the start of a value and puts it in front of the next
// chunk of the same stream, so such a value is masked whole too.

import { SECRET_MIN_MASKED } from '../shared/protocol';

export const MASK = '***';
export const MIN_MASKED = SECRET_MIN_MASKED;

export class SecretMasker {
  /** longest first, so a value that contains another is masked whole */
  readonly values: string[];

  constructor(values: Iterable<string>) {
    const all = new Set<string>();
    for (const v of values) {
      all.add(v);
      if (/[\r\n]/.test(v)) for (const line of v.split(/\r?\n|\r/)) all.add(line.trim());
    }
    this.values = [...all].filter((v) => v.length >= MIN_MASKED).sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.values.length === 0;
  }

  mask(text: string): string {
    let out = text;
    for (const v of this.values) if (out.includes(v)) out = out.split(v).join(MASK);
    return out;
  }

  /** Every string inside a JSON-like value, masked (keys too: a dict printed by a notebook). */
  maskDeep<T>(value: T): T {
    if (this.empty) return value;
    const walk = (x: unknown): unknown => {
      if (typeof x === 'string') return this.mask(x);
      if (Array.isArray(x)) return x.map(walk);
      if (x && typeof x === 'object') return Object.fromEntries(Object.entries(x).map(([k, v]) => [this.mask(k), walk(v)]));
      return x;
    };
    return walk(value) as T;
  }

  /**
   * Masks `carry + chunk` and splits the result into what can be stored now and what is held back:
   * the longest end that is a proper start of some value (it may continue in the next chunk).
   */
  split(carry: string, chunk: string): { emit: string; carry: string } {
    const text = this.mask(carry + chunk);
    let hold = 0;
    for (const v of this.values) {
      // Only starts of v shorter than v itself, and longer than what is already held.
      for (let i = Math.max(0, text.length - v.length + 1); i < text.length - hold; i++) {
        if (text.charCodeAt(i) === v.charCodeAt(0) && v.startsWith(text.slice(i))) {
          hold = text.length - i;
          break;
        }
      }
    }
    return { emit: text.slice(0, text.length - hold), carry: text.slice(text.length - hold) };
  }
}
