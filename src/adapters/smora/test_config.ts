// The shared adapter harness's SMoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { SMoRAConfig } from './config.ts';

export const testConfig: AdapterTestConfig<SMoRAConfig> = {
  config: { num_ranks: 8, top_k: 2, init_weights: false },
  // Each token picks its own ranks: there is no dense ΔW to merge or stack.
  merge: 'none',
  combine: false,
  mixedBatches: false,
  lr: 1e-2,
};
