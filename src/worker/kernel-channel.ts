// A kernel session's stdio: requests go to the kernel bridge (resources/hearth_kernel.py) on its
// stdin, one JSON line each; its stdout carries one JSON line per Jupyter message, which become
// the session's `kernel` events in the order the bridge wrote them. The bridge runs inside the
// sandbox beside the renter's code, so each line is parsed as untrusted input: what does not
// parse is kept as log text, never dropped and never trusted.
import type { Writable } from 'node:stream';
import { z } from 'zod';
import { Id, KernelMsgType, type EventBody, type KernelRequest } from '../shared/protocol';

const BridgeLine = z.object({ requestId: Id.nullable(), msgType: KernelMsgType, content: z.record(z.unknown()) });

/** A line longer than this is not a message the bridge would write (a 4 MiB image is about 6 MiB). */
const MAX_LINE_BYTES = 64 << 20;

export class KernelChannel {
  private parts: Buffer[] = [];
  private size = 0;
  private stdin: Writable | undefined;
  private waiting: string[] = [];
  private skipping = false;

  constructor(private readonly emit: (body: EventBody) => void) {}

  /** The bridge's stdin, once it runs: requests that came before it are written then. */
  attach(stdin: Writable): void {
    this.stdin = stdin;
    stdin.on('error', () => undefined); // the bridge is gone; its exit says why
    for (const line of this.waiting.splice(0)) stdin.write(line);
  }

  request(r: KernelRequest): void {
    const line = JSON.stringify(r) + '\n';
    if (this.stdin) this.stdin.write(line);
    else this.waiting.push(line);
  }

  /** Closes the bridge's stdin: it stops its kernel and exits. */
  close(): void {
    this.stdin?.end();
  }

  /** Bytes of the bridge's stdout. */
  push(chunk: Buffer): void {
    let start = 0;
    for (let nl = chunk.indexOf(10); nl !== -1; nl = chunk.indexOf(10, start)) {
      this.add(chunk.subarray(start, nl));
      this.line();
      start = nl + 1;
    }
    if (start < chunk.length) this.add(chunk.subarray(start));
  }

  end(): void {
    if (this.size > 0) this.line();
  }

  private add(piece: Buffer): void {
    if (this.skipping) return;
    if (this.size + piece.length > MAX_LINE_BYTES) {
      this.parts = [];
      this.size = 0;
      this.skipping = true;
      this.emit({ type: 'notice', level: 'warning', message: `the kernel wrote a message over ${MAX_LINE_BYTES >> 20} MiB; it was dropped` });
      return;
    }
    this.parts.push(piece);
    this.size += piece.length;
  }

  private line(): void {
    const wasSkipping = this.skipping;
    this.skipping = false;
    if (wasSkipping) return;
    const text = Buffer.concat(this.parts, this.size).toString('utf8');
    this.parts = [];
    this.size = 0;
    if (!text.trim()) return;
    let parsed: z.SafeParseReturnType<unknown, z.infer<typeof BridgeLine>> | undefined;
    try {
      parsed = BridgeLine.safeParse(JSON.parse(text));
    } catch {
      parsed = undefined;
    }
    if (parsed?.success) this.emit({ type: 'kernel', ...parsed.data });
    else this.emit({ type: 'log', stream: 'stdout', data: text + '\n' });
  }
}
