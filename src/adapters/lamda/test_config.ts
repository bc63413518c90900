// The shared adapter harness's LaMDA case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { LamdaConfig } from './config.ts';

export const testConfig: AdapterTestConfig<LamdaConfig> = {
  // freeze_fraction 0: B is frozen from the first step (its column-by-column
  // schedule is checked in test/reparam_b.test.ts), so training must leave it
  // exactly as initialized while S trains.
  config: { r: 4, init_weights: false, freeze_fraction: 0 },
  merge: 'merge',
  combine: true,
  mixedBatches: true,
  frozenInTraining: ['lamda_B.weight'],
  lr: 1e-2,
};
