// LoRA (Hu et al. 2021) with PEFT semantics: y = W0·x + s·B·A·dropout(x).
import * as op from '../../graph/ops.ts';
import type { AdapterMethod } from '../types.ts';
import { LoraConfig, loraConfigSchema, loraScaling } from './config.ts';

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

  init({ site, config, rng }) {
    const { r } = config;
    const n = site.inFeatures, m = site.outFeatures;
    let A: Float32Array, B: Float32Array;
    if (config.init_lora_weights === 'gaussian') {
      A = rng.fillNormal(new Float32Array(r * n), 0, 1 / r);
      B = new Float32Array(m * r);
    } else {
      A = kaimingUniform(rng, r, n);
      B = config.init_lora_weights ? new Float32Array(m * r) : kaimingUniform(rng, m, r);
    }
    return [
      { key: 'lora_A.weight', shape: [r, n], data: A },
      { key: 'lora_B.weight', shape: [m, r], data: B },
    ];
  },

  forward({ config, p, x, base }) {
    // x·Aᵀ then s·(·)·Bᵀ + base in one Gemm: the skinny products stay fused with the big one.
    const h = op.gemm(x, p['lora_A.weight'], { transB: true });
    return op.gemm(h, p['lora_B.weight'], { transB: true, alpha: loraScaling(config) }, base);
  },

  deltaWeight(site, config, params) {
    const A = params['lora_A.weight'], B = params['lora_B.weight'];
    const { r } = config, m = site.outFeatures, n = site.inFeatures;
    const s = loraScaling(config);
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
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures);
  },

  toPeftConfig(c) {
    return { r: c.r, lora_alpha: c.lora_alpha, lora_dropout: c.lora_dropout, use_rslora: c.use_rslora, init_lora_weights: c.init_lora_weights, fan_in_fan_out: c.fan_in_fan_out, use_dora: false, bias: 'none' };
  },
};
