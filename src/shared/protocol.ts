// The protocol between CLI/extension, broker, worker and webview: one zod schema per message,
// types inferred from them. Every receiver parses with these; nothing is trusted by shape alone.
import { z } from 'zod';
import { hasControls } from './terminal-text';

/** Bumped when a worker and broker can no longer understand each other. */
export const PROTOCOL_VERSION = 1;

// ---------- primitives ----------

export const Sha256 = z.string().regex(/^[0-9a-f]{64}$/, 'expected a lowercase hex sha256');
export type Sha256 = z.infer<typeof Sha256>;

// Which kind of id is expected is said by whoever parses it (idOf, or the broker's "invalid lease
// id: …"), so this message names no kind: a lease id is not "like job_…".
export const Id = z.string().regex(/^[a-z]{1,8}_[0-9A-Za-z]{8,40}$/, 'expected a prefix, an underscore, then 8 to 40 letters and digits');

/** The kinds of id the broker hands out, by prefix. */
export const ID_KINDS = { acct: 'account', wrk: 'worker', lease: 'lease', job: 'job', req: 'request', tok: 'token' } as const;
export type IdPrefix = keyof typeof ID_KINDS;

/** An id of one kind: `idOf('lease')` refuses a job id with "expected a lease id like lease_…". */
export function idOf(prefix: IdPrefix): z.ZodType<string, z.ZodTypeDef, unknown> {
  return z.string().regex(new RegExp(`^${prefix}_[0-9A-Za-z]{8,40}$`), `expected a ${ID_KINDS[prefix]} id like ${prefix}_…`);
}

/**
 * A path inside a job folder as a client or worker sends it: relative, forward slashes, no `..`,
 * no empty or `.` segments, no NUL. Normalisation happens at the sender; the receiver rejects.
 */
export const RelPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => isSafeRelPath(p), { message: 'path must be relative, normalized and stay inside its folder' });

export function isSafeRelPath(p: string): boolean {
  if (p.length === 0 || p.includes('\0') || p.includes('\\')) return false;
  if (p.startsWith('/') || /^[A-Za-z]:/.test(p)) return false;
  return p.split('/').every((s) => s !== '' && s !== '.' && s !== '..');
}

/**
 * A name a worker gives itself or its devices, shown to every renter (`hearth gpus`, the GPUs
 * view): no control characters, no bidi or zero-width format characters (terminal-text.ts shows
 * any older row's as escapes anyway).
 */
export function PlainName(max: number, min = 0) {
  return z.string().min(min).max(max).refine((s) => !hasControls(s), { message: 'must not contain control characters (nor bidi or zero-width ones)' });
}

/** A number as JSON carries it: finite numbers plainly, the rest as TensorBoard-style strings. */
export const ScalarValue = z.union([z.number(), z.enum(['NaN', 'Infinity', '-Infinity'])]);
export type ScalarValue = z.infer<typeof ScalarValue>;

export function encodeScalar(v: number): ScalarValue {
  if (Number.isFinite(v)) return v;
  if (Number.isNaN(v)) return 'NaN';
  return v > 0 ? 'Infinity' : '-Infinity';
}
export function decodeScalar(v: ScalarValue): number {
  if (typeof v === 'number') return v;
  return v === 'NaN' ? NaN : v === 'Infinity' ? Infinity : -Infinity;
}

// ---------- GPUs and offers ----------

export const GpuInfo = z.object({
  index: z.number().int().min(0),
  uuid: PlainName(200),
  name: PlainName(200, 1),
  memoryTotalMiB: z.number().min(0),
  /** false for the CPU stand-in a GPU-less host offers */
  isGpu: z.boolean().default(true),
});
export type GpuInfo = z.infer<typeof GpuInfo>;

export const GpuTelemetry = z.object({
  index: z.number().int().min(0),
  utilizationPct: z.number().nullable(),
  memoryUsedMiB: z.number().nullable(),
  memoryTotalMiB: z.number().nullable(),
  temperatureC: z.number().nullable(),
  powerW: z.number().nullable(),
  /** 'cpu' when a host with no GPU reports its CPU and RAM (absent: a GPU) */
  device: z.enum(['gpu', 'cpu']).optional(),
});
export type GpuTelemetry = z.infer<typeof GpuTelemetry>;

/** What a worker's Python has: what a renter picks a worker by, and whether it runs notebooks. */
export const PythonStack = z.object({
  python: PlainName(50),
  torch: PlainName(50).nullable(),
  cuda: PlainName(50).nullable(),
  /** ipykernel and jupyter_client are there: notebooks run */
  kernels: z.boolean(),
  /** the NVIDIA driver's version (nvidia-smi); null on a host without one; absent from older workers */
  driver: PlainName(50).nullable().optional(),
  /** free bytes on the disk of the worker's data dir when it connected (environments and jobs go there) */
  diskFreeBytes: z.number().int().min(0).optional(),
  /**
   * what a session's own network reaches: 'internet' (through NAT; never the host, its LAN or other
   * sessions), 'none' (its own loopback only), 'host' (the worker's network, shared: unsandboxed);
   * absent from older workers, whose sessions share the host's network
   */
  network: z.enum(['internet', 'none', 'host']).optional(),
});
export type PythonStack = z.infer<typeof PythonStack>;

export const Offer = z.object({
  workerId: Id,
  workerName: z.string(),
  gpuModel: z.string(),
  isGpu: z.boolean(),
  vramMiB: z.number(),
  total: z.number().int(),
  free: z.number().int(),
  /** price of one device for one hour, in credits */
  pricePerHour: z.number().min(0),
  /** 0..1: share of the worker's finished jobs that were not lost, with a prior of one good job */
  reliability: z.number().min(0).max(1),
  online: z.boolean(),
  /** the worker's Python, PyTorch and CUDA versions; absent when it did not say */
  stack: PythonStack.optional(),
});
export type Offer = z.infer<typeof Offer>;

// ---------- accounts ----------

export const Me = z.object({ accountId: Id, name: z.string(), isAdmin: z.boolean() });
export type Me = z.infer<typeof Me>;

/** A credit amount a renter caps spending at (a budget, not a price). */
export const Credits = z.number().positive().max(1e9);

export const CreateAccountBody = z
  .object({
    name: z.string().min(1).max(100).regex(/^[\w.@-]+$/),
    /** the account's monthly spend limit, set by the admin at creation; the renter may change it */
    spendLimit: Credits.optional(),
  })
  .strict();

/** What an account has spent this calendar month (UTC) against its limit. */
export const AccountSpend = z.object({
  /** credits a month; null: no limit */
  spendLimit: z.number().nullable(),
  /** the month counted: leases' metered seconds from periodStart on */
  period: z.literal('month'),
  periodStart: z.number(),
  /** the first of next month (UTC), when the count starts again */
  periodEnd: z.number(),
  spent: z.number().min(0),
});
export type AccountSpend = z.infer<typeof AccountSpend>;

// ---------- the ledger (broker/ledger.ts) ----------

/** An idempotency key: the same key twice posts once. */
export const IdempotencyKey = z.string().min(1).max(200).regex(/^[\x21-\x7e]+$/, 'printable ASCII, no spaces');

/** POST /v1/admin/grants: credits for an account (by id or name), from the admin. */
export const GrantBody = z.object({ account: z.string().min(1).max(200), credits: Credits, key: IdempotencyKey.optional(), memo: z.string().max(500).optional() }).strict();
export const GrantReply = z.object({ accountId: Id, applied: z.boolean(), balance: z.number() });
/** PUT /v1/admin/overdraft: how far below zero an account's balance may go (prepaid credit). */
export const OverdraftBody = z.object({ account: z.string().min(1).max(200), credits: z.number().min(0).max(1e9) }).strict();
/** PUT /v1/admin/fee: the broker's share of each metered credit. */
export const FeeBody = z.object({ share: z.number().min(0).max(1) }).strict();
/** What a payment provider posts to /v1/ledger/webhook (signed, see SECURITY.md). */
export const PaymentWebhookBody = z.object({ id: IdempotencyKey, account: z.string().min(1).max(200), credits: Credits }).strict();

export const Balance = z.object({
  balance: z.number(),
  /** what the account's open leases hold in escrow */
  held: z.number(),
  /** null: open credit (the balance may go below zero) */
  overdraft: z.number().nullable(),
  /** what the account's workers earned, net of the broker's fee */
  earnings: z.number(),
  mode: z.enum(['open', 'prepaid']),
});
export type Balance = z.infer<typeof Balance>;

export const LedgerPosting = z.object({
  id: z.number(),
  key: z.string(),
  from: z.string(),
  to: z.string(),
  credits: z.number(),
  kind: z.string(),
  leaseId: z.string().nullable(),
  workerId: z.string().nullable(),
  memo: z.string().nullable(),
  at: z.number(),
});
export type LedgerPosting = z.infer<typeof LedgerPosting>;

export const EarningsRow = z.object({ workerId: z.string(), workerName: z.string(), day: z.string(), credits: z.number() });
export type EarningsRow = z.infer<typeof EarningsRow>;

/** PUT /v1/account/limit: null removes the limit. */
export const SetSpendLimitBody = z.object({ spendLimit: Credits.nullable() }).strict();
export const CreateAccountReply = z.object({ accountId: Id, name: z.string(), token: z.string() });
export type CreateAccountReply = z.infer<typeof CreateAccountReply>;

export const CreateTokenBody = z
  .object({
    kind: z.enum(['user', 'worker']),
    label: z.string().max(100).default(''),
    /** the token stops working this many seconds after creation; without it, it lasts until revoked */
    expiresInSeconds: z.number().int().positive().max(10 * 366 * 86_400).optional(),
  })
  .strict();
export const CreateTokenReply = z.object({
  token: z.string(),
  kind: z.enum(['user', 'worker']),
  // Optional so a client still reads an older broker's reply.
  id: Id.optional(),
  expiresAt: z.number().nullable().optional(),
});

// ---------- leases ----------

export const LeaseStatus = z.enum(['active', 'released', 'expired']);
export type LeaseStatus = z.infer<typeof LeaseStatus>;

export const Lease = z.object({
  id: Id,
  workerId: Id,
  workerName: z.string(),
  gpuModel: z.string(),
  gpuIndices: z.array(z.number().int().min(0)),
  count: z.number().int().min(1),
  pricePerHour: z.number().min(0),
  createdAt: z.number(),
  expiresAt: z.number(),
  endedAt: z.number().nullable(),
  status: LeaseStatus,
  /** seconds metered so far (whole seconds, rounded up) */
  secondsUsed: z.number().int().min(0),
  /** credits so far: count × pricePerHour × secondsUsed / 3600 (never above maxCost) */
  cost: z.number().min(0),
  // Spend controls; optional so a client still reads an older broker's lease.
  /** the lease ends when its cost reaches this many credits; null: no cap */
  maxCost: z.number().nullable().optional(),
  /** the lease is released after this many minutes with nothing queued or running on it; null: never */
  idleReleaseMinutes: z.number().nullable().optional(),
  /** set once the lease is near its cap or the account near its limit, e.g. "80% of its cap of 5 cr used" */
  spendWarning: z.string().nullable().optional(),
  /** why an ended lease ended: released, expired, lease_cap, spend_limit, idle_release */
  endReason: z.string().nullable().optional(),
  /**
   * set while the lease waits for its devices (the last job of the lease before it on them is
   * still stopping): nothing runs and nothing is billed until they are free; createdAt is then
   * when it got them
   */
  waitingFor: z.string().nullable().optional(),
});
export type Lease = z.infer<typeof Lease>;

/** the longest a lease may last, renewals included (hours) */
export const MAX_LEASE_HOURS = 24 * 30;

export const CreateLeaseBody = z
  .object({
    gpuModel: z.string().max(200).optional(),
    workerId: Id.optional(),
    count: z.number().int().min(1).max(64).default(1),
    hours: z.number().positive().max(MAX_LEASE_HOURS).default(1),
    /** end the lease (stopping its jobs) when its cost reaches this many credits */
    maxCost: Credits.optional(),
    /** release the lease after this many minutes with nothing queued or running on it */
    idleReleaseMinutes: z.number().positive().max(24 * 30 * 60).optional(),
    /**
     * the price per device-hour the renter saw in the offer: the lease is made at this price or
     * refused (`price_changed`), so a provider cannot change it between the quote and the lease
     */
    pricePerHour: z.number().min(0).max(1e9).optional(),
  })
  .strict();
export type CreateLeaseBody = z.infer<typeof CreateLeaseBody>;

export const RenewLeaseBody = z.object({ hours: z.number().positive().max(MAX_LEASE_HOURS) }).strict();

// ---------- blobs and workspaces ----------

export const ManifestFile = z.object({
  path: RelPath,
  sha256: Sha256,
  size: z.number().int().min(0),
  executable: z.boolean().default(false),
});
export type ManifestFile = z.infer<typeof ManifestFile>;

export const Manifest = z.object({ files: z.array(ManifestFile).max(200_000) });
export type Manifest = z.infer<typeof Manifest>;

export const MissingBlobsBody = z.object({ hashes: z.array(Sha256).max(200_000) }).strict();
export const MissingBlobsReply = z.object({ missing: z.array(Sha256) });

/** At most this many blobs per upload negotiation, commit or pack request. */
export const BLOB_BATCH_MAX = 1000;
const BlobSize = z.number().int().min(0);
/**
 * Asks where to put blobs. `jobId`: a worker uploading a job's outputs. A store with presigned
 * URLs (S3) answers one URL per blob it can take directly; the rest go through the broker.
 */
export const BlobUploadsBody = z
  .object({ jobId: Id.optional(), blobs: z.array(z.object({ sha256: Sha256, size: BlobSize }).strict()).max(BLOB_BATCH_MAX) })
  .strict();
export const DirectBlobUpload = z.object({ sha256: Sha256, url: z.string().url(), headers: z.record(z.string(), z.string()), ticket: z.string() });
export const BlobUploadsReply = z.union([
  z.object({ direct: z.literal(false) }),
  z.object({ direct: z.literal(true), expiresInSeconds: z.number(), uploads: z.array(DirectBlobUpload) }),
]);
export type BlobUploadsReply = z.infer<typeof BlobUploadsReply>;
/** After PUTting to presigned URLs: the broker checks each object and records it as a blob. */
export const BlobCommitBody = z
  .object({
    jobId: Id.optional(),
    blobs: z.array(z.object({ sha256: Sha256, size: BlobSize, ticket: z.string().regex(/^[0-9a-f]{24}$/, 'an upload ticket') }).strict()).max(BLOB_BATCH_MAX),
  })
  .strict();
export const BlobCommitReply = z.object({
  committed: z.array(Sha256),
  refused: z.array(z.object({ sha256: Sha256, error: z.string(), message: z.string() })),
});
/** Small blobs packed into one request (base64), each hashed by the broker before it is stored. */
export const PACK_BLOB_MAX = 256 * 1024;
export const PACK_BODY_MAX = 8 * 1024 * 1024;
export const BlobPackBody = z
  .object({ blobs: z.array(z.object({ sha256: Sha256, data: z.string().base64().max(Math.ceil(PACK_BLOB_MAX / 3) * 4) }).strict()).max(BLOB_BATCH_MAX * 4) })
  .strict();
export const BlobPackReply = z.object({ stored: z.number().int() });
/** Many small blobs fetched in one request (a worker filling its cache); the reader checks each hash. */
export const BlobBatchBody = z.object({ hashes: z.array(Sha256).max(BLOB_BATCH_MAX * 4) }).strict();
export const BlobBatchReply = z.object({ blobs: z.array(z.object({ sha256: Sha256, data: z.string().base64() })) });

// ---------- jobs ----------

export const JobStatus = z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled', 'lost']);
export type JobStatus = z.infer<typeof JobStatus>;
export const TERMINAL_STATUSES: readonly JobStatus[] = ['succeeded', 'failed', 'cancelled', 'lost'];
export const isTerminal = (s: JobStatus): boolean => TERMINAL_STATUSES.includes(s);

const EnvName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'not a valid environment variable name');

// ---------- secrets ----------

/** Bytes (UTF-8) one secret's value may have: tokens and keys, not files. */
export const SECRET_VALUE_MAX = 64 * 1024;
/** Shorter values are not masked in logs: masking every "abc" would destroy a log and hide nothing. */
export const SECRET_MIN_MASKED = 4;
/** Bytes of all of an account's values together: every log chunk of its jobs is masked with them
 * all on the broker's event path, so what one account sets bounds what it costs everyone. */
export const SECRET_ACCOUNT_MAX_BYTES = 256 * 1024;
/** Lines of one value (each line is masked on its own too): a 4096-bit PEM key has about 50. */
export const SECRET_MAX_LINES = 200;

/** A secret's name: an environment variable's, not one the worker sets for its own use. */
export const SecretName = z
  .string()
  .max(128)
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'a secret name is an environment variable name: letters, digits and _, not starting with a digit')
  .refine((n) => !/^HEARTH_/i.test(n), { message: 'names starting with HEARTH_ are the worker\'s own' });

export const SetSecretBody = z
  .object({
    value: z
      .string()
      .min(1, 'a secret needs a value')
      .refine((v) => new TextEncoder().encode(v).length <= SECRET_VALUE_MAX, { message: `a secret's value may have at most ${SECRET_VALUE_MAX / 1024} KiB` })
      .refine((v) => v.split(/\r?\n|\r/).length <= SECRET_MAX_LINES, { message: `a secret's value may have at most ${SECRET_MAX_LINES} lines` }),
  })
  .strict();

/** A secret as listed: its name and when it was last set, never its value. */
export const SecretInfo = z.object({ name: SecretName, updatedAt: z.number() });
export type SecretInfo = z.infer<typeof SecretInfo>;

/**
 * A session is a job (a script or notebook run to its end) or a kernel (a long-lived IPython
 * kernel that runs cells on request). Both run in the same sandbox with the same limits, and
 * both log into the same durable event log.
 */
export const SessionKind = z.enum(['job', 'kernel']);

/** A job whose entry is a notebook runs it cell by cell on a fresh kernel (not as a script). */
export const isNotebookEntry = (entry: string): boolean => /\.ipynb$/i.test(entry);
export type SessionKind = z.infer<typeof SessionKind>;

export const JobSpec = z
  .object({
    kind: SessionKind.default('job'),
    /** the script to run, relative to the workspace root (for a kernel: its working folder's marker, `.`-free) */
    entry: RelPath,
    /** a kernel stops after this many minutes with no request and no running cell (0: never) */
    idleMinutes: z.number().min(0).max(7 * 24 * 60).default(60),
    /**
     * The lease was taken for this session alone: the broker releases it when the session ends (and
     * nothing else waits on it), so a client that dies or detaches never leaves a paid lease behind.
     */
    releaseLease: z.boolean().default(false),
    args: z.array(z.string().max(10_000)).max(1000).default([]),
    env: z.record(EnvName, z.string().max(100_000)).default({}),
    /** globs, relative to the workspace root, of files uploaded as artifacts when the job ends */
    outputs: z.array(z.string().min(1).max(1000)).max(100).default([]),
    /** folder, relative to the workspace root, whose *tfevents* files are tailed */
    logdir: RelPath.default('runs'),
    /**
     * The packages to install before the session starts: a pip requirements file, or a
     * pyproject.toml (its [project] dependencies), relative to the workspace root. Without it the
     * worker uses requirements.txt, else pyproject.toml's dependencies, at the root when present.
     */
    requirements: RelPath.optional(),
    manifest: Manifest,
  })
  .strict();
export type JobSpec = z.infer<typeof JobSpec>;

export const SubmitJobBody = JobSpec.extend({ leaseId: Id }).strict();
export type SubmitJobBody = z.input<typeof SubmitJobBody>;

/** POST /v1/kernels: a kernel session on a lease, in the uploaded workspace (may be empty). */
export const StartKernelBody = z
  .object({
    leaseId: Id,
    manifest: Manifest.default({ files: [] }),
    env: z.record(EnvName, z.string().max(100_000)).default({}),
    logdir: RelPath.default('runs'),
    outputs: z.array(z.string().min(1).max(1000)).max(100).default([]),
    idleMinutes: z.number().min(0).max(7 * 24 * 60).default(60),
    releaseLease: z.boolean().default(false),
    /** as JobSpec.requirements */
    requirements: RelPath.optional(),
  })
  .strict();
export type StartKernelBody = z.input<typeof StartKernelBody>;

const KernelRequestKinds = [
  z.object({ type: z.literal('execute'), code: z.string().max(4 * 1024 * 1024) }),
  /** KeyboardInterrupt in the running cell; the kernel's state stays */
  z.object({ type: z.literal('interrupt') }),
  /** a fresh kernel in the same session (state gone) */
  z.object({ type: z.literal('restart') }),
  /** the answer to an input_request (input(), getpass) */
  z.object({ type: z.literal('input_reply'), value: z.string().max(100_000) }),
] as const;

/** POST /v1/jobs/:id/requests: what a client asks of a running kernel. */
export const KernelRequestBody = z.discriminatedUnion('type', [
  KernelRequestKinds[0].strict(),
  KernelRequestKinds[1].strict(),
  KernelRequestKinds[2].strict(),
  KernelRequestKinds[3].strict(),
]);
export type KernelRequestBody = z.infer<typeof KernelRequestBody>;
export const KernelRequestReply = z.object({ requestId: Id });

/** A request as the worker gets it: the broker's request id travels with it. */
export const KernelRequest = z.discriminatedUnion('type', [
  KernelRequestKinds[0].extend({ requestId: Id }).strict(),
  KernelRequestKinds[1].extend({ requestId: Id }).strict(),
  KernelRequestKinds[2].extend({ requestId: Id }).strict(),
  KernelRequestKinds[3].extend({ requestId: Id }).strict(),
]);
export type KernelRequest = z.infer<typeof KernelRequest>;

/**
 * The Jupyter messages a kernel session reports (content as Jupyter defines it), plus
 * execute_request, which the broker logs when it takes a request (content: { code }).
 */
export const KernelMsgType = z.enum([
  'execute_request',
  'status',
  'execute_input',
  'stream',
  'display_data',
  'update_display_data',
  'execute_result',
  'error',
  'clear_output',
  'input_request',
  'execute_reply',
]);
export type KernelMsgType = z.infer<typeof KernelMsgType>;

export const Job = z.object({
  id: Id,
  kind: SessionKind.default('job'),
  leaseId: Id,
  workerId: Id,
  entry: z.string(),
  status: JobStatus,
  createdAt: z.number(),
  startedAt: z.number().nullable(),
  endedAt: z.number().nullable(),
  exitCode: z.number().int().nullable(),
  reason: z.string().nullable(),
  /** the sequence number of the last event in the job's log */
  lastSeq: z.number().int().min(0),
});
export type Job = z.infer<typeof Job>;

export const Artifact = z.object({ path: RelPath, sha256: Sha256, size: z.number().int().min(0) });
export type Artifact = z.infer<typeof Artifact>;

// ---------- job events (the durable per-job log) ----------

export const ScalarPoint = z.object({
  /** folder of the event file, relative to the logdir ('.' for the logdir itself) */
  run: z.string().max(4096),
  tag: z.string().max(4096),
  step: z.number(),
  wallTime: z.number(),
  value: ScalarValue,
});
export type ScalarPoint = z.infer<typeof ScalarPoint>;

/** What a worker reports; the broker stamps seq and ts when it appends. */
export const EventBody = z.discriminatedUnion('type', [
  z.object({
    type: z.literal('status'),
    status: JobStatus,
    exitCode: z.number().int().nullable().optional(),
    signal: z.string().nullable().optional(),
    reason: z.string().max(10_000).nullable().optional(),
  }),
  z.object({ type: z.literal('log'), stream: z.enum(['stdout', 'stderr']), data: z.string().max(4 * 1024 * 1024) }),
  z.object({ type: z.literal('scalars'), points: z.array(ScalarPoint).max(100_000) }),
  z.object({ type: z.literal('telemetry'), gpus: z.array(GpuTelemetry).max(64) }),
  z.object({ type: z.literal('artifact'), artifact: Artifact }),
  /**
   * A kernel session's message: requestId names the request it answers (null: about the kernel
   * as a whole, e.g. its state starting/idle/busy/restarting/dead).
   */
  z.object({ type: z.literal('kernel'), requestId: Id.nullable(), msgType: KernelMsgType, content: z.record(z.unknown()) }),
  /**
   * The worker prepares the session's Python environment from its requirements, before the
   * session starts: `installing` (pip's output follows as log events), `waiting` (another session
   * installs the same requirements), `ready` (`reused`: from the worker's cache, nothing installed).
   * A failed install ends the session `failed`, its reason naming the requirement and pip's why.
   */
  z.object({ type: z.literal('setup'), phase: z.enum(['installing', 'waiting', 'ready']), source: RelPath, reused: z.boolean().optional() }),
  /** something the worker wants the person to know that is not the program's own output */
  z.object({ type: z.literal('notice'), level: z.enum(['info', 'warning', 'error']), message: z.string().max(10_000) }),
]);
export type EventBody = z.infer<typeof EventBody>;

export const JobEvent = z.object({ seq: z.number().int().min(1), ts: z.number(), body: EventBody });
export type JobEvent = z.infer<typeof JobEvent>;

/** One line of `GET /v1/jobs/:id/events` (NDJSON): an event, or a keepalive, or the end. */
export const EventStreamLine = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('event'), event: JobEvent }),
  z.object({ kind: z.literal('ping'), lastSeq: z.number().int().min(0) }),
  /** the job is terminal and every event up to lastSeq was sent */
  z.object({ kind: z.literal('end'), lastSeq: z.number().int().min(0), status: JobStatus }),
  /**
   * The broker cannot store the job's output right now (a full disk): the output is paused, not
   * dropped. `message` says why; null when it is flowing again. Not part of the log.
   */
  z.object({ kind: z.literal('stalled'), message: z.string().nullable() }),
]);
export type EventStreamLine = z.infer<typeof EventStreamLine>;

// ---------- worker <-> broker WebSocket ----------

export const WorkerHello = z.object({
  type: z.literal('hello'),
  protocol: z.number().int(),
  /** the id this worker was given before, so a reconnect keeps its identity and leases */
  workerId: Id.optional(),
  name: PlainName(200, 1),
  hostname: PlainName(200),
  version: PlainName(50),
  gpus: z.array(GpuInfo).max(64),
  pricePerHour: z.number().min(0).max(1_000_000),
  stack: PythonStack.optional(),
  /** jobs the worker still holds: running, or with events the broker has not acknowledged */
  jobs: z.array(Id).max(10_000),
});
export type WorkerHello = z.infer<typeof WorkerHello>;

export const WorkerToBroker = z.discriminatedUnion('type', [
  WorkerHello,
  z.object({ type: z.literal('heartbeat'), telemetry: z.array(GpuTelemetry).max(64).optional() }),
  /** `wseq` is the worker's own per-job counter: the broker drops what it already appended */
  z.object({ type: z.literal('event'), jobId: Id, wseq: z.number().int().min(1), body: EventBody }),
  z.object({ type: z.literal('job-accepted'), jobId: Id }),
]);
export type WorkerToBroker = z.infer<typeof WorkerToBroker>;

export const JobAssignment = z.object({
  jobId: Id,
  leaseId: Id,
  gpuIndices: z.array(z.number().int().min(0)),
  spec: JobSpec,
  /** the last wseq the broker holds for this job (0 for a new job) */
  ackedWseq: z.number().int().min(0),
  /**
   * The renter's secrets, as environment variables of this session only. They travel with the
   * dispatch, never in the spec (which `GET /v1/jobs/:id` and the job's record keep).
   */
  secrets: z.record(EnvName, z.string().max(SECRET_VALUE_MAX)).optional(),
  /**
   * The same opaque key for every session of one account on this worker (and a different one on
   * another worker): what the worker keys the account's Hugging Face cache by. Never the account.
   */
  cacheKey: z.string().regex(/^[0-9a-f]{32}$/).optional(),
});
export type JobAssignment = z.infer<typeof JobAssignment>;

export const BrokerToWorker = z.discriminatedUnion('type', [
  z.object({ type: z.literal('welcome'), workerId: Id, heartbeatMs: z.number().int().positive() }),
  z.object({ type: z.literal('job'), job: JobAssignment }),
  z.object({ type: z.literal('cancel'), jobId: Id, reason: z.string() }),
  /** a request for a running kernel session */
  z.object({ type: z.literal('request'), jobId: Id, request: KernelRequest }),
  /** every event up to wseq of jobId is appended durably */
  z.object({ type: z.literal('ack'), jobId: Id, wseq: z.number().int().min(0) }),
  /**
   * The broker did not append an event of jobId: it holds everything up to ackedWseq and nothing
   * after it. The worker sends again from ackedWseq + 1, not before retryMs (a full disk, say, or
   * an event that skipped ahead); it never skips, so the log stays gap-free.
   */
  z.object({ type: z.literal('nack'), jobId: Id, ackedWseq: z.number().int().min(0), retryMs: z.number().int().min(0), reason: z.string() }),
  /** the job is gone from the broker's view (e.g. terminal and acked): forget it */
  z.object({ type: z.literal('forget'), jobId: Id }),
  z.object({ type: z.literal('error'), message: z.string() }),
]);
export type BrokerToWorker = z.infer<typeof BrokerToWorker>;

// ---------- errors ----------

export const ErrorReply = z.object({
  error: z.string(),
  message: z.string(),
  issues: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
});
export type ErrorReply = z.infer<typeof ErrorReply>;

/** `hearth scalars --json` and truth.json: { run: { tag: [[step, value], …] } } */
export type ScalarTable = Record<string, Record<string, Array<[number, ScalarValue]>>>;

export function scalarTable(points: Iterable<ScalarPoint>): ScalarTable {
  const out: ScalarTable = {};
  for (const p of points) {
    const run = (out[p.run] ??= {});
    (run[p.tag] ??= []).push([p.step, p.value]);
  }
  return out;
}

// ---------- tokens: listing, revocation (broker HTTP surface) ----------

/** A token as `GET /v1/tokens` lists it: never its secret, which the broker does not keep. */
export const TokenInfo = z.object({
  id: Id,
  /** `hth_` or `hthw_` and the first four characters of the secret, to tell tokens apart */
  prefix: z.string(),
  kind: z.enum(['user', 'worker']),
  label: z.string(),
  createdAt: z.number(),
  /** to the minute: recorded at most once a minute */
  lastUsedAt: z.number().nullable(),
  expiresAt: z.number().nullable(),
  revokedAt: z.number().nullable(),
});
export type TokenInfo = z.infer<typeof TokenInfo>;
