// AdaLoRA (PEFT's tuners/adalora; config.ts has the rule). Keys as PEFT saves
// them: lora_A [r, in], lora_B [out, r], lora_E [r, 1] (./peft.ts).
// Hooks: the orthogonality term (lossTerm); after each optimizer step PEFT's
// update_and_allocate (afterStep: importance EMAs, budget, masking E, the
// final rank pattern); the run's EMAs and masks in checkpoints; active rank
// (E ≠ 0) and the budget per step. Its low-rank factors keep the triplets with
// E ≠ 0 (B[:, kept], (A ⊙ E)[kept]): the plain LoRA it becomes.
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { AdaloraConfig, adaloraConfigSchema, adaloraScale, moduleRank } from './config.ts';
import { budgetSchedule, maskToBudget, updateEma, type AdaloraState, type Ema, type ModuleEma } from './allocator.ts';

export type { AdaloraState };
import { ADALORA_KEYS, adaloraPeft } from './peft.ts';
import { loraDelta } from '../lora/index.ts';

export { ADALORA_KEYS };

function emaOf(state: AdaloraState, key: string, n: number): Ema {
  let e = state.ema.get(key);
  if (!e) state.ema.set(key, (e = { ipt: new Float32Array(n), unc: new Float32Array(n) }));
  return e;
}

/** Allocation runs on modules built at init_r (a loaded, already-pruned adapter is final). */
const allocating = (c: AdaloraConfig) => c.rank_pattern === null;

function moduleEmas(state: AdaloraState, sites: HookSite<AdaloraConfig>[]): ModuleEma[] {
  return sites.map((s) => {
    const r = s.config.init_r, n = s.site.inFeatures, m = s.site.outFeatures;
    return { module: s.site.name, r, in: n, out: m, A: emaOf(state, s.keys[ADALORA_KEYS.A], r * n), B: emaOf(state, s.keys[ADALORA_KEYS.B], m * r), E: emaOf(state, s.keys[ADALORA_KEYS.E], r) };
  });
}

function applyPattern(pattern: Map<string, boolean[]>, sites: HookSite[], params: Map<string, Float32Array>): void {
  for (const s of sites) {
    const keep = pattern.get(s.site.name);
    const E = params.get(s.keys[ADALORA_KEYS.E])!;
    if (keep) keep.forEach((k, i) => !k && (E[i] = 0));
  }
}

export const adalora: AdapterMethod<AdaloraConfig, AdaloraState> = {
  name: 'adalora',
  savesAsLora: true,
  schema: adaloraConfigSchema,
  peft: adaloraPeft,
  createState: () => ({ ema: new Map(), pattern: null, totalSteps: null, budget: null }),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, r = moduleRank(config, site.name);
    const A = new Float32Array(r * n), E = new Float32Array(r), B = new Float32Array(m * r);
    if (config.init_lora_weights) {
      rng.fillNormal(A, 0, 0.02);
      rng.fillNormal(B, 0, 0.02);
    } else {
      for (const t of [A, E, B]) rng.fillNormal(t, 0, 1);
    }
    return [
      { key: ADALORA_KEYS.A, shape: [r, n], data: A },
      { key: ADALORA_KEYS.B, shape: [m, r], data: B },
      { key: ADALORA_KEYS.E, shape: [r, 1], data: E },
    ];
  },

  forward({ site, config, p, x, base }) {
    if (moduleRank(config, site.name) === 0) return base; // every triplet dropped (PEFT allows r = 0)
    const AE = op.mul(p[ADALORA_KEYS.A], p[ADALORA_KEYS.E]); // A ⊙ E, E broadcast over the row
    const h: Value = op.gemm(x, AE, { transB: true });
    return op.gemm(h, p[ADALORA_KEYS.B], { transB: true, alpha: adaloraScale(config, site.name) }, base);
  },

  deltaWeight(site, config, params) {
    const f = adalora.factors!(site, config, params);
    return loraDelta(site.outFeatures, site.inFeatures, f.r, f.scale, f.A, f.B);
  },

  factors(site, config, params) {
    const r = moduleRank(config, site.name), n = site.inFeatures, m = site.outFeatures;
    const A = params[ADALORA_KEYS.A], B = params[ADALORA_KEYS.B], E = params[ADALORA_KEYS.E];
    const kept: number[] = [];
    for (let k = 0; k < r; k++) if (E[k] !== 0) kept.push(k);
    const k2 = kept.length, A2 = new Float32Array(k2 * n), B2 = new Float32Array(m * k2);
    kept.forEach((k, c) => {
      for (let j = 0; j < n; j++) A2[c * n + j] = A[k * n + j] * E[k];
      for (let i = 0; i < m; i++) B2[i * k2 + c] = B[i * r + k];
    });
    return { A: A2, B: B2, r: k2, scale: adaloraScale(config, site.name) };
  },

  paramCount(site, config) {
    return moduleRank(config, site.name) * (site.inFeatures + site.outFeatures + 1);
  },

  hooks: {
    startRun({ state }) {
      state.ema.clear();
      state.pattern = null;
      state.budget = null;
    },
    // orth_reg_weight · mean over every lora_A (A·Aᵀ) and lora_B (Bᵀ·B) of ‖P − I‖_F (AdaLoraModel.forward).
    lossTerm({ g, config, sites }) {
      if (!config.orth_reg_weight) return null;
      const terms: Value[] = [];
      for (const s of sites) {
        const r = moduleRank(s.config, s.site.name);
        if (r === 0) continue;
        const eye = new Float32Array(r * r);
        for (let i = 0; i < r; i++) eye[i * r + i] = 1;
        const I = g.const(eye, [r, r], 'float32');
        const A = s.p[ADALORA_KEYS.A], B = s.p[ADALORA_KEYS.B];
        for (const P of [op.gemm(A, A, { transB: true }), op.gemm(B, B, { transA: true })]) {
          const d = op.sub(P, I);
          terms.push(op.sqrt(op.reduceSum(op.mul(d, d), [0, 1], false)));
        }
      }
      if (!terms.length) return null;
      return op.mul(terms.reduce((a, b) => op.add(a, b)), config.orth_reg_weight / terms.length);
    },
    // PEFT's update_and_allocate(global_step), global_step = the index of the step just taken.
    afterStep(ctx) {
      const c = ctx.config;
      if (!allocating(c)) return;
      const t = ctx.step - 1;
      const T = c.total_step ?? ctx.totalSteps;
      const st = ctx.state;
      st.totalSteps = T;
      const sites = ctx.sites as HookSite<AdaloraConfig>[];
      const budgetCfg = { tinit: c.tinit, tfinal: c.tfinal, deltaT: c.deltaT, total: T, initBudget: sites.length * c.init_r, targetBudget: sites.length * c.target_r };
      if (t < T - c.tfinal) {
        for (const s of sites) for (const k of Object.values(ADALORA_KEYS)) {
          const key = s.keys[k], p = ctx.params.get(key)!;
          updateEma(emaOf(st, key, p.length), p, ctx.grads.get(key)!, c.beta1, c.beta2);
        }
        const { budget, mask } = budgetSchedule(t, budgetCfg);
        st.budget = budget;
        if (mask) {
          st.pattern = maskToBudget(moduleEmas(st, sites), budgetCfg.initBudget, budget).keep;
          applyPattern(st.pattern, sites, ctx.params);
        }
      } else if (t === T - c.tfinal) {
        const { budget } = budgetSchedule(t, budgetCfg);
        st.budget = budget;
        st.pattern = maskToBudget(moduleEmas(st, sites), budgetCfg.initBudget, budget).keep;
        applyPattern(st.pattern, sites, ctx.params);
        st.ema.clear(); // reset_ipt
      } else if (st.pattern) {
        applyPattern(st.pattern, sites, ctx.params); // mask_using_rank_pattern
      }
    },
    stepMetrics({ state, sites, params }) {
      const rank = Object.fromEntries(sites.map((s) => [s.site.name, Array.from(params.get(s.keys[ADALORA_KEYS.E])!).filter((v) => v !== 0).length]));
      return { rank, budget: state.budget };
    },
    saveRunState: ({ state }) => ({
      ema: new Map([...state.ema].map(([k, e]) => [k, { ipt: e.ipt.slice(), unc: e.unc.slice() }])),
      pattern: state.pattern ? new Map([...state.pattern].map(([k, v]) => [k, v.slice()])) : null,
      totalSteps: state.totalSteps,
      budget: state.budget,
    }),
    loadRunState({ state }, saved: any) {
      state.ema = new Map([...(saved.ema as Map<string, Ema>)].map(([k, e]) => [k, { ipt: Float32Array.from(e.ipt), unc: Float32Array.from(e.unc) }]));
      state.pattern = saved.pattern ? new Map([...(saved.pattern as Map<string, boolean[]>)]) : null;
      state.totalSteps = saved.totalSteps;
      state.budget = saved.budget;
    },
  },
};
