// The broker's HTTP client, shared by the CLI, the extension host and the worker. Every reply is
// parsed with its schema from the protocol, so a broker that answers nonsense is an error here too.
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { z } from 'zod';
import {
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
  Offer,
  TokenInfo,
  type CreateLeaseBody,
  type JobEvent,
  type SubmitJobBody,
} from '../shared/protocol';

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
}

type RequestBody = NonNullable<RequestInit['body']>;

const Health = z.object({ ok: z.boolean(), version: z.string() });

export class BrokerClient {
  /** settable: a worker with several broker replicas points it at the one it is connected to */
  url: string;
  readonly token: string | undefined;

  constructor(opts: BrokerClientOptions) {
    this.url = normalizeBrokerUrl(opts.url);
    this.token = opts.token;
  }

  health(): Promise<{ ok: boolean; version: string }> {
    return this.json('GET', '/v1/health', Health);
  }
  me(): Promise<Me> {
    return this.json('GET', '/v1/me', Me);
  }
  createAccount(name: string): Promise<CreateAccountReply> {
    return this.json('POST', '/v1/accounts', CreateAccountReply, { name });
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
   * Uploads one blob. `data` is a buffer or a function that opens a fresh stream (so a retry can
   * reopen it). `basePath` lets a worker upload under its job: '/v1/jobs/<id>/blobs'.
   */
  async putBlob(
    sha: string,
    data: Buffer | Uint8Array | (() => NodeJS.ReadableStream),
    size: number,
    basePath = '/v1/blobs',
  ): Promise<void> {
    const body = typeof data === 'function' ? (data() as unknown as ReadableStream) : data;
    const res = await this.request('PUT', `${basePath}/${enc(sha)}`, {
      body: body as RequestBody,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(size) },
      duplex: 'half',
    });
    if (!res.ok) throw await toError(res);
    await res.arrayBuffer();
  }

  /** The raw response, so the caller streams the body. `start` asks for the bytes from there on. */
  async getBlob(sha: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<Response> {
    const headers: Record<string, string> = {};
    if (opts.start && opts.start > 0) headers.range = `bytes=${opts.start}-`;
    const res = await this.request('GET', `/v1/blobs/${enc(sha)}`, { headers, signal: opts.signal });
    if (!res.ok) throw await toError(res);
    return res;
  }

  /**
   * A blob's bytes as a Node stream, over node:http rather than fetch: WHATWG streams cost about
   * three times the CPU per byte, which is what bounds a download on loopback.
   */
  downloadBlob(sha: string, opts: { start?: number; signal?: AbortSignal } = {}): Promise<{ status: number; body: IncomingMessage }> {
    const url = new URL(`${this.url}/v1/blobs/${enc(sha)}`);
    const headers: Record<string, string> = {};
    if (this.token) headers.authorization = `Bearer ${this.token}`;
    if (opts.start && opts.start > 0) headers.range = `bytes=${opts.start}-`;
    const get = url.protocol === 'https:' ? httpsGet : httpGet;
    return new Promise((resolve, reject) => {
      const req = get(url, { headers, signal: opts.signal }, (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 200 && status < 300) return resolve({ status, body: res });
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const r = new Response(Buffer.concat(chunks), { status, statusText: res.statusMessage ?? '' });
          toError(r).then(reject, reject);
        });
      });
      req.on('error', (err) => {
        if (opts.signal?.aborted) return reject(err);
        reject(new BrokerError(`cannot reach the broker at ${this.url}: ${(err as NodeJS.ErrnoException).code ?? err.message}`, 0, 'unreachable'));
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
    const res = await this.request(method, path, {
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw await toError(res);
    const data: unknown = await res.json();
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
      return await fetch(this.url + path, { method, headers, body: init.body, signal: init.signal, duplex: init.duplex } as RequestInit);
    } catch (err) {
      if (init.signal?.aborted) throw err;
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      throw new BrokerError(
        `cannot reach the broker at ${this.url}: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
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
