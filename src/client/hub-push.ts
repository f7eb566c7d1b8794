// Pushes a run's artifacts, with a generated model card, to a Hugging Face Hub repository through
// @huggingface/hub: createRepo, then one commit (uploadFiles) whose large files go the way the
// library sends them (preupload says which are LFS; LFS batch; then a PUT of the bytes, or Xet
// where the Hub offers it). The CLI and the extension both call pushRun.
import { commit, createBranch, createRepo, HubApiError } from '@huggingface/hub';
import { openAsBlob } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeScalar, isTerminal, type Artifact, type Job, type ScalarValue } from '../shared/protocol';
import type { BrokerClient } from './api';
import { pullArtifacts } from './pull';

export const DEFAULT_HUB_URL = 'https://huggingface.co';

/** A Hub repository id: owner/name, as the Hub allows them. */
export const HUB_REPO_RE = /^[A-Za-z0-9][\w.-]{0,95}\/[A-Za-z0-9][\w.-]{0,95}$/;

/** Something the person can fix (a token, a repository name, a run with nothing to push). */
export class HubPushError extends Error {}

export interface PushOptions {
  jobId: string;
  /** OWNER/NAME */
  repo: string;
  hubToken: string;
  /** the Hub to push to; default HF_ENDPOINT, else https://huggingface.co */
  hubUrl?: string | undefined;
  private?: boolean | undefined;
  /** a branch (made from main when missing); default main */
  revision?: string | undefined;
  onProgress?: (message: string) => void;
  signal?: AbortSignal;
}

export interface PushResult {
  repoUrl: string;
  commitUrl: string | undefined;
  files: string[];
}

export function hubUrlFrom(flagUrl: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const u = (flagUrl || env.HF_ENDPOINT || DEFAULT_HUB_URL).replace(/\/+$/, '');
  if (!/^https?:\/\//.test(u)) throw new HubPushError(`--hub-url must be an http(s) URL (got ${JSON.stringify(u)})`);
  return u;
}

export function checkHubToken(token: string): string {
  const t = token.trim();
  if (!/^hf_[A-Za-z0-9]{6,}$/.test(t)) throw new HubPushError('that is not a Hugging Face token: they start with hf_ (make one at https://huggingface.co/settings/tokens, with write access)');
  return t;
}

export interface ModelCardFacts {
  job: Job;
  /** the device the run had: a GPU model, or the worker's CPU */
  hardware: string;
  artifacts: Artifact[];
  /** the last value of each scalar: run ('.' for the logdir itself) → tag → value */
  finalScalars: Map<string, Map<string, ScalarValue>>;
}

/**
 * The README.md of the pushed repository. Only what describes the run: the entry script (a path
 * relative to the project), the device, the time it took, the last value of each scalar and the
 * files; never the renter's or the provider's names, paths, ids or tokens.
 */
export function modelCard(repo: string, f: ModelCardFacts): string {
  const name = repo.split('/')[1] ?? repo;
  const dur = f.job.startedAt !== null && f.job.endedAt !== null ? formatDuration(f.job.endedAt - f.job.startedAt) : 'unknown';
  const lines = [
    '---',
    'tags:',
    '- hearth',
    '---',
    '',
    `# ${name}`,
    '',
    'Trained on a remote GPU with Hearth, which wrote this card from the run.',
    '',
    '| | |',
    '|---|---|',
    `| Entry script | \`${mdCode(f.job.entry)}\` |`,
    `| Hardware | ${mdCell(f.hardware)} |`,
    `| Duration | ${dur} |`,
    `| Outcome | ${f.job.status}${f.job.exitCode !== null ? ` (exit code ${f.job.exitCode})` : ''} |`,
    '',
  ];
  const rows: string[] = [];
  for (const [run, tags] of [...f.finalScalars].sort(([a], [b]) => a.localeCompare(b))) {
    for (const [tag, v] of [...tags].sort(([a], [b]) => a.localeCompare(b))) {
      rows.push(`| ${mdCell(run === '.' ? tag : `${run}/${tag}`)} | ${formatScalar(v)} |`);
    }
  }
  if (rows.length) lines.push('## Final values', '', '| Scalar | Value |', '|---|---|', ...rows, '');
  lines.push('## Files', '', '| File | Size |', '|---|---|', ...f.artifacts.map((a) => `| \`${mdCode(a.path)}\` | ${formatBytes(a.size)} |`), '');
  return lines.join('\n');
}

/** The last point of each (run, tag) by step (the later event wins a tie), from the job's log. */
export async function finalScalars(client: BrokerClient, jobId: string, signal?: AbortSignal): Promise<Map<string, Map<string, ScalarValue>>> {
  const last = new Map<string, Map<string, { step: number; value: ScalarValue }>>();
  for await (const e of client.events(jobId, { follow: false, signal })) {
    if (e.body.type !== 'scalars') continue;
    for (const p of e.body.points) {
      let run = last.get(p.run);
      if (!run) last.set(p.run, (run = new Map()));
      const had = run.get(p.tag);
      if (!had || p.step >= had.step) run.set(p.tag, { step: p.step, value: p.value });
    }
  }
  return new Map([...last].map(([run, tags]) => [run, new Map([...tags].map(([t, v]) => [t, v.value]))]));
}

export async function pushRun(client: BrokerClient, o: PushOptions): Promise<PushResult> {
  if (!HUB_REPO_RE.test(o.repo)) throw new HubPushError(`--repo must be OWNER/NAME, e.g. my-name/my-model (got ${JSON.stringify(o.repo)})`);
  const accessToken = checkHubToken(o.hubToken);
  const hubUrl = hubUrlFrom(o.hubUrl);
  const say = o.onProgress ?? (() => {});
  const job = await client.job(o.jobId);
  if (!isTerminal(job.status)) throw new HubPushError(`${job.id} is ${job.status}; push it once it has ended`);
  const artifacts = await client.artifacts(job.id);
  if (!artifacts.length) throw new HubPushError(`${job.id} has no artifacts to push (its outputs matched no file)`);
  const lease = await client.lease(job.leaseId).catch(() => undefined);
  const hardware = lease ? `${lease.count > 1 ? `${lease.count}× ` : ''}${lease.gpuModel}` : 'unknown';

  const dir = await mkdtemp(join(tmpdir(), 'hearth-push-'));
  try {
    say(`downloading ${artifacts.length} artifact(s) of ${job.id}`);
    await pullArtifacts(client, job.id, dir, { artifacts, signal: o.signal });
    const card = modelCard(o.repo, { job, hardware, artifacts, finalScalars: await finalScalars(client, job.id, o.signal) });
    const ownCard = artifacts.some((a) => a.path === 'README.md');
    const files = [...artifacts.map((a) => a.path), ...(ownCard ? [] : ['README.md'])];
    const repo = { type: 'model' as const, name: o.repo };

    say(`creating ${o.repo} on ${hubUrl}`);
    let repoUrl = `${hubUrl}/${o.repo}`;
    try {
      repoUrl = (await createRepo({ repo, accessToken, hubUrl, ...(o.private !== undefined ? { private: o.private } : {}) })).repoUrl || repoUrl;
    } catch (err) {
      // Pushing a new revision of one's own repository is the usual case.
      if (!(err instanceof HubApiError && err.statusCode === 409)) throw hubError(err, o.repo, hubUrl);
    }
    const branch = o.revision ?? 'main';
    if (branch !== 'main') {
      try {
        await createBranch({ repo, branch, accessToken, hubUrl });
      } catch (err) {
        if (!(err instanceof HubApiError && err.statusCode === 409)) throw hubError(err, o.repo, hubUrl);
      }
    }
    say(`uploading ${files.length} file(s) to ${o.repo}${branch !== 'main' ? ` (${branch})` : ''}`);
    const operations = [
      ...(await Promise.all(artifacts.map(async (a) => ({ operation: 'addOrUpdate' as const, path: a.path, content: await openAsBlob(join(dir, a.path)) })))),
      ...(ownCard ? [] : [{ operation: 'addOrUpdate' as const, path: 'README.md', content: new Blob([card]) }]),
    ];
    let out;
    try {
      out = await commit({
        repo,
        accessToken,
        hubUrl,
        branch,
        title: `Upload ${job.entry} run (${artifacts.length} file${artifacts.length === 1 ? '' : 's'}) with Hearth`,
        operations,
        ...(o.signal ? { abortSignal: o.signal } : {}),
      });
    } catch (err) {
      throw hubError(err, o.repo, hubUrl);
    }
    return { repoUrl, commitUrl: out?.commit.url, files };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** The Hub's refusal in words a person acts on. */
function hubError(err: unknown, repo: string, hubUrl: string): Error {
  if (!(err instanceof HubApiError)) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    return new HubPushError(`cannot reach the Hub at ${hubUrl}: ${cause ?? (err as Error).message}`);
  }
  const detail = err.message.replace(/\.? ?URL: .*$/s, '');
  if (err.statusCode === 401) return new HubPushError(`the Hub at ${hubUrl} refused the token (401: ${detail}); check HF_TOKEN or make a new token with write access`);
  if (err.statusCode === 403) return new HubPushError(`the token may not write to ${repo} (403: ${detail}); it needs write access to that namespace`);
  return new HubPushError(`the Hub refused the push to ${repo} (${err.statusCode}: ${detail})`);
}

function formatScalar(v: ScalarValue): string {
  const n = decodeScalar(v);
  return Number.isFinite(n) ? String(Number(n.toPrecision(6))) : String(v);
}

function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h ? `${h} h ${m} min` : m ? `${m} min ${s % 60} s` : `${s} s`;
}

function formatBytes(n: number): string {
  const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < u.length - 1) {
    n /= 1024;
    i++;
  }
  return `${n.toFixed(i ? 1 : 0)} ${u[i]}`;
}

const mdCell = (s: string) => s.replace(/[|\r\n]/g, ' ');
const mdCode = (s: string) => mdCell(s).replace(/`/g, "'");
