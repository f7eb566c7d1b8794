// The run panel: one webview per job showing its live log, scalar charts and GPU telemetry.
// The extension follows the job's event log (JobFeed) and hands the webview, after its 'ready',
// every event after the seq it says it holds, in batches of about 50 ms. The webview is not
// kept alive when hidden; it is rebuilt from the feed when shown again, and after a window reload
// the serializer reopens it from the job id in its saved state.
import { randomBytes } from 'node:crypto';
import * as vscode from 'vscode';
import type { BrokerClient } from '../../client/api';
import {
  jobIdInPanelTitle,
  PanelOptions,
  panelTitle,
  PanelViewState,
  WebviewToHost,
  type ConnectionState,
  type HostToWebview,
  type PanelDrawState,
} from '../../shared/panel-protocol';
import type { Job, JobEvent } from '../../shared/protocol';
import { CommandId } from '../commands/command-ids';
import { jobFeed, type JobFeed } from './job-feed';

export interface RunPanelDeps {
  getClient(): Promise<BrokerClient>;
  log: vscode.LogOutputChannel;
  /** the workspace folder a job was run from, when this window ran it */
  jobFolder(jobId: string): vscode.Uri | undefined;
  /** where Pull Weights writes a job's artifacts */
  pullDestination(jobId: string): vscode.Uri;
}

/** What a panel has shown, as its webview last reported it; for tests and commands. */
export interface PanelState extends PanelDrawState {
  jobId: string;
  /** the webview has said 'ready' since it was last (re)loaded */
  ready: boolean;
  visible: boolean;
  /** the last seq the extension has received from the broker */
  feedLastSeq: number;
  connection: ConnectionState;
}

/** How long events gather before they go to the webview together. */
const BATCH_MS = 50;
/** Caps on one message, so a replay of a long log goes over in pieces the webview can chew. */
const MAX_BATCH_EVENTS = 2000;
const MAX_BATCH_BYTES = 8 * 1024 * 1024;

export class RunPanel implements vscode.Disposable {
  static readonly viewType = 'hearth.runPanel';
  private static readonly panels = new Map<string, RunPanel>();

  private readonly disposables: vscode.Disposable[] = [];
  private readonly feed: JobFeed;
  private ready = false;
  /** the highest seq the webview holds or has been sent since its last 'ready' */
  private sentSeq = 0;
  /** bumped by every 'ready': a batch in flight for an older webview must not move sentSeq */
  private generation = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private flushing = false;
  private drawState: PanelDrawState = { logBytes: 0, series: {}, lastSeq: 0 };
  private disposed = false;

  static createOrShow(ctx: vscode.ExtensionContext, deps: RunPanelDeps, jobId: string): RunPanel {
    const existing = RunPanel.panels.get(jobId);
    if (existing) {
      existing.panel.reveal();
      return existing;
    }
    const panel = vscode.window.createWebviewPanel(RunPanel.viewType, panelTitle(jobId), vscode.ViewColumn.Active, RunPanel.webviewOptions(ctx));
    return new RunPanel(panel, ctx, deps, jobId);
  }

  /** Reopens the panels that were open before a window reload. */
  static registerSerializer(ctx: vscode.ExtensionContext, deps: RunPanelDeps): vscode.Disposable {
    return vscode.window.registerWebviewPanelSerializer(RunPanel.viewType, {
      deserializeWebviewPanel: async (panel: vscode.WebviewPanel, state: unknown) => {
        // VS Code may restore a panel without the state its webview saved (seen in code-server
        // after F5 with the panel in front): the title ("train.py · job_…") still names the job
        const jobId = PanelViewState.safeParse(state).data?.jobId ?? jobIdInPanelTitle(panel.title);
        deps.log.info(`restoring the run panel of ${jobId ?? '(no job id)'}${state === undefined ? ' (no saved state)' : ''}`);
        if (jobId === undefined || RunPanel.panels.has(jobId)) {
          // nothing to restore (or the job is already shown elsewhere): do not leave a blank tab
          panel.dispose();
          return;
        }
        panel.webview.options = RunPanel.webviewOptions(ctx);
        new RunPanel(panel, ctx, deps, jobId);
      },
    });
  }

  static state(jobId: string): PanelState | undefined {
    const p = RunPanel.panels.get(jobId);
    if (!p) return undefined;
    return {
      ...p.drawState,
      jobId,
      ready: p.ready,
      visible: p.panel.visible,
      feedLastSeq: p.feed.lastSeq,
      connection: p.feed.connection,
    };
  }

  private static webviewOptions(ctx: vscode.ExtensionContext): vscode.WebviewPanelOptions & vscode.WebviewOptions {
    return {
      enableScripts: true,
      enableFindWidget: false,
      retainContextWhenHidden: false,
      localResourceRoots: [vscode.Uri.joinPath(ctx.extensionUri, 'media'), vscode.Uri.joinPath(ctx.extensionUri, 'dist', 'webview')],
    };
  }

  private constructor(
    readonly panel: vscode.WebviewPanel,
    private readonly ctx: vscode.ExtensionContext,
    private readonly deps: RunPanelDeps,
    readonly jobId: string,
  ) {
    RunPanel.panels.set(jobId, this);
    this.feed = jobFeed(jobId, deps);
    panel.iconPath = {
      light: vscode.Uri.joinPath(ctx.extensionUri, 'resources', 'flame-light.svg'),
      dark: vscode.Uri.joinPath(ctx.extensionUri, 'resources', 'flame-dark.svg'),
    };
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m: unknown) => this.onMessage(m)),
      panel.onDidChangeViewState(() => {
        // a hidden webview is torn down; it says 'ready' again when shown
        if (!panel.visible) this.ready = false;
      }),
      this.feed.subscribe({
        events: () => this.schedule(),
        job: (job) => {
          this.setTitle(job);
          this.post({ type: 'job', job });
        },
        connection: (state, error) => this.post({ type: 'connection', state, ...(error === undefined ? {} : { error }) }),
      }),
    );
    if (this.feed.job) this.setTitle(this.feed.job);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (RunPanel.panels.get(this.jobId) === this) RunPanel.panels.delete(this.jobId);
    if (this.timer) clearTimeout(this.timer);
    this.panel.dispose();
    for (const d of this.disposables.splice(0)) d.dispose();
  }

  private setTitle(job: Job): void {
    this.panel.title = panelTitle(job.id, job.entry);
  }

  private onMessage(raw: unknown): void {
    const parsed = WebviewToHost.safeParse(raw);
    if (!parsed.success) {
      this.deps.log.warn(`run panel ${this.jobId}: bad message from webview: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
      return;
    }
    const msg = parsed.data;
    switch (msg.type) {
      case 'ready': {
        this.ready = true;
        this.generation++;
        this.sentSeq = msg.lastSeq ?? 0;
        const init: HostToWebview = { type: 'init', jobId: this.jobId, job: this.feed.job, options: this.options() };
        this.post(init);
        if (this.feed.connection !== 'connected') {
          this.post({ type: 'connection', state: this.feed.connection, ...(this.feed.connectionError ? { error: this.feed.connectionError } : {}) });
        }
        void this.flush();
        void this.postPulled();
        break;
      }
      case 'state': {
        const { type: _type, ...state } = msg;
        this.drawState = state;
        break;
      }
      case 'openLink': {
        const uri = vscode.Uri.parse(msg.url, true);
        if (uri.scheme === 'http' || uri.scheme === 'https') void vscode.env.openExternal(uri);
        break;
      }
      case 'copy':
        void vscode.env.clipboard.writeText(msg.text);
        break;
      case 'error':
        this.deps.log.warn(`run panel ${this.jobId}: ${msg.message}`);
        break;
      case 'action':
        void this.report(`${msg.action} from the run panel`, () => this.action(msg.action));
        break;
      case 'openArtifact':
        void this.report('opening the artifact', () => this.openArtifact(msg.path));
        break;
      case 'openSource':
        void this.report('opening the file', () => this.openSource(msg.jobId, msg.path, msg.line));
        break;
      case 'save':
        void this.report('saving the chart', () => this.save(msg.format, msg.name, msg.data));
        break;
    }
  }

  private async report(what: string, f: () => Promise<unknown>): Promise<void> {
    try {
      await f();
    } catch (err) {
      const m = err instanceof Error ? err.message : String(err);
      this.deps.log.error(`run panel ${this.jobId}: ${what}: ${m}`);
      void vscode.window.showErrorMessage(`Hearth: ${what} failed: ${m}`);
    }
  }

  /** The workspace folder the job ran from: remembered, else the first one open. */
  private folder(jobId = this.jobId): vscode.Uri | undefined {
    return this.deps.jobFolder(jobId) ?? vscode.workspace.workspaceFolders?.[0]?.uri;
  }

  private async action(action: 'stop' | 'pull' | 'rerun'): Promise<void> {
    if (action === 'stop') await vscode.commands.executeCommand(CommandId.cancelRun, this.jobId);
    if (action === 'pull') {
      await vscode.commands.executeCommand(CommandId.pullWeights, this.jobId);
      await this.postPulled();
    }
    if (action === 'rerun') {
      const client = await this.deps.getClient();
      const job = this.feed.job ?? (await client.job(this.jobId));
      const folder = this.folder();
      const file = folder && vscode.Uri.joinPath(folder, ...job.entry.split('/'));
      if (!file || !(await exists(file))) {
        throw new Error(`${job.entry} is not in this workspace${folder ? ` (${folder.fsPath})` : ''}: open the folder it was run from`);
      }
      // the same lease while it lasts; otherwise Run Current File asks, as it does for a first run
      const lease = await client.lease(job.leaseId).catch(() => undefined);
      await vscode.commands.executeCommand(CommandId.runCurrentFile, file, lease?.status === 'active' ? { leaseId: lease.id } : {});
    }
  }

  /** Opens a pulled artifact, pulling the run's artifacts first when it is not here yet. */
  private async openArtifact(rel: string): Promise<void> {
    const file = vscode.Uri.joinPath(this.deps.pullDestination(this.jobId), ...rel.split('/'));
    if (!(await exists(file))) {
      await vscode.commands.executeCommand(CommandId.pullWeights, this.jobId, { reveal: false });
      await this.postPulled();
      if (!(await exists(file))) return;
    }
    await vscode.commands.executeCommand('vscode.open', file);
  }

  /** A remote traceback's file, in the local folder the job was run from, at that line. */
  private async openSource(jobId: string, rel: string, line: number): Promise<void> {
    const folder = this.folder(jobId) ?? this.folder();
    const file = folder && vscode.Uri.joinPath(folder, ...rel.split('/'));
    if (!file || !(await exists(file))) {
      void vscode.window.showWarningMessage(`Hearth: ${rel} is not in this workspace; the traceback points at the copy on the worker.`);
      return;
    }
    const pos = new vscode.Position(line - 1, 0);
    await vscode.window.showTextDocument(file, { selection: new vscode.Range(pos, pos), preview: true, viewColumn: vscode.ViewColumn.One });
  }

  private async save(format: 'png' | 'csv', name: string, data: string): Promise<void> {
    const safe = name.replace(/[\\/:*?"<>|]+/g, '_') || `chart.${format}`;
    const folder = this.folder();
    const target = await vscode.window.showSaveDialog({
      ...(folder ? { defaultUri: vscode.Uri.joinPath(folder, safe) } : {}),
      filters: format === 'png' ? { 'PNG image': ['png'] } : { 'CSV': ['csv'] },
      title: format === 'png' ? 'Save chart as PNG' : 'Save chart data as CSV',
    });
    if (!target) return;
    await vscode.workspace.fs.writeFile(target, format === 'png' ? Buffer.from(data, 'base64') : Buffer.from(data, 'utf8'));
    this.deps.log.info(`run panel ${this.jobId}: saved ${target.fsPath}`);
  }

  /** Tells the webview which of the job's artifacts are pulled into the workspace. */
  private async postPulled(): Promise<void> {
    const dest = this.deps.pullDestination(this.jobId);
    const paths: string[] = [];
    for (const e of this.feed.events) {
      if (e.body.type !== 'artifact') continue;
      if (await exists(vscode.Uri.joinPath(dest, ...e.body.artifact.path.split('/')))) paths.push(e.body.artifact.path);
    }
    if (paths.length > 0) this.post({ type: 'pulled', paths });
  }

  private options(): PanelOptions {
    const scrollback = vscode.workspace.getConfiguration('terminal.integrated').get<number>('scrollback');
    return PanelOptions.parse({ scrollback: Math.max(100_000, scrollback ?? 0) });
  }

  /** Gathers events for BATCH_MS before sending, so a chatty job is not one message per line. */
  private schedule(): void {
    if (!this.ready || this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, BATCH_MS);
  }

  private async flush(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.ready && !this.disposed) {
        const from = this.feed.indexAfter(this.sentSeq);
        if (from >= this.feed.events.length) break;
        const batch: JobEvent[] = [];
        let bytes = 0;
        for (let i = from; i < this.feed.events.length && batch.length < MAX_BATCH_EVENTS; i++) {
          const e = this.feed.events[i] as JobEvent;
          const size = approxSize(e);
          if (batch.length > 0 && bytes + size > MAX_BATCH_BYTES) break;
          batch.push(e);
          bytes += size;
        }
        const last = (batch[batch.length - 1] as JobEvent).seq;
        const generation = this.generation;
        // wait for each piece to be delivered: a hidden webview drops messages, and then the
        // next 'ready' says where to start again
        const delivered = await this.panel.webview.postMessage({ type: 'events', events: batch } satisfies HostToWebview);
        // a 'ready' while we were waiting means a new document: go on from where it said
        if (generation !== this.generation) continue;
        if (!delivered) break;
        if (this.sentSeq < last) this.sentSeq = last;
      }
    } catch (err) {
      this.deps.log.warn(`run panel ${this.jobId}: could not send events: ${err instanceof Error ? err.message : String(err)}`);
    } finally {
      this.flushing = false;
    }
    // events that arrived while the last piece was in flight
    if (this.ready && this.feed.indexAfter(this.sentSeq) < this.feed.events.length) this.schedule();
  }

  private post(msg: HostToWebview): void {
    if (!this.ready || this.disposed) return;
    void this.panel.webview.postMessage(msg);
  }

  private html(): string {
    const webview = this.panel.webview;
    const nonce = randomBytes(16).toString('base64');
    const asset = (...p: string[]): string => webview.asWebviewUri(vscode.Uri.joinPath(this.ctx.extensionUri, ...p)).toString();
    const csp = [
      "default-src 'none'",
      `img-src ${webview.cspSource} data:`,
      // xterm.js writes its theme into a <style> element it creates at run time
      `style-src ${webview.cspSource} 'unsafe-inline'`,
      `font-src ${webview.cspSource}`,
      `script-src 'nonce-${nonce}'`,
    ].join('; ');
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link rel="stylesheet" href="${asset('dist', 'webview', 'run-panel.css')}">
<link rel="stylesheet" href="${asset('media', 'run-panel.css')}">
<title>Run ${escapeHtml(this.jobId)}</title>
</head>
<body data-job-id="${escapeHtml(this.jobId)}">
<div id="app"></div>
<script nonce="${nonce}" src="${asset('dist', 'webview', 'run-panel.js')}"></script>
</body>
</html>`;
  }
}

async function exists(uri: vscode.Uri): Promise<boolean> {
  try {
    await vscode.workspace.fs.stat(uri);
    return true;
  } catch {
    return false;
  }
}

function approxSize(e: JobEvent): number {
  const b = e.body;
  if (b.type === 'log') return b.data.length + 64;
  if (b.type === 'scalars') return b.points.length * 90 + 64;
  return 256;
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
