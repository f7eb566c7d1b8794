// What masking secrets costs the broker per log chunk: SecretMasker.split (mask every value, then
// hold back an end that may start one) over 256 KiB chunks of a training log, for an account with
// 5 secrets, against the work every append does anyway in the same process (JSON.stringify of the
// event, which the event log stores).
// Run: node --import tsx bench/secret-mask.bench.ts [MiB]
import { randomBytes } from 'node:crypto';
import { SecretMasker } from '../src/broker/secret-mask';

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
if (sink === 0) console.log('');
