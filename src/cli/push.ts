// `hearth push JOB --repo OWNER/NAME`: a run's artifacts and a generated model card to the
// Hugging Face Hub. The Hub token comes from --hub-token-file, else HF_TOKEN, else a hidden
// prompt; the broker never returns secret values, so a secret named HF_TOKEN reaches jobs only.
import type { Command } from 'commander';
import { readFileSync, statSync } from 'node:fs';
import { checkHubToken, HUB_REPO_RE, HubPushError, pushRun } from '../client/hub-push';
import { Id } from '../shared/protocol';
import { workerWords } from '../shared/terminal-text';
import { clientFor, flag, globals, UsageError } from './context';
import { printJson } from './output';
import { promptHidden } from './prompt';

function hubToken(file: string | undefined): string {
  if (file !== undefined) {
    let st;
    try {
      st = statSync(file);
    } catch (err) {
      throw new UsageError(`--hub-token-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    if ((st.mode & 0o077) !== 0) throw new UsageError(`--hub-token-file ${file} is readable or writable by others; run: chmod 600 ${file}`);
    return readFileSync(file, 'utf8').trim();
  }
  return process.env.HF_TOKEN?.trim() ?? '';
}

export function registerPushCommand(program: Command): void {
  program
    .command('push')
    .description('push a run\'s artifacts and a generated model card to a Hugging Face Hub repository')
    .argument('<job>', 'the run')
    .requiredOption('--repo <owner/name>', 'the Hub repository (created when missing)')
    .option('--private', 'create the repository private')
    .option('--revision <branch>', 'the branch to commit to (made when missing)', 'main')
    .option('--hub-url <url>', 'the Hub (else HF_ENDPOINT, else https://huggingface.co)')
    .option('--hub-token-file <file>', 'read the Hub token from this file (mode 0600); else HF_TOKEN, else a prompt')
    .action(async (job: string, o: { repo: string; private?: boolean; revision: string; hubUrl?: string; hubTokenFile?: string }, cmd: Command) => {
      const jobId = flag('job', Id, job);
      if (!HUB_REPO_RE.test(o.repo)) throw new UsageError(`--repo must be OWNER/NAME, e.g. my-name/my-model (got ${JSON.stringify(o.repo)})`);
      const client = clientFor(cmd);
      let token = hubToken(o.hubTokenFile);
      if (!token) {
        if (!process.stdin.isTTY) throw new UsageError('no Hub token: set HF_TOKEN or pass --hub-token-file FILE');
        token = await promptHidden('Hugging Face token (write access; not shown): ');
      }
      try {
        token = checkHubToken(token);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      try {
        const r = await pushRun(client, {
          jobId,
          repo: o.repo,
          hubToken: token,
          hubUrl: o.hubUrl,
          private: o.private,
          revision: o.revision,
          onProgress: (m) => process.stderr.write(`hearth: ${workerWords(m)}\n`),
        });
        if (globals(cmd).json) return printJson(r);
        process.stdout.write(`${r.commitUrl ?? r.repoUrl}\n`);
        process.stderr.write(`hearth: pushed ${r.files.length} file(s) to ${r.repoUrl}\n`);
      } catch (err) {
        // The Hub's refusal (a bad token, no access) in words, without a stack.
        if (err instanceof HubPushError) throw new Error(err.message);
        throw err;
      }
    });
}
