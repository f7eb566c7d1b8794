// The broker's HTTP client, shared by the CLI, the extension host and the worker. Every reply is
// parsed with its schema from the protocol, so a broker that answers nonsense is an error here too.
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { z } from 'zod';
import {
  AccountSpend,
  Artifact,
  CreateAccountReply,
  CreateTokenReply,
  ErrorReply,
  EventStreamLine,
  Job,
  KernelRequestReply,
  type KernelRequestBody,
  type StartKernelBody,
  Lease,
  Me,
  MissingBlobsReply,
  BLOB_BATCH_MAX,
  BlobBatchReply,
  BlobCommitReply,
  BlobPackReply,
  BlobUploadsReply,
  DirectBlobUpload,
  Offer,
  SecretInfo,
  TokenInfo,
  type CreateLeaseBody,
  type JobEvent,
  type SubmitJobBody, Balance, EarningsRow, GrantReply, LedgerPosting } from '../shared/protocol';

export class BrokerError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly issues?: { path: string; message: string }[],
  ) {
    super(message);
    this.name = 'BrokerError';
  }
}

export interface BrokerClientOptions {
  url: string;
  token?: string;
  /** give up on a request/reply call (not a stream or a blob) after this long: a hung broker is
   *  then an error, not a wait forever */
  timeoutMs?: number;
}

type RequestBody = NonNullable<RequestInit['body']>;

const Health = z.object({ ok: z.boolean(), version: z.string() });

export class BrokerClient {
  /** settable: a worker with several broker replicas points it at the one it is connected to */
  url: string;
  readonly token: string | undefined;
  readonly timeoutMs: number | undefined;

  constructor(opts: BrokerClientOptions) {
    this.url = normalizeBrokerUrl(opts.url);
    this.token = opts.token;
    this.timeoutMs = opts.timeoutMs;
  }

  health(): Promise<{ ok: boolean; version: string }> {
    return this.json('GET', '/v1/health', Health);
  }
  me(): Promise<Me> {
    return this.json('GET', '/v1/me', Me);
  }
  createAccount(name: string, spendLimit?: number): Promise<CreateAccountReply> {
    return this.json('POST', '/v1/accounts', CreateAccountReply, { name, ...(spendLimit === undefined ? {} : { spendLimit }) });
  }
  /** What this account spent this month, against its limit. */
  accountSpend(): Promise<AccountSpend> {
    return this.json('GET', '/v1/account/spend', AccountSpend);
  }
  /** This account's balance, what its leases hold, its overdraft and its earnings as a provider. */
  balance(): Promise<Balance> {
    return this.json('GET', '/v1/ledger/balance', Balance);
  }
  /** The ledger's postings that touch this account, from `since` (epoch ms) on, oldest first. */
  ledger(since?: number): Promise<LedgerPosting[]> {
    return this.json('GET', `/v1/ledger/postings${since === undefined ? '' : `?since=${since}`}`, z.array(LedgerPosting));
  }
  /** What this account's workers earned, per worker and UTC day. */
  earnings(since?: number): Promise<EarningsRow[]> {
    return this.json('GET', `/v1/ledger/earnings${since === undefined ? '' : `?since=${since}`}`, z.array(EarningsRow));
  }
  /** Admin: credits for an account (id or name); the same key twice grants once. */
  grant(account: string, credits: number, key: string): Promise<z.infer<typeof GrantReply>> {
    return this.json('POST', '/v1/admin/grants', GrantReply, { account, credits, key });
  }
  /** Admin: how far below zero an account's balance may go. */
  setOverdraft(account: string, credits: number): Promise<Balance> {
    return this.json('PUT', '/v1/admin/overdraft', Balance, { account, credits });
  }
  /** Admin: the broker's share of every metered credit (0 … 1). */
  setFee(share: number): Promise<{ share: number }> {
    return this.json('PUT', '/v1/admin/fee', z.object({ share: z.number() }), { share });
  }
  /** Sets this account's monthly spend limit (null removes it). */
  setSpendLimit(spendLimit: number | null): Promise<AccountSpend> {
    return this.json('PUT', '/v1/account/limit', AccountSpend, { spendLimit });
  }
  createToken(kind: 'user' | 'worker', label = '', expiresInSeconds?: number): Promise<z.infer<typeof CreateTokenReply>> {
    return this.json('POST', '/v1/tokens', CreateTokenReply, { kind, label, ...(expiresInSeconds === undefined ? {} : { expiresInSeconds }) });
  }
  /** This account's tokens (never their secrets). */
  tokens(): Promise<TokenInfo[]> {
    return this.json('GET', '/v1/tokens', z.array(TokenInfo));
  }
  revokeToken(id: string): Promise<TokenInfo> {
    return this.json('DELETE', `/v1/tokens/${enc(id)}`, TokenInfo);
  }

  offers(): Promise<Offer[]> {
    return this.json('GET', '/v1/offers', z.array(Offer));
  }
  leases(): Promise<Lease[]> {
    return this.json('GET', '/v1/leases', z.array(Lease));
  }
  lease(id: string): Promise<Lease> {
    return this.json('GET', `/v1/leases/${enc(id)}`, Lease);
  }
  createLease(body: Partial<CreateLeaseBody>): Promise<Lease> {
    return this.json('POST', '/v1/leases', Lease, body);
  }
  renewLease(id: string, hours: number): Promise<Lease> {
    return this.json('POST', `/v1/leases/${enc(id)}/renew`, Lease, { hours });
  }
  releaseLease(id: string): Promise<Lease> {
    return this.json('POST', `/v1/leases/${enc(id)}/release`, Lease, {});
  }

  async missingBlobs(hashes: string[]): Promise<string[]> {
    const missing: string[] = [];
    // Batches keep each request body small however large the workspace is.
    for (let i = 0; i < hashes.length; i += 5000) {
      const r = await this.json('POST', '/v1/blobs/missing', MissingBlobsReply, { hashes: hashes.slice(i, i + 5000) });
      missing.push(...r.missing);
    }
    return missing;
  }

  async hasBlob(sha: string): Promise<boolean> {
    const res = await this.request('HEAD', `/v1/blobs/${enc(sha)}`);
    if (res.status === 404) return false;
    if (!res.ok) throw await toError(res);
    return true;
  }

  /**
   * Whether the broker's store takes bytes directly (presigned URLs): learnt from its first
   * answer to /v1/blobs/uploads and kept, so a folder-backed broker costs that question once.
   */
  private directUploads: boolean | undefined;

  /**
   * Presigned PUT URLs for these blobs when the broker's store has them (S3), else
   * `{ direct: false }`: upload through the broker. `jobId`: a worker uploading a job's outputs.
   */
  async blobUploads(blobs: { sha256: string; size: number }[], jobId?: string): Promise<BlobUploadsReply> {
    if (this.directUploads === false) return { direct: false };
    try {
      const r = await this.json('POST', '/v1/blobs/uploads', BlobUploadsReply, { blobs: blobs.slice(0, BLOB_BATCH_MAX).map((b) => ({ sha256: b.sha256, size: b.size })), ...(jobId ? { jobId } : {}) });
      this.directUploads = r.direct;
      return r;
    } catch (err) {
      // A broker from before presigned uploads has no such route: it takes the bytes itself.
      if (err instanceof BrokerError && err.status === 404 && err.code === 'not_found' && /no route/.test(err.message)) {
        this.directUploads = false;
        return { direct: false };
      }
      throw err;
    }
  }

  /** Has the broker check objects PUT to presigned URLs and record them as blobs. */
  commitBlobs(blobs: { sha256: string; size: number; ticket: string }[], jobId?: string): Promise<z.infer<typeof BlobCommitReply>> {
    return this.json('POST', '/v1/blobs/commit', BlobCommitReply, { blobs, ...(jobId ? { jobId } : {}) });
  }

  /** Many small blobs in one request; the broker hashes each before storing any. */
  async packBlobs(blobs: { sha256: string; data: Buffer }[]): Promise<void> {
    await this.json('POST', '/v1/blobs/pack', BlobPackReply, { blobs: blobs.map((b) => ({ sha256: b.sha256, data: b.data.toString('base64') })) });
  }

  /** Many small blobs in one request (unchecked here: the caller hashes each). */
  async blobBatch(hashes: string[]): Promise<{ sha256: string; data: Buffer }[]> {
    const r = await this.json('POST', '/v1/blobs/batch', BlobBatchReply, { hashes });
    return r.blobs.map((b) => ({ sha256: b.sha256, data: Buffer.from(b.data, 'base64') }));
  }

  /** PUTs bytes to a presigned URL: straight to the store, without the broker's token. */
  async putDirect(u: z.infer<typeof DirectBlobUpload>, data: Buffer | Uint8Array | (() => NodeJS.ReadableStream), size: number): Promise<void> {
    const body = typeof data === 'function' ? (data() as unknown as ReadableStream) : data;
    let res: Response;
    try {
      res = await fetch(u.url, {
        method: 'PUT',
        body: body as RequestBody,
        headers: { ...u.headers, 'content-length': String(size) },
        duplex: 'half',
      } as RequestInit);
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new BrokerError(`cannot reach the blob store: ${cause?.code ?? cause?.message ?? (err as Error).message}`, 0, 'unreachable');
    }
    const text = await res.text().catch(() => '');
    if (!res.ok) throw new BrokerError(`the blob store refused the upload of ${u.sha256}: ${res.status} ${text.slice(0, 200)}`, res.status, 'store_refused');
  }

  /**
   * Uploads one blob. `data` is a buffer or a function that opens a fresh stream (so a retry can
   * reopen it). `basePath` lets a worker upload under its job: '/v1/jobs/<id>/blobs'. With a
   * store that has presigned URLs the bytes go straight there and the broker only checks them.
   */
  async putBlob(
    sha: string,
    data: Buffer | Uint8Array | (() => NodeJS.ReadableStream),
    size: number,
    basePath = '/v1/blobs',
  ): Promise<void> {
    const m = /^\/v1\/jobs\/([^/]+)\/blobs$/.exec(basePath);
    const jobId = m ? decodeURIComponent(m[1]!) : undefined;
    const r = await this.blobUploads([{ sha256: sha, size }], jobId);
    const u = r.direct ? r.uploads.find((x) => x.sha256 === sha) : undefined;
    if (u) {
      await this.putDirect(u, data, size);
      const c = await this.commitBlobs([{ sha256: sha, size, ticket: u.ticket }], jobId);
      const refused = c.refused[0];
      if (refused) throw new BrokerError(refused.message, 400, refused.error);
      return;
    }
    const body = typeof data === 'function' ? (data() as unknown as ReadableStream) : data;
    const res = await this.request('PUT', `${basePath}/${enc(sha)}`, {
      body: body as RequestBody,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      duplex: 'half',
    });
    if (!res.ok) throw await toError(res);
    await res.arrayBuffer();
  }

  /** The raw response (fetch), so the caller streams the body. `start` asks for the bytes from there on. */
  async getBlob(sha: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.start && opts.start > 0) headers.range = `bytes=${opts.start}-`;
    const res = await this.request('GET', `/v1/blobs/${enc(sha)}`, { headers, signal: opts.signal });
    if (!res.ok) throw await toError(res);
    return res;
  }

  /**
   * A blob's bytes as a Node stream, over node:http rather than fetch: WHATWG streams cost about
   * three times the CPU per byte, which is what bounds a download on loopback; and fetch leaves an
   * abort listener on the caller's signal until garbage collection (15 000 downloads under one
   * job's signal printed MaxListenersExceededWarning), where node:http removes it when done.
   * A broker whose store has presigned URLs answers 307: the bytes then come from the store,
   * asked without the broker's token.
   */
  downloadBlob(sha: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<{ status: number; body: IncomingMessage }> {
    return this.getStream(new URL(`${this.url}/v1/blobs/${enc(sha)}`), opts, true);
  }

  private getStream(url: URL, opts: { start?: number; signal?: AbortSignal }, fromBroker: boolean): Promise<{ status: number; body: IncomingMessage }> {
    const headers: Record<string, string> = {};
    if (fromBroker && this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.start && opts.start > 0) headers.range = `bytes=${opts.start}-`;
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    const where = fromBroker ? `the broker at ${this.url}` : 'the blob store';
    return new Promise((resolve, reject) => {
      const req = get(url, { headers, signal: opts.signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ status, body: res });
        const location = res.headers.location;
        if (fromBroker && (status === 307 || status === 302 || status === 303) && location) {
          res.resume();
          let next: URL;
          try {
            next = new URL(location, url);
          } catch {
            return reject(new BrokerError(`the broker redirected to a bad URL`, status, 'bad_reply'));
          }
          if (next.protocol !== 'http:' && next.protocol !== 'https:') return reject(new BrokerError(`the broker redirected to ${next.protocol}`, status, 'bad_reply'));
          return this.getStream(next, opts, false).then(resolve, reject);
        }
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          if (!fromBroker) {
            return reject(new BrokerError(`the blob store answered ${status}: ${body.toString('utf8').slice(0, 200)}`, status, 'store_error'));
          }
          const r = new Response(body, { status, statusText: res.statusMessage ?? '' });
          toError(r).then(reject, reject);
        });
      });
      req.on('error', (err) => {
        if (opts.signal?.aborted) return reject(err);
        reject(new BrokerError(`cannot reach ${where}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 0, 'unreachable'));
      });
    });
  }

  submitJob(body: SubmitJobBody): Promise<Job> {
    return this.json('POST', '/v1/jobs', Job, body);
  }
  /** A kernel session on a lease: a long-lived IPython kernel that runs cells on request. */
  startKernel(body: StartKernelBody): Promise<Job> {
    return this.json('POST', '/v1/kernels', Job, body);
  }
  /** Asks a kernel session to execute code, interrupt, restart or take an input; its answers come as events. */
  kernelRequest(sessionId: string, body: KernelRequestBody): Promise<{ requestId: string }> {
    return this.json('POST', `/v1/jobs/${enc(sessionId)}/requests`, KernelRequestReply, body);
  }
  jobs(): Promise<Job[]> {
    return this.json('GET', '/v1/jobs', z.array(Job));
  }
  job(id: string): Promise<Job> {
    return this.json('GET', `/v1/jobs/${enc(id)}`, Job);
  }
  cancelJob(id: string): Promise<Job> {
    return this.json('POST', `/v1/jobs/${enc(id)}/cancel`, Job, {});
  }
  artifacts(jobId: string): Promise<Artifact[]> {
    return this.json('GET', `/v1/jobs/${enc(jobId)}/artifacts`, z.array(Artifact));
  }

  /** This account's secrets: names and when each was set, never a value. */
  secrets(): Promise<SecretInfo[]> {
    return this.json('GET', '/v1/secrets', z.array(SecretInfo));
  }
  setSecret(name: string, value: string): Promise<SecretInfo> {
    return this.json('PUT', `/v1/secrets/${enc(name)}`, SecretInfo, { value });
  }
  async removeSecret(name: string): Promise<void> {
    const res = await this.request('DELETE', `/v1/secrets/${enc(name)}`);
    if (!res.ok) throw await toError(res);
  }

  /**
   * Every event after `from`, in order, each once. When `follow` is set it keeps the stream open,
   * reconnects after a dropped connection or a broker restart (with backoff) and resumes from the
   * last sequence number it yielded, and ends when the broker says the job is over.
   */
  async *events(
    jobId: string,
    opts: {
      from?: number;
      follow?: boolean;
      signal?: AbortSignal;
      onReconnect?: (err: unknown) => void;
      /** the broker cannot store the job's output right now (message), or can again (null) */
      onStalled?: (message: string | null) => void;
    } = {},
  ): AsyncGenerator<JobEvent> {
    let last = opts.from ?? 0;
    let failures = 0;
    for (;;) {
      opts.signal?.throwIfAborted();
      let ended = false;
      try {
        const q = `from=${last}${opts.follow ? '&follow=1' : ''}`;
        const res = await this.request('GET', `/v1/jobs/${enc(jobId)}/events?${q}`, { signal: opts.signal });
        if (!res.ok) {
          const err = await toError(res);
          // 4xx other than a rate limit will not get better by retrying.
          if (res.status < 500 && res.status !== 429) throw err;
          throw new RetryableError(err);
        }
        for await (const line of ndjsonLines(res)) {
          const parsed = EventStreamLine.safeParse(JSON.parse(line));
          if (!parsed.success) throw new BrokerError(`bad event line from broker: ${parsed.error.message}`, 0, 'bad_reply');
          const l = parsed.data;
          if (l.kind === 'event') {
            if (l.event.seq <= last) continue; // never repeat what was yielded before a reconnect
            last = l.event.seq;
            failures = 0;
            yield l.event;
          } else if (l.kind === 'end') {
            ended = true;
          } else if (l.kind === 'stalled') {
            opts.onStalled?.(l.message);
          }
        }
        if (ended || !opts.follow) return;
        throw new RetryableError(new Error('event stream closed before the job ended'));
      } catch (err) {
        if (opts.signal?.aborted) throw opts.signal.reason ?? err;
        if (!opts.follow || !(err instanceof RetryableError || isNetworkError(err))) {
          throw err instanceof RetryableError ? err.cause : err;
        }
        opts.onReconnect?.(err instanceof RetryableError ? err.cause : err);
        failures++;
        await sleep(Math.min(5000, 100 * 2 ** Math.min(failures, 6)) * (0.5 + Math.random() / 2), opts.signal);
      }
    }
  }

  private async json<T>(method: string, path: string, schema: z.ZodType<T, z.ZodTypeDef, unknown>, body?: unknown): Promise<T> {
    const signal = this.timeoutMs === undefined ? undefined : AbortSignal.timeout(this.timeoutMs);
    let res: Response;
    let data: unknown;
    try {
      res = await this.request(method, path, {
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal,
      });
      if (!res.ok) throw await toError(res);
      data = await res.json();
    } catch (err) {
      if (signal?.aborted) throw new BrokerError(`the broker at ${this.url} did not answer ${method} ${path} within ${Math.round((this.timeoutMs ?? 0) / 1000)} s`, 0, 'unreachable');
      throw err;
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new BrokerError(`unexpected reply to ${method} ${path}: ${parsed.error.issues[0]?.message ?? 'invalid'}`, res.status, 'bad_reply');
    }
    return parsed.data;
  }

  private async request(
    method: string,
    path: string,
    init: { headers?: Record<string, string>; body?: RequestBody | undefined; signal?: AbortSignal | undefined; duplex?: 'half' } = {},
  ): Promise<Response> {
    const headers: Record<string, string> = { ...init.headers };
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    try {
      // Never followed: the broker's API does not redirect, except a blob GET to a presigned URL,
      // which downloadBlob follows without the token; the token goes to the broker and nowhere else.
      return await fetch(this.url + path, { method, headers, body: init.body, signal: init.signal, duplex: init.duplex, redirect: 'manual' } as RequestInit);
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      // https:// to a broker that speaks plain HTTP (as `hearth up` and `hearth broker` do).
      const tls = /^ERR_SSL_(WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST)$/.test(cause?.code ?? '') && this.url.startsWith('https:')
        ? `; it does not speak TLS: try ${this.url.replace(/^https:/, 'http:')}`
        : '';
      throw new BrokerError(
        `cannot reach the broker at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}${tls}`,
        0,
        'unreachable',
      );
    }
  }
}

class RetryableError extends Error {
  constructor(override readonly cause: unknown) {
    super(cause instanceof Error ? cause.message : String(cause));
  }
}

function isNetworkError(err: unknown): boolean {
  if (err instanceof BrokerError) return err.code === 'unreachable';
  // A body stream cut mid-way surfaces as a TypeError ('terminated') from undici.
  return err instanceof TypeError || (err as { name?: string }).name === 'SocketError';
}

async function toError(res: Response): Promise<BrokerError> {
  const text = await res.text().catch(() => '');
  let parsed: ErrorReply | undefined;
  try {
    const r = ErrorReply.safeParse(JSON.parse(text));
    if (r.success) parsed = r.data;
  } catch {
    /* not JSON: fall through */
  }
  if (parsed) return new BrokerError(parsed.message, res.status, parsed.error, parsed.issues);
  return new BrokerError(`broker answered ${res.status} ${res.statusText}${text ? `: ${text.slice(0, 200)}` : ''}`, res.status, 'http_error');
}

/**
 * Splits an NDJSON body into lines. It scans each chunk's bytes for newlines and decodes a line
 * once, whole: re-slicing a growing string per line would be quadratic for long log lines.
 */
async function* ndjsonLines(res: Response): AsyncGenerator<string> {
  if (!res.body) return;
  const decoder = new TextDecoder();
  let pending: Uint8Array[] = [];
  let pendingBytes = 0;
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    let start = 0;
    let nl: number;
    while ((nl = chunk.indexOf(10, start)) >= 0) {
      const tail = chunk.subarray(start, nl);
      let line: string;
      if (pendingBytes === 0) line = decoder.decode(tail);
      else {
        pending.push(tail);
        line = decoder.decode(Buffer.concat(pending, pendingBytes + tail.length));
        pending = [];
        pendingBytes = 0;
      }
      start = nl + 1;
      if (line.trim()) yield line;
    }
    if (start < chunk.length) {
      pending.push(chunk.subarray(start));
      pendingBytes += chunk.length - start;
    }
  }
  if (pendingBytes) {
    const line = decoder.decode(Buffer.concat(pending, pendingBytes));
    if (line.trim()) yield line;
  }
}

function enc(s: string): string {
  return encodeURIComponent(s);
}

export function normalizeBrokerUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new BrokerError(`not a broker URL: ${JSON.stringify(url)} (expected e.g. http://127.0.0.1:7777)`, 0, 'bad_url');
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') {
    throw new BrokerError(`broker URL must be http(s): ${url}`, 0, 'bad_url');
  }
  // The API's /v1 is the client's to add: `http://host/v1` would ask for /v1/v1/….
  if (/\/v1\/*$/.test(u.pathname)) {
    throw new BrokerError(`a broker URL is the broker's address, without /v1: ${url.replace(/\/v1\/*$/, '')}`, 0, 'bad_url');
  }
  return u.toString().replace(/\/+$/, '');
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
