// LexRank (Erkan & Radev, "LexRank: Graph-based Lexical Centrality as
// Salience in Text Summarization", JAIR 2004): sentences are nodes, edges are
// similarities, and a sentence's salience is its stationary probability under
// a random walk that follows edges with probability 1 − d and jumps to a
// uniformly chosen sentence with probability d (the paper's damping d, its
// "teleport" probability; 0.15 by default, PageRank's 0.85 the other way round):
//
//   p = d/N · 1 + (1 − d) · Mᵀ p,   M = the similarity graph, rows normalized
//
// Threshold LexRank: an edge of weight 1 where similarity ≥ t (self-loops
// included), so each row spreads evenly over its neighbours. Continuous
// LexRank (threshold null): edges weighted by the similarity itself.
// A sentence with no edge at all (no tokens) gets a uniform row, as PageRank
// treats dangling nodes. Power iteration from the uniform vector until the L1
// change falls below `tolerance`.
//
// Similarities: the idf-modified cosine of the paper (cosine of tf·idf
// vectors), plain bag-of-words cosine (optionally without stopwords, as the
// LexRank + LoRA-BART patent summarizer uses), or a matrix the caller made
// (sentence embeddings: src/summarize/embed_similarity.ts).

export type Similarity = Float64Array[];

export interface LexRankOptions {
  /** Edge threshold on the similarity (default 0.1, the paper's best); null = continuous LexRank. */
  threshold?: number | null;
  /** Teleport probability d (default 0.15). */
  damping?: number;
  /** Stop when the L1 change of the scores is below this (default 1e-10). */
  tolerance?: number;
  /** Give up (and say so) after this many iterations (default 10,000). */
  maxIterations?: number;
}

/** Lowercase [a-z0-9]+ tokens (the same tokens ROUGE sees, unstemmed). */
export function lexTokens(text: string): string[] {
  return text.toLowerCase().match(/[a-z0-9]+/g) ?? [];
}

/** Inverse document frequencies ln(N / df) over a collection; unseen words get ln(N / 1)... see `get`. */
export class IdfTable {
  private readonly df = new Map<string, number>();
  private n = 0;

  /** Counts one document (a word counts once per document). */
  add(tokens: Iterable<string>): this {
    this.n++;
    for (const w of new Set(tokens)) this.df.set(w, (this.df.get(w) ?? 0) + 1);
    return this;
  }

  static fromDocuments(docs: Iterable<string[]>): IdfTable {
    const t = new IdfTable();
    for (const d of docs) t.add(d);
    return t;
  }

  get documents(): number {
    return this.n;
  }

  /** ln(N / df); a word never counted is treated as seen once (ln N), the rarest a counted word can be. */
  idf(word: string): number {
    return Math.log(this.n / (this.df.get(word) ?? 1));
  }
}

type SparseVector = Map<string, number>;

function termCounts(tokens: string[], stopwords?: ReadonlySet<string>): SparseVector {
  const v: SparseVector = new Map();
  for (const t of tokens) if (!stopwords?.has(t)) v.set(t, (v.get(t) ?? 0) + 1);
  return v;
}

function cosineMatrix(vectors: SparseVector[]): Similarity {
  const n = vectors.length;
  const norms = vectors.map((v) => Math.sqrt([...v.values()].reduce((a, x) => a + x * x, 0)));
  const S = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      if (!norms[i] || !norms[j]) continue;
      const [a, b] = vectors[i].size <= vectors[j].size ? [vectors[i], vectors[j]] : [vectors[j], vectors[i]];
      let dot = 0;
      for (const [w, x] of a) {
        const y = b.get(w);
        if (y !== undefined) dot += x * y;
      }
      S[i][j] = S[j][i] = dot / (norms[i] * norms[j]);
    }
  }
  return S;
}

/** idf-modified cosine: cosine of tf·idf vectors (tf = raw counts). Default idf: the sentences themselves as the collection. */
export function tfidfSimilarity(sentences: string[][], idf: IdfTable = IdfTable.fromDocuments(sentences)): Similarity {
  return cosineMatrix(sentences.map((s) => {
    const v = termCounts(s);
    for (const [w, c] of v) v.set(w, c * idf.idf(w));
    return v;
  }));
}

/** Cosine of raw term-count vectors, stopwords left out. */
export function bowSimilarity(sentences: string[][], stopwords?: ReadonlySet<string>): Similarity {
  return cosineMatrix(sentences.map((s) => termCounts(s, stopwords)));
}

/** Cosine similarity of dense vectors (rows of `embeddings`, each `dim` long). */
export function denseCosine(embeddings: Float32Array | Float64Array, n: number, dim: number): Similarity {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < dim; k++) s += embeddings[i * dim + k] ** 2;
    norms[i] = Math.sqrt(s);
  }
  const S = Array.from({ length: n }, () => new Float64Array(n));
  for (let i = 0; i < n; i++)
    for (let j = i; j < n; j++) {
      if (!norms[i] || !norms[j]) continue;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += embeddings[i * dim + k] * embeddings[j * dim + k];
      S[i][j] = S[j][i] = dot / (norms[i] * norms[j]);
    }
  return S;
}

export class LexRankNotConvergedError extends Error {}

/** LexRank scores (a probability vector) of a similarity matrix. */
export function lexRankScores(similarity: Similarity, opts: LexRankOptions = {}): Float64Array {
  const n = similarity.length;
  const threshold = opts.threshold === undefined ? 0.1 : opts.threshold;
  const d = opts.damping ?? 0.15, tol = opts.tolerance ?? 1e-10, maxIt = opts.maxIterations ?? 10_000;
  if (!(d >= 0 && d <= 1)) throw new Error(`LexRank damping (teleport probability) must be in [0, 1], got ${d}`);
  if (n === 0) return new Float64Array(0);
  // Row-stochastic M; weights of negative similarities (possible with embeddings) count as no edge.
  const M = similarity.map((row, i) => {
    if (row.length !== n) throw new Error(`LexRank: similarity row ${i} has ${row.length} entries, expected ${n}`);
    const w = new Float64Array(n);
    let sum = 0;
    for (let j = 0; j < n; j++) sum += w[j] = threshold === null ? Math.max(row[j], 0) : row[j] >= threshold ? 1 : 0;
    if (sum > 0) for (let j = 0; j < n; j++) w[j] /= sum;
    else w.fill(1 / n);
    return w;
  });
  let p = new Float64Array(n).fill(1 / n);
  for (let it = 0; it < maxIt; it++) {
    const next = new Float64Array(n).fill(d / n);
    for (let i = 0; i < n; i++) {
      const pi = (1 - d) * p[i], row = M[i];
      if (pi === 0) continue;
      for (let j = 0; j < n; j++) next[j] += pi * row[j];
    }
    let change = 0;
    for (let j = 0; j < n; j++) change += Math.abs(next[j] - p[j]);
    p = next;
    if (change < tol) return p;
  }
  throw new LexRankNotConvergedError(`LexRank did not converge to ${tol} (L1) in ${maxIt} iterations over ${n} sentences; raise maxIterations or the tolerance`);
}

/** Indices by descending score; equal scores keep document order. */
export function salienceOrder(scores: ArrayLike<number>): number[] {
  return Array.from({ length: scores.length }, (_, i) => i).sort((a, b) => scores[b] - scores[a] || a - b);
}

/** The k most salient indices, in document order (all of them when there are k or fewer). */
export function topK(scores: ArrayLike<number>, k: number): number[] {
  return salienceOrder(scores).slice(0, k).sort((a, b) => a - b);
}
