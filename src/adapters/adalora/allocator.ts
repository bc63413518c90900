// PEFT's AdaLoRA RankAllocator (tuners/adalora/layer.py), over lorakit's
// tensors: the budget schedule, the importance EMAs and the triplet masking.
// Pure functions of their inputs, so the PyTorch transcription
// (tools/reference/adalora.py) checks each one.

export interface BudgetConfig {
  tinit: number;
  tfinal: number;
  deltaT: number;
  total: number;
  initBudget: number;
  targetBudget: number;
}

/** RankAllocator.budget_schedule(step): the budget and whether to mask at this step. */
export function budgetSchedule(step: number, c: BudgetConfig): { budget: number; mask: boolean } {
  if (step <= c.tinit) return { budget: c.initBudget, mask: false };
  if (step > c.total - c.tfinal) return { budget: c.targetBudget, mask: true };
  const mul = 1 - (step - c.tinit) / (c.total - c.tfinal - c.tinit);
  return { budget: Math.trunc((c.initBudget - c.targetBudget) * mul ** 3 + c.targetBudget), mask: step % c.deltaT === 0 };
}

/** Importance EMAs of one tensor (exp_avg_ipt, exp_avg_unc). */
export interface Ema {
  ipt: Float32Array;
  unc: Float32Array;
}

/** RankAllocator.update_ipt for one tensor: I = |p·∇p|, Ī ← β1·Ī + (1−β1)·I, Ū ← β2·Ū + (1−β2)·|I − Ī|. */
export function updateEma(e: Ema, p: ArrayLike<number>, g: ArrayLike<number>, beta1: number, beta2: number): void {
  for (let i = 0; i < p.length; i++) {
    const ipt = Math.abs(p[i] * g[i]);
    e.ipt[i] = beta1 * e.ipt[i] + (1 - beta1) * ipt;
    e.unc[i] = beta2 * e.unc[i] + (1 - beta2) * Math.abs(ipt - e.ipt[i]);
  }
}

/** One module's EMAs of A [r, in], B [out, r] and E [r]. */
export interface ModuleEma {
  module: string;
  r: number;
  in: number;
  out: number;
  A: Ema;
  B: Ema;
  E: Ema;
}

/** Triplet scores S_i = s(E_i) + (mean_j s(A_ij) + mean_j s(B_ji)), s = Ī·Ū (_combine_ipt). */
export function tripletScores(m: ModuleEma): Float64Array {
  const s = (e: Ema, i: number) => e.ipt[i] * e.unc[i];
  const out = new Float64Array(m.r);
  for (let k = 0; k < m.r; k++) {
    let a = 0;
    for (let j = 0; j < m.in; j++) a += s(m.A, k * m.in + j);
    let b = 0;
    for (let i = 0; i < m.out; i++) b += s(m.B, i * m.r + k);
    out[k] = s(m.E, k) + (a / m.in + b / m.out);
  }
  return out;
}

/**
 * RankAllocator.mask_to_budget: the k-th smallest triplet score over all
 * modules (k = initBudget − budget, torch.kthvalue) is the threshold, and every
 * triplet with a score ≤ it is masked (ties mask more than k). Returns, per
 * module, which triplets are kept. k = 0 (budget = initial budget, e.g.
 * target_r = init_r) masks nothing, where torch.kthvalue(k=0) would raise.
 */
export function maskToBudget(mods: ModuleEma[], initBudget: number, budget: number): { keep: Map<string, boolean[]>; threshold: number } {
  const scores = mods.map(tripletScores);
  const all = scores.flatMap((s) => Array.from(s)).sort((a, b) => a - b);
  const k = initBudget - budget;
  if (k === 0) return { keep: new Map(mods.map((m, i) => [m.module, Array.from(scores[i], () => true)])), threshold: -Infinity };
  if (!(k >= 1 && k <= all.length)) throw new Error(`AdaLoRA: cannot mask ${k} of ${all.length} triplets (budget ${budget}, initial budget ${initBudget})`);
  const threshold = all[k - 1];
  return { keep: new Map(mods.map((m, i) => [m.module, Array.from(scores[i], (v) => !(v <= threshold))])), threshold };
}

/** AdaLoRA's run state per adapter set. */
export interface AdaloraState {
  /** Importance EMAs by parameter key (A, B, E of every module). */
  ema: Map<string, Ema>;
  /** The latest mask (kept triplets per module) of this run, or null before the first. */
  pattern: Map<string, boolean[]> | null;
  /** The run's total steps (the config's total_step, else the loop's). */
  totalSteps: number | null;
  budget: number | null;
}
