// The shared adapter harness's LoRA-XS case (src/adapters/testing.ts).
import type { AdapterTestConfig } from '../testing.ts';
import type { LoraxsConfig } from './index.ts';

export const testConfig: AdapterTestConfig<LoraxsConfig> = {
  config: { r: 4, init_weights: false },
  // The frozen factors come from W0's SVD.
  merge: 'merge',
  combine: true,
  mixedBatches: true,
  lr: 1e-2,
};
