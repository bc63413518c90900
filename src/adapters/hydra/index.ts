// Hydra: parallel + sequential low-rank branches (config.ts has the equations).
// State-dict keys (our own names; PEFT has no Hydra):
//   hydra_A_par.weight [r_par, in]   hydra_B_par.weight [out, r_par]
//   hydra_A_seq.weight [r_seq, out]  hydra_B_seq.weight [out, r_seq]
import * as op from '../../graph/ops.ts';
import type { AdapterMethod } from '../types.ts';
import { kaimingUniform } from '../lora/index.ts';
import { HydraConfig, hydraConfigSchema } from './config.ts';

export const HYDRA_KEYS = { Ap: 'hydra_A_par.weight', Bp: 'hydra_B_par.weight', As: 'hydra_A_seq.weight', Bs: 'hydra_B_seq.weight' } as const;

/** C += A·B for row-major A [p, q], B [q, s], C [p, s]. */
function matmulAcc(C: Float32Array, A: Float32Array, B: Float32Array, p: number, q: number, s: number): void {
  for (let i = 0; i < p; i++) {
    for (let k = 0; k < q; k++) {
      const a = A[i * q + k];
      if (a === 0) continue;
      for (let j = 0; j < s; j++) C[i * s + j] += a * B[k * s + j];
    }
  }
}

export const hydra: AdapterMethod<HydraConfig> = {
  name: 'hydra',
  schema: hydraConfigSchema,
  peft: { peftType: 'HYDRA', onlyBias: 'lora_only', moduleKeys: Object.values(HYDRA_KEYS) },
  deltaDependsOnBase: true,

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures;
    const { r_seq: rs, r_par: rp } = config;
    const Ap = kaimingUniform(rng, rp, n);
    const As = kaimingUniform(rng, rs, m);
    const Bp = config.init_weights ? new Float32Array(m * rp) : kaimingUniform(rng, m, rp);
    const Bs = config.init_weights ? new Float32Array(m * rs) : kaimingUniform(rng, m, rs);
    return [
      { key: HYDRA_KEYS.Ap, shape: [rp, n], data: Ap },
      { key: HYDRA_KEYS.Bp, shape: [m, rp], data: Bp },
      { key: HYDRA_KEYS.As, shape: [rs, m], data: As },
      { key: HYDRA_KEYS.Bs, shape: [m, rs], data: Bs },
    ];
  },

  forward({ p, x, bias, base }) {
    const base0 = bias ? op.sub(base, bias) : base; // W0·x without the bias
    const par = op.gemm(op.gemm(x, p[HYDRA_KEYS.Ap], { transB: true }), p[HYDRA_KEYS.Bp], { transB: true }, base);
    return op.gemm(op.gemm(base0, p[HYDRA_KEYS.As], { transB: true }), p[HYDRA_KEYS.Bs], { transB: true }, par);
  },

  deltaWeight(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('Hydra: ΔW = B_s·A_s·W0 + B_p·A_p needs the base weight');
    const n = site.inFeatures, m = site.outFeatures;
    const { r_seq: rs, r_par: rp } = config;
    const dW = new Float32Array(m * n);
    matmulAcc(dW, params[HYDRA_KEYS.Bp], params[HYDRA_KEYS.Ap], m, rp, n);
    const AsW = new Float32Array(rs * n);
    matmulAcc(AsW, params[HYDRA_KEYS.As], baseWeight, rs, m, n);
    matmulAcc(dW, params[HYDRA_KEYS.Bs], AsW, m, rs, n);
    return dW;
  },

  /** ΔW = [B_p | B_s]·[A_p ; A_s·W0]: rank r_par + r_seq. */
  factors(site, config, params, baseWeight) {
    if (!baseWeight) throw new Error('Hydra: ΔW = B_s·A_s·W0 + B_p·A_p needs the base weight');
    const n = site.inFeatures, m = site.outFeatures;
    const { r_seq: rs, r_par: rp } = config, r = rp + rs;
    const A = new Float32Array(r * n);
    A.set(params[HYDRA_KEYS.Ap]);
    const AsW = new Float32Array(rs * n);
    matmulAcc(AsW, params[HYDRA_KEYS.As], baseWeight, rs, m, n);
    A.set(AsW, rp * n);
    const B = new Float32Array(m * r), Bp = params[HYDRA_KEYS.Bp], Bs = params[HYDRA_KEYS.Bs];
    for (let i = 0; i < m; i++) {
      B.set(Bp.subarray(i * rp, (i + 1) * rp), i * r);
      B.set(Bs.subarray(i * rs, (i + 1) * rs), i * r + rp);
    }
    return { A, B, r, scale: 1 };
  },

  paramCount(site, config) {
    return config.r_par * (site.inFeatures + site.outFeatures) + 2 * config.r_seq * site.outFeatures;
  },
};
