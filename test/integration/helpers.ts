// Starts the real programs, as a person would, from the built CLI (dist/cli.js): a broker and a
// worker in their own processes on a loopback port, in a temporary data dir.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BrokerClient } from '../../src/client/api';
import { backendFlagsFor } from '../backend';

export const REPO = resolve(__dirname, '..', '..');
export const CLI = join(REPO, 'dist', 'cli.js');

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `hearth-${prefix}-`));
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs `hearth ARGS` to completion. */
export async function hearth(args: string[], env: Record<string, string> = {}, opts: { cwd?: string } = {}): Promise<CliResult> {
  const p = spawnHearth(args, env, opts);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  p.stdout!.on('data', (c: Buffer) => out.push(c));
  p.stderr!.on('data', (c: Buffer) => err.push(c));
  const [code, signal] = (await once(p, 'close')) as [number | null, NodeJS.Signals | null];
  return { code, signal, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') };
}

export function spawnHearth(args: string[], env: Record<string, string> = {}, opts: { cwd?: string } = {}): ChildProcess {
  // HEARTH_TEST_NODE_ARGS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof") profiles the programs.
  const nodeArgs = (process.env.HEARTH_TEST_NODE_ARGS ?? '').split(' ').filter(Boolean);
  const p = spawn(process.execPath, [...nodeArgs, CLI, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, HEARTH_BROKER_URL: '', HEARTH_TOKEN: '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  outputOf(p);
  return p;
}

const outputs = new WeakMap<ChildProcess, { text: string }>();

/** Everything the process printed so far (stdout and stderr), kept from the first call on. */
function outputOf(p: ChildProcess): { text: string } {
  let o = outputs.get(p);
  if (!o) {
    const acc = { text: '' };
    o = acc;
    outputs.set(p, acc);
    p.stdout?.on('data', (c: Buffer) => (acc.text += c.toString()));
    p.stderr?.on('data', (c: Buffer) => (acc.text += c.toString()));
  }
  return o;
}

/** Resolves with the first match of `re` in all the process has printed (stdout or stderr). */
export function waitForOutput(p: ChildProcess, re: RegExp, ms = 30_000): Promise<RegExpMatchArray> {
  const out = outputOf(p);
  return new Promise((res, rej) => {
    const check = () => {
      const m = out.text.match(re);
      if (m) {
        cleanup();
        res(m);
      }
    };
    const onExit = () => {
      check();
      cleanup();
      rej(new Error(`process exited before printing ${re}; output:\n${out.text.slice(-3000)}`));
    };
    const t = setTimeout(() => {
      cleanup();
      rej(new Error(`timed out waiting for ${re}; output:\n${out.text.slice(-3000)}`));
    }, ms);
    const cleanup = () => {
      clearTimeout(t);
      p.stdout?.off('data', check);
      p.stderr?.off('data', check);
      p.off('exit', onExit);
    };
    p.stdout?.on('data', check);
    p.stderr?.on('data', check);
    p.on('exit', onExit);
    check();
  });
}

export async function stopProcess(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', ms = 20_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = once(p, 'exit');
  p.kill(signal);
  const t = setTimeout(() => p.kill('SIGKILL'), ms);
  await exited;
  clearTimeout(t);
}

export interface BrokerProc {
  url: string;
  port: number;
  dataDir: string;
  adminToken: string;
  proc: ChildProcess;
  log: () => string;
}

export async function startBrokerProc(dataDir: string, port = 0, extra: string[] = []): Promise<BrokerProc> {
  const proc = spawnHearth(['--data-dir', dataDir, 'broker', '--port', String(port), ...(await backendFlagsFor(dataDir)), ...extra]);
  let log = '';
  proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  const m = await waitForOutput(proc, /broker listening on (http:\/\/127\.0\.0\.1:(\d+))/);
  const adminToken = readFileSync(join(dataDir, 'admin-token'), 'utf8').trim();
  return { url: m[1]!, port: Number(m[2]), dataDir, adminToken, proc, log: () => log };
}

export interface WorkerProc {
  proc: ChildProcess;
  workDir: string;
  log: () => string;
}

export async function startWorkerProc(
  url: string,
  workerToken: string,
  workDir: string,
  extra: string[] = [],
): Promise<WorkerProc> {
  const proc = spawnHearth(['--broker', url, '--token', workerToken, 'worker', '--work-dir', workDir, '--name', 'test-worker', ...extra]);
  let log = '';
  proc.stdout!.on('data', (c: Buffer) => (log += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (log += c.toString()));
  await waitForOutput(proc, /connected to the broker/);
  return { proc, workDir, log: () => log };
}

/** A broker and one worker in separate processes, with the admin account's token for the CLI. */
export class Network {
  broker!: BrokerProc;
  worker!: WorkerProc;
  workerToken!: string;
  readonly root = tempDir('net');
  readonly dataDir = join(this.root, 'broker');

  static async start(workerArgs: string[] = ['--kill-grace', '2']): Promise<Network> {
    const n = new Network();
    mkdirSync(n.dataDir, { recursive: true });
    n.broker = await startBrokerProc(n.dataDir);
    n.workerToken = (await n.client().createToken('worker', 'test')).token;
    n.worker = await startWorkerProc(n.broker.url, n.workerToken, join(n.root, 'worker'), workerArgs);
    return n;
  }

  client(token = this.broker.adminToken): BrokerClient {
    return new BrokerClient({ url: this.broker.url, token });
  }

  /** Environment for `hearth` commands as this network's admin. */
  env(token = this.broker.adminToken): Record<string, string> {
    return { HEARTH_BROKER_URL: this.broker.url, HEARTH_TOKEN: token, HEARTH_DATA_DIR: join(this.root, 'cli') };
  }

  async restartBroker(downMs = 500): Promise<void> {
    await stopProcess(this.broker.proc);
    await new Promise((r) => setTimeout(r, downMs));
    this.broker = await startBrokerProc(this.dataDir, this.broker.port);
  }

  async stop(): Promise<void> {
    await stopProcess(this.worker.proc);
    await stopProcess(this.broker.proc);
    rmSync(this.root, { recursive: true, force: true });
  }
}

/** A workspace folder holding the given files. */
export function workspace(files: Record<string, string | Buffer>): string {
  const dir = tempDir('ws');
  for (const [rel, content] of Object.entries(files)) {
    const abs = join(dir, rel);
    mkdirSync(resolve(abs, '..'), { recursive: true });
    writeFileSync(abs, content);
  }
  return dir;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, ms = 30_000, every = 100): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined && v !== false) return v as T;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, every));
  }
}
