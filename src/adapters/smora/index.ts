// SMoRA: rank-wise mixture of experts with loss-free load balancing (config.ts).
// State-dict keys (our own names; PEFT has no SMoRA):
//   smora_A.weight [R, in]  smora_B.weight [out, R]  smora_router.weight [R, in]
// Per-step state: the selection bias β per module, fed as `smora_bias.<module>`
// (hooks.feeds) and updated in hooks.afterStep from the graph output
// `smora_load.<module>` (tokens per rank in the step's batch). β decides which
// ranks each token uses, so it is saved with the adapter (not trainable):
//   smora_selection_bias [R]
import * as op from '../../graph/ops.ts';
import type { Value } from '../../graph/ir.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { kaimingUniform } from '../lora/index.ts';
import { SMoRAConfig, smoraConfigSchema, smoraScaling } from './config.ts';

export const SMORA_KEYS = { A: 'smora_A.weight', B: 'smora_B.weight', G: 'smora_router.weight' } as const;
export const biasInput = (site: string) => `smora_bias.${site}`;
/** Key suffix of the saved β. */
export const SMORA_STATE_KEY = 'smora_selection_bias';
export const loadOutput = (site: string) => `smora_load.${site}`;

/** SMoRA's state per adapter set: β per module (starts at 0). */
export interface SMoRAState {
  beta: Map<string, Float32Array>;
}

function betaOf(state: SMoRAState, site: string, numRanks: number): Float32Array {
  let b = state.beta.get(site);
  if (!b) state.beta.set(site, (b = new Float32Array(numRanks)));
  return b;
}

/** β of one module of a set (an AdapterSet, or anything holding its state), live. */
export function smoraBias(set: { state: unknown }, site: string, numRanks: number): Float32Array {
  return betaOf(set.state as SMoRAState, site, numRanks);
}

/** One balancing step: β_i += u·sign(mean(load) − load_i). */
export function updateBias(beta: Float32Array, load: ArrayLike<number>, u: number): void {
  let mean = 0;
  for (let i = 0; i < beta.length; i++) mean += Number(load[i]);
  mean /= beta.length;
  for (let i = 0; i < beta.length; i++) beta[i] += u * Math.sign(mean - Number(load[i]));
}

export const smora: AdapterMethod<SMoRAConfig, SMoRAState> = {
  name: 'smora',
  schema: smoraConfigSchema,
  // β (hooks.stateKeys) is stored per module beside the parameters.
  peft: { peftType: 'SMORA', onlyBias: 'lora_only', moduleKeys: Object.values(SMORA_KEYS) },

  createState: () => ({ beta: new Map() }),

  init({ site, config, rng }) {
    const n = site.inFeatures, m = site.outFeatures, R = config.num_ranks;
    if (config.top_k > R) throw new Error(`SMoRA: top_k (${config.top_k}) must not exceed num_ranks (${R})`);
    const A = kaimingUniform(rng, R, n);
    const B = config.init_weights ? new Float32Array(m * R) : kaimingUniform(rng, m, R);
    const G = kaimingUniform(rng, R, n);
    return [
      { key: SMORA_KEYS.A, shape: [R, n], data: A },
      { key: SMORA_KEYS.B, shape: [m, R], data: B },
      { key: SMORA_KEYS.G, shape: [R, n], data: G },
    ];
  },

  forward({ g, site, config, p, x, base }) {
    const R = config.num_ranks, k = config.top_k;
    const logits = op.gemm(x, p[SMORA_KEYS.G], { transB: true }); // [N, R]
    const beta = g.leaf(biasInput(site.name)) ?? g.input(biasInput(site.name), 'float32', [R]);
    // Selection on detached logits + β: TopK's k-th value is each token's threshold.
    const sel = op.add(op.stopGradient(logits), beta);
    const [topv] = op.topK(sel, k, -1);
    const kth = op.slice(topv, [k - 1], [k], [1]); // [N, 1]
    const off = op.less(sel, kth); // not selected
    const gates = op.mul(op.softmax(op.where(off, -1e9, logits), -1), k); // k·softmax over the selected ranks
    const loadName = loadOutput(site.name);
    if (!g.outputs.some((o) => o.name === loadName)) g.output(loadName, op.reduceSum(op.where(off, 0, 1), [0], false));
    const h: Value = op.mul(op.gemm(x, p[SMORA_KEYS.A], { transB: true }), gates); // [N, R]
    return op.gemm(h, p[SMORA_KEYS.B], { transB: true, alpha: smoraScaling(config) }, base);
  },

  paramCount(site, config) {
    return config.num_ranks * (2 * site.inFeatures + site.outFeatures);
  },

  hooks: {
    stateKeys: [SMORA_STATE_KEY],
    saveState({ state, site, config }) {
      return { [SMORA_STATE_KEY]: { shape: [config.num_ranks], data: Float32Array.from(betaOf(state, site.name, config.num_ranks)) } };
    },
    loadState({ state, site, config, tensors }) {
      const t = tensors[SMORA_STATE_KEY];
      if (!t) return; // a file from before β was saved: β starts at 0
      if (t.shape.length !== 1 || t.shape[0] !== config.num_ranks) {
        throw new Error(`Module '${site.name}': SMoRA '${SMORA_STATE_KEY}' has shape [${t.shape}] but num_ranks ${config.num_ranks} needs [${config.num_ranks}]`);
      }
      betaOf(state, site.name, config.num_ranks).set(t.data);
    },
    feeds({ state, sites }) {
      const out: Record<string, { data: Float32Array; dims: number[] }> = {};
      for (const { site, config } of sites) out[biasInput(site.name)] = { data: betaOf(state, site.name, config.num_ranks), dims: [config.num_ranks] };
      return out;
    },
    afterStep({ outputs, sites, state }) {
      for (const s of sites as HookSite<SMoRAConfig>[]) {
        const load = outputs[loadOutput(s.site.name)];
        if (!load || s.config.bias_update_rate === 0) continue;
        updateBias(betaOf(state, s.site.name, s.config.num_ranks), load.data as ArrayLike<number>, s.config.bias_update_rate);
      }
    },
  },
};
