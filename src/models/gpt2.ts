// GPT-2 (transformers' modeling_gpt2.py): learned positions, pre-LN blocks,
// gelu_new (tanh approximation), tied lm_head. Weights keep HF's names and
// Conv1D layout ([in, out]: PEFT's fan_in_fan_out), so PEFT module paths such
// as `transformer.h.0.attn.c_attn` are the names users target.

import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import {
  attentionBias, DecoderBuildOptions, DecoderConfig, DecoderInputs, DecoderModel, DecoderOutputs, defaultPositions, eosList,
  groupedAttention, KeyValue, lmHead, weightGetter,
} from './decoder.ts';
import type { LinearFn, LinearSite, WeightMap } from './types.ts';
import { embedTokens, embeddingSite } from './embedding_site.ts';

export interface Gpt2Config extends DecoderConfig {
  innerSize: number;
  layerNormEps: number;
}

/** gelu_new: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). */
export function geluTanh(x: Value): Value {
  const inner = op.mul(op.add(x, op.mul(op.mul(op.mul(x, x), x), 0.044715)), Math.sqrt(2 / Math.PI));
  return op.mul(op.mul(x, 0.5), op.add(op.tanh(inner), 1));
}

export function gpt2ConfigFromHf(c: Record<string, any>): Gpt2Config {
  const H = c.n_embd ?? c.hidden_size, nh = c.n_head ?? c.num_attention_heads;
  const act = c.activation_function ?? 'gelu_new';
  if (!['gelu_new', 'gelu_pytorch_tanh'].includes(act)) throw new Error(`config.json: GPT-2 activation_function '${act}' is not supported (gelu_new only)`);
  return {
    modelType: 'gpt2', vocabSize: c.vocab_size, hiddenSize: H, numLayers: c.n_layer ?? c.num_hidden_layers, numHeads: nh, numKvHeads: nh,
    headDim: H / nh, maxPositions: c.n_positions ?? c.max_position_embeddings ?? 1024, bosTokenId: c.bos_token_id,
    eosTokenIds: eosList(c.eos_token_id), padTokenId: c.pad_token_id ?? undefined,
    innerSize: c.n_inner ?? 4 * H, layerNormEps: c.layer_norm_epsilon ?? 1e-5,
  };
}

/** HF GPT-2 checkpoints come with or without the `transformer.` prefix (GPT2Model vs GPT2LMHeadModel): normalize to the prefixed names. */
export function normalizeGpt2Weights(weights: WeightMap): WeightMap {
  const out: WeightMap = new Map();
  for (const [k, v] of weights) {
    if (/\.attn\.(masked_)?bias$/.test(k)) continue; // causal-mask buffers in old checkpoints
    out.set(k.startsWith('transformer.') || k.startsWith('lm_head.') ? k : `transformer.${k}`, v);
  }
  return out;
}

export function gpt2Sites(c: Gpt2Config): LinearSite[] {
  const H = c.hiddenSize, I = c.innerSize;
  // wte is nn.Embedding(V, H) without padding_idx. lm_head shares its table: PEFT's unmerged
  // embedding adapter leaves the head alone (it reads the base Parameter), a merge changes both.
  const sites: LinearSite[] = [embeddingSite('transformer.wte', c.vocabSize, H)];
  for (let i = 0; i < c.numLayers; i++) {
    const p = `transformer.h.${i}`;
    for (const [m, fin, fout] of [['attn.c_attn', H, 3 * H], ['attn.c_proj', H, H], ['mlp.c_fc', H, I], ['mlp.c_proj', I, H]] as const) {
      sites.push({ name: `${p}.${m}`, inFeatures: fin, outFeatures: fout, weightKey: `${p}.${m}.weight`, layout: 'in_out' });
    }
  }
  sites.push({ name: 'lm_head', inFeatures: H, outFeatures: c.vocabSize, weightKey: 'transformer.wte.weight', layout: 'out_in' });
  return sites;
}

export function createGpt2(config: Gpt2Config, weights: WeightMap, name = 'gpt2'): DecoderModel {
  weights = normalizeGpt2Weights(weights);
  const sites = gpt2Sites(config);
  const site = new Map(sites.map((s) => [s.name, s]));
  const c = config;
  const H = c.hiddenSize;
  return {
    name,
    config,
    weights,
    sites,
    headNames: ['lm_head'],
    withWeights: (w) => createGpt2(config, w, name),
    build(g: Graph, inputs: DecoderInputs, linear: LinearFn, opts: DecoderBuildOptions = {}): DecoderOutputs {
      const w = weightGetter(g, weights, name, linear);
      const proj = (m: string, x: Value) => {
        const s = site.get(m)!;
        return linear(s, x, w(s.weightKey), m === 'lm_head' ? undefined : w(`${m}.bias`));
      };
      const { inputIds, attentionMask } = inputs;
      const pos = inputs.positionIds ?? defaultPositions(inputIds, attentionMask);
      const wte = site.get('transformer.wte')!;
      const emb = op.add(embedTokens(linear, wte, inputIds, w(wte.weightKey)), op.gather(w('transformer.wpe.weight'), pos)); // [B,T,H]
      let x = op.reshape(emb, [-1, H]);
      const bias = attentionBias(inputIds, attentionMask);
      const ln = (key: string, t: Value) => op.layerNorm(t, w(`${key}.weight`), w(`${key}.bias`), { eps: c.layerNormEps });
      const present: KeyValue[] = [];
      for (let i = 0; i < c.numLayers; i++) {
        const p = `transformer.h.${i}`;
        const qkv = proj(`${p}.attn.c_attn`, ln(`${p}.ln_1`, x));
        const [q, k, v] = op.split(qkv, [H, H, H], 1);
        const att = groupedAttention({ q, k, v, inputIds, bias, numHeads: c.numHeads, numKvHeads: c.numHeads, headDim: c.headDim, past: inputs.past?.[i] });
        present.push(att.present);
        x = op.add(x, proj(`${p}.attn.c_proj`, att.ctx));
        x = op.add(x, proj(`${p}.mlp.c_proj`, geluTanh(proj(`${p}.mlp.c_fc`, ln(`${p}.ln_2`, x)))));
      }
      x = ln('transformer.ln_f', x);
      const logits = lmHead(x, inputIds, H, c.vocabSize, opts.logits ?? 'all', (h) => proj('lm_head', h));
      return { logits, present };
    },
  };
}
