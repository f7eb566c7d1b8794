import * as vscode from 'vscode';
import type { Lease } from '../../shared/protocol';
import type { BrokerState } from '../services/broker-state';
import { leaseLimitsText } from '../../shared/money';
import { costNow, formatCredits, formatDuration, formatRate, msLeft, rowTooltip } from './format';

export class LeaseItem extends vscode.TreeItem {
  readonly kind = 'lease' as const;
  constructor(
    readonly lease: Lease,
    fetchedAt: number,
  ) {
    super(`${lease.gpuModel} ×${lease.count}`, vscode.TreeItemCollapsibleState.None);
    const left = msLeft(lease.expiresAt);
    this.id = `lease:${lease.id}`;
    this.description = `${formatDuration(left)} left · ${formatCredits(costNow(lease, fetchedAt))} cr so far · ${formatRate(lease.pricePerHour)} · ${lease.workerName}`;
    this.tooltip = new vscode.MarkdownString(
      rowTooltip(`${lease.gpuModel} ×${lease.count} on ${lease.workerName}`, this.description, [
        `lease \`${lease.id}\`, expires ${new Date(lease.expiresAt).toLocaleString()}`,
        `rate: ${lease.pricePerHour} credits per device-hour, ${lease.count} device${lease.count === 1 ? '' : 's'}`,
        ...(leaseLimitsText(lease) ? [`limits: ${leaseLimitsText(lease)}`] : []),
        ...(lease.spendWarning ? [`$(warning) ${lease.spendWarning}`] : []),
      ]),
      true,
    );
    this.iconPath = lease.spendWarning
      ? new vscode.ThemeIcon('warning', new vscode.ThemeColor('list.warningForeground'))
      : new vscode.ThemeIcon('clock', left < 5 * 60_000 ? new vscode.ThemeColor('list.warningForeground') : undefined);
    this.contextValue = 'lease.active';
  }
}

/** The Leases view: the active leases of this account. */
export class LeaseTreeProvider implements vscode.TreeDataProvider<LeaseItem>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<LeaseItem | undefined>();
  private readonly sub: vscode.Disposable;
  // Time left and cost move every second; redrawing every 15 s keeps the view honest and cheap.
  private readonly ticker: NodeJS.Timeout;
  readonly onDidChangeTreeData = this.emitter.event;

  constructor(private readonly state: BrokerState) {
    this.sub = state.onDidChange(() => this.emitter.fire(undefined));
    this.ticker = setInterval(() => {
      if (this.state.current.leases.length > 0) this.emitter.fire(undefined);
    }, 15_000);
  }

  getTreeItem(e: LeaseItem): vscode.TreeItem {
    return e;
  }

  getChildren(e?: LeaseItem): LeaseItem[] {
    if (e) return [];
    const s = this.state.current;
    return [...s.leases].sort((a, b) => a.expiresAt - b.expiresAt).map((l) => new LeaseItem(l, s.fetchedAt));
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.sub.dispose();
    this.emitter.dispose();
  }
}
