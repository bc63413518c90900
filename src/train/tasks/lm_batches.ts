// Batching shared by the language-model tasks: examples are grouped by length
// (a seeded shuffle, then length-sorted chunks: src/data/batching.ts's plan)
// and each batch is padded only to its own longest sequence.

import { planBatches } from '../../data/batching.ts';
import type { Rng } from '../../util/rng.ts';

/** Index lists of an epoch's batches: shuffled and length-grouped with `rng`, in data order without. */
export function lengthGroupedBatches(lengths: readonly number[], batchSize: number, rng: Rng | null): number[][] {
  const longest = Math.max(1, ...lengths);
  return planBatches(lengths, { batchSize, buckets: [longest], padId: 0, rng: rng ?? undefined }).map((p) => p.index);
}
