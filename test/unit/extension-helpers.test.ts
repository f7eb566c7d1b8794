// Pure helpers of the extension (no vscode): display formats and the run log as text.
import * as assert from 'node:assert/strict';
import { balanceText, brokerHost, costNow, escapeMarkdown, formatBytes, formatCredits, formatDuration, formatRate, formatReliability, formatVram, isLocalBroker, plainLog, rowTooltip } from '../../src/extension/views/format';
import type { Lease } from '../../src/shared/protocol';

describe('extension display helpers', () => {
  it('formats durations with at most two units', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(59_999), '59s');
    assert.equal(formatDuration(4 * 60_000 + 9_000), '4m 09s');
    assert.equal(formatDuration(3_600_000 + 5 * 60_000 + 59_000), '1h 05m');
    assert.equal(formatDuration(-5), '0s');
  });

  it('formats VRAM, bytes and credits', () => {
    assert.equal(formatVram(81_559), '80 GiB');
    assert.equal(formatVram(6_144), '6 GiB');
    assert.equal(formatVram(1_536), '1.5 GiB');
    assert.equal(formatVram(0), '—');
    assert.equal(formatBytes(1000), '1000 B');
    assert.equal(formatBytes(16_403), '16.0 KiB');
    assert.equal(formatBytes(5 * 1024 ** 3), '5.0 GiB');
    assert.equal(formatCredits(0), '0');
    assert.equal(formatCredits(0.5), '0.500');
    assert.equal(formatCredits(12.345), '12.35');
  });

  it('side bar rows: prices carry their unit, reliability its label; a cut-off row\'s tooltip has every part', () => {
    assert.equal(formatRate(2.5), '2.50 cr/h');
    assert.equal(formatRate(0.25), '0.250 cr/h');
    assert.equal(formatReliability(0.983), '98% reliable');
    assert.equal(brokerHost('http://127.0.0.1:7777'), '127.0.0.1:7777');
    assert.equal(brokerHost('https://gpus.example.org/hearth'), 'gpus.example.org/hearth');
    const tip = rowTooltip('my_train.py', 'running · 4m 09s · job_abc', ['lease `lse_x`']);
    for (const part of ['my\\_train.py', 'running', '4m 09s', 'job\\_abc', 'lease `lse_x`']) assert.ok(tip.includes(part), `${part} in ${tip}`);
    assert.equal(escapeMarkdown('a_b*c'), 'a\\_b\\*c');
  });

  it('tells a broker on this machine from a remote one (only the first may be offered "start a local network")', () => {
    for (const url of ['http://127.0.0.1:7777', 'http://localhost:7777', 'http://[::1]:7777', 'http://127.0.0.2:80', 'http://[::ffff:127.0.0.1]:7777', undefined]) assert.equal(isLocalBroker(url), true, String(url));
    for (const url of ['https://gpus.example.org', 'http://10.0.0.5:7777', 'http://192.168.1.2:7777', 'not a url']) assert.equal(isLocalBroker(url), false, url);
  });

  it('carries a lease\'s cost forward from the broker\'s last metering, until it expires', () => {
    const lease: Lease = {
      id: 'lse_abcdefgh', workerId: 'wrk_abcdefgh', workerName: 'w', gpuModel: 'A100', gpuIndices: [0, 1], count: 2,
      pricePerHour: 3, createdAt: 0, expiresAt: 3_600_000, endedAt: null, status: 'active', secondsUsed: 600, cost: 1,
    };
    // fetched at 10 min, now 40 min: 30 more minutes of 2 devices at 3/h = 3 credits
    assert.equal(costNow(lease, 600_000, 2_400_000), 4);
    // past expiry nothing more accrues
    assert.equal(costNow(lease, 600_000, 10_000_000), 1 + (2 * 3 * 3000) / 3600);
    assert.equal(costNow({ ...lease, status: 'released' }, 600_000, 2_400_000), 1);
  });

  it('turns a terminal log into plain text: no escapes, the last rewrite of \\r lines', () => {
    assert.equal(plainLog('\x1b[1;32mok\x1b[0m\n[#..] 1/3\r[##.] 2/3\r[###] 3/3\ndone\r\n'), 'ok\n[###] 3/3\ndone\n');
    assert.equal(plainLog('\x1b]8;;http://x\x07link\x1b]8;;\x07'), 'link');
  });
  it('says the balance, what leases hold and what a provider earned', () => {
    assert.equal(balanceText(undefined), '');
    assert.equal(balanceText({ balance: 65, held: 35, overdraft: 0, earnings: 0, mode: 'prepaid' }), 'balance 65.00 cr · held 35.00 cr');
    assert.equal(balanceText({ balance: -3, held: 0, overdraft: null, earnings: 12.5, mode: 'open' }), 'balance -3.00 cr (open credit) · earned 12.50 cr');
  });
});
