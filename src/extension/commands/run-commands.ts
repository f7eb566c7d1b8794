import * as vscode from 'vscode';
import { runLayout, submitRun } from '../../client/submit-run';
import { PullConflictError, pullArtifacts, type PulledFile } from '../../client/pull';
import { isNotebookEntry, isTerminal, type Job } from '../../shared/protocol';
import type { HearthServices } from '../hearth-services';
import { errorMessage } from '../services/errors';
import { formatBytes, isLocalBroker } from '../views/format';
import { jobIdOf, pickJob, pickLease } from './args';
import { CommandId } from './command-ids';
import { runLogUri } from './run-log-document';
import { DEFAULT_LINE_LIMIT } from '../kernel/kernel-controllers';
import { mirrorNotebookRun } from './notebook-run-mirror';

/** Options of Run Current File for callers that know them (tests, other extensions). */
export interface RunOptions {
  leaseId?: string;
  args?: string[];
  env?: Record<string, string>;
  /** do not open the run panel (tests that only need the job) */
  noPanel?: boolean;
}

const RUNNABLE = /\.(py|ipynb)$/i;

function activeFileUri(): vscode.Uri | undefined {
  return vscode.window.activeNotebookEditor?.notebook.uri ?? vscode.window.activeTextEditor?.document.uri;
}

async function saveIfDirty(uri: vscode.Uri): Promise<void> {
  const text = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (text?.isDirty) await text.save();
  const nb = vscode.workspace.notebookDocuments.find((d) => d.uri.toString() === uri.toString());
  if (nb?.isDirty) await nb.save();
}

/**
 * The lease to run on: the given one, the only one, one the person picks, or a new one, which is
 * the run's own (`own`): the broker releases it when the run ends, as `hearth run` does.
 */
async function chooseLease(s: HearthServices, leaseId: string | undefined): Promise<{ id: string; own: boolean } | undefined> {
  if (leaseId) return { id: leaseId, own: false };
  const snap = await s.state.refresh();
  if (!snap.connected) {
    // a local network is only the answer when the broker is meant to be this machine's
    const local = isLocalBroker(snap.url);
    const choice = await vscode.window.showWarningMessage(
      snap.unreachable ? `Hearth: broker unreachable — retrying (${snap.error ?? snap.url}).` : `Hearth: not connected to a broker (${snap.error ?? 'none configured'}).`,
      'Connect to Broker…',
      ...(local ? ['Start Local Network'] : []),
    );
    if (choice === 'Connect to Broker…') void vscode.commands.executeCommand(CommandId.connect);
    if (choice === 'Start Local Network') void vscode.commands.executeCommand(CommandId.startLocalNetwork);
    return undefined;
  }
  if (snap.leases.length === 0) {
    const choice = await vscode.window.showInformationMessage(
      'Hearth: you hold no GPU lease. Lease one for this run? The price shows before you confirm, and the lease is released when the run ends.',
      'Lease GPU…',
    );
    if (choice !== 'Lease GPU…') return undefined;
    const lease = await vscode.commands.executeCommand<{ id: string } | undefined>(CommandId.leaseGpu);
    return lease && { id: lease.id, own: true };
  }
  const id = await pickLease(snap.leases, 'Run on which lease?');
  return id === undefined ? undefined : { id, own: false };
}

export async function runCurrentFile(s: HearthServices, uriArg?: unknown, optsArg?: unknown): Promise<string | undefined> {
  const opts = (typeof optsArg === 'object' && optsArg !== null ? optsArg : {}) as RunOptions;
  const uri = uriArg instanceof vscode.Uri ? uriArg : activeFileUri();
  if (!uri || uri.scheme !== 'file' || !RUNNABLE.test(uri.path)) {
    void vscode.window.showWarningMessage('Hearth: open a Python file (.py) or a notebook (.ipynb) to run it on a remote GPU.');
    return undefined;
  }
  const folder = vscode.workspace.getWorkspaceFolder(uri);
  if (!folder) {
    void vscode.window.showWarningMessage('Hearth: the file must be inside an open workspace folder; that folder is what gets uploaded.');
    return undefined;
  }
  await saveIfDirty(uri);
  const chosen = await chooseLease(s, opts.leaseId);
  if (!chosen) return undefined;
  const leaseId = chosen.id;
  const client = await s.getClient();
  // The project the file belongs to, inside the workspace folder, as `hearth run` finds it.
  const { root, entry } = runLayout(uri.fsPath, { within: folder.uri.fsPath });

  // A notebook runs as a notebook: every cell in order on a fresh kernel, magics and all, and the
  // executed notebook comes back as an artifact at its own path. Submitted as the CLI does.
  const cfg = s.config.current;
  const { job } = await vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Hearth: uploading ${folder.name}`, cancellable: true },
    async (progress, token) => {
      const ac = new AbortController();
      const sub = token.onCancellationRequested(() => ac.abort());
      let lastPct = 0;
      try {
        const run = await submitRun(client, {
          root,
          entry,
          leaseId,
          args: opts.args ?? [],
          env: opts.env ?? {},
          outputs: cfg.outputs,
          logdir: cfg.logdir,
          releaseLease: chosen.own,
          ...(cfg.requirementsFile ? { requirements: cfg.requirementsFile } : {}),
          signal: ac.signal,
          onProgress: (p) => {
            if (p.phase === 'scan') return progress.report({ message: 'hashing files…' });
            const pct = p.totalBytes > 0 ? (100 * p.doneBytes) / p.totalBytes : 100;
            progress.report({ message: `${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)} (${p.files} new files)`, increment: pct - lastPct });
            lastPct = pct;
          },
        });
        s.log.info(`uploaded ${run.upload.uploadedFiles} of ${run.upload.files} files (${formatBytes(run.upload.uploadedBytes)} of ${formatBytes(run.upload.bytes)}) from ${root}`);
        return run;
      } catch (err) {
        // A lease taken for a run that never got submitted ends here (the broker ends it after the run otherwise).
        if (chosen.own) await client.releaseLease(leaseId).catch((e: Error) => s.log.warn(`could not release ${leaseId}: ${e.message}`));
        throw err;
      } finally {
        sub.dispose();
      }
    },
  );
  s.log.info(`submitted ${job.id}: ${entry} on lease ${leaseId}${chosen.own ? ', leased for this run: the broker releases it when the run ends' : ''}`);
  // The notebook open in the editor shows each cell's outputs as the run produces them.
  if (isNotebookEntry(entry) && vscode.workspace.notebookDocuments.some((d) => d.uri.toString() === uri.toString())) {
    const limit = vscode.workspace.getConfiguration('hearth').get<number>('outputLineLimit', DEFAULT_LINE_LIMIT);
    s.context.subscriptions.push(mirrorNotebookRun(client, job.id, uri, limit, (err) => s.log.warn(`notebook run ${job.id}: cannot show its outputs in the notebook: ${err.message}`)));
  }
  await s.rememberJobFolder(job.id, vscode.Uri.file(root));
  void s.state.refresh();
  if (!opts.noPanel) s.openPanel(job.id);
  return job.id;
}

async function jobArg(s: HearthServices, arg: unknown, placeHolder: string, which: (j: Job) => boolean): Promise<string | undefined> {
  return jobIdOf(arg) ?? (await pickJob((await s.state.refresh()).jobs.filter(which), placeHolder));
}

export async function cancelRun(s: HearthServices, arg?: unknown): Promise<Job | undefined> {
  const id = await jobArg(s, arg, 'Which run to cancel?', (j) => !isTerminal(j.status));
  if (!id) return undefined;
  const job = await (await s.getClient()).cancelJob(id);
  s.log.info(`cancel requested for ${id}: now ${job.status}`);
  void s.state.refresh();
  return job;
}

/** Where a job's weights go: `<its workspace folder>/.hearth/runs/<jobId>/`. */
export function pullDestination(s: HearthServices, jobId: string): vscode.Uri {
  const folder = s.jobFolder(jobId) ?? vscode.workspace.workspaceFolders?.[0]?.uri ?? s.context.globalStorageUri;
  return vscode.Uri.joinPath(folder, '.hearth', 'runs', jobId);
}

export interface PullOptions {
  /** reveal the files in the Explorer afterwards (default true) */
  reveal?: boolean;
}

export async function pullWeights(s: HearthServices, arg?: unknown, optsArg?: unknown): Promise<string[] | undefined> {
  const opts = (typeof optsArg === 'object' && optsArg !== null ? optsArg : {}) as PullOptions;
  const id = await jobArg(s, arg, 'Pull the weights of which run?', (j) => isTerminal(j.status));
  if (!id) return undefined;
  const client = await s.getClient();
  const dest = pullDestination(s, id);
  const pull = (force: boolean) => vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: `Hearth: pulling weights of ${id}`, cancellable: true },
    async (progress, token): Promise<PulledFile[]> => {
      const ac = new AbortController();
      const sub = token.onCancellationRequested(() => ac.abort());
      let lastPct = 0;
      try {
        return await pullArtifacts(client, id, dest.fsPath, {
          force,
          signal: ac.signal,
          onProgress: (p) => {
            const pct = p.totalBytes > 0 ? (100 * p.doneBytes) / p.totalBytes : 100;
            progress.report({
              message: `${p.file || 'done'} — ${formatBytes(p.doneBytes)} of ${formatBytes(p.totalBytes)}`,
              increment: pct - lastPct,
            });
            lastPct = pct;
          },
        });
      } finally {
        sub.dispose();
      }
    },
  );
  let pulled: PulledFile[];
  try {
    pulled = await pull(false);
  } catch (err) {
    if (!(err instanceof PullConflictError)) throw err;
    // Never replace the person's own files without asking.
    const ok = await vscode.window.showWarningMessage(err.message, { modal: true }, 'Overwrite');
    if (ok !== 'Overwrite') return undefined;
    pulled = await pull(true);
  }
  const bytes = pulled.reduce((n, f) => n + f.artifact.size, 0);
  s.log.info(`pulled ${pulled.length} files (${formatBytes(bytes)}) of ${id} into ${dest.fsPath}`);
  if (pulled.length === 0) {
    void vscode.window.showInformationMessage(`Hearth: run ${id} left no artifacts matching hearth.outputs.`);
  } else if (opts.reveal !== false) {
    const first = vscode.Uri.file(pulled[0]!.absPath);
    if (vscode.workspace.getWorkspaceFolder(first)) await vscode.commands.executeCommand('revealInExplorer', first);
    void vscode.window
      .showInformationMessage(`Hearth: pulled ${pulled.length} file(s), ${formatBytes(bytes)}, into ${vscode.workspace.asRelativePath(dest)}.`, 'Open File')
      .then((c) => {
        // vscode.open works in a browser VS Code too, where revealFileInOS has no OS to reveal in.
        if (c === 'Open File') void vscode.commands.executeCommand('vscode.open', first);
      });
  }
  return pulled.map((f) => f.absPath);
}

export async function openRunPanel(s: HearthServices, arg?: unknown): Promise<string | undefined> {
  const id = await jobArg(s, arg, 'Open the panel of which run?', () => true);
  if (!id) return undefined;
  s.openPanel(id);
  return id;
}

export async function showRunLog(s: HearthServices, arg?: unknown): Promise<vscode.TextDocument | undefined> {
  const id = await jobArg(s, arg, 'Show the log of which run?', () => true);
  if (!id) return undefined;
  const job = s.state.current.jobs.find((j) => j.id === id) ?? (await (await s.getClient()).job(id));
  const doc = await vscode.workspace.openTextDocument(runLogUri(id, job.entry));
  await vscode.window.showTextDocument(doc, { preview: false });
  return doc;
}

/**
 * Tells the person when a run they started ends, and pulls its weights when hearth.autoPull is
 * on. Watches the state poll, so it needs no stream of its own.
 */
export class RunWatcher implements vscode.Disposable {
  // Kept in workspaceState, so a run started before a window reload is still pulled when it ends.
  private static readonly KEY = 'hearth.watchedJobs';
  private readonly watched: Set<string>;
  private readonly sub: vscode.Disposable;

  constructor(private readonly s: HearthServices) {
    this.watched = new Set(s.context.workspaceState.get<string[]>(RunWatcher.KEY) ?? []);
    this.sub = s.state.onDidChange((snap) => {
      if (!snap.connected) return;
      let changed = false;
      for (const job of snap.jobs) {
        if (!this.watched.has(job.id) || !isTerminal(job.status)) continue;
        this.watched.delete(job.id);
        changed = true;
        void this.ended(job);
      }
      if (changed) void this.save();
    });
  }

  watch(jobId: string): void {
    this.watched.add(jobId);
    void this.save();
  }

  private save(): Thenable<void> {
    return this.s.context.workspaceState.update(RunWatcher.KEY, [...this.watched].slice(-200));
  }

  private async ended(job: Job): Promise<void> {
    const what = `Hearth: ${job.entry} ${job.status}${job.exitCode !== null && job.exitCode !== 0 ? ` (exit ${job.exitCode})` : ''}.`;
    if (this.s.config.current.autoPull && job.status !== 'cancelled') {
      try {
        await pullWeights(this.s, job.id);
      } catch (err) {
        this.s.log.error(`auto-pull of ${job.id} failed: ${errorMessage(err)}`);
        void vscode.window.showWarningMessage(`${what} Pulling its weights failed: ${errorMessage(err)}`);
      }
      return;
    }
    const actions = job.status === 'succeeded' ? ['Pull Weights', 'Show Log'] : ['Show Log'];
    const show = job.status === 'succeeded' ? vscode.window.showInformationMessage : vscode.window.showWarningMessage;
    const choice = await show(what, ...actions);
    if (choice === 'Pull Weights') void vscode.commands.executeCommand(CommandId.pullWeights, job.id);
    if (choice === 'Show Log') void vscode.commands.executeCommand(CommandId.showRunLog, job.id);
  }

  dispose(): void {
    this.sub.dispose();
  }
}

export function runCommandHandlers(s: HearthServices, watcher: RunWatcher): Record<string, (...args: unknown[]) => unknown> {
  return {
    [CommandId.runCurrentFile]: async (uri, opts) => {
      const id = await runCurrentFile(s, uri, opts);
      if (id) watcher.watch(id);
      return id;
    },
    [CommandId.cancelRun]: (arg) => cancelRun(s, arg),
    [CommandId.pullWeights]: (arg, opts) => pullWeights(s, arg, opts),
    [CommandId.openRunPanel]: (arg) => openRunPanel(s, arg),
    [CommandId.showRunLog]: (arg) => showRunLog(s, arg),
  };
}
