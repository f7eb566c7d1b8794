import * as vscode from 'vscode';
import type { Lease, Offer } from '../../shared/protocol';
import type { HearthServices } from '../hearth-services';
import { credits, leaseLimitsText, leasePriceText } from '../../shared/money';
import { formatCredits, formatVram } from '../views/format';
import { releaseWarning } from './lease-texts';
import { askHours, leaseIdOf, pickLease } from './args';
import { CommandId } from './command-ids';

/** Options of Lease GPU… for callers that know what they want (tree items, tests). */
export interface LeaseGpuOptions {
  offer?: Offer;
  workerId?: string;
  gpuModel?: string;
  count?: number;
  hours?: number;
  /** end the lease when its cost reaches this many credits */
  maxCost?: number;
}

function optionsOf(arg: unknown): LeaseGpuOptions {
  if (typeof arg !== 'object' || arg === null) return {};
  // An OfferItem of the GPUs view carries `offer`; an options object may too.
  return arg as LeaseGpuOptions;
}

/** The default of `hearth.leaseIdleMinutes`. */
export const DEFAULT_LEASE_IDLE_MINUTES = 30;

export async function leaseGpu(s: HearthServices, arg?: unknown): Promise<Lease | undefined> {
  const opts = optionsOf(arg);
  let offer = opts.offer;
  const client = await s.getClient();
  if (!offer && !opts.workerId && !opts.gpuModel) {
    const snap = await s.state.refresh();
    const available = snap.offers.filter((o) => o.online && o.free > 0);
    if (available.length === 0) {
      void vscode.window.showWarningMessage(
        snap.connected ? 'Hearth: no GPU is free on this broker right now.' : `Hearth: not connected to a broker (${snap.error ?? 'no broker'}).`,
      );
      return undefined;
    }
    const pick = await vscode.window.showQuickPick(
      available.map((o) => ({
        label: o.gpuModel,
        description: `${o.workerName} · ${o.free}/${o.total} free`,
        detail: `${o.isGpu ? formatVram(o.vramMiB) : 'CPU'} · ${credits(o.pricePerHour)}/h · ${Math.round(o.reliability * 100)}% reliable`,
        offer: o,
      })),
      { placeHolder: 'Which GPU to lease?', matchOnDescription: true, matchOnDetail: true },
    );
    if (!pick) return undefined;
    offer = pick.offer;
  }
  let count = opts.count;
  if (count === undefined) {
    const free = offer?.free ?? 1;
    if (free > 1) {
      const pick = await vscode.window.showQuickPick(
        Array.from({ length: free }, (_, i) => ({ label: String(i + 1), n: i + 1 })),
        { placeHolder: `How many ${offer?.gpuModel ?? 'devices'}? (${free} free)` },
      );
      if (!pick) return undefined;
      count = pick.n;
    } else {
      count = 1;
    }
  }
  // A caller that named the worker or model gets the price of the matching offer.
  const priced =
    offer ?? s.state.current.offers.find((o) => (!opts.workerId || o.workerId === opts.workerId) && (!opts.gpuModel || o.gpuModel === opts.gpuModel));
  const price = priced && { gpuModel: priced.gpuModel, pricePerHour: priced.pricePerHour, count };
  const hours = opts.hours ?? (await askHours('For how many hours? (it can be renewed later)', '1', price));
  if (hours === undefined) return undefined;
  // Leases taken here are released after hearth.leaseIdleMinutes with nothing running on them.
  const idle = vscode.workspace.getConfiguration('hearth').get<number>('leaseIdleMinutes', DEFAULT_LEASE_IDLE_MINUTES);
  const lease = await client.createLease({
    workerId: opts.workerId ?? offer?.workerId,
    gpuModel: opts.gpuModel ?? offer?.gpuModel,
    count,
    hours,
    ...(idle > 0 ? { idleReleaseMinutes: idle } : {}),
    ...(opts.maxCost !== undefined ? { maxCost: opts.maxCost } : {}),
    // The price shown when the offer was picked: the broker leases at it or refuses.
    ...(offer && offer.workerId === (opts.workerId ?? offer.workerId) ? { pricePerHour: offer.pricePerHour } : {}),
  });
  const said = `${lease.id}: ${leasePriceText(lease, hours)} on ${lease.workerName}${leaseLimitsText(lease) ? ` (${leaseLimitsText(lease)})` : ''}`;
  s.log.info(`leased ${said}`);
  void s.state.refresh();
  void vscode.window.showInformationMessage(`Hearth: leased ${said}, until ${new Date(lease.expiresAt).toLocaleTimeString()}.`);
  return lease;
}

export async function releaseLease(s: HearthServices, arg?: unknown): Promise<Lease | undefined> {
  const snap = await s.state.refresh();
  const id = leaseIdOf(arg) ?? (await pickLease(snap.leases, 'Which lease to release?'));
  if (!id) return undefined;
  // Releasing stops what runs on the lease: a modal names it first.
  const held = snap.leases.find((l) => l.id === id);
  const warning = held && releaseWarning(held, snap.jobs);
  if (warning && (await vscode.window.showWarningMessage(warning, { modal: true }, 'Release')) !== 'Release') return undefined;
  const lease = await (await s.getClient()).releaseLease(id);
  s.log.info(`released ${id} (cost ${lease.cost})`);
  void s.state.refresh();
  void vscode.window.showInformationMessage(`Hearth: released ${lease.gpuModel} ×${lease.count}; cost ${formatCredits(lease.cost)} credits.`);
  return lease;
}

export async function renewLease(s: HearthServices, arg?: unknown, hoursArg?: unknown): Promise<Lease | undefined> {
  const id = leaseIdOf(arg) ?? (await pickLease((await s.state.refresh()).leases, 'Which lease to renew?'));
  if (!id) return undefined;
  const hours =
    typeof hoursArg === 'number' ? hoursArg : typeof (arg as { hours?: unknown })?.hours === 'number' ? (arg as { hours: number }).hours : await askHours('Add how many hours?', '1', s.state.current.leases.find((l) => l.id === id));
  if (hours === undefined) return undefined;
  const lease = await (await s.getClient()).renewLease(id, hours);
  s.log.info(`renewed ${id} until ${new Date(lease.expiresAt).toISOString()}`);
  void s.state.refresh();
  void vscode.window.showInformationMessage(`Hearth: lease renewed until ${new Date(lease.expiresAt).toLocaleTimeString()}.`);
  return lease;
}

export function leaseCommandHandlers(s: HearthServices): Record<string, (...args: unknown[]) => unknown> {
  return {
    [CommandId.leaseGpu]: (arg) => leaseGpu(s, arg),
    [CommandId.releaseLease]: (arg) => releaseLease(s, arg),
    [CommandId.renewLease]: (arg, hours) => renewLease(s, arg, hours),
  };
}
