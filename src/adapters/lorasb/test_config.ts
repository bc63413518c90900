// The shared adapter harness's LoRA-SB case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import { LORASB_FROZEN, type LorasbConfig } from './index.ts';

export const testConfig: AdapterTestConfig<LorasbConfig> = {
  // init false: R ~ N(0, 0.1²) with B, A from W0's SVD, and no gradient init
  // (that path is checked in test/reparam_a.test.ts).
  config: { r: 4, init_weights: false },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  // B and A are stored with the adapter but never trained.
  frozenInTraining: LORASB_FROZEN,
  lr: 1e-2,
};
