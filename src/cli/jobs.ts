// `hearth run`, `logs`, `jobs`, `cancel`, `scalars`, `pull`.
import type { Command } from 'commander';
import { existsSync, statSync } from 'node:fs';
import { basename, join, relative, resolve, sep } from 'node:path';
import type { BrokerClient } from '../client/api';
import { leaseAtQuote } from '../client/lease-quote';
import { pullArtifacts } from '../client/pull';
import { runLayout, submitRun } from '../client/submit-run';
import { resolveDataDir } from '../client/config';
import { isNotebookEntry, isTerminal, RelPath, scalarTable, type Job, type JobEvent, type Lease, type ScalarPoint } from '../shared/protocol';
import { clientFor, flag, globals, idArg, UsageError } from './context';
import { didYouMean } from './did-you-mean';
import { secretFileWarnings } from './secret-files';
import { EXIT, exitCodeOf } from './exit-codes';
import { followLog, listJobs, logsCommand, runSummary, scriptArgsHint, stdinNote, uploadLine } from './job-output';
import { ByteProgress, formatBytes, printJson, table } from './output';
import { leaseLimitFlags } from './leases';
import { credits } from '../shared/money';
import { visibleText } from '../shared/terminal-text';


/**
 * Picks an active lease of this account with time left, or leases one device for an hour; says on
 * stderr which lease and at what price. `own` is true for a lease taken here, which the caller
 * releases when it is done with it (a renter never pays for an hour they did not ask for).
 */
export async function pickLease(
  client: BrokerClient,
  leaseId: string | undefined,
  what2: 'run' | 'kernel' = 'run',
  limits: { maxCost?: number; idleReleaseMinutes?: number } = {},
  signal?: AbortSignal,
): Promise<{ id: string; own: boolean; said: string }> {
  // A cap is a lease's: with one, the run takes a lease of its own rather than one already held.
  if (limits.maxCost !== undefined && leaseId) throw new UsageError('--max-cost caps a lease this command takes for itself; it cannot be used with --lease');
  // A lease a kernel session holds is busy until the kernel stops: a run there would only wait.
  const kernels = new Set((await client.jobs()).filter((j) => j.kind === 'kernel' && !isTerminal(j.status)).map((j) => j.leaseId));
  const l = leaseId
    ? await client.lease(idArg('lease', leaseId))
    : limits.maxCost !== undefined
      ? undefined
      : (await client.leases()).find((x) => x.status === 'active' && x.expiresAt - Date.now() > 60_000 && !kernels.has(x.id));
  const what = (x: Lease) => `${x.count}× ${visibleText(x.gpuModel)} on ${visibleText(x.workerName)} at ${x.pricePerHour} credits/h per device${x.maxCost != null ? `, capped at ${credits(x.maxCost)}` : ''}`;
  if (l) return { id: l.id, own: false, said: `hearth: on lease ${l.id} (${what(l)})\n` };
  // Interrupted while looking: nothing leased yet, and nothing will be.
  signal?.throwIfAborted();
  // Released when the run ends; the idle release covers a CLI killed before it submitted anything.
  const n = await leaseAtQuote(client, { count: 1, hours: 1, idleReleaseMinutes: AUTO_LEASE_IDLE_MINUTES, ...limits });
  return { id: n.id, own: true, said: `hearth: leased ${n.id} for this ${what2} (${what(n)}); the broker releases it when the ${what2} ends\n` };
}

/** The idle release of a lease `hearth run` or `kernel start` takes for itself. */
export const AUTO_LEASE_IDLE_MINUTES = 10;

/** `--requirements FILE`: a file inside the uploaded folder, as a path relative to it. */
export function requirementsFlag(root: string, file: string): string {
  const abs = resolve(file);
  if (!existsSync(abs) || !statSync(abs).isFile()) throw new UsageError(`--requirements ${file} is not a file`);
  const rel = relative(root, abs).split(sep).join('/');
  if (!RelPath.safeParse(rel).success) throw new UsageError(`--requirements ${file} must be inside ${root}, the folder that is uploaded`);
  return rel;
}

export function registerJobCommands(program: Command): void {
  program
    .command('run')
    .description('run a Python file on a leased GPU: uploads its project, follows the log, exits with the job\'s exit code')
    .argument('<file>', 'the script to run')
    .argument('[args...]', 'arguments for the script (after --)')
    .option('--lease <id>', 'lease to run on (default: an active one, or a new one)')
    .option('--workdir <dir>', 'the folder to upload (default: the nearest folder above FILE holding .git, pyproject.toml or .hearthignore, else FILE\'s folder)')
    .option('--max-cost <credits>', 'lease a device for this run alone, ended (and the run stopped) when its cost reaches this')
    .option('--outputs <glob>', 'files to upload as artifacts when the job ends (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--logdir <dir>', 'TensorBoard log folder, relative to the uploaded folder (the job\'s working folder)', 'runs')
    .option('--env <NAME=VALUE>', 'environment variable for the job (repeatable)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--detach', 'submit and print the job id without following')
    .option('--allow-errors', 'a notebook: run every cell even after one raises (default: stop at the first error)')
    .option('--requirements <file>', 'packages to install first, a pip requirements file or pyproject.toml inside the uploaded folder (default: its requirements.txt or pyproject.toml)')
    // Options after FILE that hearth does not know are the script's: said so, not guessed.
    .allowUnknownOption()
    .action(async (file: string, args: string[], o: { lease?: string; workdir?: string; maxCost?: string; outputs?: string[]; logdir: string; env?: string[]; detach?: boolean; allowErrors?: boolean; requirements?: string }, cmd: Command) => {
      const g = globals(cmd);
      scriptArgsHint(file, args, cmd);
      const abs = resolve(file);
      if (!existsSync(abs) || !statSync(abs).isFile()) throw new UsageError(`${file} is not a file${didYouMean(abs)}`);
      // A notebook runs cell by cell on a fresh kernel (its outputs print as they come, and the
      // executed notebook is an artifact at its own path); it takes no script arguments.
      if (!/\.(py|ipynb)$/i.test(abs)) throw new UsageError(`hearth runs Python scripts (.py) and notebooks (.ipynb); ${basename(abs)} is neither`);
      const notebook = isNotebookEntry(abs);
      if (notebook && args.length) throw new UsageError(`a notebook takes no arguments (got ${args.join(' ')})`);
      if (o.allowErrors && !notebook) throw new UsageError('--allow-errors is for notebooks (.ipynb)');
      if (o.allowErrors) args = ['--allow-errors'];
      let layout: { root: string; entry: string };
      try {
        layout = runLayout(abs, { workdir: o.workdir });
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      const logdir = flag('logdir', RelPath, o.logdir.replace(/^\.\//, '').replace(/\/+$/, ''));
      const requirements = o.requirements === undefined ? undefined : requirementsFlag(layout.root, o.requirements);
      const env: Record<string, string> = {};
      for (const kv of o.env ?? []) {
        const i = kv.indexOf('=');
        if (i <= 0) throw new UsageError(`--env expects NAME=VALUE, got ${JSON.stringify(kv)}`);
        env[kv.slice(0, i)] = kv.slice(i + 1);
      }
      const client = clientFor(cmd);
      // Ctrl-C is ours from here on, whatever the moment: before the job exists it stops what is
      // in flight (the upload) and gives back the lease this run took; once the job exists, the
      // first cancels it (followed until it has stopped), the second detaches.
      const interrupted = new AbortController();
      const detach = new AbortController();
      let job: Job | undefined;
      let interrupts = 0;
      const onInt = () => {
        interrupts++;
        if (!job) {
          if (interrupts === 1) process.stderr.write('\nhearth: interrupted; stopping before the job is submitted\n');
          interrupted.abort();
        } else if (interrupts === 1) {
          process.stderr.write(`\nhearth: cancelling ${job.id} (Ctrl-C again to stop following)\n`);
          client.cancelJob(job.id).catch((err: Error) => process.stderr.write(`hearth: cancel failed: ${err.message}\n`));
        } else detach.abort();
      };
      process.on('SIGINT', onInt);
      try {
        let lease: Awaited<ReturnType<typeof pickLease>>;
        try {
          lease = await pickLease(client, o.lease, 'run', leaseLimitFlags(o), interrupted.signal);
        } catch (err) {
          if (!interrupted.signal.aborted) throw err;
          process.stderr.write('hearth: nothing was leased or submitted\n');
          process.exitCode = EXIT.cancelled;
          return;
        }
        // A lease taken for this run ends with it: the broker releases it when the run ends; here
        // only when the run never got submitted.
        const releaseOwn = async (): Promise<string> => {
          if (!lease.own) return `lease ${lease.id} is yours as before`;
          try {
            await client.releaseLease(lease.id);
            return `released ${lease.id}, the lease it took`;
          } catch (err) {
            return `could not release ${lease.id}: ${(err as Error).message}`;
          }
        };
        const stoppedBeforeSubmit = async () => {
          process.stderr.write(`hearth: nothing was submitted; ${await releaseOwn()}\n`);
          process.exitCode = EXIT.cancelled;
        };
        if (interrupted.signal.aborted) return await stoppedBeforeSubmit();
        const progress = new ByteProgress('upload');
        let run: Awaited<ReturnType<typeof submitRun>>;
        try {
          run = await submitRun(client, {
            root: layout.root,
            entry: layout.entry,
            leaseId: lease.id,
            args,
            env,
            ...(o.outputs ? { outputs: o.outputs } : {}),
            logdir,
            releaseLease: lease.own,
            ...(requirements ? { requirements } : {}),
            onProgress: (p) => p.phase === 'upload' && progress.update(p.doneBytes, p.totalBytes),
            signal: interrupted.signal,
          });
          progress.stop();
        } catch (err) {
          progress.stop();
          if (interrupted.signal.aborted) return await stoppedBeforeSubmit();
          process.stderr.write(`hearth: ${await releaseOwn()}\n`);
          throw err;
        }
        job = run.job;
        // The job id, alone, is the first line on stderr: scripts read it from there.
        process.stderr.write(`${job.id}\n${lease.said}${uploadLine(run)}${secretFileWarnings(run, resolveDataDir(g.dataDir))}${stdinNote()}`);
        // Ctrl-C while the job was being submitted: it exists now, so it is cancelled like any other.
        if (interrupted.signal.aborted) {
          interrupts = 0;
          onInt();
        }
        if (o.detach && !interrupted.signal.aborted) {
          if (g.json) printJson(job);
          else process.stdout.write(`${job.id}\n`);
          return;
        }
        try {
          // With --json, stdout carries only the JSON: the job's own output goes to stderr.
          const end = await followLog(client, job.id, { follow: true, signal: detach.signal, json: !!g.json });
          process.exitCode = exitCodeOf(end.ending);
          process.stderr.write(await runSummary(client, end.job, end.ending, lease.own, end.setupMs));
          if (g.json) printJson(end.job);
        } catch (err) {
          if (detach.signal.aborted) {
            process.stderr.write(`hearth: detached; \`hearth logs ${job.id} --follow\` resumes\n`);
            process.exitCode = EXIT.cancelled;
            return;
          }
          throw err;
        }
      } finally {
        process.off('SIGINT', onInt);
      }
    });

  program
    .command('logs')
    .description('print a job\'s log (stdout to stdout, stderr to stderr); once the job has ended, exits with its exit code')
    .argument('<job>')
    .option('-f, --follow', 'keep following until the job ends')
    .option('-n, --tail <lines>', 'only the last N lines of what is there (then follow, with -f)')
    .action(logsCommand);

  program
    .command('jobs')
    .description('list your jobs, newest first')
    .option('--status <list>', 'only these statuses, comma-separated: queued, running, succeeded, failed, cancelled, lost')
    .option('--lease <id>', 'only jobs on this lease')
    .option('--limit <n>', 'at most this many')
    .action(listJobs);

  program
    .command('cancel')
    .description('cancel a job (SIGTERM, then SIGKILL after a grace period; its outputs are still kept)')
    .argument('<job>')
    .action(async (jobId: string, _o: unknown, cmd: Command) => {
      const job = await clientFor(cmd).cancelJob(idArg('job', jobId));
      if (globals(cmd).json) printJson(job);
      else process.stdout.write(`${job.id} ${isTerminal(job.status) ? job.status : 'cancelling'}\n`);
    });

  program
    .command('scalars')
    .description('TensorBoard scalars of a job: { run: { tag: [[step, value], …] } } with --json')
    .argument('<job>')
    .action(async (jobId: string, _o: unknown, cmd: Command) => {
      const points: ScalarPoint[] = [];
      for await (const e of clientFor(cmd).events(idArg('job', jobId), {}) as AsyncIterable<JobEvent>) {
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
    .option('--wait', 'if the job has not ended yet, wait until it has, then pull')
    .action(async (jobId: string, o: { dest?: string; force?: boolean; wait?: boolean }, cmd: Command) => {
      idArg('job', jobId);
      const client = clientFor(cmd);
      // A job's artifacts are uploaded when it ends: before that there is nothing to pull yet.
      let state = await client.job(jobId);
      if (!isTerminal(state.status)) {
        if (!o.wait) {
          process.stderr.write(`hearth: ${jobId} is still ${state.status}; its artifacts come when it ends: \`hearth pull ${jobId} --wait\` waits for that\n`);
          process.exitCode = EXIT.error;
          return;
        }
        process.stderr.write(`hearth: ${jobId} is ${state.status}; waiting for it to end…\n`);
        for await (const e of client.events(jobId, { follow: true }) as AsyncIterable<JobEvent>) void e;
        state = await client.job(jobId);
      }
      const dest = resolve(o.dest ?? join('.hearth', 'runs', jobId));
      const progress = new ByteProgress('pull');
      const files = await pullArtifacts(client, jobId, dest, { force: !!o.force, onProgress: (p) => progress.update(p.doneBytes, p.totalBytes, p.file) }).finally(() => progress.stop());
      progress.stop();
      if (globals(cmd).json) {
        return printJson(files.map((f) => ({ ...f.artifact, file: f.absPath, skipped: f.skipped, resumedFrom: f.resumedFrom })));
      }
      if (!files.length) process.stderr.write(`hearth: ${jobId} (${state.status}) has no artifacts (did --outputs match what the job wrote?)\n`);
      for (const f of files) process.stdout.write(`${visibleText(f.absPath)}  ${formatBytes(f.artifact.size)}${f.skipped ? '  (already here)' : ''}\n`);
    });
}
