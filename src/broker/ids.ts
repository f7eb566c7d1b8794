import { createHash, randomBytes } from 'node:crypto';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

function base62(bytes: Buffer): string {
  let out = '';
  for (const b of bytes) out += ALPHABET[b % 62];
  return out;
}

/** `job_3fK9…`: a prefix that says what it names, then 16 random base62 characters. */
export function newId(prefix: 'acct' | 'wrk' | 'lease' | 'job' | 'req' | 'tok'): string {
  return `${prefix}_${base62(randomBytes(16))}`;
}

export function newToken(kind: 'user' | 'worker'): string {
  return `${kind === 'user' ? 'hth' : 'hthw'}_${base62(randomBytes(32))}`;
}

/** Tokens are long random strings, so one round of sha256 is enough to store them safely. */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}
