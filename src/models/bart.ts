// BART (transformers' modeling_bart.py) as a seq2seq model: learned positions
// offset by 2, token embeddings × √d_model when `scale_embedding`,
// layernorm_embedding, post-LN encoder/decoder layers, GELU (exact) FFN
// (fc1/fc2), q scaled by head_dim^-0.5, lm_head tied to model.shared plus the
// final_logits_bias buffer. Weights keep HF's names, so PEFT module paths are
// the targets (model.encoder.layers.0.self_attn.q_proj,
// model.decoder.layers.1.encoder_attn.v_proj, ...).

import path from 'node:path';
import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { HfFolder } from '../io/hf.ts';
import { eosList, KeyValue, reshapeRuntime, weightGetter } from './decoder.ts';
import type { Seq2SeqConfig, Seq2SeqDecodeInputs, Seq2SeqModel } from './seq2seq.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';

export interface BartConfig extends Seq2SeqConfig {
  encoderFfn: number;
  decoderFfn: number;
  maxPositions: number;
  scaleEmbedding: boolean;
}

const MASKED = -1e9;
const POS_OFFSET = 2;

export function bartConfigFromHf(c: Record<string, any>): BartConfig {
  const act = c.activation_function ?? 'gelu';
  if (act !== 'gelu') throw new Error(`config.json: activation_function '${act}' is not supported for bart (gelu only)`);
  if (c.encoder_attention_heads !== c.decoder_attention_heads) throw new Error('config.json: bart with different encoder/decoder head counts is not supported');
  if (c.normalize_before || c.add_final_layer_norm) throw new Error('config.json: pre-LN BART variants (normalize_before / add_final_layer_norm, mBART) are not supported');
  const H = c.d_model, nh = c.decoder_attention_heads;
  return {
    modelType: 'bart', vocabSize: c.vocab_size, hiddenSize: H, numHeads: nh, headDim: H / nh,
    numLayers: c.encoder_layers, numDecoderLayers: c.decoder_layers,
    decoderStartTokenId: c.decoder_start_token_id ?? 2, padTokenId: c.pad_token_id ?? 1, eosTokenIds: eosList(c.eos_token_id ?? 2),
    encoderFfn: c.encoder_ffn_dim, decoderFfn: c.decoder_ffn_dim, maxPositions: c.max_position_embeddings,
    scaleEmbedding: c.scale_embedding ?? false,
  };
}

export function bartSites(c: BartConfig): LinearSite[] {
  const H = c.hiddenSize;
  const sites: LinearSite[] = [];
  const add = (name: string, fin: number, fout: number) => sites.push({ name, inFeatures: fin, outFeatures: fout, weightKey: `${name}.weight`, layout: 'out_in' });
  const attn = (p: string) => { for (const m of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) add(`${p}.${m}`, H, H); };
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.encoder.layers.${i}`;
    attn(`${p}.self_attn`); add(`${p}.fc1`, H, c.encoderFfn); add(`${p}.fc2`, c.encoderFfn, H);
  }
  for (let i = 0; i < c.numDecoderLayers; i++) {
    const p = `model.decoder.layers.${i}`;
    attn(`${p}.self_attn`); attn(`${p}.encoder_attn`); add(`${p}.fc1`, H, c.decoderFfn); add(`${p}.fc2`, c.decoderFfn, H);
  }
  sites.push({ name: 'lm_head', inFeatures: H, outFeatures: c.vocabSize, weightKey: 'model.shared.weight', layout: 'out_in' });
  return sites;
}

function dim(x: Value, i: number): Value {
  return op.gather(op.shapeOf(x), x.graph.ints([i]), 0); // int64 [1]
}

function range(start: Value, limit: Value, name: string): Value {
  return op.range(start, limit, 1, name);
}

export function createBart(c: BartConfig, weights: WeightMap, name = 'bart'): Seq2SeqModel {
  const sites = bartSites(c);
  const siteByName = new Map(sites.map((s) => [s.name, s]));
  const H = c.hiddenSize, nh = c.numHeads, hd = c.headDim;

  const ctx = (g: Graph, linear: LinearFn) => {
    const W = weightGetter(g, weights, name, linear);
    const lin = (site: string, x2d: Value) => {
      const s = siteByName.get(site)!;
      return linear(s, x2d, W(s.weightKey), weights.has(`${site}.bias`) ? W(`${site}.bias`) : undefined);
    };
    const ln = (p: string, x: Value) => op.layerNorm(x, W(`${p}.weight`), W(`${p}.bias`), { eps: 1e-5 });
    return { W, lin, ln };
  };

  /** Token + position embeddings (positions start..start+T−1, offset 2), layernorm_embedding; [B·T, H]. */
  const embed = (g: Graph, stack: string, ids: Value, start: Value, W: (k: string) => Value, ln: (p: string, x: Value) => Value) => {
    let tok = op.gather(W('model.shared.weight'), ids, 0); // [B,T,H]
    if (c.scaleEmbedding) tok = op.mul(tok, Math.sqrt(H));
    const pos = op.add(range(start, op.add(start, dim(ids, 1)), String(ids.shape[1])), POS_OFFSET);
    const x = op.add(tok, op.unsqueeze(op.gather(W(`model.${stack}.embed_positions.weight`), pos, 0), [0]));
    return ln(`model.${stack}.layernorm_embedding`, op.reshape(x, [-1, H]));
  };

  const heads = (x2d: Value, lead: Value) => op.transpose(reshapeRuntime(x2d, lead, 2, [nh, hd]), [0, 2, 1, 3]); // [B,nh,L,hd]

  const attend = (qh: Value, kv: KeyValue, bias: Value) => {
    const scores = op.add(op.matmul(qh, op.transpose(kv.key, [0, 1, 3, 2])), bias);
    const out = op.matmul(op.softmax(scores, -1), kv.value);
    return op.reshape(op.transpose(out, [0, 2, 1, 3]), [-1, H]);
  };
  const query = (x: Value, lead: Value, lin: (s: string, x: Value) => Value, site: string) => heads(op.mul(lin(site, x), hd ** -0.5), lead);
  const padBias = (mask: Value) => op.unsqueeze(op.mul(op.sub(mask, 1), -MASKED), [1, 2]); // [B,1,1,S]

  const model: Seq2SeqModel = {
    name, config: c, weights, sites, headNames: ['lm_head'],
    encode(g, { inputIds, attentionMask }, linear) {
      const { W, lin, ln } = ctx(g, linear);
      let x = embed(g, 'encoder', inputIds, g.ints([0]), W, ln);
      const bias = padBias(attentionMask);
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.encoder.layers.${i}`, a = `${p}.self_attn`;
        const kv = { key: heads(lin(`${a}.k_proj`, x), inputIds), value: heads(lin(`${a}.v_proj`, x), inputIds) };
        x = ln(`${p}.self_attn_layer_norm`, op.add(x, lin(`${a}.out_proj`, attend(query(x, inputIds, lin, `${a}.q_proj`), kv, bias))));
        x = ln(`${p}.final_layer_norm`, op.add(x, lin(`${p}.fc2`, op.gelu(lin(`${p}.fc1`, x)))));
      }
      return reshapeRuntime(x, inputIds, 2, [H]);
    },
    crossKv(g, enc, linear) {
      const { lin } = ctx(g, linear);
      const e2 = op.reshape(enc, [-1, H]);
      return Array.from({ length: c.numDecoderLayers }, (_, i) => {
        const a = `model.decoder.layers.${i}.encoder_attn`;
        return { key: heads(lin(`${a}.k_proj`, e2), enc), value: heads(lin(`${a}.v_proj`, e2), enc) };
      });
    },
    decode(g, inp: Seq2SeqDecodeInputs, linear, opts = {}) {
      const { W, lin, ln } = ctx(g, linear);
      const ids = inp.decoderInputIds;
      const P = inp.past ? dim(inp.past[0].key, 2) : g.ints([0]);
      let y = embed(g, 'decoder', ids, P, W, ln);
      const total = op.add(P, dim(ids, 1));
      const q = op.unsqueeze(range(P, total, String(ids.shape[1])), [1]);
      const k = op.unsqueeze(range(g.ints([0]), total, inp.past ? 'P+T' : String(ids.shape[1])), [0]);
      const selfBias = op.where(op.greater(k, q), MASKED, 0); // [T, P+T]
      const crossBias = padBias(inp.encoderAttentionMask);
      const present: KeyValue[] = [];
      for (let i = 0; i < c.numDecoderLayers; i++) {
        const p = `model.decoder.layers.${i}`, a = `${p}.self_attn`, x = `${p}.encoder_attn`;
        let kv = { key: heads(lin(`${a}.k_proj`, y), ids), value: heads(lin(`${a}.v_proj`, y), ids) };
        if (inp.past) kv = { key: op.concat([inp.past[i].key, kv.key], 2), value: op.concat([inp.past[i].value, kv.value], 2) };
        present.push(kv);
        y = ln(`${p}.self_attn_layer_norm`, op.add(y, lin(`${a}.out_proj`, attend(query(y, ids, lin, `${a}.q_proj`), kv, selfBias))));
        y = ln(`${p}.encoder_attn_layer_norm`, op.add(y, lin(`${x}.out_proj`, attend(query(y, ids, lin, `${x}.q_proj`), inp.cross[i], crossBias))));
        y = ln(`${p}.final_layer_norm`, op.add(y, lin(`${p}.fc2`, op.gelu(lin(`${p}.fc1`, y)))));
      }
      const head = (h: Value) => op.add(lin('lm_head', h), op.reshape(W('final_logits_bias'), [c.vocabSize]));
      if (opts.logits === 'last') {
        const h3 = reshapeRuntime(y, ids, 2, [H]);
        const last = op.reshape(op.slice(h3, [-1], [Number.MAX_SAFE_INTEGER], [1]), [-1, H]);
        return { logits: op.unsqueeze(head(last), [1]), present };
      }
      return { logits: reshapeRuntime(head(y), ids, 2, [c.vocabSize]), present };
    },
    withWeights(w) {
      return createBart(c, w, name);
    },
  };
  return model;
}

/** The BART model of an already-read HF folder (what src/models/hf_registry.ts calls). */
export function bartFromFolder(f: HfFolder): Seq2SeqModel {
  return createBart(bartConfigFromHf(f.config), f.weights, path.basename(path.resolve(f.dir)));
}
