// What `hearth run` and `hearth logs` print around a job: its log (one renderer for both, so
// `logs` and `logs -f` print the same bytes), the upload line, the closing summary, and `jobs`.
import type { Command } from 'commander';
import { fstatSync } from 'node:fs';
import { z } from 'zod';
import type { BrokerClient } from '../client/api';
import type { SubmittedRun } from '../client/submit-run';
import { kernelText } from '../shared/kernel-text';
import { setupText } from '../shared/setup-text';
import { LogText, workerWords } from '../shared/terminal-text';
import { isTerminal, JobStatus, type Job, type JobEvent } from '../shared/protocol';
import { clientFor, flag, globals, idArg, PositiveInt, UsageError } from './context';
import { exitCodeOf, type Ending } from './exit-codes';
import { formatBytes, formatDuration, printJson, table, write } from './output';

type Stream = 'stdout' | 'stderr';
type Piece = { stream: Stream; data: string };

/** A log's two streams, each keeping a colour sequence cut between two events whole. */
export type LogTexts = Record<Stream, LogText>;
export const logTexts = (): LogTexts => ({ stdout: new LogText(), stderr: new LogText() });

/**
 * What one event prints, and where. Everything in it came from the worker: the job's own output
 * keeps its colours and `\r` and nothing else a terminal would act on (terminal-text.ts).
 */
export function renderEvent(e: JobEvent, texts: LogTexts): Piece[] {
  const b = e.body;
  if (b.type === 'log') return [{ stream: b.stream, data: texts[b.stream].write(b.data) }];
  if (b.type === 'kernel') {
    // A notebook run's cell outputs, as a console shows them.
    const t = kernelText(b);
    const stream = t?.stream === 'stdout' ? 'stdout' : 'stderr';
    return t ? [{ stream, data: texts[stream].write(t.data) }] : [];
  }
  if (b.type === 'notice') return [{ stream: 'stderr', data: `hearth: ${b.level}: ${workerWords(b.message)}\n` }];
  if (b.type === 'setup') return [{ stream: 'stderr', data: `hearth: ${workerWords(setupText(b))}\n` }];
  if (b.type === 'status' && isTerminal(b.status) && b.status !== 'succeeded') {
    const how = b.signal ? (b.reason?.includes(b.signal) ? '' : ` (${workerWords(b.signal)})`) : b.exitCode != null ? ` (exit code ${b.exitCode})` : '';
    return [{ stream: 'stderr', data: `hearth: job ${b.status}${how}${b.reason ? `: ${workerWords(b.reason)}` : ''}\n` }];
  }
  return [];
}

/** The last `n` lines of what it is given, in order across both streams (a partial last line too). */
export class TailBuffer {
  private pieces: Piece[] = [];
  private lines = 0;
  constructor(private readonly n: number) {}

  push(p: Piece): void {
    for (const part of p.data.split(/(?<=\n)/)) {
      if (!part) continue;
      this.pieces.push({ stream: p.stream, data: part });
      if (part.endsWith('\n')) this.lines++;
    }
    // Drops whole lines from the front (a line's partial pieces go with it).
    while (this.lines > this.n) {
      const first = this.pieces.shift()!;
      if (first.data.endsWith('\n')) this.lines--;
    }
  }

  take(): Piece[] {
    const out = this.pieces;
    this.pieces = [];
    this.lines = 0;
    return out;
  }
}

export interface FollowResult {
  job: Job;
  /** from the job's last status event (it carries the signal), else the job row */
  ending: Ending;
}

/**
 * Prints a job's log: stdout to stdout and stderr to stderr, or both to stderr (`json`, so stdout
 * holds only JSON). `tail` keeps only the last N lines of what was logged before it started.
 */
export async function followLog(
  client: BrokerClient,
  jobId: string,
  opts: { follow: boolean; signal?: AbortSignal; json?: boolean; tail?: number },
): Promise<FollowResult> {
  const out = (s: Stream) => (s === 'stdout' && !opts.json ? process.stdout : process.stderr);
  const print = async (ps: Piece[]) => {
    for (const p of ps) await write(out(p.stream), p.data);
  };
  let tail: TailBuffer | undefined;
  let historyEnd = 0;
  if (opts.tail !== undefined) {
    tail = new TailBuffer(opts.tail);
    historyEnd = (await client.job(jobId)).lastSeq;
  }
  let ending: Ending | undefined;
  let warned = false;
  const texts = logTexts();
  for await (const e of client.events(jobId, {
    follow: opts.follow,
    signal: opts.signal,
    onReconnect: (err) => {
      if (!warned) process.stderr.write(`hearth: lost the broker (${(err as Error).message}); reconnecting…\n`);
      warned = true;
    },
    onStalled: (message) => process.stderr.write(message ? `hearth: warning: ${message}\n` : 'hearth: the broker stores the job\'s output again\n'),
  })) {
    warned = false;
    if (e.body.type === 'status' && isTerminal(e.body.status)) ending = e.body;
    if (tail && e.seq > historyEnd) {
      await print(tail.take());
      tail = undefined;
    }
    const ps = renderEvent(e, texts);
    if (tail) for (const p of ps) tail.push(p);
    else await print(ps);
  }
  if (tail) await print(tail.take());
  await print((['stdout', 'stderr'] as const).map((stream) => ({ stream, data: texts[stream].end() })).filter((p) => p.data));
  const job = await client.job(jobId);
  return { job, ending: ending ?? job };
}

/** `hearth logs JOB [-f] [--tail N]`. */
export async function logsCommand(jobId: string, o: { follow?: boolean; tail?: string }, cmd: Command): Promise<void> {
  const id = idArg('job', jobId);
  const tail = o.tail === undefined ? undefined : flag('tail', z.coerce.number().int().min(0), o.tail);
  const client = clientFor(cmd);
  if (globals(cmd).json) {
    // NDJSON events; --tail N starts N events before the end.
    const from = tail === undefined ? 0 : Math.max(0, (await client.job(id)).lastSeq - tail);
    for await (const e of client.events(id, { follow: !!o.follow, from })) await write(process.stdout, JSON.stringify(e) + '\n');
    return;
  }
  const { job, ending } = await followLog(client, id, { follow: !!o.follow, tail });
  if (isTerminal(job.status)) process.exitCode = exitCodeOf(ending);
}

function duration(j: Job, now = Date.now()): number | undefined {
  if (j.startedAt === null) return undefined;
  return (j.endedAt ?? now) - j.startedAt;
}

/** The one line `hearth run` ends with: status, duration, cost, artifacts and how to get them. */
export async function runSummary(client: BrokerClient, job: Job, ending: Ending, ownLease: boolean): Promise<string> {
  const parts: string[] = [];
  const sig = ending.signal ?? /killed by (SIG[A-Z0-9]+)/.exec(ending.reason ?? '')?.[1];
  const how = job.status === 'failed' ? (sig ? ` (${sig})` : job.exitCode !== null ? ` (exit code ${job.exitCode})` : '') : '';
  const d = duration(job);
  parts.push(`${job.id} ${job.status}${how}${d === undefined ? '' : ` in ${formatDuration(d)}`}`);
  try {
    const lease = await client.lease(job.leaseId);
    // A lease taken for this run cost what the broker metered; a shared one, its price for this run's time.
    if (ownLease) parts.push(`cost ${lease.cost.toFixed(4)} credits`);
    else if (d !== undefined) parts.push(`cost ≈${((lease.pricePerHour * lease.count * d) / 3_600_000).toFixed(4)} credits`);
  } catch {
    /* the summary never fails the run */
  }
  try {
    const n = (await client.artifacts(job.id)).length;
    parts.push(n ? `${n} artifact${n === 1 ? '' : 's'}: hearth pull ${job.id}` : 'no artifacts');
  } catch {
    /* as above */
  }
  return `hearth: ${parts.join(' · ')}\n`;
}

/** What was uploaded: the folder, its files and bytes, and how many the broker already had. */
export function uploadLine(run: SubmittedRun): string {
  const u = run.upload;
  const had = u.files - u.uploadedFiles;
  return (
    `hearth: uploaded ${run.root}: ${u.files} file${u.files === 1 ? '' : 's'}, ${formatBytes(u.bytes)}` +
    ` (${had} already on the broker; sent ${u.uploadedFiles}, ${formatBytes(u.uploadedBytes)})\n`
  );
}

/** A job's stdin is empty (/dev/null); say so when something is piped into `hearth run`. */
export function stdinNote(): string {
  if (process.stdin.isTTY) return '';
  try {
    const st = fstatSync(0);
    if (st.isFIFO() || st.isSocket() || (st.isFile() && st.size > 0)) {
      return 'hearth: note: the job\'s stdin is empty (/dev/null); what is piped into `hearth run` is not passed on (put it in a file in the project)\n';
    }
  } catch {
    /* no stdin at all */
  }
  return '';
}

/**
 * `hearth run train.py --epochs 3`: options hearth does not know, before any `--`, are the
 * script's. Running it anyway would be a guess (is `--lease` ours or the script's?); say how.
 */
export function scriptArgsHint(file: string, args: string[], cmd: Command): void {
  const raw = (cmd.parent as (Command & { rawArgs?: string[] }) | null)?.rawArgs ?? process.argv;
  const dd = raw.indexOf('--');
  const afterDd = dd >= 0 ? raw.length - dd - 1 : 0;
  const before = args.slice(0, args.length - afterDd);
  const unknown = before.find((a) => a.startsWith('-') && a !== '--');
  if (!unknown) return;
  const scriptArgs = [...before.filter((a) => a !== '--'), ...args.slice(args.length - afterDd)];
  throw new UsageError(
    `${unknown} is not an option of hearth run; arguments for the script go after --:\n` +
      `  hearth run ${file} -- ${scriptArgs.join(' ')}\n` +
      `(hearth's own options, such as --lease, go before the --)`,
  );
}

/** `hearth jobs [--status S,…] [--lease ID] [--limit N]`. */
export async function listJobs(o: { status?: string; lease?: string; limit?: string }, cmd: Command): Promise<void> {
  const statuses = o.status?.split(',').map((s) => s.trim()).filter(Boolean).map((s) => {
    if (!JobStatus.safeParse(s).success) throw new UsageError(`--status: expected ${JobStatus.options.join(', ')} (got ${JSON.stringify(s)})`);
    return s as JobStatus;
  });
  const lease = o.lease === undefined ? undefined : idArg('lease', o.lease);
  const limit = o.limit === undefined ? undefined : flag('limit', PositiveInt, o.limit);
  let jobs = (await clientFor(cmd).jobs()).filter((j) => (!statuses || statuses.includes(j.status)) && (!lease || j.leaseId === lease));
  if (limit !== undefined) jobs = jobs.slice(0, limit);
  if (globals(cmd).json) return printJson(jobs);
  const now = Date.now();
  const cut = (s: string, n: number) => (s.length > n ? s.slice(0, n - 1) + '…' : s);
  process.stdout.write(
    table(
      jobs.map((j) => {
        const sig = /killed by (SIG[A-Z0-9]+)/.exec(j.reason ?? '')?.[1];
        const d = duration(j, now);
        return [
          j.id,
          j.status,
          j.exitCode !== null ? String(j.exitCode) : (sig ?? ''),
          d === undefined ? '' : formatDuration(d),
          j.entry,
          new Date(j.createdAt).toLocaleString(),
          cut(j.reason ?? '', 70),
        ];
      }),
      ['JOB', 'STATUS', 'EXIT', 'DURATION', 'ENTRY', 'CREATED', 'REASON'],
    ),
  );
}
