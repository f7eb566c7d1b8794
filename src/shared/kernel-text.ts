// A kernel message as plain text, for where a person reads a session as a log: the CLI following
// a notebook run or a kernel, and the run panel's log. Rich outputs show their text/plain form,
// as Jupyter's console does; the notebook editor renders the real thing.
import type { EventBody } from './protocol';

type KernelBody = Extract<EventBody, { type: 'kernel' }>;

export interface KernelText {
  stream: 'stdout' | 'stderr';
  data: string;
}

const line = (s: string) => (s.endsWith('\n') ? s : s + '\n');

function plainOf(data: unknown): string {
  const bundle = (typeof data === 'object' && data !== null ? data : {}) as Record<string, unknown>;
  const text = bundle['text/plain'];
  if (typeof text === 'string') return text;
  if (Array.isArray(text)) return text.join('');
  return `<${Object.keys(bundle).sort().join(', ') || 'empty output'}>`;
}

export function kernelText(b: KernelBody): KernelText | undefined {
  const c = b.content;
  switch (b.msgType) {
    case 'stream':
      return typeof c.text === 'string' ? { stream: c.name === 'stderr' ? 'stderr' : 'stdout', data: c.text } : undefined;
    case 'execute_result':
      return { stream: 'stdout', data: line(`Out[${String(c.execution_count ?? ' ')}]: ${plainOf(c.data)}`) };
    case 'display_data':
      return { stream: 'stdout', data: line(plainOf(c.data)) };
    case 'error':
      return { stream: 'stderr', data: line(Array.isArray(c.traceback) ? c.traceback.map(String).join('\n') : `${String(c.ename)}: ${String(c.evalue)}`) };
    case 'execute_request':
      // A notebook run's cell header: its runner puts the cell's place among the code cells here.
      return typeof c.cell === 'number' && typeof c.cells === 'number' ? { stream: 'stdout', data: `\x1b[2m[hearth] cell ${c.cell}/${c.cells}\x1b[0m\n` } : undefined;
    case 'input_request':
      return { stream: 'stdout', data: String(c.prompt ?? '') };
    default:
      return undefined;
  }
}
