// The shared adapter harness's SLTrain case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { SLTrainConfig } from './config.ts';

export const testConfig: AdapterTestConfig<SLTrainConfig> = {
  // A sparse part that is non-zero from the start, so both halves of ΔW show.
  config: { r: 4, density: 0.01, support_seed: 7, sparse_init: 'uniform', init_weights: false },
  merge: 'merge-unmerge',
  combine: false,
  mixedBatches: false,
  lr: 1e-2,
};
