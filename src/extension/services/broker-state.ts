import * as vscode from 'vscode';
import { BrokerError, type BrokerClient } from '../../client/api';
import type { Balance, Job, Lease, Me, Offer } from '../../shared/protocol';
import type { BrokerConnection } from './broker-connection';
import type { Config } from './config';
import { errorMessage } from './errors';
import { isLocalBroker, shownJob, shownLease, shownOffer } from '../views/format';

export interface BrokerSnapshot {
  readonly connected: boolean;
  readonly url: string | undefined;
  readonly me: Me | undefined;
  readonly offers: readonly Offer[];
  readonly leases: readonly Lease[];
  readonly jobs: readonly Job[];
  /** the account's balance, escrow and earnings (undefined from a broker without a ledger) */
  readonly balance: Balance | undefined;
  /** why the last refresh failed, if it did */
  readonly error: string | undefined;
  /** Date.now() of the last refresh that reached the broker */
  readonly fetchedAt: number;
  /** the last refresh did not reach the broker (down, hung past the request timeout) */
  readonly unreachable: boolean;
  /** me, offers, leases and jobs are what the broker said at fetchedAt, before it became unreachable */
  readonly stale: boolean;
}

const EMPTY: BrokerSnapshot = {
  connected: false,
  url: undefined,
  me: undefined,
  offers: [],
  leases: [],
  jobs: [],
  balance: undefined,
  error: undefined,
  fetchedAt: 0,
  unreachable: false,
  stale: false,
};

/**
 * One poll of the broker feeds all three views and the status bar, so they always agree with
 * each other, and the broker sees one set of requests per interval however many views are open.
 */
export class BrokerState implements vscode.Disposable {
  private snap: BrokerSnapshot = EMPTY;
  private inflight: Promise<BrokerSnapshot> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private disposed = false;
  /** the values last given to the context keys the welcome views read */
  private contextKeys: Record<string, boolean> = {};
  private readonly emitter = new vscode.EventEmitter<BrokerSnapshot>();
  private readonly subs: vscode.Disposable[] = [];
  readonly onDidChange = this.emitter.event;

  constructor(
    private readonly connection: BrokerConnection,
    private readonly config: Config,
    private readonly log: vscode.LogOutputChannel,
  ) {
    this.subs.push(
      connection.onDidChange(() => void this.refresh()),
      config.onDidChange(() => this.schedule()),
    );
  }

  get current(): BrokerSnapshot {
    return this.snap;
  }

  start(): void {
    void this.refresh();
  }

  private schedule(): void {
    if (this.disposed) return;
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.refresh(), this.config.current.pollIntervalSeconds * 1000);
  }

  /** Fetches offers, leases and jobs now; concurrent callers share one round trip (plus one after it). */
  refresh(): Promise<BrokerSnapshot> {
    if (this.inflight) {
      this.again = true;
      return this.inflight.then(() => this.inflight ?? this.snap);
    }
    this.inflight = this.fetch().finally(() => {
      this.inflight = undefined;
      if (this.again) {
        this.again = false;
        void this.refresh();
      } else {
        this.schedule();
      }
    });
    return this.inflight;
  }

  private async fetch(): Promise<BrokerSnapshot> {
    this.connection.checkCliConfig();
    let client: BrokerClient | undefined;
    try {
      client = await this.connection.client();
      const [me, offers, leases, jobs, balance] = await Promise.all([
        client.me(),
        client.offers(),
        client.leases(),
        client.jobs(),
        // An older broker has no ledger: the views show no balance then, nothing fails.
        client.balance().catch(() => undefined),
      ]);
      this.set({
        connected: true,
        url: client.url,
        me,
        // Worker text made safe to show once, here, for every view that reads the snapshot.
        offers: offers.map(shownOffer),
        leases: leases.filter((l) => l.status === 'active').map(shownLease),
        jobs: [...jobs].sort((a, b) => b.createdAt - a.createdAt).map(shownJob),
        balance,
        error: undefined,
        fetchedAt: Date.now(),
        unreachable: false,
        stale: false,
      });
    } catch (err) {
      const error = errorMessage(err);
      if (this.snap.connected || this.snap.error !== error) this.log.warn(`broker not reachable: ${error}`);
      // a refused connection or a timeout; a reply cut short (undici's TypeError); a proxy's 502–504
      const unreachable = err instanceof BrokerError ? err.code === 'unreachable' || err.status >= 502 : err instanceof TypeError;
      // An outage keeps what the same broker last said on screen (marked stale) rather than
      // emptying the views; another broker, or a refusal (a bad token), starts from nothing.
      const keep = unreachable && this.snap.fetchedAt > 0 && this.snap.url === client?.url;
      this.set(keep ? { ...this.snap, connected: false, error, unreachable, stale: true } : { ...EMPTY, url: client?.url, error, unreachable });
    }
    return this.snap;
  }

  private set(next: BrokerSnapshot): void {
    if (this.disposed) return;
    const keys: Record<string, boolean> = {
      'hearth.connected': next.connected,
      'hearth.unreachable': !next.connected && next.unreachable,
      'hearth.remoteBroker': !isLocalBroker(next.url),
    };
    for (const [k, v] of Object.entries(keys)) {
      if (this.contextKeys[k] === v) continue;
      this.contextKeys[k] = v;
      void vscode.commands.executeCommand('setContext', k, v);
    }
    this.snap = next;
    this.emitter.fire(next);
  }

  dispose(): void {
    this.disposed = true;
    clearTimeout(this.timer);
    for (const s of this.subs) s.dispose();
    this.emitter.dispose();
  }
}
