// Masks secret values in what a job prints, before the broker stores it. A value is replaced by
// `***` wherever it appears whole; a multi-line value is also masked line by line (a program may
// print a key one line at a time). Values shorter than MIN_MASKED are left alone: masking every
// "abc" in a log would destroy it and hide nothing.
//
// A log arrives in chunks, and a value may be cut between two of them. The stream masker holds
// back the end of a chunk that could be the start of a value and puts it in front of the next
// chunk, so such a value is masked whole too, also when the next chunk is of the other stream
// (the two read as one text in a terminal, and in the log): see `maskParts`.

import { isSafeRelPath, SECRET_MIN_MASKED } from '../shared/protocol';

export const MASK = '***';
export const MIN_MASKED = SECRET_MIN_MASKED;

/** The strings one value is masked as: itself, and each line of a multi-line value. */
export function maskedStrings(v: string): string[] {
  const all = [v];
  if (/[\r\n]/.test(v)) for (const line of v.split(/\r?\n|\r/)) all.push(line.trim());
  return all.filter((x) => x.length >= MIN_MASKED);
}

/**
 * Strings an account's values may make together. Every chunk a job prints is searched for each of
 * them on the broker's event path (about 1 000 × a 64 KiB chunk: tens of milliseconds), so an
 * account cannot make masking cost the broker more than that.
 */
export const MAX_MASKED_STRINGS = 1000;

export class SecretMasker {
  /** longest first, so a value that contains another is masked whole */
  readonly values: string[];

  constructor(values: Iterable<string>) {
    const all = new Set<string>();
    for (const v of values) for (const m of maskedStrings(v)) all.add(m);
    this.values = [...all].sort((a, b) => b.length - a.length);
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
   * Masks text that comes in parts read as one (a log's chunks of both streams, in order): a value
   * across a boundary is masked whole, its `***` in the part where it starts and the rest of it
   * taken out of the parts after. Values that overlap are masked as one.
   */
  maskParts(parts: readonly string[]): string[] {
    if (parts.length === 1) return [this.mask(parts[0]!)];
    const text = parts.join('');
    const hits: Array<[number, number]> = [];
    for (const v of this.values) for (let i = text.indexOf(v); i >= 0; i = text.indexOf(v, i + v.length)) hits.push([i, i + v.length]);
    if (!hits.length) return [...parts];
    hits.sort((a, b) => a[0] - b[0] || b[1] - a[1]);
    const spans: Array<[number, number]> = [];
    for (const h of hits) {
      const last = spans[spans.length - 1];
      if (last && h[0] < last[1]) last[1] = Math.max(last[1], h[1]);
      else spans.push([h[0], h[1]]);
    }
    const out: string[] = [];
    let at = 0;
    let s = 0;
    for (const part of parts) {
      const end = at + part.length;
      let piece = '';
      for (let i = at; i < end; ) {
        while (s < spans.length && spans[s]![1] <= i) s++;
        const span = spans[s];
        if (!span || span[0] >= end) {
          piece += text.slice(i, end);
          break;
        }
        if (span[0] > i) piece += text.slice(i, span[0]);
        if (span[0] >= i) piece += MASK;
        i = Math.min(end, span[1]);
      }
      out.push(piece);
      at = end;
    }
    return out;
  }

  /** How many characters at the end of `text` are a proper start of some value (it may continue in the next chunk). */
  heldEnd(text: string): number {
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
    return hold;
  }

  /**
   * Masks `carry + chunk` and splits the result into what can be stored now and what is held back:
   * the longest end that is a proper start of some value (it may continue in the next chunk).
   */
  split(carry: string, chunk: string): { emit: string; carry: string } {
    const text = this.mask(carry + chunk);
    const hold = this.heldEnd(text);
    return { emit: text.slice(0, text.length - hold), carry: text.slice(text.length - hold) };
  }
}

/** An artifact's (or requirements file's) path with values masked: still a safe relative path, `***` in its names. */
export function maskedArtifactPath(masker: SecretMasker, path: string): string {
  if (masker.empty) return path;
  const masked = masker.mask(path);
  return isSafeRelPath(masked) ? masked : path.split('/').map((seg) => (masker.mask(seg) === seg ? seg : MASK)).join('/');
}
