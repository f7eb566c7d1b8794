/** Every command the extension registers; package.json contributes exactly these (a test checks). */
export const CommandId = {
  runCurrentFile: 'hearth.runCurrentFile',
  leaseGpu: 'hearth.leaseGpu',
  releaseLease: 'hearth.releaseLease',
  renewLease: 'hearth.renewLease',
  cancelRun: 'hearth.cancelRun',
  pullWeights: 'hearth.pullWeights',
  openRunPanel: 'hearth.openRunPanel',
  showRunLog: 'hearth.showRunLog',
  connect: 'hearth.connect',
  signOut: 'hearth.signOut',
  startLocalNetwork: 'hearth.startLocalNetwork',
  refresh: 'hearth.refresh',
  filterGpus: 'hearth.filterGpus',
  sortGpus: 'hearth.sortGpus',
  clearFilter: 'hearth.clearFilter',
  restartKernel: 'hearth.restartKernel',
  restartKernelAndRunAll: 'hearth.restartKernelAndRunAll',
  openKernelPanel: 'hearth.openKernelPanel',
  showKernelLog: 'hearth.showKernelLog',
  shutDownKernel: 'hearth.shutDownKernel',
  setSecret: 'hearth.setSecret',
  pushToHub: 'hearth.pushToHub',
} as const;
export type CommandId = (typeof CommandId)[keyof typeof CommandId];

/** View IDs as package.json contributes them. */
export const ViewId = {
  container: 'hearth',
  gpus: 'hearth.gpus',
  leases: 'hearth.leases',
  runs: 'hearth.runs',
} as const;
