// A worker is a stranger: what it says of its devices is its word, shown to renters as it came.
// Telemetry that cannot be true (a utilisation of 1e9 %, more memory used than there is) is
// clamped to what can be, before it is stored or served; what is possible stays unchecked.
import type { GpuTelemetry } from '../shared/protocol';

const clamp = (v: number | null, lo: number, hi: number): number | null => (v === null || Number.isNaN(v) ? null : Math.min(hi, Math.max(lo, v)));

/** the hottest a device reports before it shuts down, with room to spare */
const MAX_TEMPERATURE_C = 150;
/** more than any one accelerator draws */
const MAX_POWER_W = 10_000;

export function plausibleTelemetry(list: readonly GpuTelemetry[]): GpuTelemetry[] {
  return list.map((t) => {
    const total = clamp(t.memoryTotalMiB, 0, Number.MAX_SAFE_INTEGER);
    return {
      ...t,
      utilizationPct: clamp(t.utilizationPct, 0, 100),
      memoryTotalMiB: total,
      memoryUsedMiB: clamp(t.memoryUsedMiB, 0, total ?? Number.MAX_SAFE_INTEGER),
      temperatureC: clamp(t.temperatureC, -50, MAX_TEMPERATURE_C),
      powerW: clamp(t.powerW, 0, MAX_POWER_W),
    };
  });
}
