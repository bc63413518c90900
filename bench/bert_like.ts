// A BERT-style post-LN encoder with seeded random (frozen) weights: the model
// of the PyTorch peer in ../shared/bench/peer_torch.py, as a lorakit
// EncoderModel. Weights are in nn.Linear [out, in] layout under Hugging Face
// BERT names, so PEFT target names ('query', 'value') select the same sites.
//
//   x   = LN(E[ids] + P[0:T])                                   (eps 1e-12)
//   per layer:
//     q,k,v = x·Wᵀ + b      (2-D [B·T, H]; 4-D only inside attention)
//     a     = softmax(q·kᵀ/√d + (1 − mask)·(−1e4)) · v
//     x     = LN(x + o(a))
//     x     = LN(x + f2(gelu_erf(f1(x))))
//   pooled = x[:, 0]                                             ([B, H])

import { Dim, Graph, Value } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import type { EncoderModel, LinearFn, LinearSite, WeightMap } from '../src/models/types.ts';
import { Rng } from '../src/util/rng.ts';

export interface BertLikeConfig {
  layers: number;
  hidden: number;
  heads: number;
  ffn: number;
  /** Rows of the learned position table (the peer uses seq). */
  maxPositions: number;
  vocab: number;
  layerNormEps: number;
}

export const BENCH_CONFIGS: Record<'tiny' | 'small' | 'base', Omit<BertLikeConfig, 'maxPositions' | 'vocab' | 'layerNormEps'> & { seq: number; batch: number }> = {
  tiny: { layers: 1, hidden: 32, heads: 2, ffn: 64, seq: 16, batch: 2 }, // --smoke
  small: { layers: 2, hidden: 256, heads: 4, ffn: 1024, seq: 128, batch: 8 },
  base: { layers: 12, hidden: 768, heads: 12, ffn: 3072, seq: 128, batch: 8 },
};

export function bertLikeConfig(c: Partial<BertLikeConfig> & Pick<BertLikeConfig, 'layers' | 'hidden' | 'heads' | 'ffn'>): BertLikeConfig {
  if (c.hidden % c.heads !== 0) throw new Error(`bert_like: hidden ${c.hidden} is not a multiple of heads ${c.heads}`);
  return { maxPositions: 128, vocab: 30522, layerNormEps: 1e-12, ...c };
}

export function layerPrefix(i: number): string {
  return `encoder.layer.${i}`;
}

/** Every linear site of the model, in build order. */
export function bertLikeSites(c: BertLikeConfig): LinearSite[] {
  const sites: LinearSite[] = [];
  const site = (name: string, inF: number, outF: number) =>
    sites.push({ name, inFeatures: inF, outFeatures: outF, weightKey: `${name}.weight`, layout: 'out_in' });
  for (let i = 0; i < c.layers; i++) {
    const p = layerPrefix(i);
    site(`${p}.attention.self.query`, c.hidden, c.hidden);
    site(`${p}.attention.self.key`, c.hidden, c.hidden);
    site(`${p}.attention.self.value`, c.hidden, c.hidden);
    site(`${p}.attention.output.dense`, c.hidden, c.hidden);
    site(`${p}.intermediate.dense`, c.hidden, c.ffn);
    site(`${p}.output.dense`, c.ffn, c.hidden);
  }
  return sites;
}

/** Names and shapes of every frozen tensor. */
export function bertLikeShapes(c: BertLikeConfig): Map<string, number[]> {
  const m = new Map<string, number[]>();
  m.set('embeddings.word_embeddings.weight', [c.vocab, c.hidden]);
  m.set('embeddings.position_embeddings.weight', [c.maxPositions, c.hidden]);
  m.set('embeddings.LayerNorm.weight', [c.hidden]);
  m.set('embeddings.LayerNorm.bias', [c.hidden]);
  for (const s of bertLikeSites(c)) {
    m.set(`${s.name}.weight`, [s.outFeatures, s.inFeatures]);
    m.set(`${s.name}.bias`, [s.outFeatures]);
  }
  for (let i = 0; i < c.layers; i++) {
    for (const ln of ['attention.output.LayerNorm', 'output.LayerNorm']) {
      m.set(`${layerPrefix(i)}.${ln}.weight`, [c.hidden]);
      m.set(`${layerPrefix(i)}.${ln}.bias`, [c.hidden]);
    }
  }
  return m;
}

/**
 * Seeded random weights: Linear weights and biases U(−1/√in, 1/√in) (nn.Linear's
 * default), embeddings U(−√3, √3) (unit variance, like nn.Embedding's N(0,1)),
 * LayerNorm scale 1 and bias 0. Each tensor has its own forked stream.
 */
export function randomBertLikeWeights(c: BertLikeConfig, seed = 0): WeightMap {
  const rng = new Rng(seed);
  const out: WeightMap = new Map();
  for (const [name, shape] of bertLikeShapes(c)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (name.includes('LayerNorm')) {
      if (name.endsWith('.weight')) data.fill(1);
    } else {
      const bound = name.startsWith('embeddings.') ? Math.sqrt(3) : 1 / Math.sqrt(inFeaturesOf(name, c));
      rng.fork(name).fillUniform(data, -bound, bound);
    }
    out.set(name, { shape, data });
  }
  return out;
}

function inFeaturesOf(name: string, c: BertLikeConfig): number {
  return name.includes('.output.dense.') && !name.includes('attention') ? c.ffn : c.hidden;
}

/** Reshape to a runtime shape tensor (symbolic B and T). */
function reshapeTo(x: Value, shape: Value, dims: Dim[]): Value {
  return x.graph.addNode('Reshape', [x, shape], [{ dtype: x.dtype, shape: dims }])[0];
}

export class BertLike implements EncoderModel {
  readonly name: string;
  readonly sites: LinearSite[];
  readonly hiddenSize: number;

  constructor(readonly config: BertLikeConfig, readonly weights: WeightMap) {
    this.name = `bert-like-${config.layers}x${config.hidden}`;
    this.sites = bertLikeSites(config);
    this.hiddenSize = config.hidden;
    for (const [name, shape] of bertLikeShapes(config)) {
      const w = weights.get(name);
      if (!w) throw new Error(`bert_like: weight '${name}' is missing`);
      if (w.shape.join(',') !== shape.join(',')) throw new Error(`bert_like: weight '${name}' has shape [${w.shape}], expected [${shape}]`);
    }
  }

  withWeights(weights: WeightMap): BertLike {
    return new BertLike(this.config, weights);
  }

  static random(config: BertLikeConfig, seed = 0): BertLike {
    return new BertLike(config, randomBertLikeWeights(config, seed));
  }

  build(g: Graph, inputs: { inputIds: Value; attentionMask: Value }, linear: LinearFn): Value {
    const c = this.config;
    const H = c.hidden, nh = c.heads, d = H / nh;
    const w = (name: string): Value => {
      const t = this.weights.get(name)!;
      return g.leaf(name) ?? g.weight(name, t.data, t.shape);
    };
    const sites = new Map(this.sites.map((s) => [s.name, s]));
    const proj = (name: string, x2d: Value): Value => linear(sites.get(name)!, x2d, w(`${name}.weight`), w(`${name}.bias`));
    const ln = (x: Value, name: string) => op.layerNorm(x, w(`${name}.weight`), w(`${name}.bias`), { eps: c.layerNormEps });

    const ids = inputs.inputIds;
    const [B, T] = ids.shape;
    const bt = op.shapeOf(ids); // int64 [2] = [B, T]
    const lenT = op.slice(bt, [1], [2], [0]); // int64 [1] = [T]
    const shape4 = op.concat([bt, g.ints([nh, d])], 0); // [B, T, nh, d]

    // Embeddings: word + learned positions [0, T), then LayerNorm; 2-D from here on.
    const emb = op.gather(w('embeddings.word_embeddings.weight'), ids); // [B,T,H]
    const posTable = w('embeddings.position_embeddings.weight');
    const pos = g.addNode('Slice', [posTable, g.ints([0]), lenT, g.ints([0])], [{ dtype: 'float32', shape: [T, H] }])[0];
    let x = ln(op.reshape(op.add(emb, pos), [-1, H]), 'embeddings.LayerNorm'); // [B·T,H]

    // Padded keys: (1 − mask)·(−1e4), broadcast as [B,1,1,T].
    const maskBias = op.unsqueeze(op.mul(op.sub(g.scalar(1), inputs.attentionMask), -1e4), [1, 2]);
    const heads = (t: Value, perm: number[]) => op.transpose(reshapeTo(t, shape4, [B, T, nh, d]), perm);

    for (let i = 0; i < c.layers; i++) {
      const p = layerPrefix(i);
      const q = heads(proj(`${p}.attention.self.query`, x), [0, 2, 1, 3]); // [B,nh,T,d]
      const kt = heads(proj(`${p}.attention.self.key`, x), [0, 2, 3, 1]); // [B,nh,d,T]
      const v = heads(proj(`${p}.attention.self.value`, x), [0, 2, 1, 3]); // [B,nh,T,d]
      const scores = op.add(op.mul(op.matmul(q, kt), 1 / Math.sqrt(d)), maskBias);
      const ctx = op.matmul(op.softmax(scores, -1), v); // [B,nh,T,d]
      const ctx2d = op.reshape(op.transpose(ctx, [0, 2, 1, 3]), [-1, H]); // [B·T,H]
      x = ln(op.add(x, proj(`${p}.attention.output.dense`, ctx2d)), `${p}.attention.output.LayerNorm`);
      const f = op.gelu(proj(`${p}.intermediate.dense`, x));
      x = ln(op.add(x, proj(`${p}.output.dense`, f)), `${p}.output.LayerNorm`);
    }
    // Pooled = hidden state of token 0: rows 0, T, 2T, … of [B·T,H] (a Gather, whose
    // gradient is one ScatterND; T is symbolic, so the rows come from Range at run time).
    const tScalar = op.gather(bt, g.scalar(1, 'int64'), 0); // int64 []
    const btScalar = g.addNode('ReduceProd', [bt], [{ dtype: 'int64', shape: [] }], { keepdims: 0 })[0];
    const rows = g.addNode('Range', [g.scalar(0, 'int64'), btScalar, tScalar], [{ dtype: 'int64', shape: [B] }])[0];
    return op.gather(x, rows, 0); // [B,H]
  }
}
