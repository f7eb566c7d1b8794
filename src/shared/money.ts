// How prices and costs read, the same in the CLI, the extension and the broker's messages.
import type { AccountSpend, Lease } from './protocol';

/** "2.5 cr", "10 cr", "0.0125 cr": credits with no trailing zeros. */
export function credits(c: number): string {
  return `${Number(c.toFixed(c >= 100 ? 0 : c >= 1 ? 2 : 4))} cr`;
}

/** What a lease of `hours` costs at most: "A100 · 2.5 cr/h · 4 h = 10 cr" (count × price × hours). */
export function leasePriceText(o: { gpuModel: string; pricePerHour: number; count?: number }, hours: number): string {
  const n = o.count ?? 1;
  const devices = n > 1 ? `${n}× ${o.gpuModel}` : o.gpuModel;
  const rate = `${credits(o.pricePerHour)}/h${n > 1 ? ' each' : ''}`;
  return `${devices} · ${rate} · ${Number(hours.toFixed(3))} h = ${credits(n * o.pricePerHour * hours)}`;
}

/** A lease's spend controls in a few words: "cap 5 cr, idle release 30 min", or "" when it has none. */
export function leaseLimitsText(l: Pick<Lease, 'maxCost' | 'idleReleaseMinutes'>): string {
  const parts: string[] = [];
  if (l.maxCost != null) parts.push(`cap ${credits(l.maxCost)}`);
  if (l.idleReleaseMinutes != null) parts.push(`idle release ${Number(l.idleReleaseMinutes.toFixed(2))} min`);
  return parts.join(', ');
}

/** "spent 3.2 cr of 10 cr this month (UTC; counts again from 2026-12-01)". */
export function accountSpendText(s: AccountSpend): string {
  const next = new Date(s.periodEnd).toISOString().slice(0, 10);
  const of = s.spendLimit === null ? ' (no limit)' : ` of ${credits(s.spendLimit)}`;
  return `spent ${credits(s.spent)}${of} this month (UTC; counts again from ${next})`;
}
