import type { KernelRequest } from '../../shared/protocol';
import type { JobRow } from '../store/rows';

/** How the services reach workers; implemented by the worker hub (which may relay to another replica). */
export interface WorkerLink {
  /** connected to this replica or, with several, to another that is alive */
  isOnline(workerId: string): Promise<boolean>;
  dispatch(job: JobRow): Promise<void>;
  cancel(workerId: string, jobId: string, reason: string): Promise<void>;
  /** a request for a running kernel session */
  request(workerId: string, jobId: string, request: KernelRequest): Promise<void>;
}

/** The link the services use, set by the worker hub once it exists. */
export class LinkRef {
  current: WorkerLink = { isOnline: async () => false, dispatch: async () => {}, cancel: async () => {}, request: async () => {} };
}
