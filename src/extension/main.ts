import * as vscode from 'vscode';
import type { BrokerClient } from '../client/api';
import { connectionCommandHandlers } from './commands/connection-commands';
import { CommandId, ViewId } from './commands/command-ids';
import { leaseCommandHandlers } from './commands/lease-commands';
import { RUN_LOG_SCHEME, RunLogDocuments } from './commands/run-log-document';
import { pullDestination, runCommandHandlers, RunWatcher } from './commands/run-commands';
import { secretHubCommandHandlers } from './commands/secret-hub-commands';
import { viewCommandHandlers } from './commands/view-commands';
import type { HearthServices } from './hearth-services';
import { kernelCommandHandlers } from './kernel/kernel-commands';
import { HearthNotebooks, leaseControllerId, NEW_LEASE_CONTROLLER_ID } from './kernel/kernel-controllers';
import type { KernelState } from './kernel/notebook-kernel';
import { RunPanel, type RunPanelDeps } from './panels/run-panel';
import { BrokerConnection } from './services/broker-connection';
import { BrokerState, type BrokerSnapshot } from './services/broker-state';
import { Config } from './services/config';
import { errorMessage, isAbort, showError } from './services/errors';
import { createLog } from './services/log';
import { Secrets } from './services/secrets';
import { LeaseStatusBar } from './status-bar';
import { GpuTreeProvider } from './views/gpu-tree';
import { LeaseTreeProvider } from './views/lease-tree';
import { RunTreeProvider } from './views/run-tree';
import { balanceText } from './views/format';

/** What activate() returns: a small surface for the extension-host tests. */
export interface HearthApi {
  client(): Promise<BrokerClient | undefined>;
  refresh(): Promise<BrokerSnapshot>;
  snapshot(): BrokerSnapshot;
  panelState: typeof RunPanel.state;
  readonly gpuTree: GpuTreeProvider;
  readonly leaseTree: LeaseTreeProvider;
  readonly runTree: RunTreeProvider;
  /** the status bar's lease item: its text (undefined when hidden) and the leases it warned about */
  statusBar(): { text: string | undefined; warnedLeaseIds: string[] };
  /** what each view shows in its title line and at its top (the outage message) */
  views(): Record<'gpus' | 'leases' | 'runs', { description: string | undefined; message: string | undefined }>;
  /** the error of the last command that failed (commands report errors and return undefined) */
  lastCommandError(): { command: string; message: string } | undefined;
  /** the notebook kernels: controller ids and the kernel of a notebook */
  readonly notebooks: {
    newLeaseControllerId: string;
    controllerId(leaseId: string): string;
    controllerIds(): string[];
    kernel(uri: vscode.Uri): { sessionId: string; leaseId: string; state: KernelState } | undefined;
    statusText(): string | undefined;
  };
}

const JOB_FOLDERS = 'hearth.jobFolders';

const COMMAND_TITLES: Record<string, string> = {
  [CommandId.runCurrentFile]: 'running the file',
  [CommandId.leaseGpu]: 'leasing a GPU',
  [CommandId.releaseLease]: 'releasing the lease',
  [CommandId.renewLease]: 'renewing the lease',
  [CommandId.cancelRun]: 'cancelling the run',
  [CommandId.pullWeights]: 'pulling the weights',
  [CommandId.openRunPanel]: 'opening the run panel',
  [CommandId.showRunLog]: 'showing the log',
  [CommandId.connect]: 'connecting',
  [CommandId.signOut]: 'signing out',
  [CommandId.startLocalNetwork]: 'starting the local network',
  [CommandId.restartKernel]: 'restarting the kernel',
  [CommandId.restartKernelAndRunAll]: 'restarting the kernel',
  [CommandId.openKernelPanel]: 'opening the kernel panel',
  [CommandId.showKernelLog]: 'showing the kernel log',
  [CommandId.shutDownKernel]: 'shutting down the kernel',
  [CommandId.setSecret]: 'setting the secret',
  [CommandId.pushToHub]: 'pushing to the Hugging Face Hub',
};

export async function activate(context: vscode.ExtensionContext): Promise<HearthApi> {
  const log = createLog();
  context.subscriptions.push(log);
  try {
    return build(context, log);
  } catch (err) {
    showError(log, 'activation failed', err);
    throw err;
  }
}

function build(context: vscode.ExtensionContext, log: vscode.LogOutputChannel): HearthApi {
  const subs = context.subscriptions;
  const config = new Config();
  const connection = new BrokerConnection(config, new Secrets(context.secrets), context.globalState, log);
  const state = new BrokerState(connection, config, log);
  subs.push(config, connection, state);
  const getClient = () => connection.client();

  const gpuTree = new GpuTreeProvider(state, context.workspaceState);
  const leaseTree = new LeaseTreeProvider(state);
  const runTree = new RunTreeProvider(state, getClient);
  subs.push(gpuTree, leaseTree, runTree);
  const gpuView = vscode.window.createTreeView(ViewId.gpus, { treeDataProvider: gpuTree, showCollapseAll: true });
  gpuTree.attach(gpuView);
  const leaseView = vscode.window.createTreeView(ViewId.leases, { treeDataProvider: leaseTree });
  const runView = vscode.window.createTreeView(ViewId.runs, { treeDataProvider: runTree, showCollapseAll: true });
  subs.push(gpuView, leaseView, runView);
  // In an outage the views keep what the broker last said, and say so at their top.
  const views: vscode.TreeView<unknown>[] = [gpuView, leaseView, runView];
  subs.push(
    state.onDidChange((snap) => {
      const message = outageMessage(snap);
      for (const v of views) if (v.message !== message) v.message = message;
      const balance = balanceText(snap.balance);
      if (leaseView.description !== balance) leaseView.description = balance;
    }),
  );

  const jobFolder = (jobId: string): vscode.Uri | undefined => {
    const f = context.workspaceState.get<Record<string, string>>(JOB_FOLDERS)?.[jobId];
    return f ? vscode.Uri.parse(f) : undefined;
  };
  const panelDeps: RunPanelDeps = { getClient, log, jobFolder, pullDestination: (jobId) => pullDestination(services, jobId) };
  subs.push(RunPanel.registerSerializer(context, panelDeps));

  const services: HearthServices = {
    context,
    log,
    config,
    connection,
    state,
    gpuTree,
    leaseTree,
    runTree,
    getClient,
    openPanel: (jobId) => void RunPanel.createOrShow(context, panelDeps, jobId),
    jobFolder,
    rememberJobFolder: async (jobId, folder) => {
      const all = { ...context.workspaceState.get<Record<string, string>>(JOB_FOLDERS) };
      all[jobId] = folder.toString();
      // The map only has to cover recent runs; keep it from growing without bound.
      const keys = Object.keys(all);
      for (const k of keys.slice(0, Math.max(0, keys.length - 500))) delete all[k];
      await context.workspaceState.update(JOB_FOLDERS, all);
    },
  };

  const logDocs = new RunLogDocuments(services);
  const watcher = new RunWatcher(services);
  subs.push(logDocs, watcher, vscode.workspace.registerTextDocumentContentProvider(RUN_LOG_SCHEME, logDocs));
  const statusBar = new LeaseStatusBar(state, log);
  const notebooks = new HearthNotebooks(services);
  subs.push(statusBar, notebooks);

  let lastError: { command: string; message: string } | undefined;
  const handlers = {
    ...runCommandHandlers(services, watcher),
    ...leaseCommandHandlers(services),
    ...connectionCommandHandlers(services),
    ...viewCommandHandlers(services),
    ...kernelCommandHandlers(services, notebooks),
    ...secretHubCommandHandlers(services),
  };
  for (const [id, handler] of Object.entries(handlers)) {
    subs.push(
      vscode.commands.registerCommand(id, async (...args: unknown[]) => {
        try {
          return await handler(...args);
        } catch (err) {
          if (isAbort(err)) {
            log.info(`${id}: cancelled`);
            return undefined;
          }
          lastError = { command: id, message: errorMessage(err) };
          // A command from a menu has nobody to return an error to: report it here, once.
          showError(log, COMMAND_TITLES[id] ?? id, err);
          return undefined;
        }
      }),
    );
  }

  state.start();
  log.info(`Hearth ${context.extension.packageJSON.version as string} activated`);

  return {
    client: async () => {
      try {
        return await connection.client();
      } catch {
        return undefined;
      }
    },
    refresh: () => state.refresh(),
    snapshot: () => state.current,
    panelState: (jobId) => RunPanel.state(jobId),
    gpuTree,
    leaseTree,
    runTree,
    statusBar: () => ({ text: statusBar.text, warnedLeaseIds: statusBar.warnedLeaseIds }),
    lastCommandError: () => lastError,
    views: () => {
      const v = (t: vscode.TreeView<unknown>) => ({ description: t.description, message: t.message });
      return { gpus: v(gpuView), leases: v(leaseView), runs: v(runView) };
    },
    notebooks: {
      newLeaseControllerId: NEW_LEASE_CONTROLLER_ID,
      controllerId: leaseControllerId,
      controllerIds: () => notebooks.controllerIds(),
      kernel: (uri) => {
        const k = notebooks.kernel(uri);
        return k && { sessionId: k.sessionId, leaseId: k.lease.id, state: k.state };
      },
      statusText: () => notebooks.statusText,
    },
  };
}

/** What the views say at their top while the broker does not answer; undefined when it does. */
export function outageMessage(snap: BrokerSnapshot): string | undefined {
  if (snap.connected || !snap.unreachable) return undefined;
  const when = snap.stale ? ` Showing what it said at ${new Date(snap.fetchedAt).toLocaleTimeString()} (stale).` : '';
  return `⚠ Broker unreachable — retrying.${when}`;
}

export function deactivate(): void {
  // Everything is in context.subscriptions; VS Code disposes it. Kernel sessions are left
  // running on purpose: a reload or a new window reattaches to them.
}
