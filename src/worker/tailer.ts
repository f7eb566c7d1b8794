// Follows every *tfevents* file under a job's logdir while the job writes it: each file keeps its
// own decoder and read offset, so each pass reads only the bytes added since the last one, and a
// record that is only half written stays in the decoder until the rest arrives.
//
// The job writes these files, so it decides their size: a sparse 8 GiB file costs it nothing and
// would cost the worker minutes of reading. What one pass reads is bounded (per file and per
// job), so are a file and the job as a whole (provider caps, one notice when a file is left),
// and reading stops at once when the job is cancelled. Events are split to stay small whatever
// the tags are, and tags are cut to MAX_TAG_BYTES.
import { open, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { encodeScalar, type ScalarPoint } from '../shared/protocol';
import { realPathInside } from './confine';

/** The shape of src/shared/tfevents.ts's TfEventsDecoder that the tailer relies on. */
export interface ScalarDecoder {
  push(chunk: Uint8Array): { tag: string; step: number; wallTime: number; value: number }[];
  readonly errors: readonly { offset: number; reason: string }[];
}

export interface TailerOptions {
  workspace: string;
  /** relative to the workspace */
  logdir: string;
  createDecoder: () => ScalarDecoder;
  onPoints: (points: ScalarPoint[]) => void;
  onWarning: (message: string) => void;
  intervalMs?: number;
  /** bytes read of one file before it is left alone (one notice); default DEFAULT_MAX_FILE_BYTES */
  maxFileBytes?: number;
  /** bytes read of all the job's files together; default DEFAULT_MAX_JOB_BYTES */
  maxJobBytes?: number;
  /** bytes one pass reads (all files together), so a pass never holds the worker long; default 16 MiB */
  maxPassBytes?: number;
}

export const DEFAULT_MAX_FILE_BYTES = 2 ** 30;
export const DEFAULT_MAX_JOB_BYTES = 4 * 2 ** 30;
const DEFAULT_MAX_PASS_BYTES = 16 << 20;
/** one scalars event, serialised, stays under this (the socket's frame limit is far above it) */
export const MAX_EVENT_BYTES = 256 << 10;
/** longer tags are cut, ending in TAG_MARKER, so one point stays small */
export const MAX_TAG_BYTES = 512;
export const TAG_MARKER = '…';

interface FileState {
  offset: number;
  decoder: ScalarDecoder;
  run: string;
  warned: boolean;
  /** over the per-file cap: no longer read */
  capped: boolean;
}

const READ_CHUNK = 4 << 20;
const MAX_POINTS_PER_EVENT = 20_000;
const MAX_FILES = 10_000;

function mib(n: number): string {
  return n >= 2 ** 30 && n % 2 ** 30 === 0 ? `${n / 2 ** 30} GiB` : `${Math.round(n / 2 ** 20)} MiB`;
}

/** `tag` cut to at most `max` UTF-8 bytes, ending in TAG_MARKER when cut (never mid-character). */
export function capTag(tag: string, max = MAX_TAG_BYTES): string {
  if (Buffer.byteLength(tag) <= max) return tag;
  const room = max - Buffer.byteLength(TAG_MARKER);
  let out = '';
  let bytes = 0;
  for (const ch of tag) {
    const b = Buffer.byteLength(ch);
    if (bytes + b > room) break;
    out += ch;
    bytes += b;
  }
  return out + TAG_MARKER;
}

/** Splits points into groups whose `{type:'scalars',points}` serialisation stays under maxBytes. */
export function splitBySize(points: ScalarPoint[], maxBytes = MAX_EVENT_BYTES, maxPoints = MAX_POINTS_PER_EVENT): ScalarPoint[][] {
  const out: ScalarPoint[][] = [];
  // Room for the envelope the outbox adds around the body (type, job id, wseq).
  const budget = maxBytes - 512;
  let cur: ScalarPoint[] = [];
  let size = 0;
  for (const p of points) {
    const n = Buffer.byteLength(JSON.stringify(p)) + 1;
    if (cur.length > 0 && (size + n > budget || cur.length >= maxPoints)) {
      out.push(cur);
      cur = [];
      size = 0;
    }
    cur.push(p);
    size += n;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

export class TfEventsTailer {
  private readonly files = new Map<string, FileState>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private aborted = false;
  private jobBytes = 0;
  private jobCapped = false;
  /** bytes left for the pass under way */
  private passBudget = 0;

  constructor(private readonly opts: TailerOptions) {}

  start(): void {
    const tick = () => {
      this.timer = setTimeout(() => {
        void this.pass().finally(() => {
          if (!this.stopped) tick();
        });
      }, this.opts.intervalMs ?? 250);
    };
    tick();
  }

  /**
   * Stops polling after reading whatever the job wrote before it ended (within the caps, in
   * bounded passes); `abort()` meanwhile ends it at the next read.
   */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    let before = -1;
    while (!this.aborted && this.jobBytes !== before) {
      before = this.jobBytes;
      await this.pass();
    }
  }

  /** Stops reading now: the pass under way returns at its next read, and no other starts. */
  abort(): void {
    this.aborted = true;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** bytes read so far, all files together */
  get bytesRead(): number {
    return this.jobBytes;
  }

  /** One pass over the logdir; passes never overlap (a later call waits for the running one). */
  pass(): Promise<void> {
    const prev = this.running ?? Promise.resolve();
    const p = prev.then(() => this.passOnce()).catch((err: unknown) => this.opts.onWarning(`TensorBoard tailer: ${(err as Error).message}`));
    this.running = p;
    return p;
  }

  private async passOnce(): Promise<void> {
    if (this.aborted) return;
    this.passBudget = this.opts.maxPassBytes ?? DEFAULT_MAX_PASS_BYTES;
    // Resolved every pass: the logdir usually appears only once the job has started writing.
    const root = await realPathInside(this.opts.workspace, this.opts.logdir);
    if (!root) return;
    const found: string[] = [];
    await walkEventFiles(root, found, 0);
    for (const abs of found) {
      let st = this.files.get(abs);
      if (!st) {
        if (this.files.size >= MAX_FILES) continue;
        const runRel = relative(root, dirname(abs)).split(sep).join('/');
        if (runRel.length > 4096) continue;
        st = { offset: 0, decoder: this.opts.createDecoder(), run: runRel === '' ? '.' : runRel, warned: false, capped: false };
        this.files.set(abs, st);
      }
      if (this.aborted || this.passBudget <= 0) return;
      await this.readNew(abs, st);
    }
  }

  private name(abs: string, st: FileState): string {
    return `${st.run === '.' ? '' : st.run + '/'}${abs.slice(abs.lastIndexOf(sep) + 1)}`;
  }

  private async readNew(abs: string, st: FileState): Promise<void> {
    if (st.capped || this.jobCapped) return;
    let size: number;
    try {
      size = (await stat(abs)).size;
    } catch {
      return;
    }
    if (size < st.offset) {
      // Rewritten from scratch (not something writers do): start over rather than misread.
      st.offset = 0;
      st.decoder = this.opts.createDecoder();
    }
    if (size === st.offset) return;
    const maxFile = this.opts.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES;
    const maxJob = this.opts.maxJobBytes ?? DEFAULT_MAX_JOB_BYTES;
    const fh = await open(abs, 'r');
    try {
      const points: ScalarPoint[] = [];
      while (st.offset < size && !this.aborted) {
        if (st.offset >= maxFile) {
          st.capped = true;
          this.opts.onWarning(`${this.name(abs, st)} is larger than the ${mib(maxFile)} this worker reads of one TensorBoard file: the rest of it is not read`);
          break;
        }
        if (this.jobBytes >= maxJob) {
          this.jobCapped = true;
          this.opts.onWarning(`this job's TensorBoard files passed the ${mib(maxJob)} this worker reads of one job: no more of them is read`);
          break;
        }
        const want = Math.min(READ_CHUNK, size - st.offset, maxFile - st.offset, maxJob - this.jobBytes, this.passBudget);
        if (want <= 0) break; // this pass's share is spent; the next pass goes on
        const buf = Buffer.allocUnsafe(want);
        const { bytesRead } = await fh.read(buf, 0, want, st.offset);
        if (bytesRead === 0) break;
        st.offset += bytesRead;
        this.jobBytes += bytesRead;
        this.passBudget -= bytesRead;
        for (const v of st.decoder.push(buf.subarray(0, bytesRead))) {
          // What the protocol cannot carry (JSON has no NaN step) would make the broker refuse
          // the whole batch: leave out that one point instead.
          if (!Number.isFinite(v.step) || !Number.isFinite(v.wallTime)) continue;
          points.push({ run: st.run, tag: capTag(v.tag), step: v.step, wallTime: v.wallTime, value: encodeScalar(v.value) });
        }
      }
      for (const group of splitBySize(points)) this.opts.onPoints(group);
      const first = st.decoder.errors[0];
      if (first && !st.warned) {
        st.warned = true;
        this.opts.onWarning(`could not read part of ${this.name(abs, st)} at byte ${first.offset}: ${first.reason}`);
      }
    } finally {
      await fh.close();
    }
  }
}

async function walkEventFiles(dir: string, out: string[], depth: number): Promise<void> {
  if (depth > 32 || out.length >= MAX_FILES) return;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  for (const e of entries) {
    const abs = join(dir, e.name);
    // Dirent types come from lstat: symlinks are neither files nor folders here, so never followed.
    if (e.isDirectory()) await walkEventFiles(abs, out, depth + 1);
    else if (e.isFile() && e.name.includes('tfevents')) out.push(abs);
  }
}
