// A secret's file sitting beside the script is uploaded with the project unless something leaves
// it out: `hearth run` says so, for files that hold a secret this CLI stored, and for files whose
// names secrets usually have. The digests are sha256 of each value, kept 0600 in the data dir
// (the token beside them is worth more), so the CLI can recognise a value without keeping it.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import picomatch from 'picomatch';
import { z } from 'zod';
import { writePrivateFile } from '../client/config';
import type { SubmittedRun } from '../client/submit-run';

const Digests = z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/));
const digestFile = (dataDir: string) => join(dataDir, 'secret-digests.json');
const sha256 = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');

/** File names that usually hold secrets: `.env` files, keys and certificates' private halves, tokens. */
const SECRET_NAMES = picomatch(['.env', '.env.*', '*.pem', '*.key', 'id_rsa*', 'id_ed25519*', '*token*', '*secret*', '.netrc', 'credentials*', '*.p12'], { nocase: true, dot: true });

/** The largest file compared with the stored values (a secret is at most 64 KiB). */
const MAX_SECRET_BYTES = 64 * 1024 + 2;

function loadDigests(dataDir: string): Record<string, string> {
  try {
    const r = Digests.safeParse(JSON.parse(readFileSync(digestFile(dataDir), 'utf8')));
    return r.success ? r.data : {};
  } catch {
    return {};
  }
}

export function rememberSecret(dataDir: string, name: string, value: string | undefined): void {
  const d = loadDigests(dataDir);
  if (value === undefined) delete d[name];
  else d[name] = sha256(value);
  try {
    mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    writePrivateFile(digestFile(dataDir), JSON.stringify(d, null, 2) + '\n');
  } catch {
    /* a data dir we cannot write only loses the warning */
  }
}

/** What a secret-looking file in the upload deserves: a warning each, with how to leave it out. */
export function secretFileWarnings(run: Pick<SubmittedRun, 'root' | 'files'>, dataDir: string): string {
  const byDigest = new Map(Object.entries(loadDigests(dataDir)).map(([n, h]) => [h, n]));
  const lines: string[] = [];
  for (const f of run.files) {
    let holds: string | undefined;
    if (byDigest.size && f.size <= MAX_SECRET_BYTES) {
      try {
        // Compared as `hearth secret set NAME < FILE` reads it: less one trailing newline.
        const text = readFileSync(join(run.root, f.path)).toString('utf8').replace(/\r?\n$/, '');
        holds = byDigest.get(sha256(text));
      } catch {
        /* gone since the upload: nothing to say */
      }
    }
    if (holds) lines.push(`hearth: warning: uploaded ${f.path}, which holds your secret ${holds}; jobs get it as $${holds} without it`);
    else if (SECRET_NAMES(basename(f.path))) lines.push(`hearth: warning: uploaded ${f.path}, whose name says it may hold a secret`);
  }
  if (!lines.length) return '';
  return `${lines.join('\n')}\nhearth: list such files in ${join(run.root, '.hearthignore')} (as in .gitignore) to keep them off the broker; store secrets with \`hearth secret set NAME\`\n`;
}
