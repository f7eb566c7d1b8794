// `hearth kernel …`: kernel sessions from the shell — a long-lived IPython kernel on a leased GPU
// that keeps its state between `exec`s (and outlives this process), as the notebook editor uses.
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { uploadWorkspace } from '../client/workspace';
import { kernelText } from '../shared/kernel-text';
import { clientFor, flag, globals, idArg, NonNegative, UsageError } from './context';
import { DEFAULT_OUTPUTS } from '../client/submit-run';
import { pickLease, requirementsFlag } from './jobs';
import { setupText } from '../shared/setup-text';
import { workerWords } from '../shared/terminal-text';
import { logTexts } from './job-output';
import { printJson, write } from './output';

export function registerKernelCommands(program: Command): void {
  const kernel = program.command('kernel').description('kernel sessions: a long-lived IPython kernel on a leased GPU (what the notebook editor runs cells on)');

  kernel
    .command('start')
    .description('start a kernel on a lease and print its session id once it is ready')
    .option('--lease <id>', 'lease to run on (default: an active one, or a new one)')
    .option('--dir <folder>', 'upload this folder as the kernel\'s working folder (default: none)')
    .option('--idle <minutes>', 'stop after this many minutes with no request (0: never)', '60')
    .option('--outputs <glob>', 'files the kernel writes that come back when it stops (repeatable; default: weights and outputs/)', (v: string, acc: string[] = []) => [...acc, v])
    .option('--requirements <file>', 'packages to install first, a file inside --dir (default: its requirements.txt or pyproject.toml)')
    .action(async (o: { lease?: string; dir?: string; idle: string; outputs?: string[]; requirements?: string }, cmd: Command) => {
      const client = clientFor(cmd);
      const idleMinutes = flag('idle', NonNegative, o.idle);
      if (o.requirements !== undefined && o.dir === undefined) throw new UsageError('--requirements names a file inside --dir: give --dir too');
      const requirements = o.requirements === undefined ? undefined : requirementsFlag(resolve(o.dir!), o.requirements);
      const lease = await pickLease(client, o.lease, 'kernel');
      let session;
      try {
        const manifest = o.dir ? { files: (await uploadWorkspace(client, resolve(o.dir))).files } : { files: [] };
        session = await client.startKernel({ leaseId: lease.id, idleMinutes, manifest, outputs: [...(o.outputs ?? DEFAULT_OUTPUTS)], releaseLease: lease.own, ...(requirements ? { requirements } : {}) });
      } catch (err) {
        if (lease.own) await client.releaseLease(lease.id).catch(() => undefined);
        throw err;
      }
      process.stderr.write(`${session.id}\n${lease.said}`);
      for await (const e of client.events(session.id, { follow: true })) {
        const b = e.body;
        if (b.type === 'kernel' && b.requestId === null && b.msgType === 'status' && b.content.execution_state === 'idle') break;
        if (b.type === 'status' && ['failed', 'cancelled', 'lost'].includes(b.status)) throw new Error(`the kernel did not start: ${b.reason ?? b.status}`);
        if (b.type === 'notice') process.stderr.write(`hearth: ${b.level}: ${workerWords(b.message)}\n`);
        if (b.type === 'setup') process.stderr.write(`hearth: ${workerWords(setupText(b))}\n`);
        // Before the kernel is up, what it logs is the install of its packages (pip's output).
        if (b.type === 'log') process.stderr.write(b.data);
      }
      if (globals(cmd).json) printJson(await client.job(session.id));
      else process.stdout.write(`${session.id}\n`);
    });

  kernel
    .command('exec')
    .description('run code in the kernel (state stays between execs); prints its outputs; exits 1 when it raises. Ctrl-C interrupts it')
    .argument('<session>')
    .argument('[code]', 'the code; - or nothing reads it from standard input')
    .action(async (session: string, code: string | undefined, _o: unknown, cmd: Command) => {
      const id = idArg('job', session);
      const source = code === undefined || code === '-' ? readFileSync(0, 'utf8') : code;
      const client = clientFor(cmd);
      const from = (await client.job(id)).lastSeq;
      const { requestId } = await client.kernelRequest(id, { type: 'execute', code: source });
      // Ctrl-C interrupts the cell; a second one stops following (the cell goes on in the kernel).
      const stopFollowing = new AbortController();
      let interrupts = 0;
      const onInt = () => {
        if (++interrupts === 1) {
          process.stderr.write('\nhearth: interrupting (Ctrl-C again to stop waiting)\n');
          void client.kernelRequest(id, { type: 'interrupt' }).catch(() => undefined);
        } else stopFollowing.abort();
      };
      process.on('SIGINT', onInt);
      let status = 'ok';
      const texts = logTexts();
      try {
        for await (const e of client.events(id, { from, follow: true, signal: stopFollowing.signal })) {
          const b = e.body;
          if (b.type === 'status' && ['succeeded', 'failed', 'cancelled', 'lost'].includes(b.status)) throw new Error(`the kernel session ended: ${b.reason ?? b.status}`);
          if (b.type !== 'kernel' || b.requestId !== requestId) continue;
          if (b.msgType === 'execute_reply') {
            status = String(b.content.status);
            break;
          }
          if (b.msgType === 'input_request') {
            // Nobody can answer here: interrupt, or the kernel would wait for ever.
            await client.kernelRequest(id, { type: 'interrupt' }).catch(() => undefined);
            throw new UsageError('the code asked for input, which `hearth kernel exec` cannot give (use the notebook editor); it was interrupted');
          }
          const t = kernelText(b);
          if (t) await write(t.stream === 'stdout' ? process.stdout : process.stderr, texts[t.stream].write(t.data));
        }
      } catch (err) {
        if (!stopFollowing.signal.aborted) throw err;
        process.stderr.write(`hearth: stopped waiting; the cell may still run in ${id}\n`);
        process.exitCode = 130;
        return;
      } finally {
        process.off('SIGINT', onInt);
      }
      if (status !== 'ok') process.exitCode = 1;
    });

  for (const [name, what] of [
    ['interrupt', 'raise KeyboardInterrupt in the running cell (the state stays)'],
    ['restart', 'replace the kernel with a fresh one (the state goes)'],
  ] as const) {
    kernel
      .command(name)
      .description(what)
      .argument('<session>')
      .action(async (session: string, _o: unknown, cmd: Command) => {
        await clientFor(cmd).kernelRequest(idArg('job', session), { type: name });
        process.stderr.write(`hearth: ${name === 'interrupt' ? 'interrupt sent' : 'restarting the kernel'}\n`);
      });
  }

  kernel
    .command('stop')
    .description('shut the kernel down; files it wrote that match its outputs come back (hearth pull); a lease taken for it ends with it')
    .argument('<session>')
    .action(async (session: string, _o: unknown, cmd: Command) => {
      const client = clientFor(cmd);
      const id = idArg('job', session);
      if ((await client.job(id)).kind !== 'kernel') throw new UsageError(`${id} is a job, not a kernel session (hearth cancel stops jobs)`);
      const job = await client.cancelJob(id);
      if (globals(cmd).json) printJson(job);
      else process.stderr.write(`hearth: stopping ${id}\n`);
    });
}

