import { z } from 'zod';

/**
 * Bayesian-LoRA-style rank and bit-width gates (Meo, Sycheva, Goyal, Dauwels,
 * arXiv 2406.13046) — PAPER-DERIVED AND UNVERIFIED: there is no official code,
 * and the formulation below is the "most likely" one the method notes recall
 * (shared/docs/methods/rank_optim_workflows.md), not read from the PDF. Every
 * concrete choice is lorakit's; do not compare its numbers with the paper's.
 *
 * - ΔW = s·B·diag(λ ⊙ z)·A (AdaLoRA's SVD form, s = α/r): A [r, in], λ [r], B [out, r].
 * - A hard-concrete gate z_i on each singular value (Louizos et al. 2018;
 *   β = 2/3, γ = −0.1, ζ = 1.1), parameter log α_i: while training
 *   s_i = σ((log u − log(1 − u) + log α_i)/β), u ~ U(0, 1) drawn per step from the
 *   run's seed, z_i = clamp(s_i(ζ − γ) + γ, 0, 1); outside training
 *   z_i = clamp(σ(log α_i)(ζ − γ) + γ, 0, 1). P(z_i ≠ 0) = σ(log α_i − β·log(−γ/ζ)).
 * - Bayesian-Bits quantization of A and B (one set of gates per matrix, z₂ = 1):
 *   x_q = x₂ + z₄(ε₄ + z₈(ε₈ + z₁₆(ε₁₆ + z₃₂·ε₃₂))), x₂ = s₂·round(x/s₂),
 *   s₂ = (max − min)/(2² − 1), s_{2b} = s_b/(2^b + 1), ε_{2b} = s_{2b}·round((x − x_b)/s_{2b}),
 *   range = [min, max] of the matrix (no gradient), rounding half to even with a
 *   straight-through gradient. Training samples the bit gates like the rank gates;
 *   outside training a bit gate is on when its deterministic value is ≥ 0.5 (bits are discrete).
 * - The prior as a penalty: bop_lambda · Σ_modules Σ_i P(z_i ≠ 0)·(in·E[b_A] + out·E[b_B]) /
 *   Σ_modules r·(in + out)·32, E[b] = 2 + 2q₄ + 4q₄q₈ + 8q₄q₈q₁₆ + 16q₄q₈q₁₆q₃₂, q_k = P(z_k ≠ 0):
 *   the expected bit operations of the low-rank path relative to a full-precision one.
 * Defaults (lorakit's): r 8, α 16, bop_lambda 0.05, every gate's log α starts at 3
 * (P(on) ≈ 0.99); λ starts at 0, A and B ~ N(0, 0.02) (AdaLoRA's init).
 */
export const bayesianLoraConfigSchema = z.object({
  r: z.number().int().positive().default(8),
  lora_alpha: z.number().positive().default(16),
  lora_dropout: z.number().min(0).max(1).default(0),
  bop_lambda: z.number().nonnegative().default(0.05),
  gate_init: z.number().default(3),
  /** false: quantize nothing (full-precision A and B; rank gates only). */
  quantize: z.boolean().default(true),
  /** Tests: λ ~ N(0, 1) at init so the adapter changes outputs. */
  init_weights: z.boolean().default(true),
});
export type BayesianLoraConfig = z.infer<typeof bayesianLoraConfigSchema>;

export const HC = { beta: 2 / 3, gamma: -0.1, zeta: 1.1 } as const;
export const BITS = [4, 8, 16, 32] as const;

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const clamp01 = (x: number) => Math.min(1, Math.max(0, x));

/** A hard-concrete sample for a given u ∈ (0, 1). */
export const hardConcreteSample = (logAlpha: number, u: number) => clamp01(sigmoid((Math.log(u) - Math.log(1 - u) + logAlpha) / HC.beta) * (HC.zeta - HC.gamma) + HC.gamma);
/** The deterministic gate used outside training. */
export const hardConcreteMean = (logAlpha: number) => clamp01(sigmoid(logAlpha) * (HC.zeta - HC.gamma) + HC.gamma);
/** P(z ≠ 0), the expected L0 norm of one gate. */
export const probOn = (logAlpha: number) => sigmoid(logAlpha - HC.beta * Math.log(-HC.gamma / HC.zeta));

/** Round half to even, as ONNX Round and torch.round. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The Bayesian-Bits quantizer of a matrix for given bit gates [z4, z8, z16, z32] (float64). */
export function quantize(x: ArrayLike<number>, gates: readonly number[]): Float64Array {
  let lo = Infinity, hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    lo = Math.min(lo, x[i]);
    hi = Math.max(hi, x[i]);
  }
  const out = new Float64Array(x.length);
  let s = (hi - lo) / 3;
  if (!(s > 0)) {
    for (let i = 0; i < x.length; i++) out[i] = x[i];
    return out;
  }
  const scales = [s];
  for (const b of [2, 4, 8, 16]) scales.push((s = s / (2 ** b + 1)));
  for (let i = 0; i < x.length; i++) {
    let xb = scales[0] * roundHalfEven(x[i] / scales[0]);
    const eps: number[] = [];
    for (let k = 1; k < scales.length; k++) {
      const e = scales[k] * roundHalfEven((x[i] - xb) / scales[k]);
      eps.push(e);
      xb += e;
    }
    // x₂ + z₄(ε₄ + z₈(ε₈ + z₁₆(ε₁₆ + z₃₂ε₃₂)))
    let acc = 0;
    for (let k = eps.length - 1; k >= 0; k--) acc = gates[k] * (eps[k] + acc);
    out[i] = scales[0] * roundHalfEven(x[i] / scales[0]) + acc;
  }
  return out;
}

/** E[bits] of a matrix from its bit gates' P(on). */
export function expectedBits(q: readonly number[]): number {
  let bits = 2, p = 1, add = 2;
  for (const qk of q) {
    p *= qk;
    bits += add * p;
    add *= 2;
  }
  return bits;
}
