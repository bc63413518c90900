// k-means of document embeddings with ml-kmeans (k-means++ initialization,
// Lloyd iterations, squared Euclidean distance), seeded: the same seed gives
// the same clusters. DUQGen's official code runs faiss.Kmeans (100
// iterations); the clustering differs in its initialization, not its objective.

import { kmeans } from 'ml-kmeans';

export interface Clustering {
  /** Cluster of each row. */
  assignment: Int32Array;
  centroids: number[][];
  iterations: number;
  converged: boolean;
}

export function clusterEmbeddings(vectors: Float32Array, dim: number, k: number, o: { seed: number; maxIterations?: number }): Clustering {
  const n = vectors.length / dim;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`--clusters must be a positive integer, got ${k}`);
  if (k > n) throw new Error(`--clusters ${k}: more clusters than documents (${n})`);
  const rows = Array.from({ length: n }, (_, i) => Array.from(vectors.subarray(i * dim, (i + 1) * dim)));
  const r = kmeans(rows, k, { seed: o.seed, initialization: 'kmeans++', maxIterations: o.maxIterations ?? 100 });
  return { assignment: Int32Array.from(r.clusters), centroids: r.centroids, iterations: r.iterations, converged: r.converged };
}
