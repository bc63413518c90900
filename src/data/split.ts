// The seeded train / validation / test split of one labeled file (what
// `lorakit train --data file.jsonl` and the browser page both do): 10% of the
// examples (at least one) validate, the next 10% test, the rest train. The
// order comes from the split seed alone, so runs with different training
// seeds share their test set.

import { Rng } from '../util/rng.ts';

/** The split seed lorakit uses unless told otherwise. */
export const SPLIT_SEED = 1234;

export function splitExamples<T>(examples: readonly T[], splitSeed = SPLIT_SEED): { train: T[]; validation: T[]; test: T[] } {
  const order = new Rng(splitSeed).fork('jsonl-split').permutation(examples.length);
  const shuffled = order.map((i) => examples[i]);
  const nVal = Math.max(1, Math.round(examples.length * 0.1));
  return { train: shuffled.slice(2 * nVal), validation: shuffled.slice(0, nVal), test: shuffled.slice(nVal, 2 * nVal) };
}
