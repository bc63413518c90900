// Reranking with a cross-encoder: each query–document pair is encoded as one
// sequence (the tokenizer's pair form: [CLS] q [SEP] d [SEP] for BERT folders,
// the pair text for the bundled encoder), a linear head turns the pooled
// vector into a relevance score, and the scores of one query's candidates
// ([G, K] per batch of G queries) are trained with a listwise softmax
// cross-entropy, a pairwise RankNet loss or a pointwise binary cross-entropy
// (src/train/ranking.ts). BERT-family folders see the pair as segments 0 / 1
// (token_type_ids).
// Groups with fewer candidates are padded and masked out.
// Validation: MRR (reciprocal rank of the first relevant candidate, ties
// broken against it: the pessimistic rank), nDCG over each group, and the loss.

import * as op from '../../graph/ops.ts';
import type { Graph } from '../../graph/ir.ts';
import type { EncoderModel, LinearFn } from '../../models/types.ts';
import type { HostTensor } from '../../runtime/session.ts';
import { Rng } from '../../util/rng.ts';
import { padBatch } from '../../data/batching.ts';
import { pairwiseLoss, pointwiseLoss, softmaxCrossEntropy } from '../ranking.ts';
import type { TaskGraph, TrainTask, TrainTensor } from '../task.ts';
import { lengthGroupedBatches } from './lm.ts';

export const SCORE_W = 'score.weight';
export const SCORE_B = 'score.bias';

/** One query's candidates: the token ids of each (query, document) pair and their relevance (> 0 = relevant). */
export interface RerankExample {
  pairs: number[][];
  labels: number[];
  /** Segment id of each token of each pair (BERT: 0 for the query part, 1 for the document); absent = all 0. */
  types?: number[][];
}

export interface RerankBatch {
  /** Queries (groups) and candidates per group (padded to the largest). */
  G: number;
  K: number;
  T: number;
  ids: BigInt64Array;
  mask: Float32Array;
  /** [G·K, T] segment ids (all 0 where the examples have none). */
  types: BigInt64Array;
  /** [G, K] relevance, and 1 where a candidate exists. */
  labels: Float32Array;
  valid: Float32Array;
}

export interface RerankTaskOptions {
  seed: number;
  /** 'listwise' (softmax cross-entropy over each query's candidates, default), 'pairwise' (RankNet) or 'pointwise' (binary cross-entropy per candidate). */
  loss?: RankLoss;
  /** Learning-rate multiplier of the score head. */
  headLrScale?: number;
}

export type RankLoss = 'listwise' | 'pairwise' | 'pointwise';
export const RANK_LOSSES: readonly RankLoss[] = ['listwise', 'pairwise', 'pointwise'];

export class RerankTask implements TrainTask<RerankExample, RerankBatch> {
  readonly kind = 'rerank';
  readonly peftTaskType = 'SEQ_CLS';
  readonly metric = { name: 'mrr', higherIsBetter: true };
  readonly params: Map<string, TrainTensor>;
  readonly name: string;

  constructor(readonly model: EncoderModel, readonly o: RerankTaskOptions) {
    this.name = `${model.name}-rerank`;
    // nn.Linear(hidden, 1)'s default init, seeded.
    const rng = new Rng(o.seed).fork('score-head');
    const bound = 1 / Math.sqrt(model.hiddenSize);
    const w = new Float32Array(model.hiddenSize), b = new Float32Array(1);
    for (let i = 0; i < w.length; i++) w[i] = rng.uniformRange(-bound, bound);
    b[0] = rng.uniformRange(-bound, bound);
    this.params = new Map([[SCORE_W, { shape: [1, model.hiddenSize], data: w }], [SCORE_B, { shape: [1], data: b }]]);
  }

  get weights() {
    return this.model.weights;
  }

  get optimizerGroups() {
    return [{ match: [SCORE_W, SCORE_B], lrScale: this.o.headLrScale ?? 1 }];
  }

  build(g: Graph, linear: LinearFn, mode: 'train' | 'eval'): TaskGraph {
    const inputIds = g.input('input_ids', 'int64', ['N', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['N', 'T']);
    const labels = g.input('labels', 'float32', ['G', 'K']);
    const valid = g.input('valid', 'float32', ['G', 'K']);
    const tokenTypeIds = this.model.usesTokenTypes ? g.input('token_type_ids', 'int64', ['N', 'T']) : undefined;
    const pooled = this.model.build(g, { inputIds, attentionMask, tokenTypeIds }, linear); // [G·K, H]
    const w = g.param(SCORE_W, [1, this.model.hiddenSize], this.params.get(SCORE_W)!.data);
    const b = g.param(SCORE_B, [1], this.params.get(SCORE_B)!.data);
    const scores = op.reshapeTo(op.gemm(pooled, w, { transB: true }, b), op.shapeOf(labels), ['G', 'K']);
    const loss = this.o.loss === 'pairwise' ? pairwiseLoss(scores, labels, { valid }) : this.o.loss === 'pointwise' ? pointwiseLoss(scores, labels, { valid }) : softmaxCrossEntropy(scores, labels, { valid });
    return { loss, outputs: mode === 'eval' ? { scores } : undefined };
  }

  batches(data: readonly RerankExample[], batchSize: number, rng: Rng | null): RerankBatch[] {
    for (const [i, e] of data.entries()) {
      if (!e.pairs.length || e.pairs.length !== e.labels.length) throw new Error(`rerank example ${i}: ${e.pairs.length} candidates but ${e.labels.length} labels`);
    }
    const lengths = data.map((e) => Math.max(...e.pairs.map((p) => p.length)));
    return lengthGroupedBatches(lengths, batchSize, rng).map((index) => {
      const ex = index.map((i) => data[i]);
      const G = ex.length, K = Math.max(...ex.map((e) => e.pairs.length)), T = Math.max(1, ...index.map((i) => lengths[i]));
      const seqs: number[][] = [];
      const typeSeqs: number[][] = [];
      const labels = new Float32Array(G * K), valid = new Float32Array(G * K);
      ex.forEach((e, gi) => {
        for (let k = 0; k < K; k++) {
          const j = k < e.pairs.length ? k : 0; // padding candidates repeat the first (masked out of the loss and metrics)
          seqs.push(e.pairs[j]);
          typeSeqs.push(e.types?.[j] ?? []);
          if (k < e.pairs.length) {
            labels[gi * K + k] = e.labels[k];
            valid[gi * K + k] = 1;
          }
        }
      });
      const { ids, mask } = padBatch(seqs, T, 0);
      const types = new BigInt64Array(G * K * T);
      typeSeqs.forEach((t, r) => t.slice(0, T).forEach((v, i) => (types[r * T + i] = BigInt(v))));
      return { G, K, T, ids, mask, types, labels, valid };
    });
  }

  feeds(b: RerankBatch): Record<string, HostTensor> {
    const f: Record<string, HostTensor> = {
      input_ids: { data: b.ids, dims: [b.G * b.K, b.T] },
      attention_mask: { data: b.mask, dims: [b.G * b.K, b.T] },
      labels: { data: b.labels, dims: [b.G, b.K] },
      valid: { data: b.valid, dims: [b.G, b.K] },
    };
    if (this.model.usesTokenTypes) f.token_type_ids = { data: b.types, dims: [b.G * b.K, b.T] };
    return f;
  }

  tokens(b: RerankBatch): number {
    return b.G * b.K * b.T;
  }

  evaluate(results: { batch: RerankBatch; out: Record<string, HostTensor> }[]): Record<string, number> {
    let rr = 0, ndcg = 0, groups = 0, lossSum = 0;
    for (const { batch: b, out } of results) {
      const s = out.scores.data as Float32Array;
      for (let gi = 0; gi < b.G; gi++) {
        const cand: { score: number; rel: number }[] = [];
        for (let k = 0; k < b.K; k++) if (b.valid[gi * b.K + k]) cand.push({ score: s[gi * b.K + k], rel: b.labels[gi * b.K + k] });
        rr += reciprocalRank(cand);
        ndcg += ndcgOf(cand);
        groups++;
      }
      lossSum += Number(out.loss.data[0]) * b.G;
    }
    return { mrr: rr / Math.max(1, groups), ndcg: ndcg / Math.max(1, groups), loss: lossSum / Math.max(1, groups) };
  }
}

/** 1 / rank of the first relevant candidate (candidates with an equal score rank ahead of it); 0 when none is relevant. */
export function reciprocalRank(cand: { score: number; rel: number }[]): number {
  let best = 0;
  for (const c of cand) {
    if (!(c.rel > 0)) continue;
    const rank = 1 + cand.filter((o) => o !== c && o.score >= c.score).length;
    best = Math.max(best, 1 / rank);
  }
  return best;
}

/** nDCG over all candidates: Σ (2^rel − 1)/log2(rank + 1) over the ideal order's (ties ranked pessimistically); 0 when none is relevant. */
export function ndcgOf(cand: { score: number; rel: number }[]): number {
  const gain = (r: number) => 2 ** Math.max(0, r) - 1;
  const order = cand.map((c, i) => ({ ...c, i })).sort((a, b) => b.score - a.score || a.rel - b.rel);
  const dcg = order.reduce((s, c, r) => s + gain(c.rel) / Math.log2(r + 2), 0);
  const ideal = [...cand].sort((a, b) => b.rel - a.rel).reduce((s, c, r) => s + gain(c.rel) / Math.log2(r + 2), 0);
  return ideal > 0 ? dcg / ideal : 0;
}
