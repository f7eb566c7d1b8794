import * as vscode from 'vscode';
import { BrokerError, type BrokerClient } from '../../client/api';
import type { JobEvent, Lease, StartKernelBody } from '../../shared/protocol';
import { visibleLines } from '../../shared/terminal-text';
import { errorMessage, isAbort } from '../services/errors';
import { CellOutputs } from './cell-outputs';
import type { KernelStore, StoredKernel } from './kernel-store';

export type KernelState = 'starting' | 'idle' | 'busy' | 'disconnected' | 'dead' | 'ended';

type KernelBody = Extract<JobEvent['body'], { type: 'kernel' }>;

export interface NotebookKernelDeps {
  getClient(): Promise<BrokerClient>;
  store: KernelStore;
  log: vscode.LogOutputChannel;
  lineLimit(): number;
  /** what a new session starts with: the notebook's workspace folder (uploaded), outputs, logdir */
  sessionBody(notebook: vscode.NotebookDocument): Promise<Omit<StartKernelBody, 'leaseId'>>;
}

/** One cell's request: its execution in the editor and the outputs built from its messages. */
interface CellRun {
  cell: vscode.NotebookCell;
  execution: vscode.NotebookCellExecution;
  outputs: CellOutputs;
  requestId: string | undefined;
  /** seq of the broker's execute_request for it */
  firstSeq: number | undefined;
  started: boolean;
  ended: boolean;
  dirty: boolean;
  inputTimer?: NodeJS.Timeout;
  inputCancel?: vscode.CancellationTokenSource;
}

// An input_request replayed from the log was answered if its reply follows at once; ask only
// after this quiet time. (A cell still running after an answered input() may ask again on a
// reattach: the log does not record input replies.)
const INPUT_QUIET_MS = 300;
const FLUSH_MS = 50;
const SAVE_MS = 500;

/**
 * A notebook's kernel session on the broker, followed through the session's durable event log.
 * The session is the broker's, not the window's: disposing this stops following and keeps the
 * kernel running; a later window reattaches from the stored seq and rebuilds, once, the outputs
 * of every cell that ran meanwhile.
 */
export class NotebookKernel implements vscode.Disposable {
  private stateValue: KernelState = 'starting';
  private readonly runs = new Map<string, CellRun>();
  /** cells waiting to be sent, in order */
  private unposted: CellRun[] = [];
  private pumping = false;
  private restarting = 0;
  private restartId: string | undefined;
  /** restart requests whose fresh kernel said idle */
  private readonly restartsDone = new Set<string>();
  private restartWaiter: (() => void) | undefined;
  private posting = 0;
  /** events of requests whose POST has not answered yet (the log can be faster than the reply) */
  private readonly orphans = new Map<string, KernelBody[]>();
  private readonly ac = new AbortController();
  private ready: { promise: Promise<void>; resolve: () => void; done: boolean };
  private lastSeq = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private saveTimer: NodeJS.Timeout | undefined;
  private disposed = false;
  private readonly stateEmitter = new vscode.EventEmitter<KernelState>();
  readonly onDidChangeState = this.stateEmitter.event;
  private readonly endEmitter = new vscode.EventEmitter<string>();
  /** the session ended (lease over, idle, shut down): the reason */
  readonly onDidEnd = this.endEmitter.event;

  private constructor(
    readonly notebook: vscode.NotebookDocument,
    readonly controller: vscode.NotebookController,
    readonly lease: Lease,
    private stored: StoredKernel,
    private readonly deps: NotebookKernelDeps,
  ) {
    this.ready = newReady();
    this.lastSeq = stored.appliedSeq;
  }

  /** A new session on the lease; cells may be queued at once, they are sent when it is ready. */
  static start(notebook: vscode.NotebookDocument, controller: vscode.NotebookController, lease: Lease, deps: NotebookKernelDeps): NotebookKernel {
    const k = new NotebookKernel(notebook, controller, lease, { sessionId: '', leaseId: lease.id, appliedSeq: 0, fromSeq: 0, requests: {} }, deps);
    void k.open();
    return k;
  }

  /** Follows an existing session from where this workspace left it. */
  static attach(notebook: vscode.NotebookDocument, controller: vscode.NotebookController, lease: Lease, stored: StoredKernel, deps: NotebookKernelDeps): NotebookKernel {
    const k = new NotebookKernel(notebook, controller, lease, { ...stored, requests: { ...stored.requests } }, deps);
    // The session was running when checked; the log from fromSeq may hold no kernel state at all.
    k.ready.done = true;
    k.ready.resolve();
    k.stateValue = 'idle';
    void k.follow();
    return k;
  }

  get sessionId(): string {
    return this.stored.sessionId;
  }

  get state(): KernelState {
    return this.stateValue;
  }

  /** Queues cells; they run in order, each once the one before it has been sent. */
  execute(cells: readonly vscode.NotebookCell[]): void {
    for (const cell of cells) {
      if (cell.kind !== vscode.NotebookCellKind.Code) continue;
      let execution: vscode.NotebookCellExecution;
      try {
        execution = this.controller.createNotebookCellExecution(cell);
      } catch (err) {
        // the cell is already running or queued
        this.deps.log.warn(`cell ${cell.index} not run: ${errorMessage(err)}`);
        continue;
      }
      const run: CellRun = { cell, execution, outputs: new CellOutputs(this.deps.lineLimit()), requestId: undefined, firstSeq: undefined, started: false, ended: false, dirty: false };
      execution.token.onCancellationRequested(() => {
        // Only a cell not yet sent can be taken back; a sent one is stopped by interrupt.
        if (run.requestId === undefined && !run.ended) {
          this.unposted = this.unposted.filter((r) => r !== run);
          this.end(run, undefined);
        }
      });
      this.unposted.push(run);
    }
    void this.pump();
  }

  async interrupt(): Promise<void> {
    // Jupyter drops the queue on an interrupt: the cells not yet sent end here.
    for (const r of this.unposted.splice(0)) this.end(r, undefined);
    if (!this.stored.sessionId) return;
    await (await this.deps.getClient()).kernelRequest(this.stored.sessionId, { type: 'interrupt' });
  }

  /** Asks for a fresh kernel; the cells it was running end as aborted (the kernel says so). */
  async restart(): Promise<void> {
    for (const r of this.unposted.splice(0)) this.end(r, undefined);
    if (this.ready.done) this.ready = newReady();
    this.setState('starting');
    // The restart's own request carries the kernel's states (restarting, then idle), and they
    // may arrive before the POST answers.
    this.restarting++;
    try {
      this.restartId = (await (await this.deps.getClient()).kernelRequest(this.stored.sessionId, { type: 'restart' })).requestId;
    } finally {
      this.restarting--;
    }
    // Ready means the restart's own idle: a kernel state logged before it is stale.
    if (!this.restartsDone.has(this.restartId)) await new Promise<void>((resolve) => (this.restartWaiter = resolve));
    this.restartsDone.clear();
    this.ready.done = true;
    this.ready.resolve();
    this.setState(this.runs.size > 0 ? 'busy' : 'idle');
  }

  /** Resolves when the kernel is ready for requests. */
  whenReady(): Promise<void> {
    return this.ready.promise;
  }

  private async open(): Promise<void> {
    try {
      const client = await this.deps.getClient();
      const job = await client.startKernel({ ...(await this.deps.sessionBody(this.notebook)), leaseId: this.lease.id });
      this.stored.sessionId = job.id;
      this.deps.log.info(`kernel session ${job.id} on lease ${this.lease.id} for ${this.notebook.uri.toString()}`);
      await this.save();
      await this.follow();
    } catch (err) {
      if (this.disposed) return;
      this.deps.log.error(`starting a kernel on lease ${this.lease.id}: ${errorMessage(err)}`);
      for (const r of this.unposted.splice(0)) this.fail(r, 'HearthError', `The kernel did not start: ${errorMessage(err)}`);
      this.finish(`the kernel did not start: ${errorMessage(err)}`);
    }
  }

  private async follow(): Promise<void> {
    const client = await this.deps.getClient();
    let reason = 'the session ended';
    try {
      for await (const ev of client.events(this.stored.sessionId, {
        from: this.stored.fromSeq,
        follow: true,
        signal: this.ac.signal,
        onReconnect: (err) => {
          this.deps.log.warn(`kernel ${this.stored.sessionId}: event stream lost (${errorMessage(err)}), reconnecting`);
          this.setState('disconnected');
        },
      })) {
        if (this.stateValue === 'disconnected') this.setState(this.runs.size > 0 ? 'busy' : 'idle');
        this.handle(ev);
      }
      const job = await client.job(this.stored.sessionId).catch(() => undefined);
      if (job) reason = `the session ${job.status}${job.reason ? `: ${visibleLines(job.reason)}` : ''}`;
    } catch (err) {
      if (this.disposed || isAbort(err)) return;
      if (!(err instanceof BrokerError && err.status === 404)) {
        this.deps.log.error(`kernel ${this.stored.sessionId}: ${errorMessage(err)}`);
        this.setState('disconnected');
        return;
      }
      reason = 'the broker no longer knows the session';
    }
    if (this.disposed) return;
    for (const r of [...this.unposted.splice(0), ...this.runs.values()]) this.abort(r, `The kernel is gone: ${reason}.`);
    this.finish(reason);
  }

  private finish(reason: string): void {
    this.setState('ended');
    void this.deps.store.set(this.notebook.uri, undefined);
    this.endEmitter.fire(reason);
  }

  private handle(ev: JobEvent): void {
    const seq = ev.seq;
    this.lastSeq = Math.max(this.lastSeq, seq);
    const b = ev.body;
    if (b.type !== 'kernel') return;
    if (b.requestId === null) {
      if (b.msgType === 'status') this.kernelStatus(String(b.content.execution_state));
      return;
    }
    let run = this.runs.get(b.requestId);
    if (!run && b.msgType === 'status' && (b.requestId === this.restartId || (this.restarting > 0 && !this.stored.requests[b.requestId]))) {
      if (b.content.execution_state === 'idle') {
        this.restartsDone.add(b.requestId);
        if (b.requestId === this.restartId) {
          this.restartWaiter?.();
          this.restartWaiter = undefined;
        }
      } else {
        this.kernelStatus(String(b.content.execution_state));
      }
      return;
    }
    if (!run) {
      const mapped = this.stored.requests[b.requestId];
      if (mapped) run = this.reattach(b.requestId, mapped, b.msgType === 'execute_request' ? String(b.content.code ?? '') : mapped.code);
      else if (this.posting > 0 && seq > this.stored.appliedSeq) {
        const list = this.orphans.get(b.requestId) ?? [];
        list.push(b);
        this.orphans.set(b.requestId, list);
      }
      if (!run) return;
    }
    this.apply(run, b, ev.ts, seq);
    this.scheduleSave();
  }

  /** A request of an earlier window: its cell gets a new execution and outputs rebuilt from the log. */
  private reattach(requestId: string, mapped: { index: number; code: string }, code: string): CellRun | undefined {
    const cells = this.notebook.getCells();
    const cell = cells[mapped.index]?.document.getText() === code ? cells[mapped.index] : cells.find((c) => c.kind === vscode.NotebookCellKind.Code && c.document.getText() === code);
    if (!cell) {
      this.deps.log.warn(`request ${requestId}: no cell holds its code any more; its outputs are in the kernel log`);
      delete this.stored.requests[requestId];
      return undefined;
    }
    let execution: vscode.NotebookCellExecution;
    try {
      execution = this.controller.createNotebookCellExecution(cell);
    } catch (err) {
      this.deps.log.warn(`request ${requestId}: cell ${cell.index}: ${errorMessage(err)}`);
      return undefined;
    }
    const run: CellRun = { cell, execution, outputs: new CellOutputs(this.deps.lineLimit()), requestId, firstSeq: undefined, started: false, ended: false, dirty: false };
    this.runs.set(requestId, run);
    this.deps.log.info(`reattached request ${requestId} to cell ${cell.index}`);
    return run;
  }

  private apply(run: CellRun, b: KernelBody, ts: number, seq: number): void {
    if (run.ended) return;
    // The prompt stays up for anything but a new prompt or the reply: iopub messages printed
    // before input() may reach the log after its input_request (another channel).
    if (b.msgType === 'input_request' || b.msgType === 'execute_reply') this.cancelInputPrompt(run);
    const c = b.content;
    switch (b.msgType) {
      case 'execute_request':
        run.firstSeq = seq;
        return;
      case 'status':
        if (c.execution_state === 'busy') this.startRun(run, ts);
        return;
      case 'execute_input':
        this.startRun(run, ts);
        if (typeof c.execution_count === 'number') run.execution.executionOrder = c.execution_count;
        return;
      case 'input_request':
        this.startRun(run, ts);
        run.inputTimer = setTimeout(() => void this.askInput(run, String(c.prompt ?? ''), c.password === true), INPUT_QUIET_MS);
        return;
      case 'update_display_data':
        // Jupyter updates the display wherever it is; here: in the cells still running.
        for (const r of this.runs.values()) if (!r.ended && r.outputs.updateDisplay(c)) this.markDirty(r);
        return;
      case 'execute_reply': {
        this.startRun(run, ts);
        if (typeof c.execution_count === 'number') run.execution.executionOrder = c.execution_count;
        const status = String(c.status);
        this.deps.log.info(`request ${run.requestId ?? '?'} (cell ${run.cell.index}): ${status}, execution count ${String(c.execution_count)}`);
        if (status === 'aborted' && !run.outputs.hasError()) {
          run.outputs.addNote('Aborted', 'Not run: an earlier cell failed, was interrupted, or the kernel died, so the kernel dropped the cells queued after it.');
        }
        // The bridge logs nothing of a request after its reply (it forgets the request then), so
        // the reply ends the cell; Jupyter's own clients would wait for the idle status.
        this.end(run, status === 'ok', ts);
        return;
      }
      default:
        this.startRun(run, ts);
        if (run.outputs.apply(b.msgType, c)) this.markDirty(run);
    }
  }

  private kernelStatus(state: string): void {
    if (state === 'idle') {
      if (this.restarting > 0 || this.restartWaiter) return;
      this.setState(this.runs.size > 0 ? 'busy' : 'idle');
      if (!this.ready.done) {
        this.ready.done = true;
        this.ready.resolve();
      }
    } else if (state === 'busy') {
      this.setState('busy');
    } else if (state === 'dead') {
      this.setState('dead');
      if (!this.ready.done) return;
      this.ready = newReady();
      void vscode.window.showWarningMessage(`Hearth: the kernel of ${basename(this.notebook.uri)} died. Restart it to go on (its state is lost).`, 'Restart Kernel').then((c) => {
        if (c) void this.restart().catch((err: unknown) => this.deps.log.error(`restart: ${errorMessage(err)}`));
      });
    } else if (state === 'starting' || state === 'restarting') {
      this.setState('starting');
      if (this.ready.done) this.ready = newReady();
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.unposted.length > 0 && !this.disposed) {
        await this.ready.promise;
        const run = this.unposted.shift();
        if (!run || run.ended) continue;
        const code = run.cell.document.getText();
        this.posting++;
        try {
          const client = await this.deps.getClient();
          const { requestId } = await client.kernelRequest(this.stored.sessionId, { type: 'execute', code });
          run.requestId = requestId;
          this.runs.set(requestId, run);
          this.deps.log.info(`cell ${run.cell.index} of ${basename(this.notebook.uri)}: request ${requestId}${this.orphans.has(requestId) ? ` (${this.orphans.get(requestId)!.length} events already in)` : ''}`);
          this.stored.requests[requestId] = { index: run.cell.index, code };
          for (const b of this.orphans.get(requestId) ?? []) this.apply(run, b, Date.now(), 0);
          this.orphans.delete(requestId);
          await this.save();
        } catch (err) {
          this.fail(run, 'HearthError', `The cell was not sent to the kernel: ${errorMessage(err)}`);
          for (const r of this.unposted.splice(0)) this.abort(r, 'Not run: the cell before it could not be sent.');
        } finally {
          if (--this.posting === 0) this.orphans.clear();
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  private startRun(run: CellRun, ts: number): void {
    if (run.started) return;
    run.started = true;
    // the kernel reports busy per request; the notebook is busy while one of its cells runs
    if (this.stateValue === 'idle') this.setState('busy');
    run.execution.start(ts);
    // a rerun starts clean; a reattached run is rebuilt from its first message
    void run.execution.clearOutput();
  }

  private markDirty(run: CellRun): void {
    run.dirty = true;
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    for (const r of this.runs.values()) this.flushRun(r);
  }

  private flushRun(run: CellRun): void {
    if (!run.dirty || !run.started) return;
    run.dirty = false;
    void run.execution.replaceOutput(run.outputs.toCellOutputs());
  }

  private end(run: CellRun, success: boolean | undefined, ts = Date.now()): void {
    if (run.ended) return;
    this.cancelInputPrompt(run);
    if (run.started || !run.outputs.isEmpty) {
      if (!run.started) this.startRun(run, ts);
      run.dirty = true;
      this.flushRun(run);
    }
    run.ended = true;
    run.execution.end(success, ts);
    if (run.requestId) {
      this.runs.delete(run.requestId);
      delete this.stored.requests[run.requestId];
    }
    if (this.runs.size === 0 && this.stateValue === 'busy') this.setState('idle');
    this.scheduleSave();
  }

  private fail(run: CellRun, ename: string, message: string): void {
    run.outputs.addNote(ename, message);
    this.end(run, false);
  }

  private abort(run: CellRun, message: string): void {
    if (run.ended) return;
    run.outputs.addNote('Aborted', message);
    this.end(run, false);
  }

  private async askInput(run: CellRun, prompt: string, password: boolean): Promise<void> {
    if (run.ended || !run.requestId) return;
    const cts = new vscode.CancellationTokenSource();
    run.inputCancel = cts;
    const value = await vscode.window.showInputBox({ prompt: prompt || 'The cell asks for input', password, ignoreFocusOut: true }, cts.token);
    if (cts.token.isCancellationRequested) return;
    run.inputCancel = undefined;
    cts.dispose();
    try {
      await (await this.deps.getClient()).kernelRequest(this.stored.sessionId, { type: 'input_reply', value: value ?? '' });
    } catch (err) {
      this.deps.log.error(`input reply: ${errorMessage(err)}`);
    }
  }

  private cancelInputPrompt(run: CellRun): void {
    clearTimeout(run.inputTimer);
    run.inputTimer = undefined;
    run.inputCancel?.cancel();
    run.inputCancel?.dispose();
    run.inputCancel = undefined;
  }

  private setState(s: KernelState): void {
    if (this.stateValue === s || this.stateValue === 'ended') return;
    this.stateValue = s;
    this.stateEmitter.fire(s);
  }

  private scheduleSave(): void {
    this.saveTimer ??= setTimeout(() => {
      this.saveTimer = undefined;
      void this.save();
    }, SAVE_MS);
  }

  private async save(): Promise<void> {
    if (this.stateValue === 'ended' || !this.stored.sessionId) return;
    // Outputs are written before the seq that produced them is recorded as applied.
    this.flush();
    const open = [...this.runs.values()].flatMap((r) => (r.firstSeq !== undefined ? [r.firstSeq] : []));
    // A request sent but not yet seen in the log starts after lastSeq.
    this.stored.appliedSeq = this.lastSeq;
    // events(from) yields what comes after `from`: start just before the oldest open request
    this.stored.fromSeq = Math.max(0, Math.min(this.lastSeq, ...open.map((q) => q - 1)));
    await this.deps.store.set(this.notebook.uri, { ...this.stored, requests: { ...this.stored.requests } });
  }

  /** Stops following; the kernel keeps running on the broker. */
  dispose(): void {
    if (this.disposed) return;
    void this.save();
    this.disposed = true;
    clearTimeout(this.flushTimer);
    clearTimeout(this.saveTimer);
    this.ac.abort();
    for (const r of this.runs.values()) this.cancelInputPrompt(r);
    this.stateEmitter.dispose();
    this.endEmitter.dispose();
  }
}

function newReady(): { promise: Promise<void>; resolve: () => void; done: boolean } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve, done: false };
}

function basename(uri: vscode.Uri): string {
  return uri.path.split('/').pop() ?? uri.path;
}
