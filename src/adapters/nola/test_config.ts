// The shared adapter harness's NOLA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { NolaConfig } from './index.ts';

export const testConfig: AdapterTestConfig<NolaConfig> = {
  config: { r: 4, num_basis_A: 16, num_basis_B: 8, basis_seed: 5, init_weights: false },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
};
