// The Llama family (transformers' modeling_llama.py; Qwen2 and Mistral share
// it): RMSNorm, rotary position embeddings (rope_theta, rotate_half layout),
// grouped-query attention (num_key_value_heads), SwiGLU MLP, untied or tied
// lm_head. Qwen2's q/k/v biases (and Llama's attention_bias / mlp_bias) are
// used wherever the checkpoint has `<module>.bias`. Mistral's sliding window
// (`sliding_window`: a query sees the last W positions) is part of the
// attention mask; Qwen2's per-layer sliding window (use_sliding_window) is not
// supported.

import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import {
  attentionBias, DecoderBuildOptions, DecoderConfig, DecoderInputs, DecoderModel, DecoderOutputs, defaultPositions, eosList,
  groupedAttention, KeyValue, lmHead, weightGetter,
} from './decoder.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';
import { embedTokens, embeddingSite } from './embedding_site.ts';

export interface LlamaConfig extends DecoderConfig {
  intermediateSize: number;
  rmsNormEps: number;
  ropeTheta: number;
  tieWordEmbeddings: boolean;
  slidingWindow?: number;
}

export const LLAMA_FAMILY = ['llama', 'qwen2', 'mistral'];

export function llamaConfigFromHf(c: Record<string, any>): LlamaConfig {
  const H = c.hidden_size, nh = c.num_attention_heads;
  const act = c.hidden_act ?? 'silu';
  if (act !== 'silu') throw new Error(`config.json: hidden_act '${act}' is not supported for ${c.model_type} (silu only)`);
  if (c.model_type === 'qwen2' && c.use_sliding_window === true) throw new Error('config.json: Qwen2 use_sliding_window = true is not supported (per-layer sliding window)');
  const rs = c.rope_scaling;
  if (rs && (rs.rope_type ?? rs.type) !== 'default') throw new Error(`config.json: rope_scaling ${JSON.stringify(rs)} is not supported (plain RoPE only)`);
  return {
    modelType: c.model_type ?? 'llama', vocabSize: c.vocab_size, hiddenSize: H, numLayers: c.num_hidden_layers, numHeads: nh,
    numKvHeads: c.num_key_value_heads ?? nh, headDim: c.head_dim ?? H / nh, maxPositions: c.max_position_embeddings ?? 2048,
    bosTokenId: c.bos_token_id ?? undefined, eosTokenIds: eosList(c.eos_token_id), padTokenId: c.pad_token_id ?? undefined,
    intermediateSize: c.intermediate_size, rmsNormEps: c.rms_norm_eps ?? 1e-6, ropeTheta: c.rope_theta ?? 10000,
    tieWordEmbeddings: c.tie_word_embeddings ?? false, slidingWindow: c.model_type === 'mistral' ? (c.sliding_window ?? undefined) : undefined,
  };
}

export function llamaSites(c: LlamaConfig): LinearSite[] {
  const H = c.hiddenSize, I = c.intermediateSize, q = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
  // embed_tokens is nn.Embedding(V, H, padding_idx=pad_token_id). With tie_word_embeddings the head
  // reads the same table: PEFT's unmerged embedding adapter leaves the head alone, a merge changes both.
  const sites: LinearSite[] = [embeddingSite('model.embed_tokens', c.vocabSize, H, undefined, c.padTokenId)];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `model.layers.${i}`;
    const mods: [string, number, number][] = [
      ['self_attn.q_proj', H, q], ['self_attn.k_proj', H, kv], ['self_attn.v_proj', H, kv], ['self_attn.o_proj', q, H],
      ['mlp.gate_proj', H, I], ['mlp.up_proj', H, I], ['mlp.down_proj', I, H],
    ];
    for (const [m, fin, fout] of mods) sites.push({ name: `${p}.${m}`, inFeatures: fin, outFeatures: fout, weightKey: `${p}.${m}.weight`, layout: 'out_in' });
  }
  sites.push({ name: 'lm_head', inFeatures: H, outFeatures: c.vocabSize, weightKey: c.tieWordEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight', layout: 'out_in' });
  return sites;
}

/** RoPE tables [maxPositions, headDim/2] computed in float32 as transformers does (inv_freq, pos·inv_freq, cos/sin). */
export function ropeTables(headDim: number, theta: number, maxPositions: number): { cos: Float32Array; sin: Float32Array } {
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let k = 0; k < half; k++) inv[k] = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * k) / headDim))));
  const cos = new Float32Array(maxPositions * half), sin = new Float32Array(maxPositions * half);
  for (let p = 0; p < maxPositions; p++) {
    for (let k = 0; k < half; k++) {
      const f = Math.fround(p * inv[k]);
      cos[p * half + k] = Math.cos(f);
      sin[p * half + k] = Math.sin(f);
    }
  }
  return { cos, sin };
}

/** RMSNorm: w · x / √(mean(x²) + eps) over the last axis. */
export function rmsNorm(x: Value, w: Value, eps: number): Value {
  const ms = op.reduceMean(op.mul(x, x), [-1], true);
  return op.mul(op.div(x, op.sqrt(op.add(ms, eps))), w);
}

/** A site's weight must have its layout's shape ([out, in], or [in, out] as the token table [vocab, dim]): caught here, not as a Reshape error deep in the graph. */
function checkSiteShapes(sites: LinearSite[], weights: WeightMap, name: string): void {
  for (const s of sites) {
    const w = weights.get(s.weightKey);
    if (!w) continue; // missing weights are reported when the graph reads them
    const want = s.layout === 'out_in' ? [s.outFeatures, s.inFeatures] : [s.inFeatures, s.outFeatures];
    if (w.shape.join(',') !== want.join(',')) throw new Error(`${name}: weight '${s.weightKey}' has shape [${w.shape}], expected [${want}] for ${s.name}`);
  }
}

export function createLlama(config: LlamaConfig, weights: WeightMap, name: string = config.modelType): DecoderModel {
  const sites = llamaSites(config);
  checkSiteShapes(sites, weights, name);
  const site = new Map(sites.map((s) => [s.name, s]));
  const c = config;
  const H = c.hiddenSize, hd = c.headDim, half = hd / 2;
  let tables: { cos: Float32Array; sin: Float32Array } | null = null;
  return {
    name,
    config,
    weights,
    sites,
    headNames: ['lm_head'],
    withWeights: (w) => createLlama(config, w, name),
    build(g: Graph, inputs: DecoderInputs, linear: LinearFn, opts: DecoderBuildOptions = {}): DecoderOutputs {
      const w = weightGetter(g, weights, name, linear);
      const proj = (m: string, x: Value) => {
        const s = site.get(m)!;
        const b = weights.has(`${m}.bias`) ? w(`${m}.bias`) : undefined;
        return linear(s, x, w(s.weightKey), b);
      };
      const { inputIds, attentionMask } = inputs;
      const pos = inputs.positionIds ?? defaultPositions(inputIds, attentionMask);
      tables ??= ropeTables(hd, c.ropeTheta, c.maxPositions);
      const cosT = g.leaf('rope.cos') ?? g.weight('rope.cos', tables.cos, [c.maxPositions, half]);
      const sinT = g.leaf('rope.sin') ?? g.weight('rope.sin', tables.sin, [c.maxPositions, half]);
      const cos3 = op.gather(cosT, pos), sin3 = op.gather(sinT, pos); // [B|1, T, hd/2]
      const cos4 = op.unsqueeze(cos3, [1]), sin4 = op.unsqueeze(sin3, [1]);
      const cos5 = op.unsqueeze(cos3, [1, 2]), sin5 = op.unsqueeze(sin3, [1, 2]);
      const rotate = (x: Value): Value => {
        const [cs, sn] = x.rank === 5 ? [cos5, sin5] : [cos4, sin4];
        const [x1, x2] = op.split(x, [half, half], -1);
        return op.concat([op.sub(op.mul(x1, cs), op.mul(x2, sn)), op.add(op.mul(x2, cs), op.mul(x1, sn))], -1);
      };
      const emb = site.get('model.embed_tokens')!;
      let x = op.reshape(embedTokens(linear, emb, inputIds, w(emb.weightKey)), [-1, H]);
      const bias = attentionBias(inputIds, attentionMask, c.slidingWindow);
      const present: KeyValue[] = [];
      for (let i = 0; i < c.numLayers; i++) {
        const p = `model.layers.${i}`;
        const h = rmsNorm(x, w(`${p}.input_layernorm.weight`), c.rmsNormEps);
        const q = proj(`${p}.self_attn.q_proj`, h), k = proj(`${p}.self_attn.k_proj`, h), v = proj(`${p}.self_attn.v_proj`, h);
        const att = groupedAttention({ q, k, v, inputIds, bias, numHeads: c.numHeads, numKvHeads: c.numKvHeads, headDim: hd, past: inputs.past?.[i], rotate });
        present.push(att.present);
        x = op.add(x, proj(`${p}.self_attn.o_proj`, att.ctx));
        const m = rmsNorm(x, w(`${p}.post_attention_layernorm.weight`), c.rmsNormEps);
        const gate = proj(`${p}.mlp.gate_proj`, m);
        x = op.add(x, proj(`${p}.mlp.down_proj`, op.mul(op.mul(gate, op.sigmoid(gate)), proj(`${p}.mlp.up_proj`, m))));
      }
      x = rmsNorm(x, w('model.norm.weight'), c.rmsNormEps);
      const logits = lmHead(x, inputIds, H, c.vocabSize, opts.logits ?? 'all', (h) => proj('lm_head', h));
      return { logits, present };
    },
  };
}
