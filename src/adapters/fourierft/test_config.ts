// The shared adapter harness's FourierFT case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { FourierFTConfig } from './config.ts';

export const testConfig: AdapterTestConfig<FourierFTConfig> = {
  // PEFT's default init is already c ~ N(0, 1); 64 coefficients need a large
  // scaling to move a [768, 256] ΔW by more than rounding.
  config: { n_frequency: 64, scaling: 3000, random_loc_seed: 5 },
  merge: 'merge-unmerge',
  combine: false,
  mixedBatches: false,
  lr: 1e-2,
};
