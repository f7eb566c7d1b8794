// Commands are called from the palette (no argument), from tree items (the item), from the status
// bar and from tests (plain ids or option objects). These turn any of those into an id.
import * as vscode from 'vscode';
import type { Job, Lease } from '../../shared/protocol';
import { hoursPriceMessage, parseHours } from './lease-texts';

function field(arg: unknown, ...path: string[]): unknown {
  let v: unknown = arg;
  for (const k of path) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[k];
  }
  return v;
}

export function jobIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg) return arg;
  const id = field(arg, 'job', 'id') ?? field(arg, 'jobId');
  return typeof id === 'string' ? id : undefined;
}

export function leaseIdOf(arg: unknown): string | undefined {
  if (typeof arg === 'string' && arg) return arg;
  const id = field(arg, 'lease', 'id') ?? field(arg, 'leaseId');
  return typeof id === 'string' ? id : undefined;
}

export async function pickJob(jobs: readonly Job[], placeHolder: string): Promise<string | undefined> {
  if (jobs.length === 0) {
    void vscode.window.showInformationMessage('Hearth: no runs to choose from.');
    return undefined;
  }
  const pick = await vscode.window.showQuickPick(
    jobs.map((j) => ({ label: j.entry, description: `${j.status} · ${j.id}`, detail: new Date(j.createdAt).toLocaleString(), id: j.id })),
    { placeHolder },
  );
  return pick?.id;
}

export async function pickLease(leases: readonly Lease[], placeHolder: string): Promise<string | undefined> {
  if (leases.length === 0) {
    void vscode.window.showInformationMessage('Hearth: you hold no active lease.');
    return undefined;
  }
  if (leases.length === 1) return leases[0]!.id;
  const pick = await vscode.window.showQuickPick(
    leases.map((l) => ({
      label: `${l.gpuModel} ×${l.count}`,
      description: `${l.workerName} · ${l.id}`,
      detail: `until ${new Date(l.expiresAt).toLocaleTimeString()}`,
      id: l.id,
    })),
    { placeHolder },
  );
  return pick?.id;
}

/**
 * A positive number of hours from an input box; undefined when the person dismissed it. With a
 * price, the box says what the hours typed cost ("A100 · 2.5 cr/h · 4 h = 10 cr") as they type.
 */
export async function askHours(prompt: string, value = '1', price?: { gpuModel: string; pricePerHour: number; count?: number }): Promise<number | undefined> {
  const text = await vscode.window.showInputBox({
    prompt,
    value,
    validateInput: (v) => {
      if (parseHours(v) === undefined) return 'hours: a number above 0, at most 720';
      const message = price && hoursPriceMessage(price, v);
      return message ? { message, severity: vscode.InputBoxValidationSeverity.Info } : undefined;
    },
  });
  return text === undefined ? undefined : Number(text);
}
