// The shared adapter harness's VeRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { VeraConfig } from './index.ts';

export const testConfig: AdapterTestConfig<VeraConfig> = {
  config: { r: 16, projection_prng_key: 3, init_weights: false },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
};
