import * as vscode from 'vscode';

/** What Jupyter's display messages carry: a mime bundle, its metadata, and maybe a display id. */
interface DisplayContent {
  data?: unknown;
  metadata?: unknown;
  transient?: unknown;
}

type Output =
  | { kind: 'stream'; name: 'stdout' | 'stderr'; text: string; droppedLines: number }
  | { kind: 'display'; data: Record<string, unknown>; metadata: Record<string, unknown>; displayId: string | undefined }
  | { kind: 'error'; ename: string; evalue: string; traceback: string[] };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The MIME types VS Code draws, in the order Jupyter prefers them (richest first). */
const MIME_ORDER = ['application/vnd.jupyter.widget-view+json', 'application/javascript', 'text/html', 'image/svg+xml', 'image/png', 'image/jpeg', 'text/markdown', 'text/latex', 'application/json', 'text/plain'];

/**
 * The outputs of one cell as Jupyter builds them from a request's messages: consecutive stream
 * text of the same name merged into one output, displays replaced in place by their display id,
 * clear_output (with wait) honoured. Long streams keep their last `lineLimit` lines, as Jupyter
 * does, so a cell printing millions of lines costs the extension host a bounded amount of memory.
 */
export class CellOutputs {
  private outputs: Output[] = [];
  private clearPending = false;

  constructor(private readonly lineLimit: number) {}

  get isEmpty(): boolean {
    return this.outputs.length === 0;
  }

  /** Applies one kernel message; true when the cell's outputs changed. */
  apply(msgType: string, content: Record<string, unknown>): boolean {
    switch (msgType) {
      case 'stream': {
        const name = content.name === 'stderr' ? 'stderr' : 'stdout';
        const text = typeof content.text === 'string' ? content.text : '';
        this.takePendingClear();
        const last = this.outputs[this.outputs.length - 1];
        if (last?.kind === 'stream' && last.name === name) last.text += text;
        else this.outputs.push({ kind: 'stream', name, text, droppedLines: 0 });
        this.cut(this.outputs[this.outputs.length - 1] as Extract<Output, { kind: 'stream' }>);
        return true;
      }
      case 'display_data':
      case 'execute_result': {
        const c = content as DisplayContent;
        this.takePendingClear();
        this.outputs.push({ kind: 'display', data: isRecord(c.data) ? c.data : {}, metadata: isRecord(c.metadata) ? c.metadata : {}, displayId: displayIdOf(c) });
        return true;
      }
      case 'update_display_data':
        return this.updateDisplay(content);
      case 'clear_output':
        if (content.wait === true) {
          this.clearPending = true;
          return false;
        }
        this.outputs = [];
        return true;
      case 'error':
        this.takePendingClear();
        this.outputs.push({
          kind: 'error',
          ename: String(content.ename ?? 'Error'),
          evalue: String(content.evalue ?? ''),
          traceback: Array.isArray(content.traceback) ? content.traceback.map(String) : [],
        });
        return true;
      default:
        return false;
    }
  }

  /** Replaces the display `display_id` if this cell shows it; true when it did. */
  updateDisplay(content: Record<string, unknown>): boolean {
    const c = content as DisplayContent;
    const id = displayIdOf(c);
    let changed = false;
    for (const o of this.outputs) {
      if (o.kind === 'display' && id !== undefined && o.displayId === id) {
        o.data = isRecord(c.data) ? c.data : {};
        o.metadata = isRecord(c.metadata) ? c.metadata : {};
        changed = true;
      }
    }
    return changed;
  }

  hasDisplay(id: string): boolean {
    return this.outputs.some((o) => o.kind === 'display' && o.displayId === id);
  }

  /** An error output of the extension's own, e.g. why a queued cell did not run. */
  addNote(ename: string, evalue: string): void {
    this.outputs.push({ kind: 'error', ename, evalue, traceback: [] });
  }

  hasError(): boolean {
    return this.outputs.some((o) => o.kind === 'error');
  }

  toCellOutputs(): vscode.NotebookCellOutput[] {
    return this.outputs.map((o) => {
      if (o.kind === 'stream') {
        const notice = o.droppedLines > 0 ? `[Hearth: ${o.droppedLines} earlier lines are not shown here; the whole output is in the kernel's log (Hearth: Show Kernel Log)]\n` : '';
        const item = o.name === 'stderr' ? vscode.NotebookCellOutputItem.stderr(notice + o.text) : vscode.NotebookCellOutputItem.stdout(notice + o.text);
        return new vscode.NotebookCellOutput([item], { outputType: 'stream', name: o.name });
      }
      if (o.kind === 'error') {
        const err = new Error(o.evalue);
        err.name = o.ename;
        // VS Code's error renderer draws `stack` (ANSI colours included) when there is one.
        err.stack = o.traceback.length > 0 ? o.traceback.join('\n') : `${o.ename}: ${o.evalue}`;
        return new vscode.NotebookCellOutput([vscode.NotebookCellOutputItem.error(err)], { outputType: 'error' });
      }
      const items = Object.entries(o.data)
        .sort(([a], [b]) => rank(a) - rank(b))
        .flatMap(([mime, value]) => {
          const item = toItem(mime, value);
          return item ? [item] : [];
        });
      return new vscode.NotebookCellOutput(items, { ...o.metadata, outputType: 'display_data', ...(o.displayId ? { displayId: o.displayId } : {}) });
    });
  }

  private takePendingClear(): void {
    if (!this.clearPending) return;
    this.clearPending = false;
    this.outputs = [];
  }

  private cut(o: Extract<Output, { kind: 'stream' }>): void {
    // Cheap check first: a text shorter than the limit in lines cannot be over it.
    if (o.text.length <= this.lineLimit) return;
    let n = 0;
    let i = o.text.length - 1;
    // A trailing newline ends the last line; it does not start another.
    if (o.text.endsWith('\n')) i--;
    for (; i >= 0; i--) {
      if (o.text.charCodeAt(i) === 10 && ++n === this.lineLimit) break;
    }
    if (i < 0) return;
    const head = o.text.slice(0, i + 1);
    let dropped = 0;
    for (let j = 0; j < head.length; j++) if (head.charCodeAt(j) === 10) dropped++;
    o.droppedLines += dropped;
    o.text = o.text.slice(i + 1);
  }
}

function displayIdOf(c: DisplayContent): string | undefined {
  const id = isRecord(c.transient) ? c.transient.display_id : undefined;
  return typeof id === 'string' ? id : undefined;
}

function rank(mime: string): number {
  const i = MIME_ORDER.indexOf(mime);
  return i < 0 ? MIME_ORDER.length : i;
}

function toItem(mime: string, value: unknown): vscode.NotebookCellOutputItem | undefined {
  if (mime === 'application/json' || mime.endsWith('+json')) return vscode.NotebookCellOutputItem.json(value, mime);
  const text = Array.isArray(value) ? value.map(String).join('') : typeof value === 'string' ? value : undefined;
  if (text === undefined) return undefined;
  // Jupyter sends binary types (images) as base64 text; VS Code wants the bytes.
  if (mime.startsWith('image/') && mime !== 'image/svg+xml') return new vscode.NotebookCellOutputItem(Buffer.from(text, 'base64'), mime);
  return vscode.NotebookCellOutputItem.text(text, mime);
}
