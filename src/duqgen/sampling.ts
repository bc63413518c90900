// DUQGen's choice of the documents that get a synthetic query, as the official
// code does it (emory-irlab/DUQGen, data_preparation/target_representation/
// sample_target_collection_documents.py, main_run steps 4–9):
//
//  - allocation: clusters sorted by size ascending (ties in first-appearance
//    order); each gets 1 + ⌊(N − K)·|C_k| / |D|⌋; the N − Σ leftovers go one
//    each to the last entries of that list (the largest clusters). One
//    deviation: the official slice [-n_remaining::] is the whole list when
//    there are 0 leftovers (every cluster gets one more: N + K documents, e.g.
//    always with K = 1); here 0 leftovers add nothing, so exactly N are drawn.
//    Wherever leftovers exist the two agree (test/duqgen_sampling.test.ts).
//  - sampling: within cluster k, p = softmax(cos(doc, centroid_k) / T); for
//    each seed of SEED_LIST, np.random.seed(seed) and
//    np.random.choice(docs, p, size, replace=False) (src/util/numpy_rng.ts,
//    bit for bit); the union of the draws is ordered by MMR against the
//    document nearest the centroid (λ = 1 by default: plain cosine) and the top
//    `size` kept.
//
// The cluster ids, centroids and assignment come from k-means (kmeans.ts).
// A cluster asked for more documents than it has gets all of them (the
// official code stops with NumPy's "larger sample than population").

import { NumpyRandomState } from '../util/numpy_rng.ts';

export const DUQGEN_SEEDS = [35, 745, 10, 6534, 2];

export interface SamplingInput {
  /** n × dim document embeddings, row-major. */
  embeddings: Float32Array | Float64Array;
  dim: number;
  /** K × dim. */
  centroids: ArrayLike<number>[];
  /** Cluster of each document. */
  assignment: ArrayLike<number>;
  /** N: documents to sample. */
  nTrain: number;
  /** K as asked for (empty clusters included, as the official code counts them). */
  nClusters: number;
  /** Softmax temperature (1). */
  temperature?: number;
  seeds?: readonly number[];
  /** MMR λ (1: rank the pooled draws by cosine to the centroid's nearest document). */
  lambda?: number;
}

export interface SamplingResult {
  /** Cluster → documents allocated (in the official allocation order). */
  allocation: Map<number, number>;
  /** Indices of the sampled documents, ascending. */
  sampled: number[];
  /** Clusters asked for more documents than they hold (all of theirs taken). */
  capped: number[];
}

function cosine(a: ArrayLike<number>, ao: number, b: ArrayLike<number>, bo: number, dim: number): number {
  let d = 0, na = 0, nb = 0;
  for (let j = 0; j < dim; j++) {
    d += a[ao + j] * b[bo + j];
    na += a[ao + j] * a[ao + j];
    nb += b[bo + j] * b[bo + j];
  }
  return d / (Math.sqrt(na) * Math.sqrt(nb));
}

/** Documents per cluster as the official steps 5–7 allocate them. */
export function allocateSamples(assignment: ArrayLike<number>, nTrain: number, nClusters: number): Map<number, number> {
  const n = assignment.length;
  const size = new Map<number, number>();
  for (let i = 0; i < n; i++) size.set(assignment[i], (size.get(assignment[i]) ?? 0) + 1);
  const sorted = [...size].sort((a, b) => a[1] - b[1]); // Array.prototype.sort is stable, as Python's sorted
  const alloc = new Map<number, number>();
  let count = 0;
  for (const [k, s] of sorted) {
    const a = 1 + Math.floor((nTrain - nClusters) * (s / n));
    alloc.set(k, a);
    count += a;
  }
  const remaining = nTrain - count;
  if (nTrain !== nClusters && remaining > 0) {
    // Python's sorted[-remaining::]: the whole list when remaining ≥ its length (empty clusters of K leave more leftovers than clusters).
    for (const [k] of sorted.slice(Math.max(0, sorted.length - remaining))) alloc.set(k, alloc.get(k)! + 1);
  }
  return alloc;
}

/** Greedy MMR over `pool`; returns the top `n` by the MMR score each document had when picked. */
function mmrTop(pool: number[], n: number, lambda: number, sim1: Map<number, number>, sim2: (a: number, b: number) => number): number[] {
  const picked: { d: number; score: number }[] = [];
  const left = new Set(pool);
  while (left.size) {
    let best = -1, bestScore = -Infinity;
    for (const x of left) {
      let red = 0;
      if (lambda !== 1 && picked.length) red = Math.max(...picked.map((p) => sim2(x, p.d)));
      const s = lambda * sim1.get(x)! - (1 - lambda) * red;
      if (s > bestScore) {
        best = x;
        bestScore = s;
      }
    }
    picked.push({ d: best, score: bestScore });
    left.delete(best);
  }
  return picked.sort((a, b) => b.score - a.score).slice(0, n).map((p) => p.d);
}

export function sampleDocuments(o: SamplingInput): SamplingResult {
  const { embeddings: E, dim } = o;
  const n = o.assignment.length;
  if (E.length !== n * dim) throw new Error(`DUQGen sampling: ${E.length} embedding numbers for ${n} documents × ${dim}`);
  const T = o.temperature ?? 1, lambda = o.lambda ?? 1, seeds = o.seeds ?? DUQGEN_SEEDS;
  // The document nearest each centroid (L2, over all documents).
  const nearest = o.centroids.map((c) => {
    let best = 0, bestD = Infinity;
    for (let i = 0; i < n; i++) {
      let d = 0;
      for (let j = 0; j < dim; j++) d += (E[i * dim + j] - c[j]) ** 2;
      if (d < bestD) {
        bestD = d;
        best = i;
      }
    }
    return best;
  });
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const k = o.assignment[i];
    if (!members.has(k)) members.set(k, []);
    members.get(k)!.push(i);
  }
  const allocation = allocateSamples(o.assignment, o.nTrain, o.nClusters);
  const sampled = new Set<number>();
  const capped: number[] = [];
  for (const [k, want] of allocation) {
    const docs = members.get(k)!;
    const size = Math.min(want, docs.length);
    if (size < want) capped.push(k);
    const logits = docs.map((d) => cosine(E, d * dim, o.centroids[k], 0, dim) / T);
    const ex = logits.map(Math.exp);
    const z = ex.reduce((a, b) => a + b, 0);
    const p = ex.map((e) => e / z);
    const pool: number[] = [];
    for (const seed of seeds) {
      for (const j of new NumpyRandomState(seed).choiceWithoutReplacement(p, size)) if (!pool.includes(docs[j])) pool.push(docs[j]);
    }
    const seedDoc = nearest[k];
    const sim1 = new Map(pool.map((d) => [d, cosine(E, d * dim, E, seedDoc * dim, dim)]));
    for (const d of mmrTop(pool, size, lambda, sim1, (a, b) => cosine(E, a * dim, E, b * dim, dim))) sampled.add(d);
  }
  return { allocation, sampled: [...sampled].sort((a, b) => a - b), capped };
}
