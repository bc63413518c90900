// The shared adapter harness's Hydra case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { HydraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<HydraConfig> = {
  config: { r_seq: 2, r_par: 3, init_weights: false },
  // ΔW = B_s·A_s·W0 + B_p·A_p depends on W0.
  merge: 'merge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
};
