// LaMDA++ rank allocation (Azizi, Kundu, Pedram 2024, §LaMDA++: "lite-weight
// adaptive rank allocation via normalized spectrum analysis of pre-trained
// model weights").
//
// Provenance: the paper's section could not be read from the stored corpora
// (only its abstract), and the official code (ArminAzizi98/LaMDA: lamda.py,
// custom_trainer.py) implements LaMDA only. The rule below is lorakit's
// reading of "ranks from the normalized singular-value energy"; it is checked
// against tools/reference/lamda_pp.py, which implements the same rule with
// torch.linalg.svdvals, not against the authors' code.
//
// Rule, for the adapted modules l = 1..L in model order, base rank r:
//   e_l = Σ_{i≤r} σ_i(W_l)² / ‖W_l‖_F²  — the share of W_l's spectral energy in
//         its top-r directions (the subspace LaMDA's A = V_rᵀ spans);
//   x_l = T · e_l / Σ_k e_k             — real ranks proportional to the
//         normalized energy, T = total_rank (default r·L);
//   r_l = clamp(⌊x_l⌋, lo, hi_l), lo = min_rank, hi_l = min(max_rank (2r), out_l, in_l);
//   then, while Σ r_l < T, +1 to the module with the largest x_l − r_l below
//   hi_l; while Σ r_l > T, −1 from the one with the smallest x_l − r_l above
//   lo (ties: the earlier module). Σ r_l = T exactly; no randomness.
// σ comes from the same truncated SVD as A (src/linalg/svd.ts: exact Jacobi up
// to min(out, in) = 96, seeded randomized beyond), so the ranks are a pure
// function of the weights; they are saved in rank_pattern, so a reload never
// depends on recomputing them.

import { svdTopR } from '../../linalg/svd.ts';
import { memo, fingerprint } from '../bases.ts';

export interface EnergyModule {
  name: string;
  out: number;
  in: number;
  /** [out, in] weight. */
  weight: Float32Array;
}

/** e = Σ_{i≤r} σ_i² / ‖W‖_F² of an [m, n] weight (1 for a zero weight: nothing outside the top r). */
export function normalizedEnergy(W: Float32Array, m: number, n: number, r: number): number {
  return memo(`lamda_energy|${fingerprint(W)}|${m}x${n}|${r}`, () => {
    const k = Math.min(r, m, n);
    let total = 0;
    for (let i = 0; i < W.length; i++) total += W[i] * W[i];
    if (total === 0) return 1;
    const { S } = svdTopR(W, m, n, k);
    let top = 0;
    for (let i = 0; i < k; i++) top += S[i] * S[i];
    return Math.min(1, top / total);
  });
}

export interface Allocation {
  ranks: number[];
  energies: number[];
  /** Real-valued targets T·e_l/Σe before rounding. */
  targets: number[];
}

/** Integer ranks for the modules (see the rule above). */
export function allocateRanks(modules: EnergyModule[], o: { r: number; total?: number | null; minRank: number; maxRank?: number | null }): Allocation {
  const L = modules.length;
  if (!L) return { ranks: [], energies: [], targets: [] };
  const T = o.total ?? o.r * L;
  const lo = o.minRank;
  const his = modules.map((m) => Math.min(o.maxRank ?? 2 * o.r, m.out, m.in));
  const bad = modules.filter((m, i) => his[i] < lo);
  if (bad.length) throw new Error(`LaMDA++: min_rank ${lo} exceeds the largest rank allowed for ${bad.map((m) => `'${m.name}' (${m.out}×${m.in})`).join(', ')}; lower min_rank or raise max_rank`);
  const maxSum = his.reduce((a, b) => a + b, 0);
  if (T < lo * L || T > maxSum) {
    throw new Error(`LaMDA++: total_rank ${T} cannot be split over ${L} modules with ranks in [min_rank ${lo}, max_rank]: it must lie in [${lo * L}, ${maxSum}] (set total_rank, min_rank or max_rank)`);
  }
  const energies = modules.map((m) => normalizedEnergy(m.weight, m.out, m.in, o.r));
  let sumE = 0;
  for (const e of energies) sumE += e;
  const targets = energies.map((e) => (sumE > 0 ? (T * e) / sumE : T / L));
  const ranks = targets.map((x, i) => Math.min(his[i], Math.max(lo, Math.floor(x))));
  let sum = ranks.reduce((a, b) => a + b, 0);
  while (sum !== T) {
    let best = -1;
    for (let i = 0; i < L; i++) {
      if (sum < T ? ranks[i] >= his[i] : ranks[i] <= lo) continue;
      const d = targets[i] - ranks[i];
      if (best < 0 || (sum < T ? d > targets[best] - ranks[best] : d < targets[best] - ranks[best])) best = i;
    }
    const step = sum < T ? 1 : -1;
    ranks[best] += step;
    sum += step;
  }
  return { ranks, energies, targets };
}
