import * as vscode from 'vscode';
import { CommandId } from './commands/command-ids';
import type { BrokerState } from './services/broker-state';
import { brokerHost, costNow, formatCredits, formatDuration, formatRate, msLeft } from './views/format';

const WARN_BEFORE_MS = 5 * 60_000;

/** The active lease at a glance (the one that ends first), and one warning before it expires. */
export class LeaseStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('hearth.lease', vscode.StatusBarAlignment.Left, 50);
  private readonly sub: vscode.Disposable;
  private readonly ticker: NodeJS.Timeout;
  private readonly warned = new Set<string>();
  private shown = false;

  constructor(
    private readonly state: BrokerState,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.item.name = 'Hearth Lease';
    this.sub = state.onDidChange(() => this.update());
    // Seconds matter in the last minutes of a lease.
    this.ticker = setInterval(() => this.update(), 1000);
    this.update();
  }

  update(): void {
    const s = this.state.current;
    const leases = [...s.leases].sort((a, b) => a.expiresAt - b.expiresAt);
    const lease = leases[0];
    if (!s.connected && s.unreachable) {
      // an outage is news only to someone who was using the broker, or who holds a lease there
      this.item.text = '$(debug-disconnect) Hearth: broker unreachable — retrying';
      this.item.tooltip = [
        `${s.url ?? 'The broker'} does not answer: ${s.error ?? 'no reply'}.`,
        ...(s.stale ? [`Last heard at ${new Date(s.fetchedAt).toLocaleTimeString()}; the views show what it said then.`] : []),
        ...(lease ? [`Last known lease: ${lease.gpuModel} ×${lease.count} on ${lease.workerName}, until ${new Date(lease.expiresAt).toLocaleTimeString()}.`] : []),
        'Click to retry now.',
      ].join('\n');
      this.item.backgroundColor = new vscode.ThemeColor('statusBarItem.warningBackground');
      this.item.command = { command: CommandId.refresh, title: 'Retry' };
      this.item.show();
      this.shown = true;
      return;
    }
    if (!s.connected || !lease) {
      this.item.hide();
      this.shown = false;
      return;
    }
    const left = msLeft(lease.expiresAt);
    const more = leases.length > 1 ? ` +${leases.length - 1}` : '';
    this.item.text = `$(flame) ${lease.gpuModel} · ${formatDuration(left)} left · ${formatCredits(costNow(lease, s.fetchedAt))} cr${more}`;
    this.item.tooltip = `Hearth lease ${lease.id} on ${lease.workerName}: ${lease.count} × ${lease.gpuModel} at ${formatRate(lease.pricePerHour)}, ${formatCredits(costNow(lease, s.fetchedAt))} cr so far${s.me ? `; ${s.me.name} @ ${brokerHost(s.url)}` : ''}. Click to renew.`;
    this.item.backgroundColor = left < WARN_BEFORE_MS ? new vscode.ThemeColor('statusBarItem.warningBackground') : undefined;
    this.item.command = { command: CommandId.renewLease, title: 'Renew Lease', arguments: [lease.id] };
    this.item.show();
    this.shown = true;

    for (const l of leases) {
      // Near a cost cap or the account's spend limit: said once per lease, as the broker says it.
      if (l.spendWarning && !this.spendWarned.has(l.id)) {
        this.spendWarned.add(l.id);
        this.log.warn(`lease ${l.id}: ${l.spendWarning}`);
        void vscode.window.showWarningMessage(`Hearth: ${l.gpuModel} ×${l.count} on ${l.workerName}: ${l.spendWarning}.`);
      }
      const ms = msLeft(l.expiresAt);
      if (ms > 0 && ms < WARN_BEFORE_MS && !this.warned.has(l.id)) {
        this.warned.add(l.id);
        this.log.info(`lease ${l.id} ends in ${formatDuration(ms)}`);
        void vscode.window
          .showWarningMessage(`Hearth: your lease of ${l.gpuModel} ×${l.count} on ${l.workerName} ends in ${formatDuration(ms)}.`, 'Renew')
          .then((choice) => {
            if (choice === 'Renew') void vscode.commands.executeCommand(CommandId.renewLease, l.id);
          });
      }
    }
  }

  /** what the status bar shows now (undefined when hidden), for tests */
  get text(): string | undefined {
    return this.shown ? this.item.text : undefined;
  }

  /** leases whose spend warning was shown */
  private readonly spendWarned = new Set<string>();

  /** leases whose expiry warning was shown */
  get warnedLeaseIds(): string[] {
    return [...this.warned];
  }

  dispose(): void {
    clearInterval(this.ticker);
    this.sub.dispose();
    this.item.dispose();
  }
}
