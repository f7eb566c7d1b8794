// A renter's secrets: stored sealed (secret-box.ts), listed by name only, handed to the worker
// as environment variables of the owner's own sessions (with the dispatch, never in the spec), and
// masked out of what those sessions print before it is stored (secret-mask.ts).
//
// The SQL lives in SqliteSecretRepository behind SecretRepository, an interface of async methods,
// so another backend implements the same five statements. The values are held decrypted in this
// process's memory (loaded at start, kept current by set and remove): dispatch and masking run
// inside the synchronous event path, and a broker that can read its key can read them anyway.
import { isTerminal, SECRET_ACCOUNT_MAX_BYTES, type EventBody, type SecretInfo } from '../shared/protocol';
import type { JobRow } from './event-log';
import { HttpError } from './http-error';
import { SecretBox, SecretsKeyError } from './secret-box';
import { MAX_MASKED_STRINGS, maskedStrings, SecretMasker } from './secret-mask';
import type { Db } from './store/db';

export interface SealedSecret {
  accountId: string;
  name: string;
  sealed: Buffer;
  updatedAt: number;
}

/** Where sealed secrets live. Every method is one statement. */
export interface SecretRepository {
  /** insert or replace */
  put(s: SealedSecret): Promise<void>;
  /** true when there was one */
  remove(accountId: string, name: string): Promise<boolean>;
  list(accountId: string): Promise<SecretInfo[]>;
  /** every sealed secret (at start) */
  all(): Promise<SealedSecret[]>;
  /** the sealed key check value, if this store has one */
  keyCheck(): Promise<Buffer | undefined>;
  /** stores the key check value unless one is there already */
  initKeyCheck(sealed: Buffer): Promise<void>;
}

export class SqliteSecretRepository implements SecretRepository {
  private readonly s;

  constructor(db: Db) {
    this.s = {
      put: db.prepare('INSERT OR REPLACE INTO secrets (account_id, name, value, updated_at) VALUES (?, ?, ?, ?)'),
      remove: db.prepare('DELETE FROM secrets WHERE account_id = ? AND name = ?'),
      list: db.prepare<[string], { name: string; updatedAt: number }>('SELECT name, updated_at AS updatedAt FROM secrets WHERE account_id = ? ORDER BY name'),
      all: db.prepare<[], { accountId: string; name: string; sealed: Buffer; updatedAt: number }>(
        'SELECT account_id AS accountId, name, value AS sealed, updated_at AS updatedAt FROM secrets',
      ),
      keyCheck: db.prepare<[], { value: Buffer }>("SELECT value FROM secrets_meta WHERE key = 'key_check'"),
      initKeyCheck: db.prepare("INSERT OR IGNORE INTO secrets_meta (key, value) VALUES ('key_check', ?)"),
    };
  }

  async put(s: SealedSecret): Promise<void> {
    this.s.put.run(s.accountId, s.name, s.sealed, s.updatedAt);
  }
  async remove(accountId: string, name: string): Promise<boolean> {
    return this.s.remove.run(accountId, name).changes > 0;
  }
  async list(accountId: string): Promise<SecretInfo[]> {
    return this.s.list.all(accountId);
  }
  async all(): Promise<SealedSecret[]> {
    return this.s.all.all();
  }
  async keyCheck(): Promise<Buffer | undefined> {
    return this.s.keyCheck.get()?.value;
  }
  async initKeyCheck(sealed: Buffer): Promise<void> {
    this.s.initKeyCheck.run(sealed);
  }
}

/** What the key check value seals: a known text, so a wrong key is told at start, not as garbage later. */
const KEY_CHECK = 'hearth secrets key check v1';
const aad = (accountId: string, name: string) => `${accountId}\0${name}`;

/** Secrets one account may hold. */
export const MAX_SECRETS_PER_ACCOUNT = 200;

interface JobMasking {
  /** values handed to this session at dispatch (still masked after the secret is removed) */
  given: Set<string>;
  /** held-back ends of each stream (see SecretMasker.split) */
  carry: { stdout: string; stderr: string };
  /** built once per change of the account's secrets, not per event */
  masker?: { version: number; masker: SecretMasker };
}

export class Secrets {
  private readonly values = new Map<string, Map<string, string>>();
  private readonly maskers = new Map<string, SecretMasker>();
  private readonly jobs = new Map<string, JobMasking>();
  /** bumped by every set and remove */
  private version = 0;

  private constructor(
    private readonly repo: SecretRepository,
    private readonly box: SecretBox,
  ) {}

  /**
   * Opens the store with this key: a store whose secrets were sealed with another key refuses to
   * open, saying so, rather than hand jobs garbage.
   */
  static async open(repo: SecretRepository, key: Buffer, keySource: string): Promise<Secrets> {
    const box = SecretBox.fromKey(key);
    const check = await repo.keyCheck();
    if (check) {
      let ok = false;
      try {
        ok = box.open(check, 'key_check') === KEY_CHECK;
      } catch {
        ok = false;
      }
      if (!ok) {
        throw new SecretsKeyError(
          `the secrets key from ${keySource} is not the key this broker's secrets were stored with; start it with the original key (--secrets-key-file, HEARTH_SECRETS_KEY or <data-dir>/secrets.key)`,
        );
      }
    } else {
      await repo.initKeyCheck(box.seal(KEY_CHECK, 'key_check'));
    }
    const s = new Secrets(repo, box);
    for (const row of await repo.all()) {
      let value: string;
      try {
        value = box.open(row.sealed, aad(row.accountId, row.name));
      } catch {
        // The key opened the check value, so this row was altered (or copied from elsewhere).
        throw new SecretsKeyError(`secret ${row.name} of account ${row.accountId} does not open with this key: its stored value was altered; remove it (DELETE FROM secrets WHERE account_id = '${row.accountId}' AND name = '${row.name}') and set it again`);
      }
      s.cache(row.accountId).set(row.name, value);
    }
    return s;
  }

  private cache(accountId: string): Map<string, string> {
    let m = this.values.get(accountId);
    if (!m) this.values.set(accountId, (m = new Map()));
    return m;
  }

  async set(accountId: string, name: string, value: string): Promise<SecretInfo> {
    const mine = this.cache(accountId);
    if (!mine.has(name) && mine.size >= MAX_SECRETS_PER_ACCOUNT) {
      throw new HttpError(409, 'too_many_secrets', `an account may hold ${MAX_SECRETS_PER_ACCOUNT} secrets; remove one first`);
    }
    let total = Buffer.byteLength(value);
    for (const [n, v] of mine) if (n !== name) total += Buffer.byteLength(v);
    let strings = maskedStrings(value).length;
    for (const [n, v] of mine) if (n !== name) strings += maskedStrings(v).length;
    if (strings > MAX_MASKED_STRINGS) {
      throw new HttpError(409, 'secrets_too_many_lines', `an account's secrets may make ${MAX_MASKED_STRINGS} masked strings together (each value and each line of a multi-line value); this one would make ${strings}`);
    }
    if (total > SECRET_ACCOUNT_MAX_BYTES) {
      throw new HttpError(409, 'secrets_too_large', `an account's secrets may hold ${SECRET_ACCOUNT_MAX_BYTES / 1024} KiB of values together; this one would make ${Math.ceil(total / 1024)} KiB`);
    }
    const updatedAt = Date.now();
    await this.repo.put({ accountId, name, sealed: this.box.seal(value, aad(accountId, name)), updatedAt });
    mine.set(name, value);
    this.maskers.delete(accountId);
    this.version++;
    return { name, updatedAt };
  }

  async remove(accountId: string, name: string): Promise<void> {
    if (!(await this.repo.remove(accountId, name))) throw new HttpError(404, 'not_found', `no secret ${name}`);
    this.values.get(accountId)?.delete(name);
    this.maskers.delete(accountId);
    this.version++;
  }

  list(accountId: string): Promise<SecretInfo[]> {
    return this.repo.list(accountId);
  }

  /** The environment a session of this job gets from its owner's secrets (remembered for masking). */
  envFor(job: Pick<JobRow, 'id' | 'account_id'>): Record<string, string> {
    const env = Object.fromEntries(this.values.get(job.account_id) ?? []);
    const m = this.jobState(job.id);
    for (const v of Object.values(env)) m.given.add(v);
    m.masker = undefined;
    return env;
  }

  private jobState(jobId: string): JobMasking {
    let m = this.jobs.get(jobId);
    if (!m) this.jobs.set(jobId, (m = { given: new Set(), carry: { stdout: '', stderr: '' } }));
    return m;
  }

  private maskerFor(job: Pick<JobRow, 'id' | 'account_id'>): SecretMasker {
    const state = this.jobs.get(job.id);
    const own = this.values.get(job.account_id);
    if (!state?.given.size) {
      let m = this.maskers.get(job.account_id);
      if (!m) this.maskers.set(job.account_id, (m = new SecretMasker(own?.values() ?? [])));
      return m;
    }
    if (state.masker?.version !== this.version) state.masker = { version: this.version, masker: new SecretMasker([...(own?.values() ?? []), ...state.given]) };
    return state.masker.masker;
  }

  /**
   * A worker's event about to be appended, masked. Call only for an event that will be appended
   * (the next wseq of an open job), and `commit` once it is: a log chunk's held-back end becomes
   * the carry of its stream only then, so a resend after a failed append is masked the same way.
   * For a terminal status, `before` holds what was still held back, to append first.
   */
  prepare(job: Pick<JobRow, 'id' | 'account_id'>, body: EventBody): { body: EventBody; before: EventBody[]; commit: () => void } {
    const state = this.jobs.get(job.id);
    const masker = this.maskerFor(job);
    const none = { body, before: [], commit: () => {} };
    switch (body.type) {
      case 'log': {
        if (masker.empty && !state?.carry[body.stream]) return none;
        const r = masker.split(state?.carry[body.stream] ?? '', body.data);
        return {
          body: { ...body, data: r.emit },
          before: [],
          commit: () => {
            this.jobState(job.id).carry[body.stream] = r.carry;
          },
        };
      }
      case 'status': {
        const masked = masker.empty ? body : { ...body, ...(body.reason ? { reason: masker.mask(body.reason) } : {}) };
        if (!isTerminal(body.status)) return { ...none, body: masked };
        // What was held back could only have been the start of a value: it is printed as it is.
        // Taken out now: the caller appends them before the status, and a resent status (its
        // append failed) must not print them twice.
        const before: EventBody[] = [];
        for (const stream of ['stdout', 'stderr'] as const) {
          const c = state?.carry[stream];
          if (c) before.push({ type: 'log', stream, data: c });
          if (state) state.carry[stream] = '';
        }
        return { body: masked, before, commit: () => this.jobs.delete(job.id) };
      }
      case 'kernel':
        return masker.empty ? none : { ...none, body: { ...body, content: masker.maskDeep(body.content) } };
      case 'notice':
        return masker.empty ? none : { ...none, body: { ...body, message: masker.mask(body.message) } };
      default:
        // scalars, telemetry and artifacts are numbers, tags and paths, not the program's text
        return none;
    }
  }

  /** Forgets a job's masking state (it ended without a status from its worker, e.g. lost). */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
  }
}
