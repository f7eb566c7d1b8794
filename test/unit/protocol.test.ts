import assert from 'node:assert/strict';
import {
  BrokerToWorker,
  CreateLeaseBody,
  decodeScalar,
  encodeScalar,
  EventBody,
  EventStreamLine,
  isSafeRelPath,
  JobSpec,
  scalarTable,
  StartKernelBody,
  SubmitJobBody,
  WorkerToBroker,
} from '../../src/shared/protocol';

const sha = 'a'.repeat(64);
const spec = { entry: 'train.py', manifest: { files: [{ path: 'train.py', sha256: sha, size: 10 }] } };

describe('protocol schemas', () => {
  it('safe relative paths: relative, normalized, inside', () => {
    for (const ok of ['a.py', 'a/b/c.pt', 'dir.with.dots/x', '..hidden', 'a..b']) assert.ok(isSafeRelPath(ok), ok);
    for (const bad of ['', '/abs', '../x', 'a/../b', 'a/./b', './a', 'a//b', 'a/', 'C:/x', 'a\\b', 'a\0b', '..']) assert.ok(!isSafeRelPath(bad), bad);
  });

  it('a job spec gets its defaults and rejects what does not belong', () => {
    const s = JobSpec.parse(spec);
    assert.deepEqual(s.args, []);
    assert.equal(s.logdir, 'runs');
    assert.equal(s.manifest.files[0]!.executable, false);
    assert.ok(!JobSpec.safeParse({ ...spec, extra: 1 }).success, 'unknown keys are refused');
    assert.ok(!JobSpec.safeParse({ ...spec, env: { 'A-B': 'x' } }).success);
    assert.ok(!JobSpec.safeParse({ ...spec, logdir: '../up' }).success);
    assert.ok(!JobSpec.safeParse({ ...spec, manifest: { files: [{ path: 'x', sha256: 'XYZ', size: 1 }] } }).success);
    assert.ok(!JobSpec.safeParse({ ...spec, manifest: { files: [{ path: 'x', sha256: sha, size: -1 }] } }).success);
    const r = SubmitJobBody.safeParse({ ...spec, leaseId: 'nope' });
    assert.ok(!r.success);
    assert.deepEqual(r.error.issues[0]!.path, ['leaseId']);
  });

  it('lease requests: defaults and bounds', () => {
    assert.deepEqual(CreateLeaseBody.parse({}), { count: 1, hours: 1 });
    assert.ok(!CreateLeaseBody.safeParse({ count: 0 }).success);
    assert.ok(!CreateLeaseBody.safeParse({ hours: -1 }).success);
    assert.ok(!CreateLeaseBody.safeParse({ count: 1.5 }).success);
  });

  it('events: each kind parses, unknown kinds and oversize logs do not', () => {
    assert.ok(EventBody.safeParse({ type: 'log', stream: 'stdout', data: 'hi\r' }).success);
    assert.ok(EventBody.safeParse({ type: 'scalars', points: [{ run: '.', tag: 'loss', step: 1, wallTime: 1, value: 'NaN' }] }).success);
    assert.ok(!EventBody.safeParse({ type: 'scalars', points: [{ run: '.', tag: 'loss', step: 1, wallTime: 1, value: 'nan' }] }).success);
    assert.ok(!EventBody.safeParse({ type: 'log', stream: 'stdin', data: '' }).success);
    assert.ok(!EventBody.safeParse({ type: 'log', stream: 'stdout', data: 'x'.repeat(4 * 1024 * 1024 + 1) }).success);
    assert.ok(!EventBody.safeParse({ type: 'artifact', artifact: { path: '../x', sha256: sha, size: 1 } }).success);
    assert.ok(!EventBody.safeParse({ type: 'bogus' }).success);
    assert.ok(EventStreamLine.safeParse({ kind: 'end', lastSeq: 3, status: 'succeeded' }).success);
    assert.ok(EventBody.safeParse({ type: 'setup', phase: 'installing', source: 'requirements.txt' }).success);
    assert.ok(EventBody.safeParse({ type: 'setup', phase: 'ready', source: 'deps/run.txt', reused: true }).success);
    assert.ok(!EventBody.safeParse({ type: 'setup', phase: 'compiling', source: 'requirements.txt' }).success);
    assert.ok(!EventBody.safeParse({ type: 'setup', phase: 'ready', source: '/etc/passwd' }).success);
  });

  it('requirements: a file inside the workspace, for jobs and kernels alike', () => {
    const base = { entry: 'a.py', manifest: { files: [] } };
    assert.equal(JobSpec.parse({ ...base, requirements: 'deps/run.txt' }).requirements, 'deps/run.txt');
    assert.equal(JobSpec.parse(base).requirements, undefined);
    for (const bad of ['../r.txt', '/etc/r.txt', '']) assert.ok(!JobSpec.safeParse({ ...base, requirements: bad }).success, bad);
    assert.ok(StartKernelBody.safeParse({ leaseId: 'lease_abcdefgh12', requirements: 'requirements.txt' }).success);
    assert.ok(!StartKernelBody.safeParse({ leaseId: 'lease_abcdefgh12', requirements: '../x' }).success);
  });

  it('worker messages: hello carries a protocol version; broker messages are closed sets', () => {
    const hello = { type: 'hello', protocol: 1, name: 'w', hostname: 'h', version: '1', gpus: [{ index: 0, uuid: 'u', name: 'H100', memoryTotalMiB: 80 }], pricePerHour: 1, jobs: [] };
    assert.ok(WorkerToBroker.safeParse(hello).success);
    const { protocol: _p, ...noVersion } = hello;
    assert.ok(!WorkerToBroker.safeParse(noVersion).success);
    assert.ok(!WorkerToBroker.safeParse({ type: 'event', jobId: 'job_abcdefgh12', wseq: 0, body: { type: 'log', stream: 'stdout', data: '' } }).success, 'wseq starts at 1');
    assert.ok(BrokerToWorker.safeParse({ type: 'ack', jobId: 'job_abcdefgh12', wseq: 0 }).success);
    assert.ok(!BrokerToWorker.safeParse({ type: 'shell', cmd: 'rm -rf /' }).success);
  });

  it('non-finite scalars round-trip as TensorBoard strings, and tables group by run then tag', () => {
    for (const v of [1.5, 0, -2, NaN, Infinity, -Infinity]) assert.ok(Object.is(decodeScalar(encodeScalar(v)), v));
    const t = scalarTable([
      { run: 'a', tag: 'x', step: 0, wallTime: 0, value: 1 },
      { run: 'a', tag: 'x', step: 1, wallTime: 0, value: 'NaN' },
      { run: '.', tag: 'y', step: 5, wallTime: 0, value: 2 },
    ]);
    assert.deepEqual(t, { a: { x: [[0, 1], [1, 'NaN']] }, '.': { y: [[5, 2]] } });
  });
});
