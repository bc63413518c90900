// The shared adapter harness's LoLDU case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { LolduConfig } from './index.ts';

export const testConfig: AdapterTestConfig<LolduConfig> = {
  config: { r: 4, init_weights: false },
  // The frozen factors come from W0's LU.
  merge: 'merge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
};
