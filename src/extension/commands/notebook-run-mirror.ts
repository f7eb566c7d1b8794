// A whole-notebook run (a job whose entry is the notebook) reports each cell's outputs as kernel
// events named `cell_<index in the notebook>`. While the notebook is open in the editor, they
// appear in its cells as they come, as if it ran there with Run All: the same CellOutputs that
// the Hearth kernel uses (streams merged, displays updated in place, long streams cut).
import * as vscode from 'vscode';
import type { BrokerClient } from '../../client/api';
import { CellOutputs } from '../kernel/cell-outputs';

const CELL = /^cell_(\d{8})$/;
/** Edits are batched: a cell printing fast must not make one workspace edit per line. */
const FLUSH_MS = 200;

interface CellState {
  outputs: CellOutputs;
  order?: number;
  success?: boolean;
}

/**
 * Follows the run's events into the notebook at `uri` (when it is open) until the run ends.
 * Outputs are written by replacing the cell with itself plus its outputs, so the notebook needs
 * no kernel selected for it; the person's source and cell metadata are kept as they are then.
 */
export function mirrorNotebookRun(
  client: BrokerClient,
  jobId: string,
  uri: vscode.Uri,
  lineLimit: number,
  onError: (err: Error) => void,
): vscode.Disposable {
  const ac = new AbortController();
  const cells = new Map<number, CellState>();
  const dirty = new Set<number>();
  let cleared = false;
  let timer: NodeJS.Timeout | undefined;

  const flush = async (): Promise<void> => {
    timer = undefined;
    const doc = vscode.workspace.notebookDocuments.find((d) => d.uri.toString() === uri.toString());
    if (!doc) return void dirty.clear();
    const edits: vscode.NotebookEdit[] = [];
    for (const i of [...dirty].sort((a, b) => a - b)) {
      if (i >= doc.cellCount) continue;
      const cell = doc.cellAt(i);
      if (cell.kind !== vscode.NotebookCellKind.Code) continue;
      const st = cells.get(i);
      const data = new vscode.NotebookCellData(cell.kind, cell.document.getText(), cell.document.languageId);
      data.metadata = cell.metadata;
      data.outputs = st ? st.outputs.toCellOutputs() : [];
      if (st?.order !== undefined) data.executionSummary = { executionOrder: st.order, ...(st.success !== undefined ? { success: st.success } : {}) };
      edits.push(vscode.NotebookEdit.replaceCells(new vscode.NotebookRange(i, i + 1), [data]));
    }
    dirty.clear();
    if (edits.length === 0) return;
    const edit = new vscode.WorkspaceEdit();
    edit.set(uri, edits);
    await vscode.workspace.applyEdit(edit);
  };
  const schedule = () => {
    timer ??= setTimeout(() => void flush().catch(onError), FLUSH_MS);
  };

  void (async () => {
    for await (const e of client.events(jobId, { follow: true, signal: ac.signal })) {
      const b = e.body;
      if (b.type !== 'kernel' || !b.requestId) continue;
      const m = CELL.exec(b.requestId);
      if (!m) continue;
      if (!cleared) {
        // The run starts from a clean notebook, as Run All does: every code cell loses its old outputs.
        cleared = true;
        const doc = vscode.workspace.notebookDocuments.find((d) => d.uri.toString() === uri.toString());
        for (let i = 0; doc && i < doc.cellCount; i++) if (doc.cellAt(i).kind === vscode.NotebookCellKind.Code) dirty.add(i);
      }
      const i = Number(m[1]);
      let st = cells.get(i);
      if (!st) cells.set(i, (st = { outputs: new CellOutputs(lineLimit) }));
      if (b.msgType === 'execute_input') st.order = Number(b.content.execution_count);
      else if (b.msgType === 'execute_reply') st.success = b.content.status === 'ok';
      else if (b.msgType !== 'execute_request' && b.msgType !== 'status' && !st.outputs.apply(b.msgType, b.content)) continue;
      dirty.add(i);
      schedule();
    }
    if (timer) clearTimeout(timer);
    await flush();
  })().catch((err: Error) => {
    if (!ac.signal.aborted) onError(err);
  });
  return {
    dispose: () => {
      ac.abort();
      if (timer) clearTimeout(timer);
    },
  };
}
