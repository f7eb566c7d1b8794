// A lease at the price the renter is quoted: the offers are read, the one the broker would give is
// picked by the same rule (shared/offer-pick.ts), and the lease is asked for at its price, so a
// provider who changes the price in between gets a refusal (`price_changed`), never the renter's money.
import { offerCandidates } from '../shared/offer-pick';
import type { CreateLeaseBody, Lease } from '../shared/protocol';
import type { BrokerClient } from './api';

export async function leaseAtQuote(client: BrokerClient, body: Partial<CreateLeaseBody>): Promise<Lease> {
  if (body.pricePerHour !== undefined) return client.createLease(body);
  const pick = offerCandidates(await client.offers(), { count: body.count ?? 1, gpuModel: body.gpuModel, workerId: body.workerId })[0];
  // None fits: the broker says why (what is free where).
  if (!pick) return client.createLease(body);
  return client.createLease({ ...body, workerId: pick.workerId, gpuModel: pick.gpuModel, pricePerHour: pick.pricePerHour });
}
