// What the language-model tasks share: batching (examples grouped by length:
// a seeded shuffle, then length-sorted chunks, src/data/batching.ts's plan;
// each batch padded only to its own longest sequence) and the validation loss
// (the mean over every predicted token, not over batches).

import { planBatches } from '../../data/batching.ts';
import type { HostTensor } from '../../runtime/session.ts';
import type { Rng } from '../../util/rng.ts';

/** Loss per predicted token over all batches (each batch's mean weighted by its `targets`), its perplexity and the token count. */
export function tokenMeanLoss(results: { batch: { targets: number }; out: Record<string, HostTensor> }[]): Record<string, number> {
  let sum = 0, n = 0;
  for (const { batch, out } of results) {
    sum += Number(out.loss.data[0]) * batch.targets;
    n += batch.targets;
  }
  const loss = n ? sum / n : NaN;
  return { loss, perplexity: Math.exp(loss), tokens: n };
}

/** Index lists of an epoch's batches: shuffled and length-grouped with `rng`, in data order without. */
export function lengthGroupedBatches(lengths: readonly number[], batchSize: number, rng: Rng | null): number[][] {
  const longest = Math.max(1, ...lengths);
  return planBatches(lengths, { batchSize, buckets: [longest], padId: 0, rng: rng ?? undefined }).map((p) => p.index);
}
