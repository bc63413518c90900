// The shared adapter harness's LoCA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { LocaConfig } from './config.ts';

export const testConfig: AdapterTestConfig<LocaConfig> = {
  // location_fraction 0: locations never move (the location step is checked in
  // test/reparam_b.test.ts), so the optimizer (weight decay included) must
  // leave them exactly where they were while the coefficients train.
  config: { n_frequency: 64, scaling: 5, random_loc_seed: 9, init_weights: false, location_fraction: 0 },
  merge: 'merge-unmerge',
  combine: false,
  mixedBatches: false,
  frozenInTraining: ['loca_locations'],
  lr: 1e-2,
};
