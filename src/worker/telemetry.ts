// Samples what the run panel draws as sparklines: per-GPU utilisation, memory, temperature and
// power from nvidia-smi, or on a CPU host the CPU's utilisation and the host's memory.
import * as os from 'node:os';
import type { GpuTelemetry } from '../shared/protocol';
import { queryNvidiaSmi } from './gpu-probe';

type CpuTimes = { idle: number; total: number };

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const c of os.cpus()) {
    const t = c.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

/** CPU busy share between two calls (the first call measures since the previous sample). */
export class CpuSampler {
  private last: CpuTimes = cpuTimes();

  sample(): GpuTelemetry {
    const now = cpuTimes();
    const dTotal = now.total - this.last.total;
    const dIdle = now.idle - this.last.idle;
    this.last = now;
    const util = dTotal > 0 ? Math.max(0, Math.min(100, (100 * (dTotal - dIdle)) / dTotal)) : null;
    const mib = 1024 * 1024;
    return {
      index: 0,
      utilizationPct: util === null ? null : Math.round(util * 10) / 10,
      memoryUsedMiB: Math.round((os.totalmem() - os.freemem()) / mib),
      memoryTotalMiB: Math.round(os.totalmem() / mib),
      temperatureC: null,
      powerW: null,
      device: 'cpu',
    };
  }
}

export class TelemetrySampler {
  private readonly cpu = new CpuSampler();
  private busy = false;
  latest: GpuTelemetry[] = [];

  constructor(
    private readonly isGpuHost: boolean,
    private readonly nvidiaSmi: string,
  ) {}

  /** One sample of every device; on a failed nvidia-smi call the devices report nulls. */
  async sample(): Promise<GpuTelemetry[]> {
    if (!this.isGpuHost) {
      this.latest = [this.cpu.sample()];
      return this.latest;
    }
    // nvidia-smi can take a second on a busy host: never stack calls.
    if (this.busy) return this.latest;
    this.busy = true;
    try {
      this.latest = (await queryNvidiaSmi(this.nvidiaSmi, 10_000)).telemetry;
    } catch {
      this.latest = this.latest.map((t) => ({ ...t, utilizationPct: null, memoryUsedMiB: null, temperatureC: null, powerW: null }));
    } finally {
      this.busy = false;
    }
    return this.latest;
  }
}
