// The shared adapter harness's CoDyRA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { CodyraConfig } from './config.ts';

export const testConfig: AdapterTestConfig<CodyraConfig> = {
  // κ_max 0 keeps every gate open through the harness's short runs (the schedule is checked in test/codyra.test.ts).
  config: { r: 4, init_weights: false, kappa_max: 0 },
  merge: 'merge-unmerge',
  combine: true,
  mixedBatches: true,
  lr: 5e-3,
};
