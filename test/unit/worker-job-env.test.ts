// A job's environment, the sizes of its limits, and the reasons it ends with: pure helpers.
import assert from 'node:assert/strict';
import { jobEnv } from '../../src/worker/job-env';
import { ByteSize, formatBytes, PidCount } from '../../src/worker/limits';
import { redactPaths } from '../../src/worker/redact-paths';

describe('worker: a job\'s environment, limits and reasons', () => {
  it('jobEnv: the machine\'s PATH, locale, TZ and TERM pass; secrets do not; the renter\'s and the worker\'s own are added', () => {
    const env = jobEnv({
      workerEnv: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC', TERM: 'xterm', AWS_SECRET_ACCESS_KEY: 's', HF_TOKEN: 'h', HEARTH_TOKEN: 't', SSH_AUTH_SOCK: '/x', PYTHONPATH: '/root/lib', HOME: '/root' },
      specEnv: { WANDB_MODE: 'offline', LANG: 'de_DE.UTF-8', HEARTH_JOB_ID: 'forged' },
      set: { HOME: '/w/homes/j', HEARTH_JOB_ID: 'job_1', PYTHONUNBUFFERED: '1' },
    });
    assert.deepEqual(env, { PATH: '/usr/bin:/bin', LANG: 'de_DE.UTF-8', LC_ALL: 'C.UTF-8', TZ: 'UTC', TERM: 'xterm', COLUMNS: '120', LINES: '40', WANDB_MODE: 'offline', HOME: '/w/homes/j', HEARTH_JOB_ID: 'job_1', PYTHONUNBUFFERED: '1' });
    assert.equal(jobEnv({ workerEnv: {}, specEnv: {}, set: {} }).PATH, '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
  });

  it('jobEnv: a terminal size (120×40) for progress bars, unless the renter sets their own', () => {
    const env = jobEnv({ workerEnv: { COLUMNS: '300' }, specEnv: {}, set: {} });
    assert.equal(env.COLUMNS, '120');
    assert.equal(env.LINES, '40');
    assert.equal(jobEnv({ workerEnv: {}, specEnv: { COLUMNS: '200' }, set: {} }).COLUMNS, '200');
  });

  it('ByteSize reads 512M, 8G, 1.5GiB and bytes; refuses what is not a size or under 1M', () => {
    assert.equal(ByteSize.parse('512M'), 512 * 2 ** 20);
    assert.equal(ByteSize.parse('8G'), 8 * 2 ** 30);
    assert.equal(ByteSize.parse('1.5GiB'), 1.5 * 2 ** 30);
    assert.equal(ByteSize.parse('2t'), 2 * 2 ** 40);
    assert.equal(ByteSize.parse('1048576'), 2 ** 20);
    for (const bad of ['lots', '-1G', '1000', '8 gigs', '']) assert.equal(ByteSize.safeParse(bad).success, false, bad);
    assert.equal(PidCount.parse('64'), 64);
    assert.equal(PidCount.safeParse('3').success, false);
  });

  it('formatBytes names limits as people read them', () => {
    assert.equal(formatBytes(2 * 2 ** 30), '2 GiB');
    assert.equal(formatBytes(256 * 2 ** 20), '256 MiB');
    assert.equal(formatBytes(1.5 * 2 ** 30), '1.5 GiB');
    assert.equal(formatBytes(512), '512 B');
  });

  it('redactPaths: the job\'s folder becomes relative, the worker\'s folders placeholders, other text stays', () => {
    const names = { workspace: '/var/lib/hearth/work/jobs/job_x', others: [['/var/lib/hearth/work', '<worker>'], ['/root', '<home>']] as [string, string][] };
    assert.equal(
      redactPaths("EISDIR: illegal operation on a directory, copyfile '/var/lib/hearth/work/blobs/ab' -> '/var/lib/hearth/work/jobs/job_x/a'", names),
      "EISDIR: illegal operation on a directory, copyfile '<worker>/blobs/ab' -> 'a'",
    );
    assert.equal(redactPaths('cwd /var/lib/hearth/work/jobs/job_x and /root/.cache', names), 'cwd . and <home>/.cache');
    // A longer name that only starts the same is someone else's.
    assert.equal(redactPaths('/var/lib/hearth/work/jobs/job_xy/a /rootfs', names), '<worker>/jobs/job_xy/a /rootfs');
    assert.equal(redactPaths('exited with code 3', names), 'exited with code 3');
  });
});
