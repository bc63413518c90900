// The Python used for the PyTorch reference scripts, and whether it has torch.
// Tests that rerun a reference use `torchSkip` / `requireTorch`: in CI a
// missing torch fails them (.ci/run installs python3-torch from Debian);
// locally they skip and say so. LORAKIT_PYTHON picks another interpreter.
import { spawnSync } from 'node:child_process';
import { referenceSkip, requireReference } from './reference.ts';

export const PY = process.env.LORAKIT_PYTHON ?? '/usr/bin/python3';

/** Why torch cannot be used, or null when `PY -c 'import torch'` works. */
export const torchMissing: string | null = (() => {
  const r = spawnSync(PY, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.error) return `${PY} cannot run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}); install python3-torch`;
  if (r.status !== 0) return `${PY} cannot import torch (${(r.stderr || '').trim().split('\n').pop()}); install python3-torch (apt-get install python3-torch libopenblas0-pthread)`;
  return null;
})();

export const hasTorch = torchMissing === null;

/** `skip` option of a test that needs torch (see reference.ts). */
export const torchSkip: string | false = referenceSkip(torchMissing);

/** Call first in a test (or subtest) that runs a PyTorch reference. */
export function requireTorch(): void {
  requireReference(torchMissing);
}
