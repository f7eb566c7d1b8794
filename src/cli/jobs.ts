// `hearth run`, `logs`, `jobs`, `cancel`, `scalars`, `pull`.
import type { Command } from 'commander';
import { once } from 'node:events';
import { existsSync, statSync } from 'node:fs';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import type { BrokerClient } from '../client/api';
import { kernelText } from '../shared/kernel-text';
import { pullArtifacts } from '../client/pull';
import { submitRun } from '../client/submit-run';
import { isNotebookEntry, isTerminal, RelPath, scalarTable, type Job, type JobEvent, type Lease, type ScalarPoint } from '../shared/protocol';
import { clientFor, flag, globals, UsageError } from './context';
import { ByteProgress, formatBytes, printJson, table } from './output';


export async function write(stream: NodeJS.WriteStream, data: string): Promise<void> {
  if (!stream.write(data)) await once(stream, 'drain');
}

/**
 * Picks an active lease of this account with time left, or leases one device for an hour; says on
 * stderr which lease and at what price. `own` is true for a lease taken here, which the caller
 * releases when it is done with it (a renter never pays for an hour they did not ask for).
 */
export async function pickLease(client: BrokerClient, leaseId: string | undefined, what2: 'run' | 'kernel' = 'run'): Promise<{ id: string; own: boolean; said: string }> {
  // A lease a kernel session holds is busy until the kernel stops: a run there would only wait.
  const kernels = new Set((await client.jobs()).filter((j) => j.kind === 'kernel' && !isTerminal(j.status)).map((j) => j.leaseId));
  const l = leaseId
    ? await client.lease(leaseId)
    : (await client.leases()).find((x) => x.status === 'active' && x.expiresAt - Date.now() > 60_000 && !kernels.has(x.id));
  const what = (x: Lease) => `${x.count}× ${x.gpuModel} on ${x.workerName} at ${x.pricePerHour} credits/h per device`;
  if (l) return { id: l.id, own: false, said: `hearth: on lease ${l.id} (${what(l)})\n` };
  const n = await client.createLease({ count: 1, hours: 1 });
  return { id: n.id, own: true, said: `hearth: leased ${n.id} for this ${what2} (${what(n)}); the broker releases it when the ${what2} ends\n` };
}

/** `--requirements FILE`: a file inside the uploaded folder, as a path relative to it. */
export function requirementsFlag(root: string, file: string): string {
  const abs = resolve(file);
  if (!existsSync(abs) || !statSync(abs).isFile()) throw new UsageError(`--requirements ${file} is not a file`);
  const rel = relative(root, abs).split(sep).join('/');
  if (!RelPath.safeParse(rel).success) throw new UsageError(`--requirements ${file} must be inside ${root}, the folder that is uploaded`);
  return rel;
}

/** What the CLI says of a session's setup phase (the worker installing its packages). */
export function setupText(b: Extract<JobEvent['body'], { type: 'setup' }>): string {
  if (b.phase === 'installing') return `installing packages (${b.source})…`;
  if (b.phase === 'waiting') return `waiting for another run's install of the same packages (${b.source})…`;
  return b.reused ? `packages of ${b.source} already installed on this worker` : `packages of ${b.source} installed`;
}

export function exitCodeOf(job: Job): number {
  switch (job.status) {
    case 'succeeded':
      return 0;
    case 'failed':
      return job.exitCode && job.exitCode > 0 ? job.exitCode : 1;
    case 'cancelled':
      return 130;
    default:
      return 1;
  }
}

/** Streams a job's log to stdout/stderr; returns the job as it ended (or as it is, without follow). */
async function followLog(client: BrokerClient, jobId: string, follow: boolean, signal?: AbortSignal): Promise<Job> {
  let warned = false;
  for await (const e of client.events(jobId, {
    follow,
    signal,
    onReconnect: (err) => {
      if (!warned) process.stderr.write(`hearth: lost the broker (${(err as Error).message}); reconnecting…\n`);
      warned = true;
    },
    onStalled: (message) => process.stderr.write(message ? `hearth: warning: ${message}\n` : 'hearth: the broker stores the job\'s output again\n'),
  })) {
    warned = false;
    const b = e.body;
    if (b.type === 'log') await write(b.stream === 'stdout' ? process.stdout : process.stderr, b.data);
    else if (b.type === 'kernel') {
      // A notebook run's cell outputs, as a console shows them.
      const t = kernelText(b);
      if (t) await write(t.stream === 'stdout' ? process.stdout : process.stderr, t.data);
    }
    else if (b.type === 'notice') await write(process.stderr, `hearth: ${b.level}: ${b.message}\n`);
    else if (b.type === 'setup') await write(process.stderr, `hearth: ${setupText(b)}\n`);
    else if (b.type === 'status' && isTerminal(b.status) && b.status !== 'succeeded') {
      await write(process.stderr, `hearth: job ${b.status}${b.exitCode != null ? ` (exit code ${b.exitCode})` : ''}${b.reason ? `: ${b.reason}` : ''}\n`);
    }
  }
  return client.job(jobId);
}

export function registerJobCommands(program: Command): void {
  program
    .command('run')
    .description('run a Python file on a leased GPU: uploads its folder, follows the log, exits with the job\'s exit code')
    .argument('<file>', 'the script to run')
    .argument('[args...]', 'arguments for the script (after --)')
    .option('--lease <id>', 'lease to run on (default: an active one, or a new one)')
    .option('--outputs <glob>', 'files to upload as artifacts when the job ends (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--logdir <dir>', 'TensorBoard log folder, relative to the script\'s folder', 'runs')
    .option('--env <NAME=VALUE>', 'environment variable for the job (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--detach', 'submit and print the job id without following')
    .option('--allow-errors', 'a notebook: run every cell even after one raises (default: stop at the first error)')
    .option('--requirements <file>', 'packages to install first, a pip requirements file or pyproject.toml inside the script\'s folder (default: its requirements.txt or pyproject.toml)')
    .action(async (file: string, args: string[], o: { lease?: string; outputs?: string[]; logdir: string; env?: string[]; detach?: boolean; allowErrors?: boolean; requirements?: string }, cmd: Command) => {
      const g = globals(cmd);
      const abs = resolve(file);
      if (!existsSync(abs) || !statSync(abs).isFile()) throw new UsageError(`${file} is not a file`);
      // A notebook runs cell by cell on a fresh kernel (its outputs print as they come, and the
      // executed notebook is an artifact at its own path); it takes no script arguments.
      if (!/\.(py|ipynb)$/i.test(abs)) throw new UsageError(`hearth runs Python scripts (.py) and notebooks (.ipynb); ${basename(abs)} is neither`);
      const notebook = isNotebookEntry(abs);
      if (notebook && args.length) throw new UsageError(`a notebook takes no arguments (got ${args.join(' ')})`);
      if (o.allowErrors && !notebook) throw new UsageError('--allow-errors is for notebooks (.ipynb)');
      if (o.allowErrors) args = ['--allow-errors'];
      const root = dirname(abs);
      const logdir = flag('logdir', RelPath, o.logdir.replace(/^\.\//, '').replace(/\/+$/, ''));
      const requirements = o.requirements === undefined ? undefined : requirementsFlag(root, o.requirements);
      const env: Record<string, string> = {};
      for (const kv of o.env ?? []) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--env expects NAME=VALUE, got ${JSON.stringify(kv)}`);
        env[kv.slice(0, i)] = kv.slice(i + 1);
      }
      const client = clientFor(cmd);
      const lease = await pickLease(client, o.lease);
      const leaseId = lease.id;
      // A lease taken for this run ends with it: the broker releases it when the run ends; here
      // only when the run never got submitted.
      const releaseOwn = async () => {
        if (lease.own) await client.releaseLease(lease.id).catch((err: Error) => process.stderr.write(`hearth: could not release ${lease.id}: ${err.message}\n`));
      };
      const progress = new ByteProgress('upload');
      let job: Job;
      try {
        ({ job } = await submitRun(client, {
          root,
          entry: basename(abs),
          leaseId,
          args,
          env,
          ...(o.outputs ? { outputs: o.outputs } : {}),
          logdir,
          releaseLease: lease.own,
          ...(requirements ? { requirements } : {}),
          onProgress: (p) => p.phase === 'upload' && progress.update(p.doneBytes, p.totalBytes),
        }));
        progress.stop();
      } catch (err) {
        progress.stop();
        await releaseOwn();
        throw err;
      }
      // The job id, alone, is the first line on stderr: scripts read it from there.
      process.stderr.write(`${job.id}\n${lease.said}`);
      if (o.detach) {
        if (g.json) printJson(job);
        else process.stdout.write(`${job.id}\n`);
        return;
      }
      // Ctrl-C once cancels the job and keeps following until it has stopped; twice detaches.
      const detach = new AbortController();
      let interrupts = 0;
      const onInt = () => {
        interrupts++;
        if (interrupts === 1) {
          process.stderr.write(`\nhearth: cancelling ${job.id} (Ctrl-C again to stop following)\n`);
          client.cancelJob(job.id).catch((err: Error) => process.stderr.write(`hearth: cancel failed: ${err.message}\n`));
        } else detach.abort();
      };
      process.on('SIGINT', onInt);
      try {
        const end = await followLog(client, job.id, true, detach.signal);
        if (g.json) printJson(end);
        process.exitCode = exitCodeOf(end);
      } catch (err) {
        if (detach.signal.aborted) {
          process.stderr.write(`hearth: detached; \`hearth logs ${job.id} --follow\` resumes\n`);
          process.exitCode = 130;
          return;
        }
        throw err;
      } finally {
        process.off('SIGINT', onInt);
      }
    });

  program
    .command('logs')
    .description('print a job\'s log (stdout to stdout, stderr to stderr)')
    .argument('<job>')
    .option('-f, --follow', 'keep following until the job ends')
    .action(async (jobId: string, o: { follow?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      if (globals(cmd).json) {
        for await (const e of client.events(jobId, { follow: !!o.follow })) await write(process.stdout, JSON.stringify(e) + '\n');
        return;
      }
      const job = await followLog(client, jobId, !!o.follow);
      if (o.follow) process.exitCode = exitCodeOf(job);
    });

  program
    .command('jobs')
    .description('list your jobs')
    .action(async (_o: unknown, cmd: Command) => {
      const jobs = await clientFor(cmd).jobs();
      if (globals(cmd).json) return printJson(jobs);
      process.stdout.write(
        table(
          jobs.map((j) => [j.id, j.status, j.exitCode === null ? '' : String(j.exitCode), j.entry, new Date(j.createdAt).toLocaleString()]),
          ['JOB', 'STATUS', 'EXIT', 'ENTRY', 'CREATED'],
        ),
      );
    });

  program
    .command('cancel')
    .description('cancel a job (SIGTERM, then SIGKILL after a grace period; its outputs are still kept)')
    .argument('<job>')
    .action(async (jobId: string, _o: unknown, cmd: Command) => {
      const job = await clientFor(cmd).cancelJob(jobId);
      if (globals(cmd).json) printJson(job);
      else process.stdout.write(`${job.id} ${isTerminal(job.status) ? job.status : 'cancelling'}\n`);
    });

  program
    .command('scalars')
    .description('TensorBoard scalars of a job: { run: { tag: [[step, value], …] } } with --json')
    .argument('<job>')
    .action(async (jobId: string, _o: unknown, cmd: Command) => {
      const points: ScalarPoint[] = [];
      for await (const e of clientFor(cmd).events(jobId, {}) as AsyncIterable<JobEvent>) {
        if (e.body.type === 'scalars') points.push(...e.body.points);
      }
      const t = scalarTable(points);
      if (globals(cmd).json) return printJson(t);
      const rows = Object.entries(t).flatMap(([run, tags]) =>
        Object.entries(tags).map(([tag, s]) => {
          const last = s[s.length - 1];
          return [run, tag, String(s.length), last ? String(last[0]) : '', last ? String(last[1]) : ''];
        }),
      );
      process.stdout.write(table(rows, ['RUN', 'TAG', 'POINTS', 'LAST STEP', 'LAST VALUE']));
    });

  program
    .command('pull')
    .description('download a job\'s artifacts (resumable, sha256-verified)')
    .argument('<job>')
    .option('--dest <dir>', 'folder to write into (default .hearth/runs/<job>)')
    .option('--force', 'replace local files that differ from the artifacts (without it, such a pull writes nothing)')
    .action(async (jobId: string, o: { dest?: string; force?: boolean }, cmd: Command) => {
      const client = clientFor(cmd);
      const dest = resolve(o.dest ?? join('.hearth', 'runs', jobId));
      const progress = new ByteProgress('pull');
      const files = await pullArtifacts(client, jobId, dest, { force: !!o.force, onProgress: (p) => progress.update(p.doneBytes, p.totalBytes, p.file) }).finally(() => progress.stop());
      progress.stop();
      if (globals(cmd).json) {
        return printJson(files.map((f) => ({ ...f.artifact, file: f.absPath, skipped: f.skipped, resumedFrom: f.resumedFrom })));
      }
      if (!files.length) process.stderr.write(`hearth: ${jobId} has no artifacts (did --outputs match what the job wrote?)\n`);
      for (const f of files) process.stdout.write(`${f.absPath}  ${formatBytes(f.artifact.size)}${f.skipped ? '  (already here)' : ''}\n`);
    });
}
