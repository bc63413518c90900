/**
 * Length-bucketed batching of token-id sequences.
 *
 * A compiled ONNX training graph is cached per input shape, so batches are
 * padded to one of a few allowed lengths ("buckets", e.g. [32, 64, 128, 256]):
 * each batch gets the smallest bucket >= its longest sequence. To keep padding
 * low, sequences are grouped by length:
 *
 * 1. shuffle the indices with the seeded generator (`rng` or `seed`; with
 *    neither, or `shuffle: false`, keep dataset order: evaluation);
 * 2. cut the order into chunks of `batchSize * chunkBatches` sequences and
 *    sort each chunk by length, longest first (stable, so ties keep the
 *    shuffled order);
 * 3. cut each chunk into batches of `batchSize` (only the very last batch of
 *    the epoch can be smaller; `dropLast` drops it);
 * 4. shuffle the order of the batches (`shuffleBatches`, default on when
 *    shuffling).
 *
 * The batch composition therefore depends only on the lengths, the options
 * and the generator's state: the same seed gives the same batches.
 *
 * Sequences longer than `maxLength` (default: the largest bucket) are
 * truncated (`truncation: "right"`, the default, keeps the first tokens;
 * "left" keeps the last) or rejected (`"error"`). Padded ids are a
 * BigInt64Array (ONNX int64) and the attention mask a Float32Array of
 * 1 (token) / 0 (padding), both laid out [B, T] row-major; labels travel
 * with their rows as a BigInt64Array [B].
 */
import { Rng, type Seed } from "../util/rng.ts";

export type TokenSeq = ArrayLike<number>;

export interface Batch {
  /** Positions of the batch's sequences in the input list, row by row. */
  index: number[];
  /** Rows in this batch. */
  B: number;
  /** Padded length (a bucket). */
  T: number;
  /** [B, T] token ids, padded with padId. */
  ids: BigInt64Array;
  /** [B, T] 1 for tokens, 0 for padding. */
  mask: Float32Array;
  /** Real (possibly truncated) length of each row. */
  lengths: Int32Array;
  /** [B] labels as int64 (all 0 when makeBatches got `labels = null`). */
  labels: BigInt64Array;
}

export interface BatchingOptions {
  batchSize: number;
  /** Allowed padded lengths, e.g. [32, 64, 128, 256]. Buckets above maxLength are ignored. */
  buckets: readonly number[];
  /** Longest sequence kept (default: the largest bucket); added as a bucket if no bucket reaches it. */
  maxLength?: number;
  padId: number;
  /** A generator for the shuffles (advanced by the call). */
  rng?: Rng;
  /** Or a seed for the shuffles. With neither (or null), nothing is shuffled. */
  seed?: Seed | null;
  /** Shuffle the example order (default: true when `rng` or `seed` is given). */
  shuffle?: boolean;
  /** Shuffle the batch order (default: same as `shuffle`). */
  shuffleBatches?: boolean;
  /** Batches per sorting chunk (default 50). 1 limits grouping to single batches. */
  chunkBatches?: number;
  /** Drop the last batch if it is smaller than batchSize (default false). */
  dropLast?: boolean;
  truncation?: "right" | "left" | "error";
  /** Pad on the right (default; encoders) or on the left (decoder generation). */
  padSide?: "right" | "left";
}

/** Validated, ascending buckets, capped at maxLength and reaching it. */
export function normalizeBuckets(buckets: readonly number[], maxLength?: number): number[] {
  if (buckets.length === 0 && maxLength === undefined) throw new RangeError("buckets must not be empty");
  for (const b of buckets) {
    if (!Number.isInteger(b) || b < 1) throw new RangeError(`buckets must be integers >= 1, got ${b}`);
  }
  const max = maxLength ?? Math.max(...buckets);
  if (!Number.isInteger(max) || max < 1) throw new RangeError(`maxLength must be an integer >= 1, got ${max}`);
  const out = [...new Set(buckets.filter((b) => b <= max))].sort((a, b) => a - b);
  if (out.length === 0 || out[out.length - 1]! < max) out.push(max);
  return out;
}

/** The smallest bucket >= len (buckets ascending). Throws if none. */
export function pickBucket(len: number, buckets: readonly number[]): number {
  for (const b of buckets) if (b >= len) return b;
  throw new RangeError(`no bucket holds length ${len} (largest bucket ${buckets[buckets.length - 1]})`);
}

/** Pads sequences into [B, T] int64 ids and a float32 attention mask. Sequences must fit in T. */
export function padBatch(
  seqs: readonly TokenSeq[],
  T: number,
  padId: number,
  padSide: "right" | "left" = "right",
): { ids: BigInt64Array; mask: Float32Array; lengths: Int32Array } {
  const B = seqs.length;
  const ids = new BigInt64Array(B * T).fill(BigInt(padId));
  const mask = new Float32Array(B * T);
  const lengths = new Int32Array(B);
  for (let b = 0; b < B; b++) {
    const s = seqs[b]!;
    const n = s.length;
    if (n > T) throw new RangeError(`padBatch: sequence ${b} has length ${n} > ${T}`);
    lengths[b] = n;
    const off = b * T + (padSide === "left" ? T - n : 0);
    for (let i = 0; i < n; i++) {
      const id = s[i]!;
      if (!Number.isSafeInteger(id)) throw new TypeError(`padBatch: sequence ${b} position ${i} is not an integer id: ${id}`);
      ids[off + i] = BigInt(id);
      mask[off + i] = 1;
    }
  }
  return { ids, mask, lengths };
}

function truncate(s: TokenSeq, maxLength: number, mode: "right" | "left" | "error", index: number): TokenSeq {
  if (s.length <= maxLength) return s;
  if (mode === "error") {
    throw new RangeError(`sequence ${index} has length ${s.length} > maxLength ${maxLength}: truncate it or add a larger bucket`);
  }
  const arr = Array.from(s);
  return mode === "right" ? arr.slice(0, maxLength) : arr.slice(arr.length - maxLength);
}

/**
 * The batch plan only (indices and padded length per batch), without
 * materializing tensors: cheap, for epoch planning and statistics.
 */
export function planBatches(lengths: readonly number[], opts: BatchingOptions): { index: number[]; T: number }[] {
  const { batchSize } = opts;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`batchSize must be an integer >= 1, got ${batchSize}`);
  const chunkBatches = opts.chunkBatches ?? 50;
  if (!Number.isInteger(chunkBatches) || chunkBatches < 1) throw new RangeError(`chunkBatches must be an integer >= 1, got ${chunkBatches}`);
  const buckets = normalizeBuckets(opts.buckets, opts.maxLength);
  const maxLength = buckets[buckets.length - 1]!;
  const hasRandom = opts.rng !== undefined || (opts.seed !== undefined && opts.seed !== null);
  const shuffle = opts.shuffle ?? hasRandom;
  const shuffleBatches = opts.shuffleBatches ?? shuffle;
  let rng: Rng | undefined;
  if (shuffle || shuffleBatches) {
    if (!hasRandom) throw new Error("makeBatches: shuffling needs `rng` or `seed`");
    rng = opts.rng ?? new Rng(opts.seed!);
  }
  const len = (i: number) => Math.min(lengths[i]!, maxLength);
  const order = Array.from({ length: lengths.length }, (_, i) => i);
  if (shuffle) rng!.shuffle(order);
  const chunk = batchSize * chunkBatches;
  const plan: { index: number[]; T: number }[] = [];
  for (let c = 0; c < order.length; c += chunk) {
    const part = order.slice(c, c + chunk);
    part.sort((a, b) => len(b) - len(a)); // stable: ties keep the shuffled order
    for (let k = 0; k < part.length; k += batchSize) {
      const index = part.slice(k, k + batchSize);
      if (index.length < batchSize && opts.dropLast) continue;
      let longest = 1;
      for (const i of index) longest = Math.max(longest, len(i));
      plan.push({ index, T: pickBucket(longest, buckets) });
    }
  }
  if (shuffleBatches) rng!.shuffle(plan);
  return plan;
}

/**
 * Buckets, pads and batches token sequences (see the module comment).
 * `labels` (one integer per sequence, or null) travel with their rows.
 */
export function makeBatches(
  seqs: readonly TokenSeq[],
  labels: readonly number[] | null,
  opts: BatchingOptions,
): Batch[] {
  if (labels && labels.length !== seqs.length) {
    throw new RangeError(`makeBatches: ${seqs.length} sequences but ${labels.length} labels`);
  }
  const buckets = normalizeBuckets(opts.buckets, opts.maxLength);
  const maxLength = buckets[buckets.length - 1]!;
  const mode = opts.truncation ?? "right";
  if (mode === "error") seqs.forEach((s, i) => truncate(s, maxLength, "error", i));
  const plan = planBatches(
    seqs.map((s) => s.length),
    opts,
  );
  return plan.map(({ index, T }) => {
    const rows = index.map((i) => truncate(seqs[i]!, maxLength, mode, i));
    const batchLabels = new BigInt64Array(index.length);
    if (labels) {
      index.forEach((i, r) => {
        const y = labels[i]!;
        if (!Number.isSafeInteger(y)) throw new TypeError(`makeBatches: label ${i} is not an integer: ${y}`);
        batchLabels[r] = BigInt(y);
      });
    }
    return { index, B: index.length, T, ...padBatch(rows, T, opts.padId, opts.padSide), labels: batchLabels };
  });
}

/** Fraction of padding positions over a set of batches (0 = no padding). */
export function paddingFraction(batches: readonly Pick<Batch, "mask">[]): number {
  let pad = 0;
  let total = 0;
  for (const b of batches) {
    total += b.mask.length;
    for (let i = 0; i < b.mask.length; i++) if (b.mask[i] === 0) pad++;
  }
  return total === 0 ? 0 : pad / total;
}
