// DiffoRA-style module selection (config.ts: lorakit's own, unverified reading).
// Keys (lorakit's): lora_A.weight [r, in], lora_B.weight [out, r], diffora_gate [1]
// (a_j); hook state diffora_mode [2] = [searching, fixed gate] per module, fed as
// `diffora_mode.<module>`: the gate is searching·σ(a) + fixed (σ(a) while
// searching; then 1 for a kept module, 0 for a dropped one).
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { kaimingUniform, loraDelta } from '../lora/index.ts';
import { adamL2Step, ARCH_ADAM, DifforaConfig, difforaConfigSchema, searchSteps, selectTopRho } from './config.ts';

export const DIFFORA_KEYS = { A: 'lora_A.weight', B: 'lora_B.weight', gate: 'diffora_gate' } as const;
export const MODE_KEY = 'diffora_mode';
const modeInput = (m: string) => `diffora_mode.${m}`;
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export interface DifforaState {
  /** Per module [searching, fixed]: [1, 0] while searching, [0, 1] kept, [0, 0] dropped. */
  mode: Map<string, Float32Array>;
  arch: Map<string, { t: number; m: Float64Array; v: Float64Array }>;
}

const modeOf = (st: DifforaState, m: string) => {
  let x = st.mode.get(m);
  if (!x) st.mode.set(m, (x = Float32Array.of(1, 0)));
  return x;
};
/** The module's effective gate as the forward computes it. */
export const gateValue = (mode: Float32Array, a: number) => mode[0] * sigmoid(a) + mode[1];
const searching = (st: DifforaState, sites: HookSite[]) => sites.some((s) => modeOf(st, s.site.name)[0] === 1);
/** Odd steps of the search are the gates' (the "held-out" batches). */
const archStep = (c: DifforaConfig, step: number, total: number) => step < searchSteps(c, total) && step % 2 === 1;

export const diffora: AdapterMethod<DifforaConfig, DifforaState> = {
  name: 'diffora',
  savesAsLora: true,
  schema: difforaConfigSchema,
  peft: { peftType: 'DIFFORA', onlyBias: 'lora_only', moduleKeys: Object.values(DIFFORA_KEYS), describe: (c) => `r ${c.r}` },
  createState: () => ({ mode: new Map(), arch: new Map() }),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, r = config.r;
    return [
      { key: DIFFORA_KEYS.A, shape: [r, n], data: kaimingUniform(rng, r, n) },
      { key: DIFFORA_KEYS.B, shape: [m, r], data: config.init_weights ? new Float32Array(m * r) : kaimingUniform(rng, m, r) },
      { key: DIFFORA_KEYS.gate, shape: [1], data: new Float32Array(1) },
    ];
  },

  forward({ g, site, config, p, x, base }) {
    const mode = g.leaf(modeInput(site.name)) ?? g.input(modeInput(site.name), 'float32', [2]);
    const [search, fixed] = op.split(mode, [1, 1], 0);
    const gate: Value = op.add(op.mul(search, op.sigmoid(p[DIFFORA_KEYS.gate])), fixed);
    const h = op.mul(op.gemm(x, p[DIFFORA_KEYS.A], { transB: true }), gate);
    return op.gemm(h, p[DIFFORA_KEYS.B], { transB: true, alpha: config.lora_alpha / config.r }, base);
  },

  deltaWeight(site, config, params, _b, state) {
    const f = diffora.factors!(site, config, params, undefined, state);
    return loraDelta(site.outFeatures, site.inFeatures, f.r, f.scale, f.A, f.B);
  },

  /** A, gate·B at scale α/r; a dropped module (gate 0) has rank 0. */
  factors(site, config, params, _b, state) {
    const mode = state ? modeOf(state as DifforaState, site.name) : Float32Array.of(1, 0);
    const gate = gateValue(mode, params[DIFFORA_KEYS.gate][0]);
    const scale = config.lora_alpha / config.r;
    if (gate === 0) return { A: new Float32Array(0), B: new Float32Array(0), r: 0, scale };
    return { A: params[DIFFORA_KEYS.A], B: params[DIFFORA_KEYS.B].map((b) => b * gate), r: config.r, scale };
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures) + 1;
  },

  hooks: {
    startRun({ state }) {
      state.arch.clear();
    },
    ownedParams: ({ sites }) => sites.map((s) => s.keys[DIFFORA_KEYS.gate]),
    // On a gate step nothing else moves: the other gradients are withheld from the shared AdamW.
    beforeStep(ctx) {
      if (!searching(ctx.state, ctx.sites) || !archStep(ctx.config, ctx.step, ctx.totalSteps)) return;
      const own = new Set(ctx.sites.map((s) => s.keys[DIFFORA_KEYS.gate]));
      for (const k of [...ctx.grads.keys()]) if (!own.has(k)) ctx.grads.delete(k);
    },
    optimizerStep(ctx) {
      const c = ctx.config, st = ctx.state;
      if (!searching(st, ctx.sites) || !archStep(c, ctx.step, ctx.totalSteps)) return;
      for (const s of ctx.sites) {
        const key = s.keys[DIFFORA_KEYS.gate];
        let a = st.arch.get(key);
        if (!a) st.arch.set(key, (a = { t: 0, m: new Float64Array(1), v: new Float64Array(1) }));
        adamL2Step(ctx.params.get(key)!, ctx.grads.get(key)!, a.m, a.v, ++a.t, { ...ARCH_ADAM, lr: c.arch_lr, weightDecay: c.arch_weight_decay });
      }
    },
    // Discretization when the search ends: keep the top ρ, fold their gate into B, drop the rest.
    afterStep(ctx) {
      const c = ctx.config, st = ctx.state;
      if (!searching(st, ctx.sites) || ctx.step < searchSteps(c, ctx.totalSteps)) return;
      const gammas = ctx.sites.map((s) => sigmoid(ctx.params.get(s.keys[DIFFORA_KEYS.gate])![0]));
      const keep = selectTopRho(gammas, c.rho);
      ctx.sites.forEach((s, i) => {
        const B = ctx.params.get(s.keys[DIFFORA_KEYS.B])!;
        if (keep[i]) for (let j = 0; j < B.length; j++) B[j] *= gammas[i];
        else {
          B.fill(0);
          ctx.params.get(s.keys[DIFFORA_KEYS.A])!.fill(0);
        }
        modeOf(st, s.site.name).set(keep[i] ? [0, 1] : [0, 0]);
      });
    },
    feeds: ({ state, sites }) => Object.fromEntries(sites.map((s) => [modeInput(s.site.name), { data: modeOf(state, s.site.name), dims: [2] }])),
    stepMetrics({ state, sites, params, config }) {
      const gates = Object.fromEntries(sites.map((s) => [s.site.name, gateValue(modeOf(state, s.site.name), params.get(s.keys[DIFFORA_KEYS.gate])![0])]));
      return { rank: Object.fromEntries(Object.entries(gates).map(([k, g]) => [k, g === 0 ? 0 : config.r])), gates };
    },
    stateKeys: [MODE_KEY],
    saveState: ({ state, site }) => ({ [MODE_KEY]: { shape: [2], data: Float32Array.from(modeOf(state, site.name)) } }),
    loadState({ state, site, tensors }) {
      const t = tensors[MODE_KEY];
      if (t) modeOf(state, site.name).set(t.data);
    },
    saveRunState: ({ state }) => ({ arch: new Map([...state.arch].map(([k, a]) => [k, { t: a.t, m: Float32Array.from(a.m), v: Float32Array.from(a.v) }])) }),
    loadRunState({ state }, saved: any) {
      state.arch = new Map([...(saved.arch as Map<string, any>)].map(([k, a]) => [k, { t: a.t, m: Float64Array.from(a.m), v: Float64Array.from(a.v) }]));
    },
  },
};
