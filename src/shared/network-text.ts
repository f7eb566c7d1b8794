// What a renter is told of an offer's session network (`hearth gpus`, the GPU explorer): the
// worker says it in its hello; older workers say nothing, and their sessions share its network.
import type { PythonStack } from './protocol';

/** One word for a table column. */
export function networkShort(stack: PythonStack | undefined): string {
  return stack?.network === 'internet' ? 'internet' : stack?.network === 'none' ? 'none' : 'SHARED';
}

/** A sentence for a tooltip. */
export function networkText(stack: PythonStack | undefined): string {
  if (stack?.network === 'internet') return 'a network of its own: the internet through NAT, not the worker\'s host, its LAN or other sessions';
  if (stack?.network === 'none') return 'a network of its own with loopback only: no internet';
  return 'the worker\'s own network, shared: other sessions on it and its LAN may be reachable';
}
