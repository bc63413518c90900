// The shared adapter harness's IncreLoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { IncreloraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<IncreloraConfig> = {
  // E ~ N(0, 1) so the adapter changes outputs from the start; a rank increase at step 2 of the short runs
  // (the allocation itself is checked against the official code in test/increlora.test.ts).
  config: { init_r: 2, target_rank: 3, incre_rank_num: 1, top_h: 1, init_warmup: 1, incre_interval: 2, init_weights: false, reg_orth_coef: 0.1 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
