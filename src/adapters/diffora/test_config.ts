// The shared adapter harness's DiffoRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { DifforaConfig } from './config.ts';

export const testConfig: AdapterTestConfig<DifforaConfig> = {
  // search_fraction 1: the search (weights on even steps, gates on odd ones) spans the short runs, ending after their last step; rho 1 keeps both modules (selection is checked in test/diffora.test.ts).
  config: { r: 4, init_weights: false, rho: 1, search_fraction: 1 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
