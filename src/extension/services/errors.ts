import * as vscode from 'vscode';
import { visibleLines } from '../../shared/terminal-text';

const SHOW_LOG = 'Show Log';

/** The message a person sees for an error: the broker's message (it may quote a worker: shown inert), not a stack. */
export function errorMessage(err: unknown): string {
  return visibleLines(err instanceof Error ? err.message : String(err));
}

export function isAbort(err: unknown): boolean {
  return (
    err instanceof Error &&
    (err.name === 'AbortError' || err instanceof vscode.CancellationError || (err as { code?: unknown }).code === 'ABORT_ERR')
  );
}

/**
 * Logs the error in full and shows a short message with "Show Log". Does not wait for the
 * person to answer, so a command that fails returns at once (tests and keybindings do not hang).
 */
export function showError(log: vscode.LogOutputChannel, what: string, err: unknown): void {
  log.error(`${what}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  void vscode.window.showErrorMessage(`Hearth: ${what}: ${errorMessage(err)}`, SHOW_LOG).then((choice) => {
    if (choice === SHOW_LOG) log.show(true);
  });
}
