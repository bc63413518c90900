// The Python used for the PyTorch reference scripts, and whether it has torch
// (tests that rerun a reference skip, or fall back to committed fixtures, without it).
import { execFileSync } from 'node:child_process';

export const PY = '/usr/bin/python3';

export const hasTorch = (() => {
  try {
    execFileSync(PY, ['-c', 'import torch'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
