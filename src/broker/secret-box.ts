// Secrets at rest: AES-256-GCM from node:crypto, one random 12-byte nonce per value, the owner and
// name bound in as associated data (so a row copied onto another account's or name's decrypts to
// nothing). The key is 32 bytes: given by the operator (a file or HEARTH_SECRETS_KEY), or made on
// first start as `secrets.key` (mode 0600) in the data dir.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const NONCE_BYTES = 12;
const TAG_BYTES = 16;
/** Stored format: version byte, nonce, tag, ciphertext. */
const VERSION = 1;

/** The key cannot open what this data dir holds, or cannot be read: the broker must not start. */
export class SecretsKeyError extends Error {}

export class SecretBox {
  private constructor(private readonly key: Buffer) {}

  static fromKey(key: Buffer): SecretBox {
    if (key.length !== 32) throw new SecretsKeyError(`a secrets key is 32 bytes (got ${key.length})`);
    return new SecretBox(key);
  }

  seal(plain: string, aad: string): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.key, nonce);
    c.setAAD(Buffer.from(aad, 'utf8'));
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([Buffer.from([VERSION]), nonce, c.getAuthTag(), body]);
  }

  /** Throws when the key or the associated data is not the one it was sealed with. */
  open(sealed: Buffer, aad: string): string {
    if (sealed.length < 1 + NONCE_BYTES + TAG_BYTES || sealed[0] !== VERSION) throw new Error('not a sealed value');
    const nonce = sealed.subarray(1, 1 + NONCE_BYTES);
    const tag = sealed.subarray(1 + NONCE_BYTES, 1 + NONCE_BYTES + TAG_BYTES);
    const d = createDecipheriv('aes-256-gcm', this.key, nonce);
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(tag);
    return Buffer.concat([d.update(sealed.subarray(1 + NONCE_BYTES + TAG_BYTES)), d.final()]).toString('utf8');
  }
}

/** 64 hex digits or base64 of 32 bytes (what `openssl rand -base64 32` prints). */
export function parseKey(text: string, where: string): Buffer {
  const t = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(t) ? Buffer.from(t, 'hex') : /^[A-Za-z0-9+/]{43}=?$/.test(t) ? Buffer.from(t, 'base64') : null;
  if (!key || key.length !== 32) {
    throw new SecretsKeyError(`${where} is not a secrets key: expected 32 bytes as 64 hex digits or base64 (e.g. \`openssl rand -base64 32\`)`);
  }
  return key;
}

/**
 * The key, in this order: `keyFile` (the operator's), HEARTH_SECRETS_KEY, `<dataDir>/secrets.key`
 * (made, mode 0600, when none exists). A key file others may read is refused, as token files are.
 */
export function loadSecretsKey(o: { dataDir: string; keyFile?: string | undefined; env?: NodeJS.ProcessEnv }): { key: Buffer; source: string } {
  const env = o.env ?? process.env;
  if (o.keyFile) return { key: readKeyFile(o.keyFile), source: o.keyFile };
  if (env.HEARTH_SECRETS_KEY) return { key: parseKey(env.HEARTH_SECRETS_KEY, 'HEARTH_SECRETS_KEY'), source: 'HEARTH_SECRETS_KEY' };
  const file = join(o.dataDir, 'secrets.key');
  if (!existsSync(file)) {
    const key = randomBytes(32);
    // 'wx': two brokers starting on one data dir never overwrite each other's key.
    try {
      const fd = openSync(file, 'wx', 0o600);
      try {
        writeSync(fd, key.toString('base64') + '\n');
      } finally {
        closeSync(fd);
      }
      return { key, source: file };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
  return { key: readKeyFile(file), source: file };
}

function readKeyFile(file: string): Buffer {
  let st;
  try {
    st = statSync(file);
  } catch (err) {
    throw new SecretsKeyError(`secrets key file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (!st.isFile()) throw new SecretsKeyError(`secrets key file ${file} is not a file`);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretsKeyError(`secrets key file ${file} is readable or writable by others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}); run: chmod 600 ${file}`);
  }
  return parseKey(readFileSync(file, 'utf8'), `secrets key file ${file}`);
}
