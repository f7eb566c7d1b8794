// What masking secrets costs the broker per log chunk: SecretMasker.split (mask every value, then
// hold back an end that may start one) over 256 KiB chunks of a training log, for an account with
// 5 secrets, against the work every append does anyway in the same process (JSON.stringify of the
// event, which the event log stores). Also: the same chunks when stdout and stderr alternate (each
// chunk masked with the end held back from the other stream, SecretMasker.maskParts), and what the
// CLI and the run panel spend making a log safe for a terminal (LogText) against JSON.parse of the
// event line they read anyway.
// Run: node --import tsx bench/secret-mask.bench.ts [MiB]
import { randomBytes } from 'node:crypto';
import { SecretMasker } from '../src/broker/secret-mask';
import { LogText } from '../src/shared/terminal-text';

const MIB = Number(process.argv[2] ?? 256);
const LINE = 'epoch 3 step 1200 loss 0.1234 lr 3e-4 tokens/s 51234.5 grad_norm 0.98\n';
const CHUNK = LINE.repeat(Math.ceil((256 * 1024) / LINE.length));
const secrets = Array.from({ length: 5 }, (_, i) => `${['hf_', 'sk-', 'ghp_', 'AKIA', 'xoxb-'][i]}${randomBytes(20).toString('hex')}`);
// One chunk in 16 prints a secret, one in 16 ends in the middle of one.
const chunks = Array.from({ length: 16 }, (_, i) => (i === 3 ? CHUNK + secrets[1] + '\n' : i === 7 ? CHUNK + secrets[0]!.slice(0, 9) : i === 8 ? secrets[0]!.slice(9) + CHUNK : CHUNK));
const n = Math.ceil((MIB * 1024 * 1024) / CHUNK.length);

function time(fn: () => void): number {
  const t = performance.now();
  fn();
  return performance.now() - t;
}

const masker = new SecretMasker(secrets);
let sink = 0;
// Warm both up first.
for (let i = 0; i < 50; i++) sink += JSON.stringify({ type: 'log', stream: 'stdout', data: chunks[i % 16] }).length + masker.split('', chunks[i % 16]!).emit.length;
const base = time(() => {
  for (let i = 0; i < n; i++) sink += JSON.stringify({ type: 'log', stream: 'stdout', data: chunks[i % 16] }).length;
});
let carry = '';
const masked = time(() => {
  for (let i = 0; i < n; i++) {
    const r = masker.split(carry, chunks[i % 16]!);
    carry = r.carry;
    sink += r.emit.length;
  }
});
const mb = (n * CHUNK.length) / 1e6;
console.log(`log chunks: ${n} × 256 KiB (${mb.toFixed(0)} MB), 5 secrets`);
console.log(`  baseline JSON.stringify of the event: ${(mb / (base / 1000)).toFixed(0)} MB/s`);
console.log(`  SecretMasker.split:                  ${(mb / (masked / 1000)).toFixed(0)} MB/s (${(masked / base).toFixed(2)}× the baseline's time)`);
// Streams alternating: the held-back end of one is masked together with the next chunk of the other.
let held = '';
const across = time(() => {
  for (let i = 0; i < n; i++) {
    const parts = masker.maskParts(held ? [held, chunks[i % 16]!] : [chunks[i % 16]!]);
    const joined = parts.join('');
    const hold = masker.heldEnd(joined);
    held = joined.slice(joined.length - hold);
    sink += joined.length - hold;
  }
});
console.log(`  stdout and stderr alternating:       ${(mb / (across / 1000)).toFixed(0)} MB/s (${(across / base).toFixed(2)}× the baseline's time)`);
// The client side: a terminal-safe log (SGR kept, the rest shown as escapes) against parsing the line.
const lines = chunks.map((c, i) => JSON.stringify({ seq: i + 1, ts: 1, body: { type: 'log', stream: 'stdout', data: i === 5 ? c + '\x1b[31mred\x1b[0m\x1b]0;title\x07' : c } }));
const parse = time(() => {
  for (let i = 0; i < n; i++) sink += (JSON.parse(lines[i % 16]!) as { seq: number }).seq;
});
const text = new LogText();
const safe = time(() => {
  for (let i = 0; i < n; i++) sink += text.write(chunks[i % 16]!).length;
});
console.log(`client: JSON.parse of the event line:  ${(mb / (parse / 1000)).toFixed(0)} MB/s`);
console.log(`  LogText (terminal-safe log):         ${(mb / (safe / 1000)).toFixed(0)} MB/s (${(safe / parse).toFixed(2)}× the parse's time)`);
if (sink === 0) console.log('');
