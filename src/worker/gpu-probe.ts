// What this host offers: its NVIDIA GPUs as `nvidia-smi` lists them, or its CPU as one device
// when there is no GPU (or no working driver), so a GPU-less machine can still serve jobs.
import { execFile } from 'node:child_process';
import * as os from 'node:os';
import type { GpuInfo, GpuTelemetry } from '../shared/protocol';

/** The fields asked of nvidia-smi, in this order; the parser relies on it. */
export const NVIDIA_SMI_QUERY = 'index,uuid,name,memory.total,utilization.gpu,memory.used,temperature.gpu,power.draw';
export const NVIDIA_SMI_ARGS = [`--query-gpu=${NVIDIA_SMI_QUERY}`, '--format=csv,noheader,nounits'];

export interface GpuSample {
  gpus: GpuInfo[];
  telemetry: GpuTelemetry[];
}

export interface ParseResult extends GpuSample {
  /** lines that could not be read, with why */
  errors: { line: number; text: string; reason: string }[];
}

/**
 * A number from one nvidia-smi field, or null for what it prints when it has none:
 * '[N/A]', '[Not Supported]', '[Unknown Error]', 'N/A', blanks.
 */
export function parseSmiNumber(field: string | undefined): number | null {
  if (field === undefined) return null;
  const t = field.trim();
  if (t === '' || t.startsWith('[') || /^n\/?a$/i.test(t)) return null;
  // With `nounits` there should be no unit, but older drivers leave one on some fields ("69.88 W").
  const m = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?/.exec(t);
  if (!m) return null;
  const n = Number(m[0]);
  return Number.isFinite(n) ? n : null;
}

/** Parses `nvidia-smi --query-gpu=<NVIDIA_SMI_QUERY> --format=csv,noheader,nounits` output. */
export function parseNvidiaSmiCsv(text: string): ParseResult {
  const out: ParseResult = { gpus: [], telemetry: [], errors: [] };
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (line === '') return;
    const f = line.split(',').map((s) => s.trim());
    if (f.length < 8) {
      out.errors.push({ line: i + 1, text: raw, reason: `expected 8 fields, got ${f.length}` });
      return;
    }
    // A name holding a comma would shift the fields; the name is the only free-text one, so the
    // two leading and five trailing fields are fixed and whatever lies between is the name.
    const tail = f.slice(f.length - 5);
    const name = f.slice(2, f.length - 5).join(', ').trim();
    const index = parseSmiNumber(f[0]);
    if (index === null || !Number.isInteger(index) || index < 0) {
      out.errors.push({ line: i + 1, text: raw, reason: `bad GPU index ${JSON.stringify(f[0])}` });
      return;
    }
    const memoryTotal = parseSmiNumber(tail[0]);
    out.gpus.push({
      index,
      uuid: (f[1] ?? '').slice(0, 200),
      name: (name || `GPU ${index}`).slice(0, 200),
      memoryTotalMiB: memoryTotal ?? 0,
      isGpu: true,
    });
    out.telemetry.push({
      index,
      memoryTotalMiB: memoryTotal,
      utilizationPct: parseSmiNumber(tail[1]),
      memoryUsedMiB: parseSmiNumber(tail[2]),
      temperatureC: parseSmiNumber(tail[3]),
      powerW: parseSmiNumber(tail[4]),
    });
  });
  return out;
}

/** Runs nvidia-smi; rejects when it is missing, fails, or lists no GPU. */
export function queryNvidiaSmi(nvidiaSmi = 'nvidia-smi', timeoutMs = 15_000): Promise<ParseResult> {
  return new Promise((resolve, reject) => {
    execFile(nvidiaSmi, NVIDIA_SMI_ARGS, { timeout: timeoutMs, maxBuffer: 4 << 20, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? `${nvidiaSmi} not found` : `${nvidiaSmi} failed: ${(stderr || stdout || err.message).trim().slice(0, 300)}`;
        return reject(new Error(why));
      }
      const parsed = parseNvidiaSmiCsv(stdout);
      if (parsed.gpus.length === 0) return reject(new Error(`${nvidiaSmi} listed no GPU`));
      resolve(parsed);
    });
  });
}

/** The CPU as the one device a GPU-less host offers. */
export function cpuDevice(): GpuInfo {
  const cpus = os.cpus();
  const model = (cpus[0]?.model ?? 'unknown').replace(/\s+/g, ' ').trim() || 'unknown';
  return {
    index: 0,
    uuid: 'cpu',
    name: `CPU (${model}, ${cpus.length} cores)`.slice(0, 200),
    memoryTotalMiB: Math.floor(os.totalmem() / (1024 * 1024)),
    isGpu: false,
  };
}

export interface ProbeResult {
  gpus: GpuInfo[];
  isGpuHost: boolean;
  /** why the host fell back to its CPU, when it did */
  fallbackReason?: string;
}

export async function probeDevices(nvidiaSmi = 'nvidia-smi'): Promise<ProbeResult> {
  try {
    const r = await queryNvidiaSmi(nvidiaSmi);
    return { gpus: r.gpus, isGpuHost: true };
  } catch (err) {
    return { gpus: [cpuDevice()], isGpuHost: false, fallbackReason: (err as Error).message };
  }
}

/**
 * The NVIDIA driver's version (the same on every GPU of a host), or null when nvidia-smi does not
 * say: offers show it so a renter can tell which CUDA versions the host can run.
 */
export function queryDriverVersion(nvidiaSmi = 'nvidia-smi', timeoutMs = 15_000): Promise<string | null> {
  return new Promise((resolve) => {
    execFile(nvidiaSmi, ['--query-gpu=driver_version', '--format=csv,noheader'], { timeout: timeoutMs, maxBuffer: 1 << 16, encoding: 'utf8' }, (err, stdout) => {
      const v = err ? '' : (stdout.split(/\r?\n/)[0] ?? '').trim();
      resolve(/^[0-9][0-9A-Za-z.-]{0,49}$/.test(v) ? v : null);
    });
  });
}
