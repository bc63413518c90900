// IncreLoRA: a rank that grows where the importance score is high (config.ts).
// Keys (lorakit's; PEFT has no IncreLoRA), at a fixed capacity R = max_rank:
// lora_A [R, in], lora_B [out, R], lora_E [R, 1]; hook state `ranknum` [1]
// (the active rank: the scale α/(ranknum + 1e-5) depends on it).
// Per step (optimizerStep, the method's own update of A, B, E):
//   1. the module scores S = Σ|ΔW|⊙|∂L/∂ΔW|/√(mn) and their EMAs, from the
//      step's ∂L/∂ΔW (a zero probe Z added as x·Zᵀ in training graphs: its
//      gradient is ∂L/∂ΔW, what the official backward hook on ΔW sees);
//   2. transformers' AdamW on every component parameter trainable in this
//      step's forward, each with its group's learning rate (Multi_LambdaLR);
//   3. at step 0 the reserves, and every incre_interval steps after
//      init_warmup the rank increase — new parameters train from the next step,
//      as the official ones, added to the optimizer after this step's backward.
// The loss term: reg_orth_coef · mean of ‖AAᵀ − I‖_F, ‖BᵀB − I‖_F over the created components.
import * as op from '../../graph/ops.ts';
import type { Graph, Value } from '../../graph/ir.ts';
import { Rng } from '../../util/rng.ts';
import type { AdapterMethod, HookSite, StepHookContext } from '../types.ts';
import { addRank, groupLambda, IncreloraConfig, increloraConfigSchema, increScale, targetTotal } from './config.ts';
import { hfAdamWStep } from './hf_adamw.ts';
import { loraDelta } from '../lora/index.ts';

export const INCRELORA_KEYS = { A: 'lora_A', B: 'lora_B', E: 'lora_E' } as const;
export const RANKNUM_KEY = 'ranknum';
const rankInput = (m: string) => `increlora_ranknum.${m}`;
const usedInput = (m: string) => `increlora_used.${m}`;
export const probeName = (m: string) => `increlora_probe.${m}`;

/** A component parameter (a and b together, or e): trainable from step `since`, in `group`, `steps` AdamW steps so far. */
export interface CompParam {
  since: number;
  group: number;
  steps: number;
}
export interface Component {
  status: 'active' | 'reserve' | 'retired';
  ab: CompParam | null;
  e: CompParam | null;
}
export interface ModuleInfo {
  comps: Component[];
  ranknum: number;
}
export interface IncreloraState {
  modules: Map<string, ModuleInfo>;
  /** Step during which each parameter group was created (−1: the first). */
  groups: number[];
  total: number;
  target: number;
  done: boolean;
  ema: Map<string, { ipt: number; unc: number }>;
  adam: Map<string, { m: Float32Array; v: Float32Array }>;
  /** The last step's raw scores S (for metrics and tests). */
  scores: Map<string, number>;
  zeros: Map<string, Float32Array>;
  /** Tests: the values of a new reserve component (default: N(0, 0.02) from the run's seed, module and step). */
  reserveInit?: (module: string, step: number, j: number) => { a: ArrayLike<number>; b: ArrayLike<number> };
}

const initialModule = (c: IncreloraConfig): ModuleInfo => ({
  comps: Array.from({ length: c.init_r }, () => ({ status: 'active' as const, ab: { since: 0, group: 0, steps: 0 }, e: { since: 0, group: 0, steps: 0 } })),
  ranknum: c.init_r,
});

function freshState(config: IncreloraConfig, names: string[]): IncreloraState {
  return {
    modules: new Map(names.map((n) => [n, initialModule(config)])),
    groups: [-1],
    total: config.init_r * names.length,
    target: targetTotal(config, names.length),
    done: false,
    ema: new Map(),
    adam: new Map(),
    scores: new Map(),
    zeros: new Map(),
  };
}

function feedInput(g: Graph, name: string, shape: (number | string)[]): Value {
  return g.leaf(name) ?? g.input(name, 'float32', shape);
}

/** ΔW = scale·B·(A ⊙ E) [out, in] in float64 (the official loraW output). */
function deltaW64(site: { outFeatures: number; inFeatures: number }, R: number, scale: number, A: ArrayLike<number>, B: ArrayLike<number>, E: ArrayLike<number>): Float64Array {
  const m = site.outFeatures, n = site.inFeatures, dW = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let k = 0; k < R; k++) {
    const b = B[i * R + k] * E[k];
    if (b === 0) continue;
    for (let j = 0; j < n; j++) dW[i * n + j] += b * A[k * n + j];
  }
  for (let i = 0; i < dW.length; i++) dW[i] *= scale;
  return dW;
}

/** The module score S = Σ|ΔW| ⊙ |G| / √(mn) (SVDLinear.backward_hook). */
export function moduleScore(dW: ArrayLike<number>, G: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < dW.length; i++) s += Math.abs(Math.abs(dW[i]) * G[i]);
  return s / Math.sqrt(dW.length);
}

function adamOf(state: IncreloraState, key: string, n: number) {
  let a = state.adam.get(key);
  if (!a) state.adam.set(key, (a = { m: new Float32Array(n), v: new Float32Array(n) }));
  return a;
}

/** The method's step: scores, the component AdamW, reserves and rank increases (see the file comment). */
function increloraStep(ctx: StepHookContext<IncreloraConfig, IncreloraState>): void {
  const c = ctx.config, st = ctx.state, s = ctx.step;
  const R = c.max_rank!, addR = addRank(c);
  const sites = ctx.sites as HookSite<IncreloraConfig>[];
  // 1. scores of this step's forward (update_ipt runs while total < target).
  if (!st.done) {
    for (const h of sites) {
      const name = h.site.name, info = st.modules.get(name)!;
      const G = ctx.outputs[`grad.${probeName(name)}`]?.data as ArrayLike<number> | undefined;
      if (!G) throw new Error(`IncreLoRA: the step has no ∂L/∂ΔW for '${name}' (the training graph lacks its probe)`);
      const p = (k: string) => ctx.params.get(h.keys[k])!;
      const S = moduleScore(deltaW64(h.site, R, increScale(c, info.ranknum), p(INCRELORA_KEYS.A), p(INCRELORA_KEYS.B), p(INCRELORA_KEYS.E)), G);
      st.scores.set(name, S);
      const e = st.ema.get(name) ?? { ipt: 0, unc: 0 };
      e.ipt = c.beta1 * e.ipt + (1 - c.beta1) * S;
      e.unc = c.beta2 * e.unc + (1 - c.beta2) * Math.abs(S - e.ipt);
      st.ema.set(name, e);
    }
  }
  // 2. transformers' AdamW on the parameters that took part in this step, each at its group's rate.
  const lrOf = (group: number) => (c.multi_lr ? ctx.baseLr * groupLambda(s, st.groups[group], ctx.warmupSteps, ctx.totalSteps) : ctx.lr);
  for (const h of sites) {
    const info = st.modules.get(h.site.name)!;
    const n = h.site.inFeatures, m = h.site.outFeatures;
    const keys = { A: h.keys[INCRELORA_KEYS.A], B: h.keys[INCRELORA_KEYS.B], E: h.keys[INCRELORA_KEYS.E] };
    info.comps.forEach((comp, k) => {
      const hyper = (group: number) => ({ lr: lrOf(group), beta1: 0.9, beta2: 0.999, eps: c.adam_epsilon, weightDecay: c.weight_decay });
      if (comp.ab && comp.ab.since <= s) {
        const t = ++comp.ab.steps, hp = hyper(comp.ab.group);
        const rowA = Array.from({ length: n }, (_, j) => k * n + j), colB = Array.from({ length: m }, (_, i) => i * R + k);
        const a = adamOf(st, keys.A, R * n), b = adamOf(st, keys.B, m * R);
        hfAdamWStep(ctx.params.get(keys.A)!, ctx.grads.get(keys.A)!, a.m, a.v, rowA, t, hp);
        hfAdamWStep(ctx.params.get(keys.B)!, ctx.grads.get(keys.B)!, b.m, b.v, colB, t, hp);
      }
      if (comp.e && comp.e.since <= s) {
        const e = adamOf(st, keys.E, R);
        hfAdamWStep(ctx.params.get(keys.E)!, ctx.grads.get(keys.E)!, e.m, e.v, [k], ++comp.e.steps, hyper(comp.e.group));
      }
    });
  }
  // 3. reserves at step 0; the rank increase on its schedule.
  const addReserves = (h: HookSite, group: number) => {
    const info = st.modules.get(h.site.name)!;
    const n = h.site.inFeatures, m = h.site.outFeatures;
    const A = ctx.params.get(h.keys[INCRELORA_KEYS.A])!, B = ctx.params.get(h.keys[INCRELORA_KEYS.B])!, E = ctx.params.get(h.keys[INCRELORA_KEYS.E])!;
    const rng = new Rng(ctx.seed).fork(`increlora|${h.site.name}|${s}`);
    for (let r = 0; r < addR; r++) {
      const k = info.comps.length;
      if (k >= R) throw new Error(`IncreLoRA: module '${h.site.name}' has no room for another component (max_rank ${R})`);
      const given = st.reserveInit?.(h.site.name, s, r);
      const a = given?.a ?? rng.fillNormal(new Float32Array(n), 0, 0.02), b = given?.b ?? rng.fillNormal(new Float32Array(m), 0, 0.02);
      A.set(a, k * n);
      for (let i = 0; i < m; i++) B[i * R + k] = b[i];
      E[k] = c.advance_learn ? 1e-5 : 0;
      info.comps.push({ status: 'reserve', ab: c.advance_learn ? { since: s + 1, group, steps: 0 } : null, e: null });
    }
  };
  if (s === 0) {
    const group = c.advance_learn ? st.groups.push(0) - 1 : 0;
    for (const h of sites) addReserves(h, group);
  }
  if (!st.done && st.total < st.target && s > c.init_warmup && s % c.incre_interval === 0) {
    const room = (name: string) => st.modules.get(name)!.comps.length + addR <= R;
    const score = (name: string) => {
      const e = st.ema.get(name);
      return e ? e.ipt * e.unc : 0;
    };
    const eligible = sites.filter((h) => room(h.site.name)).map((h) => score(h.site.name)).sort((a, b) => b - a);
    if (eligible.length) {
      const k = Math.min(c.top_h, st.target - st.total, eligible.length);
      const threshold = eligible[k - 1];
      const group = st.groups.push(s) - 1;
      for (const h of sites) {
        const name = h.site.name;
        if (!room(name) || !(score(name) >= threshold)) continue;
        const info = st.modules.get(name)!;
        info.ranknum += addR;
        st.total += addR;
        for (const comp of info.comps.slice(-addR)) {
          comp.status = 'active';
          comp.e = { since: s + 1, group, steps: 0 };
          if (!c.advance_learn) comp.ab = { since: s + 1, group, steps: 0 };
        }
        addReserves(h, group);
      }
    }
    if (st.total === st.target) {
      st.done = true;
      for (const h of sites) {
        const info = st.modules.get(h.site.name)!, E = ctx.params.get(h.keys[INCRELORA_KEYS.E])!;
        for (let k = info.comps.length - addR; k < info.comps.length; k++) {
          E[k] = 0;
          info.comps[k].status = 'retired';
        }
      }
    }
  }
}

export const increlora: AdapterMethod<IncreloraConfig, IncreloraState> = {
  name: 'increlora',
  savesAsLora: true,
  schema: increloraConfigSchema,
  peft: { peftType: 'INCRELORA', onlyBias: 'lora_only', moduleKeys: Object.values(INCRELORA_KEYS), describe: (c) => `max_rank ${c.max_rank}` },

  planConfig(config, targets) {
    const addR = addRank(config);
    const initTotal = config.init_r * targets.length, target = targetTotal(config, targets.length);
    if (target < initTotal) throw new Error(`IncreLoRA: the target total rank ${target} is below the initial total ${initTotal} (init_r ${config.init_r} × ${targets.length} modules)`);
    const max = config.max_rank ?? config.init_r + Math.min(target - initTotal, 4 * config.target_rank) + addR;
    if (max < config.init_r + addR) throw new Error(`IncreLoRA: max_rank ${max} leaves no room for the ${addR} reserve component(s) beside init_r ${config.init_r}`);
    return { ...config, max_rank: max };
  },
  createState: ({ config, targets }) => freshState(config, targets.map((t) => t.name)),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, R = config.max_rank!, r0 = config.init_r;
    const A = new Float32Array(R * n), B = new Float32Array(m * R), E = new Float32Array(R);
    A.set(rng.fillNormal(new Float32Array(r0 * n), 0, 0.02));
    const b0 = rng.fillNormal(new Float32Array(m * r0), 0, 0.02);
    for (let i = 0; i < m; i++) for (let k = 0; k < r0; k++) B[i * R + k] = b0[i * r0 + k];
    if (!config.init_weights) E.set(rng.fillNormal(new Float32Array(r0), 0, 1));
    return [
      { key: INCRELORA_KEYS.A, shape: [R, n], data: A },
      { key: INCRELORA_KEYS.B, shape: [m, R], data: B },
      { key: INCRELORA_KEYS.E, shape: [R, 1], data: E },
    ];
  },

  forward({ g, site, config, p, x, base, training }) {
    const rn = feedInput(g, rankInput(site.name), [1]);
    const scale = op.div(g.scalar(config.lora_alpha > 0 ? config.lora_alpha : config.init_r), op.add(rn, 1e-5));
    const h = op.gemm(x, op.mul(p[INCRELORA_KEYS.A], p[INCRELORA_KEYS.E]), { transB: true });
    let y = op.add(base, op.mul(op.gemm(h, p[INCRELORA_KEYS.B], { transB: true }), scale));
    if (training) {
      // ∂L/∂Z of this zero probe is ∂L/∂ΔW (the module's score needs it).
      const Z = g.leaf(probeName(site.name)) ?? g.param(probeName(site.name), [site.outFeatures, site.inFeatures]);
      y = op.add(y, op.gemm(x, Z, { transB: true }));
    }
    return y;
  },

  deltaWeight(site, config, params, _b, state) {
    const f = increlora.factors!(site, config, params, undefined, state);
    return loraDelta(site.outFeatures, site.inFeatures, f.r, f.scale, f.A, f.B);
  },

  /** Components with e ≠ 0 (active ones, and reserves while their e is 1e-5): (A ⊙ E)[kept], B[:, kept], α/(ranknum + 1e-5). */
  factors(site, config, params, _b, state) {
    const R = config.max_rank!, n = site.inFeatures, m = site.outFeatures;
    const A = params[INCRELORA_KEYS.A], B = params[INCRELORA_KEYS.B], E = params[INCRELORA_KEYS.E];
    const kept: number[] = [];
    for (let k = 0; k < R; k++) if (E[k] !== 0) kept.push(k);
    const k2 = kept.length, A2 = new Float32Array(k2 * n), B2 = new Float32Array(m * k2);
    kept.forEach((k, c) => {
      for (let j = 0; j < n; j++) A2[c * n + j] = A[k * n + j] * E[k];
      for (let i = 0; i < m; i++) B2[i * k2 + c] = B[i * R + k];
    });
    const ranknum = (state as IncreloraState | undefined)?.modules.get(site.name)?.ranknum ?? config.init_r;
    return { A: A2, B: B2, r: k2, scale: increScale(config, ranknum) };
  },

  paramCount(site, config) {
    return (config.max_rank ?? config.init_r) * (site.inFeatures + site.outFeatures + 1);
  },

  hooks: {
    startRun({ state, config, sites }) {
      // A run starts from the adapter's components as they are: its own groups, moments and scores are new.
      state.groups = [-1];
      state.ema.clear();
      state.adam.clear();
      state.scores.clear();
      for (const info of state.modules.values()) for (const comp of info.comps) for (const p of [comp.ab, comp.e]) if (p) Object.assign(p, { since: 0, group: 0, steps: 0 });
      state.target = targetTotal(config, sites.length);
    },
    ownedParams: ({ sites }) => sites.flatMap((s) => Object.values(INCRELORA_KEYS).map((k) => s.keys[k])),
    optimizerStep: increloraStep,
    lossTerm({ g, config, sites }) {
      if (!config.reg_orth_coef || !sites.length) return null;
      const R = config.max_rank!;
      const eye = new Float32Array(R * R);
      for (let i = 0; i < R; i++) eye[i * R + i] = 1;
      const I = g.const(eye, [R, R], 'float32');
      const terms: Value[] = [];
      for (const s of sites) {
        // Only created components count (reserves included); the rest of the capacity is zero.
        const Iused = op.mul(I, feedInput(g, usedInput(s.site.name), [R]));
        const A = s.p[INCRELORA_KEYS.A], B = s.p[INCRELORA_KEYS.B];
        for (const P of [op.gemm(A, A, { transB: true }), op.gemm(B, B, { transA: true })]) {
          const d = op.sub(P, Iused);
          terms.push(op.sqrt(op.reduceSum(op.mul(d, d), [0, 1], false)));
        }
      }
      return op.mul(terms.reduce((a, b) => op.add(a, b)), config.reg_orth_coef / terms.length);
    },
    feeds({ state, config, sites, training }) {
      const out: Record<string, { data: Float32Array; dims: number[] }> = {};
      const R = config.max_rank!;
      for (const { site } of sites) {
        const info = state.modules.get(site.name)!;
        out[rankInput(site.name)] = { data: Float32Array.of(info.ranknum), dims: [1] };
        if (!training) continue;
        const used = new Float32Array(R);
        used.fill(1, 0, info.comps.length);
        out[usedInput(site.name)] = { data: used, dims: [R] };
        let z = state.zeros.get(site.name);
        if (!z) state.zeros.set(site.name, (z = new Float32Array(site.outFeatures * site.inFeatures)));
        out[probeName(site.name)] = { data: z, dims: [site.outFeatures, site.inFeatures] };
      }
      return out;
    },
    stepMetrics: ({ state }) => ({
      rank: Object.fromEntries([...state.modules].map(([n, i]) => [n, i.ranknum])),
      total: state.total,
      score: Object.fromEntries([...state.ema].map(([n, e]) => [n, e.ipt * e.unc])),
    }),
    stateKeys: [RANKNUM_KEY],
    saveState: ({ state, site }) => ({ [RANKNUM_KEY]: { shape: [1], data: Float32Array.of(state.modules.get(site.name)!.ranknum) } }),
    loadState({ state, site, tensors }) {
      const t = tensors[RANKNUM_KEY];
      if (t) state.modules.get(site.name)!.ranknum = t.data[0];
    },
    saveRunState: ({ state }) => ({
      modules: new Map([...state.modules].map(([n, i]) => [n, { ranknum: i.ranknum, comps: i.comps.map((c) => ({ status: c.status, ab: c.ab && { ...c.ab }, e: c.e && { ...c.e } })) }])),
      groups: state.groups.slice(),
      total: state.total,
      done: state.done,
      ema: new Map([...state.ema].map(([n, e]) => [n, { ...e }])),
      adam: new Map([...state.adam].map(([k, a]) => [k, { m: a.m.slice(), v: a.v.slice() }])),
    }),
    loadRunState({ state }, saved: any) {
      state.modules = new Map([...(saved.modules as Map<string, any>)].map(([n, i]) => [n, { ranknum: i.ranknum, comps: i.comps.map((c: any) => ({ status: c.status, ab: c.ab ?? null, e: c.e ?? null })) }]));
      state.groups = saved.groups.slice();
      state.total = saved.total;
      state.done = saved.done;
      state.ema = new Map([...(saved.ema as Map<string, any>)].map(([n, e]) => [n, { ipt: e.ipt, unc: e.unc }]));
      state.adam = new Map([...(saved.adam as Map<string, any>)].map(([k, a]) => [k, { m: Float32Array.from(a.m), v: Float32Array.from(a.v) }]));
    },
  },
};
