// Workers, offers and leases with per-second metering. A lease is not billed while its worker is
// away; it ends when released or when its time is up, and its open jobs are stopped then. Its
// devices are free for the next lease only once the last job on them has ended (the worker reports
// the end after the job's processes are gone): a lease made before then waits for them, unbilled.
import { MAX_LEASE_HOURS, PythonStack, type CreateLeaseBody, type GpuInfo, type Lease, type Offer } from '../../shared/protocol';
import { credits } from '../../shared/money';
import { offerCandidates } from '../../shared/offer-pick';
import { conflict, invalid, notFound } from '../errors';
import type { EventLog } from '../event-log';
import { newId } from '../ids';
import type { JobsRepo } from '../store/jobs-repo';
import type { LeasesRepo } from '../store/leases-repo';
import type { LeaseRow, WorkerRow } from '../store/rows';
import type { WorkersRepo } from '../store/workers-repo';
import type { Principal } from './accounts';
import type { LinkRef } from './link';

export interface Hello {
  workerId?: string | undefined;
  name: string;
  hostname: string;
  version: string;
  gpus: GpuInfo[];
  pricePerHour: number;
  stack?: PythonStack | undefined;
}

/** A lease about to be made, as the ledger sees it (it holds the cost in escrow, or refuses). */
export interface LeaseQuote {
  leaseId: string;
  accountId: string;
  workerId: string;
  providerAccountId: string;
  pricePerHour: number;
  count: number;
  createdAt: number;
  expiresAt: number;
}

export class LeaseService {
  /** runs before a lease is stored; throwing refuses it (the ledger's escrow hold, see ledger.ts) */
  beforeLease: ((q: LeaseQuote) => Promise<void>) | undefined;

  constructor(
    private readonly workers: WorkersRepo,
    private readonly leasesRepo: LeasesRepo,
    private readonly jobs: JobsRepo,
    private readonly events: EventLog,
    private readonly link: LinkRef,
    /** stops the lease's open jobs when it ends (the job service) */
    private readonly leaseEnded: (leaseId: string, reason: string) => Promise<void>,
  ) {}

  // ---------- workers ----------

  /** Registers a worker (or re-registers one that reconnects with its id) and returns its id. */
  async registerWorker(accountId: string, hello: Hello): Promise<string> {
    const now = Date.now();
    // A worker that lost its worker.json (or never keeps one) says hello without an id: it gets its
    // old row back, matched by name and host, instead of one more row each time it connects.
    let known: WorkerRow | undefined;
    if (hello.workerId) {
      const w = await this.workers.get(hello.workerId);
      known = w?.account_id === accountId ? w : undefined;
    } else {
      for (const w of await this.workers.byNameAndHost(accountId, hello.name, hello.hostname)) {
        if (!(await this.link.current.isOnline(w.id))) {
          known = w;
          break;
        }
      }
    }
    const fields = {
      name: hello.name,
      hostname: hello.hostname,
      version: hello.version,
      gpus: JSON.stringify(hello.gpus),
      price_per_hour: hello.pricePerHour,
      stack: hello.stack ? JSON.stringify(hello.stack) : null,
      last_seen: now,
    };
    if (known) {
      await this.workers.update(known.id, fields);
      return known.id;
    }
    const id = newId('wrk');
    await this.workers.insert({ id, account_id: accountId, ...fields, created_at: now });
    return id;
  }

  touchWorker(workerId: string, at = Date.now()): Promise<void> {
    return this.workers.touch(workerId, at);
  }

  /**
   * The worker has not been heard from since `since`: its leases stop billing from then on, and
   * the renters of its jobs are told at once (the jobs are marked lost only later, in case it returns).
   */
  async workerAway(workerId: string, since: number, lostAfterMs: number): Promise<void> {
    if ((await this.leasesRepo.markAway(workerId, since)) === 0) return;
    const at = new Date(since).toISOString().slice(11, 19);
    for (const id of await this.jobs.takenOnWorker(workerId)) {
      await this.events.append(id, {
        type: 'notice',
        level: 'warning',
        message: `worker lost: nothing heard from it since ${at} UTC. The lease is not billed while it is away; the job is marked lost if it does not return within ${Math.round(lostAfterMs / 1000)} s`,
      });
    }
  }

  /** The worker is connected again: its leases bill again, and the time away stays unbilled. */
  async workerBack(workerId: string, now = Date.now()): Promise<void> {
    const rows = await this.leasesRepo.awayOf(workerId);
    for (const r of rows) await this.leasesRepo.clearAway(r.id, r.away_ms + awayMs(r, Math.min(now, r.ended_at ?? now, r.expires_at)));
    if (rows.length === 0) return;
    for (const id of await this.jobs.runningOnWorker(workerId)) {
      await this.events.append(id, { type: 'notice', level: 'info', message: 'the worker is back; the lease bills again' });
    }
  }

  private async reliability(workerId: string): Promise<number> {
    const { done, lost } = await this.workers.outcomes(workerId);
    return (done - lost + 1) / (done + 1);
  }

  private async heldIndices(workerId: string): Promise<Set<number>> {
    await this.expireLeases();
    return new Set((await this.leasesRepo.activeIndices(workerId)).flatMap((r) => JSON.parse(r) as number[]));
  }

  /** Devices of ended leases whose last job still runs (stopping, uploading): not free yet. */
  private async drainingIndices(workerId: string): Promise<Set<number>> {
    return new Set((await this.leasesRepo.drainingIndices(workerId)).flatMap((r) => JSON.parse(r) as number[]));
  }

  /**
   * Starts the worker's waiting leases whose devices are free now (a job ended): billed from now,
   * their end moved by the wait; returns the ids of those started, for their queued jobs to go.
   */
  async startWaitingLeases(workerId: string, now = Date.now()): Promise<string[]> {
    const waiting = await this.leasesRepo.waitingOf(workerId);
    if (waiting.length === 0) return [];
    const draining = await this.drainingIndices(workerId);
    const started: string[] = [];
    for (const r of waiting) {
      if ((JSON.parse(r.gpu_indices) as number[]).some((i) => draining.has(i))) continue;
      if (await this.leasesRepo.start(r.id, now)) started.push(r.id);
    }
    return started;
  }

  async offers(): Promise<Offer[]> {
    // Workers seen in the last day are listed; those not connected now are left out.
    const workers = await this.workers.seenSince(Date.now() - 86_400_000);
    const out: Offer[] = [];
    for (const w of workers) {
      const online = await this.link.current.isOnline(w.id);
      if (!online) continue;
      const gpus = JSON.parse(w.gpus) as GpuInfo[];
      const held = await this.heldIndices(w.id);
      const byModel = new Map<string, GpuInfo[]>();
      for (const g of gpus) byModel.set(g.name, [...(byModel.get(g.name) ?? []), g]);
      const reliability = await this.reliability(w.id);
      for (const [model, list] of byModel) {
        out.push({
          workerId: w.id,
          workerName: w.name,
          gpuModel: model,
          isGpu: list[0]?.isGpu ?? true,
          vramMiB: list[0]?.memoryTotalMiB ?? 0,
          total: list.length,
          free: online ? list.filter((g) => !held.has(g.index)).length : 0,
          pricePerHour: w.price_per_hour,
          reliability,
          online,
          ...(w.stack ? { stack: PythonStack.parse(JSON.parse(w.stack)) } : {}),
        });
      }
    }
    return out;
  }

  // ---------- leases ----------

  private async toLease(r: LeaseRow): Promise<Lease> {
    const secondsUsed = billedSeconds(r, Date.now());
    return {
      id: r.id,
      workerId: r.worker_id,
      workerName: (await this.leasesRepo.workerName(r.worker_id)) ?? '?',
      gpuModel: r.gpu_model,
      gpuIndices: JSON.parse(r.gpu_indices) as number[],
      count: r.count,
      pricePerHour: r.price_per_hour,
      createdAt: r.created_at,
      expiresAt: r.expires_at,
      endedAt: r.ended_at,
      status: r.status,
      secondsUsed,
      cost: costOfSeconds(r, secondsUsed),
      waitingFor:
        r.waiting_since !== null && r.status === 'active'
          ? `device${r.count > 1 ? 's' : ''} ${(JSON.parse(r.gpu_indices) as number[]).join(', ')}, still held by the last job of an ended lease (stopping); not billed until ${r.count > 1 ? 'they are' : 'it is'} free`
          : null,
    };
  }

  /** The lease if it belongs to this account; not found otherwise, so other accounts learn nothing. */
  async leaseRow(p: Principal, id: string): Promise<LeaseRow> {
    const r = await this.leasesRepo.owned(id, p.accountId);
    if (!r) throw notFound(`no lease ${id}`);
    return r;
  }

  get(id: string): Promise<LeaseRow | undefined> {
    return this.leasesRepo.get(id);
  }

  /** The stack (JSON) of the worker behind one of the account's leases. */
  workerStack(leaseId: string, accountId: string): Promise<{ stack: string | null } | undefined> {
    return this.leasesRepo.workerStack(leaseId, accountId);
  }

  async createLease(p: Principal, body: CreateLeaseBody): Promise<Lease> {
    await this.expireLeases();
    const all = await this.offers();
    const fitting = offerCandidates(all, body);
    // A renter who was quoted a price gets it or a refusal, never another price.
    const quoted = body.pricePerHour;
    const candidates = quoted === undefined ? fitting : fitting.filter((o) => o.pricePerHour === quoted);
    if (quoted !== undefined && fitting.length > 0 && candidates.length === 0) throw priceChanged(quoted, fitting[0]!.pricePerHour);
    const pick = candidates[0];
    if (!pick) {
      const what = all.length ? all.map((o) => `${o.gpuModel} on ${o.workerName}: ${o.free}/${o.total} free`).join('; ') : 'no worker is connected';
      throw conflict('no_capacity', `no offer has ${body.count} free ${body.gpuModel ?? 'device(s)'} (${what})`);
    }
    const w = (await this.workers.get(pick.workerId))!;
    // The worker may have said hello again at another price since the offers were read.
    if (quoted !== undefined && w.price_per_hour !== quoted) throw priceChanged(quoted, w.price_per_hour);
    const held = await this.heldIndices(w.id);
    const draining = await this.drainingIndices(w.id);
    // Devices no job runs on first; one still held by an ended lease's last job makes this lease wait.
    const indices = (JSON.parse(w.gpus) as GpuInfo[])
      .filter((g) => g.name === pick.gpuModel && !held.has(g.index))
      .sort((a, b) => Number(draining.has(a.index)) - Number(draining.has(b.index)) || a.index - b.index)
      .slice(0, body.count)
      .map((g) => g.index);
    const now = Date.now();
    const waits = indices.some((i) => draining.has(i));
    const id = newId('lease');
    const expiresAt = now + Math.round(body.hours * 3_600_000);
    await this.beforeLease?.({ leaseId: id, accountId: p.accountId, workerId: w.id, providerAccountId: w.account_id, pricePerHour: w.price_per_hour, count: body.count, createdAt: now, expiresAt });
    await this.leasesRepo.insert({
      id,
      account_id: p.accountId,
      worker_id: w.id,
      gpu_model: pick.gpuModel,
      gpu_indices: JSON.stringify(indices),
      count: body.count,
      price_per_hour: w.price_per_hour,
      created_at: now,
      expires_at: expiresAt,
      waiting_since: waits ? now : null,
    });
    // The job holding the devices may have ended between the look and the insert.
    if (waits) await this.startWaitingLeases(w.id);
    return this.lease(p, id);
  }

  async leases(p: Principal): Promise<Lease[]> {
    await this.expireLeases();
    return Promise.all((await this.leasesRepo.ofAccount(p.accountId)).map((r) => this.toLease(r)));
  }

  async lease(p: Principal, id: string): Promise<Lease> {
    await this.expireLeases();
    return this.toLease(await this.leaseRow(p, id));
  }

  async renewLease(p: Principal, id: string, hours: number): Promise<Lease> {
    await this.expireLeases();
    const r = await this.leaseRow(p, id);
    if (r.status !== 'active') throw conflict('lease_ended', `lease ${id} is ${r.status}; lease again`);
    const expires = Math.max(r.expires_at, Date.now()) + Math.round(hours * 3_600_000);
    // Renewals do not stack past the longest lease, counted from its start (a waiting lease's from now).
    const start = r.waiting_since === null ? r.created_at : Date.now();
    const longest = start + MAX_LEASE_HOURS * 3_600_000;
    if (expires > longest) {
      const left = Math.max(0, Math.floor(((longest - Math.max(r.expires_at, Date.now())) / 3_600_000) * 100) / 100);
      throw invalid('lease_too_long', `a lease lasts at most ${MAX_LEASE_HOURS} h, renewals included: lease ${id} can be renewed by at most ${left} h more; lease again after it ends`);
    }
    await this.leasesRepo.setExpiry(id, expires);
    return this.lease(p, id);
  }

  async releaseLease(p: Principal, id: string): Promise<Lease> {
    await this.expireLeases();
    const r = await this.leaseRow(p, id);
    if (r.status === 'active') await this.endLease(r, 'released', Date.now());
    return this.lease(p, id);
  }

  /** Ends every lease whose time is up; runs on a timer and before anything reads leases. */
  async expireLeases(now = Date.now()): Promise<void> {
    for (const r of await this.leasesRepo.due(now)) await this.endLease(r, 'expired', r.expires_at);
  }

  /** Ends an active lease (once, whoever else tries too) and stops its jobs; true when this call ended it. */
  async endLease(r: Pick<LeaseRow, 'id'>, status: 'released' | 'expired', at: number, jobReason?: string): Promise<boolean> {
    if (!(await this.leasesRepo.end(r.id, status, at))) return false;
    await this.leaseEnded(r.id, jobReason ?? (status === 'expired' ? 'lease expired' : 'lease released'));
    return true;
  }

  /** Any account's lease as metered now (for the spend controls, which watch every account). */
  async leaseById(id: string): Promise<Lease | undefined> {
    const r = await this.leasesRepo.get(id);
    return r && this.toLease(r);
  }

  /** Ends an active lease now on the broker's own account (a cap, a limit, idleness); its jobs stop with `jobReason`. */
  endActiveLease(id: string, jobReason: string, at = Date.now()): Promise<boolean> {
    return this.endLease({ id }, 'released', at, jobReason);
  }
}

function priceChanged(quoted: number, now: number) {
  return conflict(
    'price_changed',
    `the offer's price is now ${credits(now)}/h per device, not the ${credits(quoted)}/h you were quoted: nothing was leased; look at \`hearth gpus\` and lease again at the new price`,
  );
}

/**
 * The whole seconds of r billed by `now`: its time so far (up to its end), less the time its worker
 * was away; none while it waits for its devices (its created_at moves to when it gets them).
 */
export function billedSeconds(r: LeaseRow, now: number): number {
  if (r.waiting_since !== null) return 0;
  const end = Math.min(r.ended_at ?? now, r.expires_at);
  return Math.max(0, Math.ceil((end - r.created_at - r.away_ms - awayMs(r, end)) / 1000));
}

/** What `seconds` of r cost in credits (per second: price per device-hour × devices / 3600). */
export function costOfSeconds(r: Pick<LeaseRow, 'count' | 'price_per_hour'>, seconds: number): number {
  return (r.count * r.price_per_hour * seconds) / 3600;
}

/** Milliseconds of r's current time away that fall before `end` (0 while its worker is connected). */
export function awayMs(r: LeaseRow, end: number): number {
  // Time away while the lease waited for its devices was not billed in the first place.
  return r.away_since === null || r.waiting_since !== null ? 0 : Math.max(0, end - Math.max(r.away_since, r.created_at));
}
