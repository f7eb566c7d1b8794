import * as vscode from 'vscode';
import type { BrokerClient } from '../../client/api';
import { isTerminal, type Artifact, type Job, type JobStatus } from '../../shared/protocol';
import type { BrokerState } from '../services/broker-state';
import { escapeMarkdown, formatBytes, formatDuration, rowTooltip } from './format';
import { visibleText } from '../../shared/terminal-text';

const STATUS_ICON: Record<JobStatus, { icon: string; color?: string }> = {
  queued: { icon: 'clock' },
  running: { icon: 'sync~spin', color: 'charts.blue' },
  succeeded: { icon: 'pass', color: 'testing.iconPassed' },
  failed: { icon: 'error', color: 'testing.iconFailed' },
  cancelled: { icon: 'circle-slash', color: 'disabledForeground' },
  lost: { icon: 'question', color: 'list.warningForeground' },
};

export function statusIcon(status: JobStatus): vscode.ThemeIcon {
  const s = STATUS_ICON[status];
  return new vscode.ThemeIcon(s.icon, s.color ? new vscode.ThemeColor(s.color) : undefined);
}

export class JobItem extends vscode.TreeItem {
  readonly kind = 'job' as const;
  constructor(readonly job: Job) {
    super(job.entry, vscode.TreeItemCollapsibleState.Collapsed);
    const took =
      job.startedAt !== null ? ` · ${formatDuration((job.endedAt ?? Date.now()) - job.startedAt)}` : '';
    this.id = `job:${job.id}`;
    this.description = `${job.status}${took} · ${job.id}`;
    this.tooltip = new vscode.MarkdownString(
      rowTooltip(`${job.entry}`, this.description, [
        `${job.status}${job.exitCode !== null ? ` (exit ${job.exitCode})` : ''}, lease \`${job.leaseId}\``,
        `submitted ${new Date(job.createdAt).toLocaleString()}`,
        ...(job.reason ? [`reason: ${escapeMarkdown(job.reason)}`] : []),
      ]),
    );
    this.iconPath = statusIcon(job.status);
    // job.running, job.queued, job.succeeded, … : menus match on the prefix and the status.
    this.contextValue = `job.${job.status}${isTerminal(job.status) ? '.done' : '.live'}`;
    this.command = { command: 'hearth.openRunPanel', title: 'Open Run Panel', arguments: [job.id] };
  }
}

export class ArtifactItem extends vscode.TreeItem {
  readonly kind = 'artifact' as const;
  constructor(
    readonly jobId: string,
    readonly artifact: Artifact,
  ) {
    super(visibleText(artifact.path), vscode.TreeItemCollapsibleState.None);
    this.id = `artifact:${jobId}:${artifact.path}`;
    this.description = formatBytes(artifact.size);
    this.tooltip = `${visibleText(artifact.path)}\n${formatBytes(artifact.size)}\nsha256 ${artifact.sha256}`;
    this.iconPath = vscode.ThemeIcon.File;
    this.resourceUri = vscode.Uri.file(`/${artifact.path}`);
    this.contextValue = 'artifact';
  }
}

class MessageItem extends vscode.TreeItem {
  readonly kind = 'message' as const;
  constructor(label: string) {
    super(label, vscode.TreeItemCollapsibleState.None);
    this.contextValue = 'message';
  }
}

export type RunTreeItem = JobItem | ArtifactItem | MessageItem;

/** The Runs view: this account's jobs, newest first, with their artifacts as children. */
export class RunTreeProvider implements vscode.TreeDataProvider<RunTreeItem>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<RunTreeItem | undefined>();
  private readonly sub: vscode.Disposable;
  // A terminal job's artifacts never change: fetch them once.
  private readonly artifactCache = new Map<string, Artifact[]>();
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(
    private readonly state: BrokerState,
    private readonly getClient: () => Promise<BrokerClient>,
  ) {
    this.sub = state.onDidChange(() => this.emitter.fire(undefined));
  }

  getTreeItem(e: RunTreeItem): vscode.TreeItem {
    return e;
  }

  async getChildren(e?: RunTreeItem): Promise<RunTreeItem[]> {
    if (!e) return this.state.current.jobs.map((j) => new JobItem(j));
    if (!(e instanceof JobItem)) return [];
    const arts = await this.artifacts(e.job);
    if (arts.length === 0) return [new MessageItem(isTerminal(e.job.status) ? 'no artifacts' : 'artifacts appear when the run ends')];
    return arts.map((a) => new ArtifactItem(e.job.id, a));
  }

  async artifacts(job: Job): Promise<Artifact[]> {
    const cached = this.artifactCache.get(job.id);
    if (cached) return cached;
    const arts = await (await this.getClient()).artifacts(job.id);
    if (isTerminal(job.status)) this.artifactCache.set(job.id, arts);
    return arts;
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}
