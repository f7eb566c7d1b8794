// The broker's log for `hearth up` and `hearth broker`: pino lines (JSON), into a file that
// rotates by size (`broker.log`, then `broker.log.1` … `.5`, oldest dropped) so a long-running
// network does not fill the disk, and without a line per request: Fastify logs two for every
// request at info (a polling extension and the job uploads made 35 MB in 15 minutes); only a
// request that failed (4xx, 5xx) keeps its line.
import type { FastifyServerOptions } from 'fastify';
import { basename, dirname } from 'node:path';
import { createStream } from 'rotating-file-stream';

export const LOG_ROTATE_BYTES = 10 * 1024 * 1024;
export const LOG_KEEP = 5;

type LogMethod = (this: unknown, ...args: unknown[]) => void;

/** pino's hook: drops Fastify's per-request lines unless the request failed (or HEARTH_LOG_REQUESTS=1). */
function logMethod(this: unknown, args: unknown[], method: LogMethod): void {
  if (process.env.HEARTH_LOG_REQUESTS === '1') return method.apply(this, args);
  const msg = args[1];
  if (msg === 'incoming request') return;
  if (msg === 'request completed') {
    const res = (args[0] as { res?: { statusCode?: number } } | undefined)?.res;
    if ((res?.statusCode ?? 0) < 400) return;
  }
  method.apply(this, args);
}

export function brokerLogger(o: { file?: string; rotateBytes?: number; keep?: number } = {}): FastifyServerOptions['logger'] {
  if (!o.file) return { level: 'info', hooks: { logMethod } };
  const name = basename(o.file);
  // With `rotate` (logrotate's numbering) the generator gets the index first: null for the live file.
  const stream = createStream((index: number | Date | null) => (index ? `${name}.${String(index)}` : name), {
    path: dirname(o.file),
    size: `${Math.max(1, Math.round((o.rotateBytes ?? LOG_ROTATE_BYTES) / 1024))}K`,
    rotate: o.keep ?? LOG_KEEP,
    mode: 0o600,
  });
  // A log that cannot be written (a full disk) must not take the broker down with it.
  stream.on('error', (err) => process.stderr.write(`hearth: cannot write the broker log ${o.file}: ${err.message}\n`));
  return { level: 'info', hooks: { logMethod }, stream } as FastifyServerOptions['logger'];
}
