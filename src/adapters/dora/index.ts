// DoRA (Liu et al. 2024) with PEFT semantics (tuners/lora/dora.py, DoraLinearLayer):
//   m = ‖W0 + s·B·A‖ per output row (PEFT orientation [out, in]), saved as
//       `<module>.lora_magnitude_vector` [out] (no `.weight` on disk),
//   y = base(x) + (m/‖W0 + s·B·A‖ − 1)·(x·W0ᵀ) + (m/‖W0 + s·B·A‖)·s·B·A·x
// with the norm detached from the gradient ("treat ‖V + ΔV‖ as a constant",
// DoRA §4.3; PEFT calls weight_norm.detach()). Merge: W = m/‖W0+sBA‖ · (W0 + sBA).
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import type { AdapterMethod } from '../types.ts';
import { LoraConfig, loraConfigSchema, loraScaling } from '../lora/config.ts';
import { initLoraParams, loraDelta } from '../lora/index.ts';
import { loraPeft } from '../lora/peft.ts';
import { toOutIn } from '../inject.ts';

export const MAGNITUDE = 'lora_magnitude_vector';

/** Row norms of W0 + ΔW, both [out, in]. */
export function doraNorm(W: Float32Array, dW: Float32Array, m: number, n: number): Float32Array {
  const out = new Float32Array(m);
  for (let i = 0; i < m; i++) {
    let s = 0;
    for (let j = 0; j < n; j++) {
      const v = W[i * n + j] + dW[i * n + j];
      s += v * v;
    }
    out[i] = Math.sqrt(s);
  }
  return out;
}

export const dora: AdapterMethod<LoraConfig> = {
  name: 'dora',
  schema: loraConfigSchema,
  // PEFT's LORA with use_dora: true; the magnitude is stored without '.weight'.
  peft: loraPeft({ useDora: true, extraKeys: [MAGNITUDE] }),
  deltaDependsOnBase: true,

  init(ctx) {
    const specs = initLoraParams(ctx);
    const { site, config } = ctx;
    const m = site.outFeatures, n = site.inFeatures;
    const W = toOutIn(site, ctx.baseWeight);
    const dW = loraDelta(m, n, config.r, loraScaling(config), specs[0].data, specs[1].data);
    return [...specs, { key: MAGNITUDE, shape: [m], data: doraNorm(W, dW, m, n) }];
  },

  forward({ g, site, config, p, x, W, bias, base, training }) {
    const s = loraScaling(config);
    const A = p['lora_A.weight'], B = p['lora_B.weight'], mag = p[MAGNITUDE];
    // ‖W0 + s·B·A‖ per output row, computed in the site's layout, then detached.
    let norm: Value;
    if (site.layout === 'out_in') {
      const Wd = op.gemm(B, A, { alpha: s }, W); // [out, in]
      norm = op.sqrt(op.reduceSum(op.mul(Wd, Wd), [1], false));
    } else {
      const Wd = op.gemm(A, B, { transA: true, transB: true, alpha: s }, W); // [in, out]
      norm = op.sqrt(op.reduceSum(op.mul(Wd, Wd), [0], false));
    }
    // PEFT detaches the weight norm (DoRA paper §4.3): no gradient to A and B through it.
    norm = op.stopGradient(norm);
    const scale = op.div(mag, norm); // [out]
    // PEFT recomputes x·W0ᵀ on the dropped-out input when dropout is active.
    const baseNoBias = training && config.lora_dropout > 0
      ? (site.layout === 'in_out' ? op.linear(x, W) : op.linearT(x, W))
      : bias ? op.sub(base, bias) : base;
    const lora = op.gemm(op.gemm(x, A, { transB: true }), B, { transB: true, alpha: s });
    return op.add(op.add(base, op.mul(op.sub(scale, 1), baseNoBias)), op.mul(scale, lora));
  },

  deltaWeight(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('DoRA: ΔW needs the base weight');
    const m = site.outFeatures, n = site.inFeatures;
    const dW = loraDelta(m, n, config.r, loraScaling(config), params['lora_A.weight'], params['lora_B.weight']);
    const norm = doraNorm(baseWeight, dW, m, n);
    const mag = params[MAGNITUDE];
    const out = new Float32Array(m * n);
    for (let i = 0; i < m; i++) {
      const f = mag[i] / norm[i];
      for (let j = 0; j < n; j++) {
        const k = i * n + j;
        out[k] = f * (baseWeight[k] + dW[k]) - baseWeight[k];
      }
    }
    return out;
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures) + site.outFeatures;
  },
};
