// Which files of a job are its outputs: the worker uses it to find them, the broker to refuse an
// artifact a worker reports outside them (one could otherwise plant a file in the renter's pull).
import picomatch from 'picomatch';

/**
 * A predicate for workspace-relative paths. Globs are picomatch globs relative to the workspace
 * root, dotfiles included; a glob naming a folder ('checkpoints' or 'checkpoints/') takes all
 * that lies under it.
 */
export function outputMatcher(globs: readonly string[]): (rel: string) => boolean {
  const cleaned = globs.map((g) => g.trim().replace(/^\.\/+/, '').replace(/\/+$/, '')).filter((g) => g.length > 0);
  if (cleaned.length === 0) return () => false;
  const isMatch = picomatch(cleaned, { dot: true });
  return (rel: string) => {
    if (isMatch(rel)) return true;
    for (let i = rel.indexOf('/'); i > 0; i = rel.indexOf('/', i + 1)) {
      if (isMatch(rel.slice(0, i))) return true;
    }
    return false;
  };
}

