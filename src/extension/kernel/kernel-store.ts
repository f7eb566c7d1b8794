import type * as vscode from 'vscode';

/** What the extension keeps of a notebook's kernel session across windows and reloads. */
export interface StoredKernel {
  sessionId: string;
  leaseId: string;
  /** the seq of the last event whose effect is in the cells */
  appliedSeq: number;
  /**
   * where a reattach reads the log from (exclusive): just before the execute_request of the oldest
   * request that had not ended at appliedSeq (every request with news after appliedSeq starts after it)
   */
  fromSeq: number;
  /** request id → the cell it runs (index, and the code the broker logs with it) */
  requests: Record<string, { index: number; code: string }>;
}

const KEY = 'hearth.notebookKernels';

/** The sessions of this workspace's notebooks, by notebook URI, in workspaceState. */
export class KernelStore {
  constructor(private readonly memento: vscode.Memento) {}

  get(notebook: vscode.Uri): StoredKernel | undefined {
    return this.all()[notebook.toString()];
  }

  async set(notebook: vscode.Uri, value: StoredKernel | undefined): Promise<void> {
    const all = { ...this.all() };
    if (value) all[notebook.toString()] = value;
    else delete all[notebook.toString()];
    await this.memento.update(KEY, all);
  }

  private all(): Record<string, StoredKernel> {
    return this.memento.get<Record<string, StoredKernel>>(KEY) ?? {};
  }
}
