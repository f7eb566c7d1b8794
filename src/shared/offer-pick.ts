// Which offer a lease request gets: one rule, used by the broker when it makes the lease and by
// the clients when they quote it first (so the price a renter is shown is the price it sends).
import type { Offer } from './protocol';

export interface OfferWanted {
  count: number;
  gpuModel?: string | undefined;
  workerId?: string | undefined;
}

/** The offers that can hold the request, best first: cheapest, then most reliable, then most memory. */
export function offerCandidates(offers: readonly Offer[], want: OfferWanted): Offer[] {
  const model = want.gpuModel?.toLowerCase();
  return offers
    .filter((o) => o.online && o.free >= want.count && (!want.workerId || o.workerId === want.workerId) && (!model || o.gpuModel.toLowerCase().includes(model)))
    .sort((a, b) => a.pricePerHour - b.pricePerHour || b.reliability - a.reliability || b.vramMiB - a.vramMiB);
}
