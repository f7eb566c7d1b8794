import * as vscode from 'vscode';
import { networkText } from '../../shared/network-text';
import type { Offer } from '../../shared/protocol';
import type { BrokerState } from '../services/broker-state';
import { brokerHost, escapeMarkdown, formatRate, formatReliability, formatVram, rowTooltip } from './format';

export interface GpuFilter {
  /** case-insensitive substring of the GPU model */
  model?: string | undefined;
  minVramMiB?: number | undefined;
  maxPricePerHour?: number | undefined;
}
export type GpuSort = 'price' | 'vram' | 'reliability';

export class GpuModelItem extends vscode.TreeItem {
  readonly kind = 'model' as const;
  constructor(
    readonly model: string,
    readonly offers: readonly Offer[],
  ) {
    super(model, vscode.TreeItemCollapsibleState.Expanded);
    const free = offers.reduce((n, o) => n + o.free, 0);
    const total = offers.reduce((n, o) => n + o.total, 0);
    this.id = `model:${model}`;
    const cheapest = Math.min(...offers.map((o) => o.pricePerHour));
    this.description = `${free}/${total} free · from ${formatRate(cheapest)} · ${offers.length} ${offers.length === 1 ? 'worker' : 'workers'}`;
    this.tooltip = new vscode.MarkdownString(rowTooltip(model, this.description, []));
    this.iconPath = new vscode.ThemeIcon(offers[0]?.isGpu === false ? 'server' : 'chip');
    this.contextValue = 'gpuModel';
  }
}

export class OfferItem extends vscode.TreeItem {
  readonly kind = 'offer' as const;
  constructor(readonly offer: Offer) {
    super(offer.workerName, vscode.TreeItemCollapsibleState.None);
    const o = offer;
    this.id = `offer:${o.workerId}:${o.gpuModel}`;
    this.description = [
      o.isGpu ? formatVram(o.vramMiB) : 'CPU',
      `${o.free}/${o.total} free`,
      formatRate(o.pricePerHour),
      formatReliability(o.reliability),
    ].join(' · ');
    this.tooltip = new vscode.MarkdownString(
      [
        `**${escapeMarkdown(o.gpuModel)}** on **${escapeMarkdown(o.workerName)}**${o.online ? '' : ' (offline)'}`,
        '',
        `- ${o.isGpu ? `VRAM: ${formatVram(o.vramMiB)}` : 'CPU (no GPU on this host)'}`,
        `- free: ${o.free}/${o.total} free`,
        `- price: ${formatRate(o.pricePerHour)} (${o.pricePerHour} credits per device-hour)`,
        `- reliability: ${formatReliability(o.reliability)} (share of finished jobs not lost)`,
        ...(o.stack
          ? [
              `- Python ${o.stack.python}, PyTorch ${o.stack.torch ?? 'not installed'}${o.stack.cuda ? `, CUDA ${o.stack.cuda}` : ''}`,
              `- notebooks: ${o.stack.kernels ? 'yes' : 'no (the worker\'s Python lacks ipykernel)'}`,
              ...(o.stack.driver ? [`- NVIDIA driver ${o.stack.driver}`] : []),
              ...(o.stack.diskFreeBytes !== undefined ? [`- disk free on the worker: ${(o.stack.diskFreeBytes / 2 ** 30).toFixed(1)} GiB`] : []),
            ]
          : []),
        `- network of a session: ${networkText(o.stack)}`,
      ].join('\n'),
    );
    this.iconPath = new vscode.ThemeIcon(
      !o.online ? 'debug-disconnect' : o.free > 0 ? 'pass' : 'circle-slash',
      !o.online ? undefined : new vscode.ThemeColor(o.free > 0 ? 'testing.iconPassed' : 'disabledForeground'),
    );
    this.contextValue = o.online && o.free > 0 ? 'offer.available' : 'offer.busy';
  }
}

export type GpuTreeItem = GpuModelItem | OfferItem;

const FILTER_KEY = 'hearth.gpuFilter';
const SORT_KEY = 'hearth.gpuSort';

/** The GPUs view: offers grouped by model, filtered and sorted as the person chose. */
export class GpuTreeProvider implements vscode.TreeDataProvider<GpuTreeItem>, vscode.Disposable {
  private readonly emitter = new vscode.EventEmitter<GpuTreeItem | undefined>();
  private readonly sub: vscode.Disposable;
  readonly onDidChangeTreeData = this.emitter.event;
  private filterValue: GpuFilter;
  private sortValue: GpuSort;
  view: vscode.TreeView<GpuTreeItem> | undefined;

  constructor(
    private readonly state: BrokerState,
    private readonly memento: vscode.Memento,
  ) {
    this.filterValue = memento.get<GpuFilter>(FILTER_KEY) ?? {};
    this.sortValue = memento.get<GpuSort>(SORT_KEY) ?? 'price';
    this.sub = state.onDidChange(() => {
      this.updateDescription();
      this.emitter.fire(undefined);
    });
    this.updateContext();
  }

  get filter(): GpuFilter {
    return this.filterValue;
  }
  get sort(): GpuSort {
    return this.sortValue;
  }

  async setFilter(f: GpuFilter): Promise<void> {
    this.filterValue = {
      model: f.model?.trim() || undefined,
      minVramMiB: f.minVramMiB,
      maxPricePerHour: f.maxPricePerHour,
    };
    await this.memento.update(FILTER_KEY, this.filterValue);
    this.updateContext();
    this.emitter.fire(undefined);
  }

  async setSort(s: GpuSort): Promise<void> {
    this.sortValue = s;
    await this.memento.update(SORT_KEY, s);
    this.updateContext();
    this.emitter.fire(undefined);
  }

  private updateContext(): void {
    const f = this.filterValue;
    const active = !!(f.model || f.minVramMiB !== undefined || f.maxPricePerHour !== undefined);
    void vscode.commands.executeCommand('setContext', 'hearth.gpuFilterActive', active);
    this.updateDescription();
  }

  /** The view's title line: who is signed in on which broker, then the filter and the order. */
  private updateDescription(): void {
    const f = this.filterValue;
    if (this.view) {
      const s = this.state.current;
      const who = s.me ? `${s.me.name} @ ${brokerHost(s.url)}` : brokerHost(s.url);
      const filters: string[] = [];
      if (f.model) filters.push(`model ~ ${f.model}`);
      if (f.minVramMiB !== undefined) filters.push(`≥ ${formatVram(f.minVramMiB)}`);
      if (f.maxPricePerHour !== undefined) filters.push(`≤ ${formatRate(f.maxPricePerHour)}`);
      this.view.description = [who, filters.join(', '), `by ${this.sortValue}`].filter((p) => p !== '').join(' · ');
    }
  }

  attach(view: vscode.TreeView<GpuTreeItem>): void {
    this.view = view;
    this.updateContext();
  }

  /** The offers that pass the filter, in the chosen order. */
  visibleOffers(): Offer[] {
    const f = this.filterValue;
    const model = f.model?.toLowerCase();
    const list = this.state.current.offers.filter(
      (o) =>
        (!model || o.gpuModel.toLowerCase().includes(model)) &&
        (f.minVramMiB === undefined || o.vramMiB >= f.minVramMiB) &&
        (f.maxPricePerHour === undefined || o.pricePerHour <= f.maxPricePerHour),
    );
    const by: Record<GpuSort, (a: Offer, b: Offer) => number> = {
      price: (a, b) => a.pricePerHour - b.pricePerHour || b.reliability - a.reliability,
      vram: (a, b) => b.vramMiB - a.vramMiB || a.pricePerHour - b.pricePerHour,
      reliability: (a, b) => b.reliability - a.reliability || a.pricePerHour - b.pricePerHour,
    };
    // Online offers with free devices first: those are the ones a person can lease now.
    const rank = (o: Offer) => (o.online ? (o.free > 0 ? 0 : 1) : 2);
    return list.sort((a, b) => rank(a) - rank(b) || by[this.sortValue](a, b));
  }

  getTreeItem(e: GpuTreeItem): vscode.TreeItem {
    return e;
  }

  getChildren(e?: GpuTreeItem): GpuTreeItem[] {
    if (e instanceof OfferItem) return [];
    if (e instanceof GpuModelItem) return e.offers.map((o) => new OfferItem(o));
    // Disconnected: no items, so the welcome view (Start a local network / Connect) shows; in an
    // outage the last known offers stay (the view's message says they are stale).
    if (!this.state.current.connected && !this.state.current.stale) return [];
    const groups = new Map<string, Offer[]>();
    for (const o of this.visibleOffers()) {
      const g = groups.get(o.gpuModel);
      if (g) g.push(o);
      else groups.set(o.gpuModel, [o]);
    }
    // Groups keep the order of their best offer, so "sort by price" puts the cheapest model first.
    return [...groups].map(([model, offers]) => new GpuModelItem(model, offers));
  }

  dispose(): void {
    this.sub.dispose();
    this.emitter.dispose();
  }
}
