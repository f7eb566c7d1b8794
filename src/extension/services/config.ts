import * as vscode from 'vscode';
import { DEFAULT_OUTPUTS } from '../../client/submit-run';

export const DEFAULT_BROKER_URL = 'http://127.0.0.1:7777';

export interface HearthConfig {
  readonly brokerUrl: string;
  /** true when a person (user, workspace or folder settings) chose the broker URL */
  readonly brokerUrlIsSet: boolean;
  readonly autoPull: boolean;
  readonly outputs: readonly string[];
  readonly logdir: string;
  /** the packages file of runs, relative to the workspace folder; '' for requirements.txt / pyproject.toml */
  readonly requirementsFile: string;
  readonly pollIntervalSeconds: number;
  /** how long a request may go unanswered before the broker counts as unreachable */
  readonly requestTimeoutSeconds: number;
}

function read(): HearthConfig {
  const c = vscode.workspace.getConfiguration('hearth');
  const inspected = c.inspect<string>('brokerUrl');
  const brokerUrlIsSet =
    inspected?.globalValue !== undefined ||
    inspected?.workspaceValue !== undefined ||
    inspected?.workspaceFolderValue !== undefined;
  const outputs = c.get<unknown>('outputs');
  const poll = c.get<number>('pollIntervalSeconds', 5);
  const timeout = c.get<number>('requestTimeoutSeconds', 15);
  return {
    brokerUrl: normalizeUrl(c.get<string>('brokerUrl', DEFAULT_BROKER_URL) || DEFAULT_BROKER_URL),
    brokerUrlIsSet,
    autoPull: c.get<boolean>('autoPull', false),
    outputs: Array.isArray(outputs) ? outputs.filter((o): o is string => typeof o === 'string' && o !== '') : DEFAULT_OUTPUTS,
    logdir: (c.get<string>('logdir', 'runs') || 'runs').replace(/^\.\/+/, '').replace(/\/+$/, '') || 'runs',
    requirementsFile: (c.get<string>('requirementsFile', '') || '').trim().replace(/^\.\/+/, ''),
    // a poll faster than a second only loads the broker; slower than 5 minutes looks broken
    pollIntervalSeconds: Number.isFinite(poll) ? Math.min(300, Math.max(1, poll)) : 5,
    requestTimeoutSeconds: Number.isFinite(timeout) ? Math.min(600, Math.max(1, timeout)) : 15,
  };
}

/** `http://host:7777/` and `http://host:7777` are the same broker: one key in SecretStorage. */
export function normalizeUrl(url: string): string {
  return url.trim().replace(/\/+$/, '');
}

/** The `hearth.*` settings as one typed, always-current object. */
export class Config implements vscode.Disposable {
  private value = read();
  private readonly emitter = new vscode.EventEmitter<HearthConfig>();
  private readonly sub: vscode.Disposable;
  readonly onDidChange = this.emitter.event;

  constructor() {
    this.sub = vscode.workspace.onDidChangeConfiguration((e) => {
      if (!e.affectsConfiguration('hearth')) return;
      this.value = read();
      this.emitter.fire(this.value);
    });
  }

  get current(): HearthConfig {
    return this.value;
  }

  async setBrokerUrl(url: string): Promise<void> {
    await vscode.workspace.getConfiguration('hearth').update('brokerUrl', normalizeUrl(url), vscode.ConfigurationTarget.Global);
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}
