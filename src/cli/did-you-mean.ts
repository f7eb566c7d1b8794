// `hearth run trian.py`: a file that is not there is most often a typo of one that is.
import { readdirSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';

/** Damerau–Levenshtein distance with adjacent transpositions (optimal string alignment). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/**
 * "; did you mean train.py?" for the closest runnable file (.py, .ipynb) in the missing file's
 * folder, as the person typed the path; '' when none is close (at most 2 edits, fewer for short names).
 */
export function didYouMean(abs: string, cwd = process.cwd()): string {
  let names: string[];
  try {
    names = readdirSync(dirname(abs));
  } catch {
    return '';
  }
  const want = basename(abs);
  const limit = Math.min(2, Math.floor(want.length / 4));
  let best: { name: string; d: number } | undefined;
  for (const n of names) {
    if (!/\.(py|ipynb)$/i.test(n) || (extname(want) && extname(n).toLowerCase() !== extname(want).toLowerCase())) continue;
    const d = editDistance(want.toLowerCase(), n.toLowerCase());
    if (d <= limit && (!best || d < best.d)) best = { name: n, d };
  }
  if (!best) return '';
  const rel = relative(cwd, join(dirname(abs), best.name));
  return `; did you mean ${rel.startsWith('..') ? join(dirname(abs), best.name) : rel}?`;
}
