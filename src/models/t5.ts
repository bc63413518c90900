// T5 (transformers' modeling_t5.py) as a seq2seq model: T5LayerNorm (RMS: no
// mean subtraction, no bias), relative position bias (buckets; the table lives
// in the first layer of each stack and is shared by all its layers;
// bidirectional in the encoder, causal in the decoder; none in cross-attention),
// no 1/√d scaling of the attention logits, ReLU or gated-GELU (gelu_new) FFN per
// `feed_forward_proj`, tied lm_head (decoder output × d_model^-0.5) or untied.
// Weights keep HF's names, so PEFT module paths are the targets
// (encoder.block.0.layer.0.SelfAttention.q, decoder.block.1.layer.1.EncDecAttention.v, ...).

import path from 'node:path';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { HfFolder } from '../io/hf.ts';
import { eosList, KeyValue, reshapeRuntime, weightGetter } from './decoder.ts';
import { geluTanh } from './gpt2.ts';
import type { Seq2SeqConfig, Seq2SeqDecodeInputs, Seq2SeqModel } from './seq2seq.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';

export interface T5Config extends Seq2SeqConfig {
  dFf: number;
  numBuckets: number;
  maxDistance: number;
  eps: number;
  gated: boolean;
  tieWordEmbeddings: boolean;
}

/** Longest sequence the relative-position table covers (positions beyond share the last bucket anyway). */
const MAX_REL = 2048;
const MASKED = -1e9;

export function t5ConfigFromHf(c: Record<string, any>): T5Config {
  const ff: string = c.feed_forward_proj ?? 'relu';
  const gated = ff.startsWith('gated-');
  const act = gated ? ff.slice(6) : ff;
  if (!(act === 'relu' || (gated && (act === 'gelu' || act === 'gelu_new')))) throw new Error(`config.json: feed_forward_proj '${ff}' is not supported for t5 (relu, gated-gelu)`);
  return {
    modelType: 't5', vocabSize: c.vocab_size, hiddenSize: c.d_model, numHeads: c.num_heads, headDim: c.d_kv,
    numLayers: c.num_layers, numDecoderLayers: c.num_decoder_layers ?? c.num_layers,
    decoderStartTokenId: c.decoder_start_token_id ?? c.pad_token_id ?? 0, padTokenId: c.pad_token_id ?? 0,
    eosTokenIds: eosList(c.eos_token_id ?? 1), dFf: c.d_ff, numBuckets: c.relative_attention_num_buckets ?? 32,
    maxDistance: c.relative_attention_max_distance ?? 128, eps: c.layer_norm_epsilon ?? 1e-6, gated,
    tieWordEmbeddings: c.tie_word_embeddings ?? true,
  };
}

/** transformers' _relative_position_bucket for one relative position (memory − query). */
export function t5Bucket(rel: number, bidirectional: boolean, numBuckets: number, maxDistance: number): number {
  let b = 0;
  let n = numBuckets;
  if (bidirectional) {
    n = Math.floor(n / 2);
    if (rel > 0) b += n;
    rel = Math.abs(rel);
  } else {
    rel = -Math.min(rel, 0);
  }
  const maxExact = Math.floor(n / 2);
  if (rel < maxExact) return b + rel;
  // float32 like torch: log(rel / maxExact) / log(maxDistance / maxExact) * (n − maxExact), truncated.
  const f = Math.fround;
  const large = maxExact + Math.trunc(f(f(f(Math.log(f(rel / maxExact))) / f(Math.log(maxDistance / maxExact))) * (n - maxExact)));
  return b + Math.min(large, n - 1);
}

export function t5Sites(c: T5Config): LinearSite[] {
  const H = c.hiddenSize, I = c.numHeads * c.headDim, F = c.dFf;
  const sites: LinearSite[] = [];
  const add = (name: string, fin: number, fout: number) => sites.push({ name, inFeatures: fin, outFeatures: fout, weightKey: `${name}.weight`, layout: 'out_in' });
  const attn = (p: string) => { add(`${p}.q`, H, I); add(`${p}.k`, H, I); add(`${p}.v`, H, I); add(`${p}.o`, I, H); };
  const ffn = (p: string) => {
    if (c.gated) { add(`${p}.wi_0`, H, F); add(`${p}.wi_1`, H, F); } else add(`${p}.wi`, H, F);
    add(`${p}.wo`, F, H);
  };
  for (let i = 0; i < c.numLayers; i++) { attn(`encoder.block.${i}.layer.0.SelfAttention`); ffn(`encoder.block.${i}.layer.1.DenseReluDense`); }
  for (let i = 0; i < c.numDecoderLayers; i++) {
    attn(`decoder.block.${i}.layer.0.SelfAttention`);
    attn(`decoder.block.${i}.layer.1.EncDecAttention`);
    ffn(`decoder.block.${i}.layer.2.DenseReluDense`);
  }
  sites.push({ name: 'lm_head', inFeatures: H, outFeatures: c.vocabSize, weightKey: c.tieWordEmbeddings ? 'shared.weight' : 'lm_head.weight', layout: 'out_in' });
  return sites;
}

function rmsNorm(x: Value, w: Value, eps: number): Value {
  const v = op.reduceMean(op.mul(x, x), [-1], true);
  return op.mul(op.div(x, op.sqrt(op.add(v, eps))), w);
}

function dim(x: Value, i: number): Value {
  return op.gather(op.shapeOf(x), x.graph.ints([i]), 0); // int64 [1]
}

function range(start: Value, limit: Value, name: string): Value {
  return op.range(start, limit, 1, name);
}

export function createT5(c: T5Config, weights: WeightMap, name = 't5'): Seq2SeqModel {
  const sites = t5Sites(c);
  const siteByName = new Map(sites.map((s) => [s.name, s]));
  const H = c.hiddenSize, nh = c.numHeads, dk = c.headDim;
  const tables = new Map<boolean, BigInt64Array>();
  const bucketTable = (bidi: boolean) => {
    let t = tables.get(bidi);
    if (!t) {
      t = new BigInt64Array(2 * MAX_REL - 1);
      for (let r = -(MAX_REL - 1); r < MAX_REL; r++) t[r + MAX_REL - 1] = BigInt(t5Bucket(r, bidi, c.numBuckets, c.maxDistance));
      tables.set(bidi, t);
    }
    return t;
  };

  const ctx = (g: Graph, linear: LinearFn) => {
    const W = weightGetter(g, weights, name, linear);
    const lin = (site: string, x2d: Value) => linear(siteByName.get(site)!, x2d, W(siteByName.get(site)!.weightKey));
    return { W, lin };
  };

  /** Position bias [1, nh, T, S] for queries at past..past+T−1 and keys 0..S−1. */
  const posBias = (g: Graph, stack: string, bidi: boolean, qStart: Value, qEnd: Value, kLen: Value, tName: string, sName: string, W: (k: string) => Value) => {
    const q = op.unsqueeze(range(qStart, qEnd, tName), [1]); // [T,1]
    const k = op.unsqueeze(range(g.ints([0]), kLen, sName), [0]); // [1,S]
    const rel = op.add(op.sub(k, q), MAX_REL - 1); // [T,S]
    const table = g.const(bucketTable(bidi), [2 * MAX_REL - 1], 'int64');
    const buckets = op.gather(table, rel, 0); // [T,S]
    const emb = op.gather(W(`${stack}.block.0.layer.0.SelfAttention.relative_attention_bias.weight`), buckets, 0); // [T,S,nh]
    let bias = op.unsqueeze(op.transpose(emb, [2, 0, 1]), [0]); // [1,nh,T,S]
    if (!bidi) bias = op.add(bias, op.where(op.greater(k, q), MASKED, 0));
    return bias;
  };

  const heads = (x2d: Value, lead: Value) => op.transpose(reshapeRuntime(x2d, lead, 2, [nh, dk]), [0, 2, 1, 3]); // [B,nh,L,dk]

  const attend = (qh: Value, kv: KeyValue, bias: Value) => {
    const scores = op.add(op.matmul(qh, op.transpose(kv.key, [0, 1, 3, 2])), bias); // no 1/√d in T5
    const out = op.matmul(op.softmax(scores, -1), kv.value); // [B,nh,T,dk]
    return op.reshape(op.transpose(out, [0, 2, 1, 3]), [-1, nh * dk]);
  };

  const ffn = (p: string, x: Value, lin: (s: string, x: Value) => Value) => {
    const h = c.gated ? op.mul(geluTanh(lin(`${p}.wi_0`, x)), lin(`${p}.wi_1`, x)) : op.relu(lin(`${p}.wi`, x));
    return lin(`${p}.wo`, h);
  };

  const model: Seq2SeqModel = {
    name, config: c, weights, sites, headNames: ['lm_head'],
    encode(g, { inputIds, attentionMask }, linear) {
      const { W, lin } = ctx(g, linear);
      let x = op.reshape(op.gather(W('shared.weight'), inputIds, 0), [-1, H]); // [B·S,H]
      const S = dim(inputIds, 1);
      const pad = op.unsqueeze(op.mul(op.sub(attentionMask, 1), -MASKED), [1, 2]); // [B,1,1,S]
      const bias = op.add(posBias(g, 'encoder', true, g.ints([0]), S, S, String(inputIds.shape[1]), String(inputIds.shape[1]), W), pad);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `encoder.block.${i}`;
        const h = rmsNorm(x, W(`${p}.layer.0.layer_norm.weight`), c.eps);
        const a = `${p}.layer.0.SelfAttention`;
        const kv = { key: heads(lin(`${a}.k`, h), inputIds), value: heads(lin(`${a}.v`, h), inputIds) };
        x = op.add(x, lin(`${a}.o`, attend(heads(lin(`${a}.q`, h), inputIds), kv, bias)));
        x = op.add(x, ffn(`${p}.layer.1.DenseReluDense`, rmsNorm(x, W(`${p}.layer.1.layer_norm.weight`), c.eps), lin));
      }
      return reshapeRuntime(rmsNorm(x, W('encoder.final_layer_norm.weight'), c.eps), inputIds, 2, [H]);
    },
    crossKv(g, enc, linear) {
      const { lin } = ctx(g, linear);
      const e2 = op.reshape(enc, [-1, H]);
      return Array.from({ length: c.numDecoderLayers }, (_, i) => {
        const a = `decoder.block.${i}.layer.1.EncDecAttention`;
        return { key: heads(lin(`${a}.k`, e2), enc), value: heads(lin(`${a}.v`, e2), enc) };
      });
    },
    decode(g, inp: Seq2SeqDecodeInputs, linear, opts = {}) {
      const { W, lin } = ctx(g, linear);
      const ids = inp.decoderInputIds;
      let y = op.reshape(op.gather(W('shared.weight'), ids, 0), [-1, H]);
      const T = dim(ids, 1);
      const P = inp.past ? dim(inp.past[0].key, 2) : g.ints([0]);
      const total = op.add(P, T);
      const selfBias = posBias(g, 'decoder', false, P, total, total, String(ids.shape[1]), inp.past ? 'P+T' : String(ids.shape[1]), W);
      const crossBias = op.unsqueeze(op.mul(op.sub(inp.encoderAttentionMask, 1), -MASKED), [1, 2]);
      const present: KeyValue[] = [];
      for (let i = 0; i < c.numDecoderLayers; i++) {
        const p = `decoder.block.${i}`;
        let h = rmsNorm(y, W(`${p}.layer.0.layer_norm.weight`), c.eps);
        const a = `${p}.layer.0.SelfAttention`;
        let kv = { key: heads(lin(`${a}.k`, h), ids), value: heads(lin(`${a}.v`, h), ids) };
        if (inp.past) kv = { key: op.concat([inp.past[i].key, kv.key], 2), value: op.concat([inp.past[i].value, kv.value], 2) };
        present.push(kv);
        y = op.add(y, lin(`${a}.o`, attend(heads(lin(`${a}.q`, h), ids), kv, selfBias)));
        h = rmsNorm(y, W(`${p}.layer.1.layer_norm.weight`), c.eps);
        const x = `${p}.layer.1.EncDecAttention`;
        y = op.add(y, lin(`${x}.o`, attend(heads(lin(`${x}.q`, h), ids), inp.cross[i], crossBias)));
        y = op.add(y, ffn(`${p}.layer.2.DenseReluDense`, rmsNorm(y, W(`${p}.layer.2.layer_norm.weight`), c.eps), lin));
      }
      let out = rmsNorm(y, W('decoder.final_layer_norm.weight'), c.eps);
      if (c.tieWordEmbeddings) out = op.mul(out, H ** -0.5);
      const V = c.vocabSize;
      if (opts.logits === 'last') {
        const h3 = reshapeRuntime(out, ids, 2, [H]);
        const last = op.reshape(op.slice(h3, [-1], [Number.MAX_SAFE_INTEGER], [1]), [-1, H]);
        return { logits: op.unsqueeze(lin('lm_head', last), [1]), present };
      }
      return { logits: reshapeRuntime(lin('lm_head', out), ids, 2, [V]), present };
    },
    withWeights(w) {
      return createT5(c, w, name);
    },
  };
  return model;
}

/** The T5 model of an already-read HF folder (what src/models/hf_registry.ts calls). */
export function t5FromFolder(f: HfFolder): Seq2SeqModel {
  return createT5(t5ConfigFromHf(f.config), f.weights, path.basename(path.resolve(f.dir)));
}
