// LoRA (Hu et al. 2021) with PEFT semantics: y = W0·x + s·B·A·dropout(x).
import * as op from '../../graph/ops.ts';
import type { AdapterMethod } from '../types.ts';
import { LoraConfig, loraConfigSchema, loraScaling } from './config.ts';
import { findInit } from '../inits.ts';
import { fromOutIn, toOutIn } from '../inject.ts';
import type { AdapterContext, ParamSpec } from '../types.ts';

/** A and B for one site (PEFT's `reset_lora_parameters` / init dispatch); shared with DoRA. */
export function initLoraParams({ site, config, rng, baseWeight, setBaseWeight }: AdapterContext<LoraConfig>): ParamSpec[] {
  const { r } = config;
  const n = site.inFeatures, m = site.outFeatures;
  let A: Float32Array, B: Float32Array;
  const v = config.init_lora_weights;
  if (v === 'gaussian') {
    A = rng.fillNormal(new Float32Array(r * n), 0, 1 / r);
    B = new Float32Array(m * r);
  } else if (typeof v === 'string') {
    const res = findInit(v).init({ value: v, r, scaling: loraScaling(config), W: toOutIn(site, baseWeight), out: m, in: n, rng });
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
  peftType: 'LORA',
  schema: loraConfigSchema,

  init: initLoraParams,

  forward({ config, p, x, base }) {
    // x·Aᵀ then s·(·)·Bᵀ + base in one Gemm: the skinny products stay fused with the big one.
    const h = op.gemm(x, p['lora_A.weight'], { transB: true });
    return op.gemm(h, p['lora_B.weight'], { transB: true, alpha: loraScaling(config) }, base);
  },

  deltaWeight(site, config, params) {
    return loraDelta(site.outFeatures, site.inFeatures, config.r, loraScaling(config), params['lora_A.weight'], params['lora_B.weight']);
  },

  combinable: true,

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures);
  },

  toPeftConfig(c) {
    return { r: c.r, lora_alpha: c.lora_alpha, lora_dropout: c.lora_dropout, use_rslora: c.use_rslora, init_lora_weights: c.init_lora_weights, fan_in_fan_out: c.fan_in_fan_out, use_dora: false, bias: 'none' };
  },
};
