// SLTrain: sparse + low-rank ΔW (config.ts has the equations and choices).
// State-dict keys (our own names; PEFT has no SLTrain):
//   sltrain_A.weight [r, in]  sltrain_B.weight [out, r]  sltrain_S.values [nnz]
// The support (flat indices into the [out, in] matrix, row-major) is
// regenerated from `support_seed` and the module name.
import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import type { LinearSite } from '../../models/types.ts';
import type { AdapterMethod } from '../types.ts';
import { kaimingUniform, loraDelta } from '../lora/index.ts';
import { SLTrainConfig, sltrainConfigSchema, sltrainNnz, sltrainScaling } from './config.ts';
import { mixSeed, randomSupport } from './support.ts';

export const SLTRAIN_KEYS = { A: 'sltrain_A.weight', B: 'sltrain_B.weight', S: 'sltrain_S.values' } as const;

/** The support of S for one site: sorted flat indices into [out, in]. */
export function sltrainSupport(siteName: string, out: number, inF: number, c: Pick<SLTrainConfig, 'density' | 'support_seed'>): Int32Array {
  return randomSupport(out * inF, sltrainNnz(out, inF, c.density), mixSeed(c.support_seed, `sltrain:${siteName}`));
}

/**
 * The dense [rows·cols] vector with `values` at the flat `indices` (ScatterElements
 * into zeros). Its backward is a Gather of the incoming gradient at the same
 * indices (a fused vjp: no gradient flows to the zeros or the indices).
 */
export function scatterDense(g: Graph, values: Value, indices: Value, size: number): Value {
  const dense = op.scatterElements(op.filled(g, size, 0), indices, values, 0);
  return g.setCustomVjp(dense, [values], (gy) => [op.gather(gy, indices, 0)]);
}

/** The support as an int64 leaf, flat indices into W in the site's layout ([out, in] or [in, out]). */
function supportLeaf(g: Graph, site: LinearSite, c: SLTrainConfig): Value {
  const name = `sltrain_support.${site.name}.${site.layout}.${c.support_seed}.${c.density}`;
  const hit = g.leaf(name);
  if (hit) return hit;
  const m = site.outFeatures, n = site.inFeatures;
  const idx = sltrainSupport(site.name, m, n, c);
  const flat = new BigInt64Array(idx.length);
  for (let k = 0; k < idx.length; k++) flat[k] = BigInt(site.layout === 'out_in' ? idx[k] : (idx[k] % n) * m + Math.floor(idx[k] / n));
  return g.weight(name, flat, [idx.length], 'int64');
}

export const sltrain: AdapterMethod<SLTrainConfig> = {
  name: 'sltrain',
  schema: sltrainConfigSchema,
  peft: { peftType: 'SLTRAIN', onlyBias: 'lora_only', moduleKeys: Object.values(SLTRAIN_KEYS) },

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    const A = kaimingUniform(rng, r, n);
    const B = config.init_weights ? new Float32Array(m * r) : kaimingUniform(rng, m, r);
    const nnz = sltrainNnz(m, n, config.density);
    const S = new Float32Array(nnz);
    if (config.sparse_init === 'uniform') {
      const b = 1 / Math.sqrt(n);
      for (let i = 0; i < nnz; i++) S[i] = rng.uniformRange(-b, b);
    }
    return [
      { key: SLTRAIN_KEYS.A, shape: [r, n], data: A },
      { key: SLTRAIN_KEYS.B, shape: [m, r], data: B },
      { key: SLTRAIN_KEYS.S, shape: [nnz], data: S },
    ];
  },

  forward({ g, site, config, p, x, W, bias }) {
    // S is added to W0 in the graph (W0 + S in the site's layout) and the layer
    // is recomputed with it: one product instead of W0·x plus a dense S·x (the
    // unused W0·x is dropped by onnxruntime). ∂L/∂S = ∂L/∂W gathered at the support.
    const m = site.outFeatures, n = site.inFeatures;
    const S = op.reshape(scatterDense(g, p[SLTRAIN_KEYS.S], supportLeaf(g, site, config), m * n), W.shape as number[]);
    const Weff = op.add(W, S);
    const y = site.layout === 'in_out' ? op.linear(x, Weff, bias) : op.linearT(x, Weff, bias);
    return op.gemm(op.gemm(x, p[SLTRAIN_KEYS.A], { transB: true }), p[SLTRAIN_KEYS.B], { transB: true, alpha: sltrainScaling(config) }, y);
  },

  deltaWeight(site, config, params) {
    const m = site.outFeatures, n = site.inFeatures;
    const dW = loraDelta(m, n, config.r, sltrainScaling(config), params[SLTRAIN_KEYS.A], params[SLTRAIN_KEYS.B]);
    const idx = sltrainSupport(site.name, m, n, config);
    const vals = params[SLTRAIN_KEYS.S];
    for (let k = 0; k < idx.length; k++) dW[idx[k]] += vals[k];
    return dW;
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures) + sltrainNnz(site.outFeatures, site.inFeatures, config.density);
  },
};
