import * as vscode from 'vscode';
import { CommandId } from '../commands/command-ids';
import { runLogUri } from '../commands/run-log-document';
import type { HearthServices } from '../hearth-services';
import type { HearthNotebooks } from './kernel-controllers';

/** The notebook toolbar's Hearth commands; each acts on the active notebook (or a notebook URI). */
export function kernelCommandHandlers(s: HearthServices, notebooks: HearthNotebooks): Record<string, (...args: unknown[]) => unknown> {
  return {
    [CommandId.restartKernel]: async (arg) => (await notebooks.restart(arg))?.sessionId,
    [CommandId.restartKernelAndRunAll]: async (arg) => (await notebooks.restartAndRunAll(arg))?.sessionId,
    [CommandId.openKernelPanel]: (arg) => {
      const id = notebooks.requireActive(arg).sessionId;
      s.openPanel(id);
      return id;
    },
    [CommandId.showKernelLog]: async (arg) => {
      const k = notebooks.requireActive(arg);
      const doc = await vscode.workspace.openTextDocument(runLogUri(k.sessionId, k.notebook.uri.path.split('/').pop() ?? 'kernel'));
      await vscode.window.showTextDocument(doc, { preview: false });
      return doc;
    },
    [CommandId.shutDownKernel]: (arg) => notebooks.shutDown(arg),
  };
}
