// A renter's secrets: stored sealed (secret-box.ts), listed by name only, handed to the worker
// as environment variables of the owner's own sessions (with the dispatch, never in the spec), and
// masked out of what those sessions print before it is stored (secret-mask.ts).
//
// The SQL lives behind SecretRepository (store/secrets-repo.ts, one implementation per backend).
// The values are held decrypted in this process's memory (loaded at start, kept current by set and
// remove, and read again for an account at each of its dispatches, so a secret set on another
// replica reaches the next session): masking runs on every event, and a broker that can read its
// key can read them anyway.
import { isTerminal, SECRET_ACCOUNT_MAX_BYTES, type EventBody, type SecretInfo } from '../shared/protocol';
import type { JobRow } from './event-log';
import { conflict, notFound } from './errors';
import { SecretBox, SecretsKeyError } from './secret-box';
import { maskedArtifactPath, MAX_MASKED_STRINGS, maskedStrings, SecretMasker } from './secret-mask';
import type { SealedSecret, SecretRepository } from './store/secrets-repo';

/**
 * A log chunk after what was held back: masked across every boundary, the end that could start a
 * value held back again, and what is emitted of earlier parts of the other stream put in front.
 */
function maskLog(masker: SecretMasker, carry: readonly LogPart[], body: Extract<EventBody, { type: 'log' }>): { body: EventBody; before: EventBody[]; carry: LogPart[] } {
  const parts = [...carry];
  const last = parts[parts.length - 1];
  if (last?.stream === body.stream) parts[parts.length - 1] = { stream: last.stream, data: last.data + body.data };
  else parts.push({ stream: body.stream, data: body.data });
  const masked = masker.maskParts(parts.map((p) => p.data)).map((data, i) => ({ stream: parts[i]!.stream, data }));
  let left = masked.reduce((n, p) => n + p.data.length, 0) - masker.heldEnd(masked.map((p) => p.data).join(''));
  const emit: LogPart[] = [];
  const held: LogPart[] = [];
  for (const p of masked) {
    if (left >= p.data.length) emit.push(p);
    else {
      if (left > 0) emit.push({ stream: p.stream, data: p.data.slice(0, left) });
      held.push({ stream: p.stream, data: p.data.slice(Math.max(0, left)) });
    }
    left -= p.data.length;
  }
  // Parts emptied by masking go, and what is then next to its own stream's text joins it.
  const out: LogPart[] = [];
  for (const p of emit) {
    const prev = out[out.length - 1];
    if (!p.data) continue;
    if (prev?.stream === p.stream) prev.data += p.data;
    else out.push({ ...p });
  }
  // This event carries the last of it when that is its own stream's; the rest goes before it.
  const own = out[out.length - 1]?.stream === body.stream ? out.pop()! : { stream: body.stream, data: '' };
  return { body: { ...body, data: own.data }, before: out.map((p) => ({ type: 'log', ...p })), carry: held.filter((p) => p.data) };
}

/** What the key check value seals: a known text, so a wrong key is told at start, not as garbage later. */
const KEY_CHECK = 'hearth secrets key check v1';
const aad = (accountId: string, name: string) => `${accountId}\0${name}`;

/** Secrets one account may hold. */
export const MAX_SECRETS_PER_ACCOUNT = 200;

type LogPart = { stream: 'stdout' | 'stderr'; data: string };

interface JobMasking {
  /** values handed to this session at dispatch (still masked after the secret is removed) */
  given: Set<string>;
  /**
   * The held-back end of the log, in order: what could start a value that the next chunk, of
   * either stream, completes (see SecretMasker.heldEnd). Parts of both streams when it spans them.
   */
  carry: LogPart[];
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
    // The first broker on a database stores the check; replicas starting at once all read back the
    // one that was stored, so one started with another key refuses rather than seal with it.
    if (!(await repo.keyCheck())) await repo.initKeyCheck(box.seal(KEY_CHECK, 'key_check'));
    const check = (await repo.keyCheck())!;
    let ok = false;
    try {
      ok = box.open(check, 'key_check') === KEY_CHECK;
    } catch {
      ok = false;
    }
    if (!ok) {
      throw new SecretsKeyError(
        `the secrets key from ${keySource} is not the key this broker's secrets were stored with; start it with the original key (--secrets-key-file, HEARTH_SECRETS_KEY or <data-dir>/secrets.key; replicas share one)`,
      );
    }
    const s = new Secrets(repo, box);
    for (const row of await repo.all()) s.cache(row.accountId).set(row.name, s.unseal(row));
    return s;
  }

  private unseal(row: SealedSecret): string {
    try {
      return this.box.open(row.sealed, aad(row.accountId, row.name));
    } catch {
      // The key opened the check value, so this row was altered (or copied from elsewhere).
      throw new SecretsKeyError(`secret ${row.name} of account ${row.accountId} does not open with this key: its stored value was altered; remove it (DELETE FROM secrets WHERE account_id = '${row.accountId}' AND name = '${row.name}') and set it again`);
    }
  }

  /** Reads the account's secrets again (another replica may have set or removed one). */
  async refresh(accountId: string): Promise<void> {
    const rows = await this.repo.ofAccount(accountId);
    const now = new Map(rows.map((r) => [r.name, this.unseal(r)] as const));
    const had = this.values.get(accountId) ?? new Map<string, string>();
    const same = had.size === now.size && [...now].every(([k, v]) => had.get(k) === v);
    if (same) return;
    this.values.set(accountId, now);
    this.maskers.delete(accountId);
    this.version++;
  }

  private cache(accountId: string): Map<string, string> {
    let m = this.values.get(accountId);
    if (!m) this.values.set(accountId, (m = new Map()));
    return m;
  }

  async set(accountId: string, name: string, value: string): Promise<SecretInfo> {
    await this.refresh(accountId);
    const mine = this.cache(accountId);
    if (!mine.has(name) && mine.size >= MAX_SECRETS_PER_ACCOUNT) {
      throw conflict('too_many_secrets', `an account may hold ${MAX_SECRETS_PER_ACCOUNT} secrets; remove one first`);
    }
    let total = Buffer.byteLength(value);
    for (const [n, v] of mine) if (n !== name) total += Buffer.byteLength(v);
    let strings = maskedStrings(value).length;
    for (const [n, v] of mine) if (n !== name) strings += maskedStrings(v).length;
    if (strings > MAX_MASKED_STRINGS) {
      throw conflict('secrets_too_many_lines', `an account's secrets may make ${MAX_MASKED_STRINGS} masked strings together (each value and each line of a multi-line value); this one would make ${strings}`);
    }
    if (total > SECRET_ACCOUNT_MAX_BYTES) {
      throw conflict('secrets_too_large', `an account's secrets may hold ${SECRET_ACCOUNT_MAX_BYTES / 1024} KiB of values together; this one would make ${Math.ceil(total / 1024)} KiB`);
    }
    const updatedAt = Date.now();
    await this.repo.put({ accountId, name, sealed: this.box.seal(value, aad(accountId, name)), updatedAt });
    mine.set(name, value);
    this.maskers.delete(accountId);
    this.version++;
    return { name, updatedAt };
  }

  async remove(accountId: string, name: string): Promise<void> {
    if (!(await this.repo.remove(accountId, name))) throw notFound(`no secret ${name}`);
    this.values.get(accountId)?.delete(name);
    this.maskers.delete(accountId);
    this.version++;
  }

  list(accountId: string): Promise<SecretInfo[]> {
    return this.repo.list(accountId);
  }

  /** The environment a session of this job gets from its owner's secrets (remembered for masking). */
  async envFor(job: Pick<JobRow, 'id' | 'account_id'>): Promise<Record<string, string>> {
    await this.refresh(job.account_id);
    const env = Object.fromEntries(this.values.get(job.account_id) ?? []);
    const m = this.jobState(job.id);
    for (const v of Object.values(env)) m.given.add(v);
    m.masker = undefined;
    return env;
  }

  private jobState(jobId: string): JobMasking {
    let m = this.jobs.get(jobId);
    if (!m) this.jobs.set(jobId, (m = { given: new Set(), carry: [] }));
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
        const carry = state?.carry ?? [];
        if (masker.empty && !carry.length) return none;
        const r = maskLog(masker, carry, body);
        // What is emitted of the other stream goes in front, as events of its own. (Appended
        // before this one: should this one's append fail, its resend may print them again; they
        // are masked, so that repeats at most a few characters.)
        return {
          body: r.body,
          before: r.before,
          commit: () => {
            this.jobState(job.id).carry = r.carry;
          },
        };
      }
      case 'status': {
        const masked = masker.empty ? body : { ...body, ...(body.reason ? { reason: masker.mask(body.reason) } : {}) };
        if (!isTerminal(body.status)) return { ...none, body: masked };
        // What was held back could only have been the start of a value: it is printed as it is.
        // Taken out now: the caller appends them before the status, and a resent status (its
        // append failed) must not print them twice.
        const before: EventBody[] = (state?.carry ?? []).filter((p) => p.data).map((p) => ({ type: 'log', ...p }));
        if (state) state.carry = [];
        return { body: masked, before, commit: () => this.jobs.delete(job.id) };
      }
      case 'kernel':
        return masker.empty ? none : { ...none, body: { ...body, content: masker.maskDeep(body.content) } };
      case 'notice':
        return masker.empty ? none : { ...none, body: { ...body, message: masker.mask(body.message) } };
      case 'scalars': {
        // A run's folder and a tag are names the program chose: a value can be in them too.
        if (masker.empty) return none;
        const seen = new Map<string, string>();
        const m = (s: string) => seen.get(s) ?? (seen.set(s, masker.mask(s)), seen.get(s)!);
        return { ...none, body: { ...body, points: body.points.map((p) => ({ ...p, run: m(p.run), tag: m(p.tag) })) } };
      }
      case 'artifact':
        // recordArtifact stored it under its masked path already (maskedArtifactPath).
        return masker.empty ? none : { ...none, body: { ...body, artifact: { ...body.artifact, path: maskedArtifactPath(masker, body.artifact.path) } } };
      case 'setup':
        return masker.empty ? none : { ...none, body: { ...body, source: maskedArtifactPath(masker, body.source) } };
      default:
        // telemetry is numbers
        return none;
    }
  }

  /** The masker of a job's session (its owner's values and those it was given), for its artifacts. */
  maskerOf(job: Pick<JobRow, 'id' | 'account_id'>): SecretMasker {
    return this.maskerFor(job);
  }

  /** Forgets a job's masking state (it ended without a status from its worker, e.g. lost). */
  forget(jobId: string): void {
    this.jobs.delete(jobId);
  }
}
