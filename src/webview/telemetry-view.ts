// GPU telemetry as sparklines: a few hundred samples per metric on a plain canvas. uPlot would
// be overkill for 16 tiny charts that redraw once a second.
import type { GpuTelemetry } from '../shared/protocol';
import { cssVar } from './theme';

const KEEP = 300;
type Metric = 'util' | 'mem' | 'temp' | 'power';
const METRICS: Array<{ key: Metric; label: string; unit: string; max?: number }> = [
  { key: 'util', label: 'util', unit: '%', max: 100 },
  { key: 'mem', label: 'mem', unit: '%', max: 100 },
  { key: 'temp', label: 'temp', unit: '°C' },
  { key: 'power', label: 'power', unit: 'W' },
];

interface GpuRow {
  cpu: boolean;
  samples: Record<Metric, Array<number | null>>;
  canvases: Record<Metric, HTMLCanvasElement>;
  values: Record<Metric, HTMLElement>;
  memText: string;
  el: HTMLElement;
}

export class TelemetryView {
  private readonly gpus = new Map<number, GpuRow>();
  private frame = 0;

  constructor(private readonly root: HTMLElement) {}

  add(gpus: readonly GpuTelemetry[]): void {
    for (const g of gpus) {
      const cpu = g.device === 'cpu';
      // a CPU host's row is keyed apart from GPU 0
      const key = cpu ? -1 : g.index;
      const row = this.gpus.get(key) ?? this.addRow(key, cpu);
      const mem = g.memoryUsedMiB !== null && g.memoryTotalMiB ? (100 * g.memoryUsedMiB) / g.memoryTotalMiB : null;
      push(row.samples.util, g.utilizationPct);
      push(row.samples.mem, mem);
      push(row.samples.temp, g.temperatureC);
      push(row.samples.power, g.powerW);
      row.memText =
        g.memoryUsedMiB !== null && g.memoryTotalMiB !== null ? `${(g.memoryUsedMiB / 1024).toFixed(1)}/${(g.memoryTotalMiB / 1024).toFixed(1)} GiB` : '';
    }
    this.root.hidden = false;
    if (this.frame === 0) this.frame = requestAnimationFrame(() => this.draw());
  }

  private addRow(index: number, cpu: boolean): GpuRow {
    const el = document.createElement('div');
    el.className = 'gpu';
    const name = document.createElement('span');
    name.className = 'gpu-name';
    name.textContent = cpu ? 'CPU' : `GPU ${index}`;
    el.append(name);
    const row = { cpu, samples: {}, canvases: {}, values: {}, memText: '' } as GpuRow;
    for (const m of METRICS) {
      const cell = document.createElement('span');
      cell.className = 'spark';
      // a CPU host reports no temperature or power: no sparklines that would only say n/a
      if (cpu && (m.key === 'temp' || m.key === 'power')) cell.hidden = true;
      const label = document.createElement('span');
      label.className = 'spark-label';
      label.textContent = cpu && m.key === 'mem' ? 'RAM' : cpu && m.key === 'util' ? 'load' : m.label;
      const canvas = document.createElement('canvas');
      canvas.width = 90;
      canvas.height = 22;
      const value = document.createElement('span');
      value.className = 'spark-value';
      cell.append(label, canvas, value);
      el.append(cell);
      row.samples[m.key] = [];
      row.canvases[m.key] = canvas;
      row.values[m.key] = value;
    }
    row.el = el;
    this.gpus.set(index, row);
    // keep GPUs in index order
    for (const i of [...this.gpus.keys()].sort((a, b) => a - b)) this.root.append((this.gpus.get(i) as GpuRow).el);
    return row;
  }

  private draw(): void {
    this.frame = 0;
    const colour = cssVar('--vscode-charts-blue', '#3794ff');
    const dim = cssVar('--vscode-editorWidget-border', 'rgba(128,128,128,0.3)');
    const dpr = window.devicePixelRatio || 1;
    for (const row of this.gpus.values()) {
      for (const m of METRICS) {
        const data = row.samples[m.key];
        const canvas = row.canvases[m.key];
        const w = 90;
        const h = 22;
        if (canvas.width !== w * dpr) {
          canvas.width = w * dpr;
          canvas.height = h * dpr;
          canvas.style.width = `${w}px`;
          canvas.style.height = `${h}px`;
        }
        const ctx = canvas.getContext('2d');
        if (!ctx) continue;
        ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
        ctx.clearRect(0, 0, w, h);
        ctx.strokeStyle = dim;
        ctx.beginPath();
        ctx.moveTo(0, h - 0.5);
        ctx.lineTo(w, h - 0.5);
        ctx.stroke();
        const finite = data.filter((v): v is number => v !== null);
        const max = m.max ?? Math.max(1, ...finite) * 1.1;
        const min = m.max !== undefined ? 0 : Math.min(...finite, max) * 0.9;
        ctx.strokeStyle = colour;
        ctx.lineWidth = 1.25;
        ctx.beginPath();
        let pen = false;
        data.forEach((v, i) => {
          if (v === null) {
            pen = false;
            return;
          }
          // newest sample at the right edge
          const x = (w - 1) * (1 - (data.length - 1 - i) / (KEEP - 1));
          const y = h - 1 - ((v - min) / (max - min || 1)) * (h - 3);
          if (pen) ctx.lineTo(x, y);
          else ctx.moveTo(x, y);
          pen = true;
        });
        ctx.stroke();
        const last = data[data.length - 1];
        row.values[m.key].textContent = last === null || last === undefined ? 'n/a' : `${Math.round(last)}${m.unit}`;
        if (m.key === 'mem') row.values[m.key].title = row.cpu ? `RAM ${row.memText}` : `VRAM ${row.memText}`;
      }
    }
  }
}

function push(list: Array<number | null>, v: number | null): void {
  list.push(v);
  if (list.length > KEEP) list.splice(0, list.length - KEEP);
}
