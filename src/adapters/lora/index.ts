// LoRA (Hu et al. 2021) with PEFT semantics: y = W0·x + s·B·A·dropout(x).
// On an embedding table E [vocab, dim] (PEFT's lora.Embedding): y = E[ids] +
// s·Aᵀ[ids]·Bᵀ with lora_embedding_A [r, vocab] and lora_embedding_B [dim, r]
// (no '.weight' suffix, no dropout), merged as E += s·(B·A)ᵀ.
import type { Value } from '../../graph/ir.ts';
import * as op from '../../graph/ops.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterMethod } from '../types.ts';
import { LoraConfig, loraConfigSchema, loraScaling } from './config.ts';
import { findInit } from '../inits.ts';
import { fromOutIn, toOutIn } from '../inject.ts';
import { loraKeys, loraPeft } from './peft.ts';

export { loraKeys };
import type { AdapterContext, ParamSpec } from '../types.ts';

/**
 * PEFT lora.Embedding: A [r, vocab] and B [dim, r] start as torch.randn; any truthy
 * init_lora_weights ('gaussian', and PiSSA/OLoRA names too: Embedding.update_layer
 * sends them all to reset_lora_parameters) gives A = 0, B ~ N(0, 1) (the reverse
 * of linear layers); false keeps both N(0, 1).
 */
function initEmbeddingParams({ site, config, rng }: AdapterContext<LoraConfig>): ParamSpec[] {
  const { r } = config, V = site.inFeatures, D = site.outFeatures;
  const v = config.init_lora_weights;
  if (v === 'loftq') throw new Error(`init_lora_weights 'loftq' is not supported (embedding module '${site.name}')`);
  const A = v === false ? rng.fillNormal(new Float32Array(r * V), 0, 1) : new Float32Array(r * V);
  const B = rng.fillNormal(new Float32Array(D * r), 0, 1);
  return [
    { key: 'lora_embedding_A', shape: [r, V], data: A },
    { key: 'lora_embedding_B', shape: [D, r], data: B },
  ];
}

/**
 * Aᵀ[ids] [..., r] as F.embedding(ids, Aᵀ, padding_idx) computes it: rows looked up
 * at the padding id count in the forward but get no gradient.
 */
function lookupColumns(A: Value, ids: Value, paddingIdx?: number): Value {
  const g = A.graph;
  const At = op.transpose(A); // [vocab, r]
  const h = op.gather(At, ids);
  return g.setCustomVjp(h, [At], (gy, need) => {
    if (!need[0]) return [null];
    const kept = paddingIdx === undefined ? gy : op.mul(gy, op.unsqueeze(op.where(op.equal(ids, paddingIdx), g.scalar(0, gy.dtype), 1), [-1]));
    return [op.scatterNDAdd(op.zerosLike(At), op.unsqueeze(ids, [-1]), kept)];
  });
}

/** A and B for one site (PEFT's `reset_lora_parameters` / init dispatch); shared with DoRA. */
export function initLoraParams(ctx: AdapterContext<LoraConfig>): ParamSpec[] {
  if (ctx.site.kind === 'embedding') return initEmbeddingParams(ctx);
  const { site, config, rng, setBaseWeight } = ctx; // ctx.baseWeight read only where an init needs it (a quantized base dequantizes it on demand)
  const { r } = config;
  const n = site.inFeatures, m = site.outFeatures;
  let A: Float32Array, B: Float32Array;
  const v = config.init_lora_weights;
  if (v === 'gaussian') {
    A = rng.fillNormal(new Float32Array(r * n), 0, 1 / r);
    B = new Float32Array(m * r);
  } else if (typeof v === 'string') {
    const res = findInit(v).init({ value: v, r, scaling: loraScaling(config), W: toOutIn(site, ctx.baseWeight), out: m, in: n, rng });
    A = res.A;
    B = res.B;
    if (res.residual) {
      if (!setBaseWeight) throw new Error(`init_lora_weights '${v}' changes the base weight; this caller cannot take a new base weight`);
      setBaseWeight(fromOutIn(site, res.residual));
    }
  } else {
    A = kaimingUniform(rng, r, n);
    B = v ? new Float32Array(m * r) : kaimingUniform(rng, m, r);
  }
  return [
    { key: 'lora_A.weight', shape: [r, n], data: A },
    { key: 'lora_B.weight', shape: [m, r], data: B },
  ];
}

/** s·B·A [out, in] in float32 (what PEFT's get_delta_weight computes). */
export function loraDelta(m: number, n: number, r: number, s: number, A: Float32Array, B: Float32Array): Float32Array {
  const dW = new Float32Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let k = 0; k < r; k++) {
      const b = B[i * r + k] * s;
      if (b === 0) continue;
      const row = i * n;
      for (let j = 0; j < n; j++) dW[row + j] += b * A[k * n + j];
    }
  }
  return dW;
}

/** nn.Linear's default init, kaiming_uniform(a=√5): U(−1/√fan_in, 1/√fan_in). */
export function kaimingUniform(rng: { uniformRange(lo: number, hi: number): number }, rows: number, fanIn: number): Float32Array {
  const bound = 1 / Math.sqrt(fanIn);
  const out = new Float32Array(rows * fanIn);
  for (let i = 0; i < out.length; i++) out[i] = rng.uniformRange(-bound, bound);
  return out;
}

export const lora: AdapterMethod<LoraConfig> = {
  name: 'lora',
  schema: loraConfigSchema,
  peft: loraPeft({ useDora: false }),

  init: initLoraParams,
  adaptsEmbeddings: true,

  forward({ site, config, p, x, base }) {
    if (site.kind === 'embedding') {
      const h = lookupColumns(p.lora_embedding_A, x, site.paddingIdx); // [..., r]
      return op.add(base, op.mul(op.matmul(h, op.transpose(p.lora_embedding_B)), loraScaling(config)));
    }
    // x·Aᵀ then s·(·)·Bᵀ + base in one Gemm: the skinny products stay fused with the big one.
    const h = op.gemm(x, p['lora_A.weight'], { transB: true });
    return op.gemm(h, p['lora_B.weight'], { transB: true, alpha: loraScaling(config) }, base);
  },

  deltaWeight(site, config, params) {
    // [out, in] = [dim, vocab] on an embedding; the site's 'in_out' layout transposes it onto the table.
    const k = loraKeys(site);
    return loraDelta(site.outFeatures, site.inFeatures, config.r, loraScaling(config), params[k.A], params[k.B]);
  },

  factors(site, config, params) {
    const k = loraKeys(site);
    return { A: params[k.A], B: params[k.B], r: config.r, scale: loraScaling(config) };
  },

  linearCombination: true,

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures);
  },
};
