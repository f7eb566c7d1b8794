import * as vscode from 'vscode';
import { uploadWorkspace } from '../../client/workspace';
import type { Lease, StartKernelBody } from '../../shared/protocol';
import { isTerminal } from '../../shared/protocol';
import { visibleLines } from '../../shared/terminal-text';
import { CommandId } from '../commands/command-ids';
import { leaseGpu } from '../commands/lease-commands';
import type { HearthServices } from '../hearth-services';
import type { BrokerSnapshot } from '../services/broker-state';
import { errorMessage } from '../services/errors';
import { formatBytes, formatCredits, formatDuration, msLeft } from '../views/format';
import { KernelStore } from './kernel-store';
import { NotebookKernel, type KernelState } from './notebook-kernel';

const NOTEBOOK_TYPE = 'jupyter-notebook';
const LEASE_PREFIX = 'hearth-lease-';
export const NEW_LEASE_CONTROLLER_ID = 'hearth-new-lease';
export const DEFAULT_LINE_LIMIT = 5000;

export function leaseControllerId(leaseId: string): string {
  return `${LEASE_PREFIX}${leaseId}`;
}

/**
 * The "Hearth" kernels of the kernel picker: one per active lease (kept in step with the broker's
 * leases), and one that leases a GPU first. Each notebook run on a lease gets its own kernel
 * session, which outlives this window (see NotebookKernel).
 */
export class HearthNotebooks implements vscode.Disposable {
  private readonly controllers = new Map<string, { controller: vscode.NotebookController; lease: Lease; sub: vscode.Disposable }>();
  private readonly newLease: vscode.NotebookController;
  /** by notebook URI */
  private readonly kernels = new Map<string, NotebookKernel>();
  private readonly store: KernelStore;
  private readonly statusItem = vscode.window.createStatusBarItem('hearth.kernel', vscode.StatusBarAlignment.Left, 49);
  private readonly subs: vscode.Disposable[] = [];
  private disposing = false;
  private readonly stateEmitter = new vscode.EventEmitter<void>();
  readonly onDidChange = this.stateEmitter.event;

  constructor(private readonly s: HearthServices) {
    this.store = new KernelStore(s.context.workspaceState);
    this.statusItem.name = 'Hearth Kernel';
    this.newLease = vscode.notebooks.createNotebookController(NEW_LEASE_CONTROLLER_ID, NOTEBOOK_TYPE, 'Hearth: lease a GPU…');
    this.newLease.description = 'run this notebook on a remote GPU';
    this.newLease.supportedLanguages = ['python'];
    this.newLease.executeHandler = (cells, notebook) => this.runOnNewLease(cells, notebook);
    this.subs.push(
      this.newLease,
      this.statusItem,
      this.stateEmitter,
      s.state.onDidChange((snap) => this.sync(snap)),
      vscode.window.onDidChangeActiveNotebookEditor(() => {
        this.updateStatus();
        void this.reselect();
      }),
      vscode.workspace.onDidCloseNotebookDocument((nb) => this.detach(nb.uri)),
    );
    this.sync(s.state.current);
  }

  /** the kernel of a notebook in this window, if it has one */
  kernel(uri: vscode.Uri): NotebookKernel | undefined {
    return this.kernels.get(uri.toString());
  }

  controllerIds(): string[] {
    return [NEW_LEASE_CONTROLLER_ID, ...[...this.controllers.values()].map((c) => c.controller.id)];
  }

  private lineLimit(): number {
    const n = vscode.workspace.getConfiguration('hearth').get<number>('outputLineLimit', DEFAULT_LINE_LIMIT);
    return Number.isFinite(n) && n >= 10 ? Math.floor(n) : DEFAULT_LINE_LIMIT;
  }

  private sync(snap: BrokerSnapshot): void {
    // A broker out of reach says nothing about the leases: keep the kernels that exist.
    if (!snap.connected) return;
    const live = new Map(snap.leases.map((l) => [l.id, l]));
    for (const [id, c] of this.controllers) {
      if (live.has(id)) continue;
      c.sub.dispose();
      c.controller.dispose();
      this.controllers.delete(id);
    }
    for (const lease of snap.leases) {
      let c = this.controllers.get(lease.id);
      if (!c) {
        const controller = vscode.notebooks.createNotebookController(leaseControllerId(lease.id), NOTEBOOK_TYPE, '');
        controller.supportedLanguages = ['python'];
        controller.supportsExecutionOrder = true;
        controller.executeHandler = (cells, notebook) => this.run(cells, notebook, lease.id);
        controller.interruptHandler = (notebook) => this.kernel(notebook.uri)?.interrupt().catch((err: unknown) => this.report('interrupting', err));
        const sub = controller.onDidChangeSelectedNotebooks(({ notebook, selected }) => {
          if (selected) void this.attachStored(notebook, lease.id);
          else if (this.kernel(notebook.uri)?.lease.id === lease.id) {
            this.detach(notebook.uri);
            // Picked another kernel: do not pull the notebook back to this one. The session
            // keeps running on the broker until its idle time stops it.
            if (!this.disposing) void this.store.set(notebook.uri, undefined);
          }
        });
        c = { controller, lease, sub };
        this.controllers.set(lease.id, c);
      }
      c.lease = lease;
      c.controller.label = `Hearth: ${lease.gpuModel}${lease.count > 1 ? ` ×${lease.count}` : ''} on ${lease.workerName}`;
      c.controller.description = lease.id;
      c.controller.detail = `${formatCredits(lease.pricePerHour * lease.count)} credits/h · ${formatDuration(msLeft(lease.expiresAt))} left`;
    }
    for (const nb of vscode.workspace.notebookDocuments) {
      const stored = this.store.get(nb.uri);
      const c = stored && this.controllers.get(stored.leaseId);
      if (c) c.controller.updateNotebookAffinity(nb, vscode.NotebookControllerAffinity.Preferred);
    }
    void this.reselect();
    this.updateStatus();
  }

  /**
   * A notebook whose session outlived the last window: select its lease's kernel again, which
   * reattaches (VS Code may have remembered the choice already; selecting twice is harmless).
   */
  private async reselect(): Promise<void> {
    const editor = vscode.window.activeNotebookEditor;
    if (!editor || this.kernel(editor.notebook.uri)) return;
    const stored = this.store.get(editor.notebook.uri);
    const c = stored && this.controllers.get(stored.leaseId);
    if (!c) return;
    await vscode.commands.executeCommand('notebook.selectKernel', { notebookEditor: editor, id: c.controller.id, extension: this.s.context.extension.id });
    await this.attachStored(editor.notebook, stored.leaseId);
  }

  private deps() {
    return {
      getClient: () => this.s.getClient(),
      store: this.store,
      log: this.s.log,
      lineLimit: () => this.lineLimit(),
      sessionBody: (nb: vscode.NotebookDocument) => this.sessionBody(nb),
    };
  }

  /**
   * A kernel starts in the notebook's workspace folder, uploaded as Run Current File uploads it,
   * so that the cells read the files beside them; its outputs and TensorBoard folder are the
   * settings' (the kernel panel charts them).
   */
  private async sessionBody(nb: vscode.NotebookDocument): Promise<Omit<StartKernelBody, 'leaseId'>> {
    const cfg = this.s.config.current;
    const base = { outputs: [...cfg.outputs], logdir: cfg.logdir };
    const folder = nb.uri.scheme === 'file' ? vscode.workspace.getWorkspaceFolder(nb.uri) : undefined;
    if (!folder) return base;
    const client = await this.s.getClient();
    const manifest = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Window, title: `Hearth: uploading ${folder.name} for the kernel` },
      () => uploadWorkspace(client, folder.uri.fsPath),
    );
    this.s.log.info(`uploaded ${manifest.uploadedBlobs} new blobs (${formatBytes(manifest.uploadedBytes)}) of ${manifest.files.length} files from ${folder.uri.fsPath} for a kernel`);
    // The worker installs the folder's requirements.txt / pyproject.toml first, or the setting's file.
    return { ...base, manifest: { files: manifest.files }, ...(cfg.requirementsFile ? { requirements: cfg.requirementsFile } : {}) };
  }

  /** Reattaches a notebook to its stored session on this lease, if it has one that still runs. */
  private async attachStored(notebook: vscode.NotebookDocument, leaseId: string): Promise<NotebookKernel | undefined> {
    const existing = this.kernel(notebook.uri);
    if (existing) return existing.lease.id === leaseId ? existing : undefined;
    const stored = this.store.get(notebook.uri);
    const c = this.controllers.get(leaseId);
    if (!stored || stored.leaseId !== leaseId || !c) return undefined;
    try {
      const job = await (await this.s.getClient()).job(stored.sessionId);
      if (isTerminal(job.status)) {
        await this.store.set(notebook.uri, undefined);
        void vscode.window.showInformationMessage(
          `Hearth: the kernel of ${basename(notebook.uri)} has ended (${job.status}${job.reason ? `: ${visibleLines(job.reason)}` : ''}); running a cell starts a new one.`,
        );
        return undefined;
      }
    } catch (err) {
      this.s.log.warn(`checking kernel session ${stored.sessionId}: ${errorMessage(err)}`);
    }
    // another call may have attached while this one asked the broker
    const again = this.kernel(notebook.uri);
    if (again) return again;
    this.s.log.info(`reattaching ${notebook.uri.toString()} to kernel session ${stored.sessionId} from seq ${stored.fromSeq}`);
    return this.adopt(NotebookKernel.attach(notebook, c.controller, c.lease, stored, this.deps()));
  }

  private adopt(k: NotebookKernel): NotebookKernel {
    const key = k.notebook.uri.toString();
    this.kernels.set(key, k);
    k.onDidChangeState(() => {
      this.updateStatus();
      this.stateEmitter.fire();
    });
    k.onDidEnd((reason) => {
      if (this.kernels.get(key) === k) this.kernels.delete(key);
      k.dispose();
      this.updateStatus();
      this.stateEmitter.fire();
      void vscode.window.showInformationMessage(`Hearth: the kernel of ${basename(k.notebook.uri)} is gone (${reason}); running a cell starts a new one.`);
    });
    this.updateStatus();
    this.stateEmitter.fire();
    return k;
  }

  private async kernelFor(notebook: vscode.NotebookDocument, leaseId: string): Promise<NotebookKernel | undefined> {
    const existing = this.kernel(notebook.uri);
    if (existing?.lease.id === leaseId && existing.state !== 'ended') return existing;
    // Another lease's kernel keeps running on the broker (it stops when idle); this window leaves it.
    if (existing) this.detach(notebook.uri);
    const attached = await this.attachStored(notebook, leaseId);
    if (attached) return attached;
    const c = this.controllers.get(leaseId);
    if (!c) return undefined;
    return this.adopt(NotebookKernel.start(notebook, c.controller, c.lease, this.deps()));
  }

  private async run(cells: vscode.NotebookCell[], notebook: vscode.NotebookDocument, leaseId: string): Promise<void> {
    try {
      const k = await this.kernelFor(notebook, leaseId);
      if (!k) throw new Error('the lease has ended; pick another kernel');
      k.execute(cells);
    } catch (err) {
      this.report('running the cells', err);
    }
  }

  /** The "lease a GPU…" kernel: choose or lease one, switch the notebook to it, then run. */
  private async runOnNewLease(cells: vscode.NotebookCell[], notebook: vscode.NotebookDocument): Promise<void> {
    try {
      const snap = this.s.state.current;
      const NEW = 'Lease a GPU…';
      const pick = await vscode.window.showQuickPick(
        [
          ...snap.leases.map((l) => ({ label: `${l.gpuModel} on ${l.workerName}`, description: `${formatDuration(msLeft(l.expiresAt))} left`, lease: l as Lease | undefined })),
          { label: NEW, description: 'rent a GPU from an offer', lease: undefined },
        ],
        { placeHolder: 'Run this notebook on which GPU?' },
      );
      if (!pick) return;
      const lease = pick.lease ?? (await leaseGpu(this.s));
      if (!lease) return;
      if (!this.controllers.has(lease.id)) this.sync(await this.s.state.refresh());
      const c = this.controllers.get(lease.id);
      if (!c) throw new Error(`lease ${lease.id} is not active`);
      const editor = vscode.window.visibleNotebookEditors.find((e) => e.notebook === notebook);
      await vscode.commands.executeCommand('notebook.selectKernel', { notebookEditor: editor, id: c.controller.id, extension: this.s.context.extension.id });
      await this.run(cells, notebook, lease.id);
    } catch (err) {
      this.report('leasing a GPU for the notebook', err);
    }
  }

  private detach(uri: vscode.Uri): void {
    const k = this.kernels.get(uri.toString());
    if (!k) return;
    this.kernels.delete(uri.toString());
    k.dispose();
    this.updateStatus();
    this.stateEmitter.fire();
  }

  /** The active notebook's kernel, or the one of a notebook URI given by a menu or a test. */
  active(arg?: unknown): NotebookKernel | undefined {
    const uri = arg instanceof vscode.Uri ? arg : typeof arg === 'string' ? vscode.Uri.parse(arg) : vscode.window.activeNotebookEditor?.notebook.uri;
    return uri ? this.kernel(uri) : undefined;
  }

  async restart(arg?: unknown): Promise<NotebookKernel | undefined> {
    const k = this.requireActive(arg);
    await k.restart();
    await k.whenReady();
    return k;
  }

  async restartAndRunAll(arg?: unknown): Promise<NotebookKernel | undefined> {
    const k = await this.restart(arg);
    k?.execute(k.notebook.getCells());
    return k;
  }

  async shutDown(arg?: unknown): Promise<string | undefined> {
    const k = this.requireActive(arg);
    const id = k.sessionId;
    await (await this.s.getClient()).cancelJob(id);
    this.s.log.info(`shut down kernel session ${id}`);
    this.kernels.delete(k.notebook.uri.toString());
    k.dispose();
    await this.store.set(k.notebook.uri, undefined);
    this.updateStatus();
    this.stateEmitter.fire();
    return id;
  }

  requireActive(arg?: unknown): NotebookKernel {
    const k = this.active(arg);
    if (!k || !k.sessionId) throw new Error('the active notebook has no Hearth kernel (pick "Hearth: …" in the kernel picker and run a cell)');
    return k;
  }

  private updateStatus(): void {
    const nb = vscode.window.activeNotebookEditor?.notebook;
    const k = nb && this.kernel(nb.uri);
    if (!k) {
      this.statusItem.hide();
      return;
    }
    const icon: Record<KernelState, string> = { starting: '$(loading~spin)', idle: '$(circle-outline)', busy: '$(circle-filled)', disconnected: '$(debug-disconnect)', dead: '$(error)', ended: '$(circle-slash)' };
    this.statusItem.text = `${icon[k.state]} Hearth kernel: ${k.lease.gpuModel} · ${k.state}`;
    this.statusItem.tooltip = `Kernel session ${k.sessionId || '(starting)'} on lease ${k.lease.id}: ${k.lease.gpuModel} on ${k.lease.workerName}. Click for its panel (GPU telemetry, charts).`;
    this.statusItem.command = { command: CommandId.openKernelPanel, title: 'Open Kernel Panel' };
    this.statusItem.show();
  }

  /** what the status bar item shows (undefined when hidden), for tests */
  get statusText(): string | undefined {
    return vscode.window.activeNotebookEditor && this.kernel(vscode.window.activeNotebookEditor.notebook.uri) ? this.statusItem.text : undefined;
  }

  private report(what: string, err: unknown): void {
    this.s.log.error(`${what}: ${errorMessage(err)}`);
    void vscode.window.showErrorMessage(`Hearth: ${what} failed: ${errorMessage(err)}`, 'Show Log').then((c) => {
      if (c) this.s.log.show();
    });
  }

  dispose(): void {
    this.disposing = true;
    // Stop following; every kernel keeps running on the broker for the next window.
    for (const k of this.kernels.values()) k.dispose();
    this.kernels.clear();
    for (const c of this.controllers.values()) {
      c.sub.dispose();
      c.controller.dispose();
    }
    this.controllers.clear();
    for (const d of this.subs) d.dispose();
  }
}

function basename(uri: vscode.Uri): string {
  return uri.path.split('/').pop() ?? uri.path;
}
