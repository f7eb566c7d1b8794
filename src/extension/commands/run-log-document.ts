import * as vscode from 'vscode';
import { isTerminal } from '../../shared/protocol';
import type { HearthServices } from '../hearth-services';
import { plainLog } from '../views/format';

export const RUN_LOG_SCHEME = 'hearth-log';

export function runLogUri(jobId: string, entry: string): vscode.Uri {
  const name = entry.split('/').pop() ?? 'run';
  return vscode.Uri.from({ scheme: RUN_LOG_SCHEME, path: `/${jobId}/${name}.log` });
}

/**
 * The log of a run as a read-only text document (Show Log): the whole output, searchable and
 * copyable with the editor's own tools. Refreshed while the run is live.
 */
export class RunLogDocuments implements vscode.TextDocumentContentProvider, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly live = new Set<string>();
  private readonly sub: vscode.Disposable;

  constructor(private readonly s: HearthServices) {
    this.sub = s.state.onDidChange((snap) => {
      for (const doc of vscode.workspace.textDocuments) {
        if (doc.uri.scheme !== RUN_LOG_SCHEME) continue;
        const jobId = doc.uri.path.split('/')[1] ?? '';
        const job = snap.jobs.find((j) => j.id === jobId);
        // Refresh live runs, and once more when a run we saw live has ended.
        if (job && (!isTerminal(job.status) || this.live.has(jobId))) this.emitter.fire(doc.uri);
      }
    });
  }

  async provideTextDocumentContent(uri: vscode.Uri, token: vscode.CancellationToken): Promise<string> {
    const jobId = uri.path.split('/')[1] ?? '';
    const client = await this.s.getClient();
    const ac = new AbortController();
    const cancel = token.onCancellationRequested(() => ac.abort());
    try {
      let out = '';
      let status = '';
      for await (const ev of client.events(jobId, { from: 0, follow: false, signal: ac.signal })) {
        const b = ev.body;
        if (b.type === 'log') out += b.data;
        // A kernel session's log: what its cells printed, whole (a cell shows only its last lines).
        else if (b.type === 'kernel' && b.msgType === 'stream') out += String(b.content.text ?? '');
        else if (b.type === 'kernel' && b.msgType === 'error' && Array.isArray(b.content.traceback)) out += `${b.content.traceback.map(String).join('\n')}\n`;
        else if (b.type === 'notice') out += `\n[hearth ${b.level}] ${b.message}\n`;
        else if (b.type === 'status') status = b.status;
      }
      const job = await client.job(jobId);
      if (isTerminal(job.status)) this.live.delete(jobId);
      else this.live.add(jobId);
      const footer = isTerminal(job.status)
        ? `\n[hearth] run ${job.status}${job.exitCode !== null ? ` (exit ${job.exitCode})` : ''}${job.reason ? `: ${job.reason}` : ''}\n`
        : `\n[hearth] run ${status || job.status}…\n`;
      return plainLog(out) + footer;
    } finally {
      cancel.dispose();
    }
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}
