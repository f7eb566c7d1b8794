// The files a job leaves behind that its output globs name: found without following symlinks
// (a job could point one at anything on the host), hashed, and uploaded under the job.
import { createHash } from 'node:crypto';
import { constants, createReadStream, openSync } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { BrokerClient } from '../client/api';
import { outputMatcher } from '../shared/output-globs';
import { isSafeRelPath, type Artifact } from '../shared/protocol';

export interface OutputFile {
  /** relative to the workspace, forward slashes */
  path: string;
  abs: string;
  size: number;
}

const MAX_WALK_FILES = 200_000;
const MAX_DEPTH = 64;

/** Regular files under root (symlinks neither followed nor returned), relative paths sorted. */
export async function walkFiles(root: string): Promise<OutputFile[]> {
  const out: OutputFile[] = [];
  async function walk(dir: string, rel: string, depth: number): Promise<void> {
    if (depth > MAX_DEPTH || out.length >= MAX_WALK_FILES) return;
    let entries;
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch {
      return; // vanished or unreadable: nothing to take from it
    }
    entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    for (const e of entries) {
      const childRel = rel ? `${rel}/${e.name}` : e.name;
      const abs = join(dir, e.name);
      if (e.isDirectory()) await walk(abs, childRel, depth + 1);
      else if (e.isFile() && isSafeRelPath(childRel)) {
        try {
          const st = await lstat(abs);
          if (st.isFile()) out.push({ path: childRel, abs, size: st.size });
        } catch {
          /* gone meanwhile */
        }
      }
    }
  }
  await walk(root, '', 0);
  return out;
}

export async function findOutputs(workspace: string, globs: readonly string[]): Promise<OutputFile[]> {
  const match = outputMatcher(globs);
  if (globs.length === 0) return [];
  return (await walkFiles(workspace)).filter((f) => match(f.path));
}

/** Opens a file for reading, refusing a symlink swapped in after the walk. */
export function openNoFollow(abs: string): NodeJS.ReadableStream {
  const fd = openSync(abs, constants.O_RDONLY | constants.O_NOFOLLOW);
  return createReadStream('', { fd, highWaterMark: 1 << 20 });
}

export async function hashFile(abs: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of openNoFollow(abs) as AsyncIterable<Buffer>) {
    h.update(chunk);
    size += chunk.length;
  }
  return { sha256: h.digest('hex'), size };
}

/** Hashes the file, then uploads it under the job (retrying while the broker is unreachable). */
export async function uploadOutput(
  client: BrokerClient,
  jobId: string,
  file: OutputFile,
  opts: { deadline: number; signal?: AbortSignal },
): Promise<Artifact> {
  const { sha256, size } = await hashFile(file.abs);
  for (let attempt = 0; ; attempt++) {
    try {
      await client.putBlob(sha256, () => openNoFollow(file.abs), size, `/v1/jobs/${encodeURIComponent(jobId)}/blobs`);
      return { path: file.path, sha256, size };
    } catch (err) {
      const status = (err as { status?: number }).status ?? 0;
      const retryable = status === 0 || status >= 500 || status === 429;
      if (!retryable || Date.now() >= opts.deadline || opts.signal?.aborted) throw err;
      await new Promise((r) => setTimeout(r, Math.min(5000, 250 * 2 ** Math.min(attempt, 5))));
    }
  }
}
