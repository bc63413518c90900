// SoRA: a LoRA with one gate per rank, sparsified during training (config.ts).
// State-dict keys (lorakit's; PEFT has no SoRA): lora_A.weight [r, in],
// lora_B.weight [out, r], lora_gate [1, r] (the official `gate`).
// Hooks: the L1 term in the loss (lossTerm), the gates' own SparseAdamW + threshold
// (ownedParams / optimizerStep, state in checkpoints), each module's active rank
// and gate values per step (stepMetrics). ΔW's low-rank factors keep only the
// open gates (B·diag(g), A restricted to g ≠ 0): the plain LoRA SoRA becomes.
import * as op from '../../graph/ops.ts';
import type { AdapterMethod, HookSite } from '../types.ts';
import { SoraConfig, soraConfigSchema, soraScaling, SPARSE_ADAMW } from './config.ts';
import { sparseAdamWStep } from './sparse_adamw.ts';
import { activeRank } from './threshold.ts';
import { gatedFactors, gatedDelta, gatedForward, gatedInit, GATED_KEYS } from './gated.ts';

export const SORA_KEYS = GATED_KEYS;

/** SoRA's run state per adapter set: the gates' SparseAdamW moments and step counts, by gate key. */
export interface SoraState {
  opt: Map<string, { t: number; m: Float32Array; v: Float32Array }>;
}

/** Gate values of every module, by module name (what metrics.jsonl logs). */
export function gateValues(sites: HookSite[], params: Map<string, Float32Array>, key: string): Record<string, number[]> {
  return Object.fromEntries(sites.map((s) => [s.site.name, Array.from(params.get(s.keys[key])!)]));
}

export const sora: AdapterMethod<SoraConfig, SoraState> = {
  name: 'sora',
  savesAsLora: true,
  schema: soraConfigSchema,
  peft: { peftType: 'SORA', onlyBias: 'lora_only', moduleKeys: Object.values(SORA_KEYS), describe: (c) => `r ${c.r}` },
  createState: () => ({ opt: new Map() }),

  init: gatedInit,

  forward({ config, p, x, base }) {
    return gatedForward(p, x, base, soraScaling(config));
  },

  deltaWeight(site, config, params) {
    return gatedDelta(site, config.r, soraScaling(config), params[SORA_KEYS.A], params[SORA_KEYS.B], params[SORA_KEYS.gate]);
  },

  factors(site, config, params) {
    return gatedFactors(site, config.r, soraScaling(config), params[SORA_KEYS.A], params[SORA_KEYS.B], params[SORA_KEYS.gate]);
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures + 1);
  },

  hooks: {
    startRun({ state }) {
      state.opt.clear(); // a fresh run starts the gates' optimizer afresh (a resume restores it: loadRunState)
    },
    // L_task + λ·Σ|g|/N_g, N_g = gate entries of every module together (SparseTrainerMixin.compute_loss).
    lossTerm({ config, sites }) {
      if (!config.sparse_lambda || !sites.length) return null;
      let count = 0;
      const sums = sites.map((s) => {
        const gate = s.p[SORA_KEYS.gate];
        count += gate.shape.reduce((a: number, d) => a * (d as number), 1);
        return op.reduceSum(op.abs(gate), [0, 1], false);
      });
      return op.mul(sums.reduce((a, b) => op.add(a, b)), config.sparse_lambda / count);
    },
    ownedParams: ({ sites }) => sites.map((s) => s.keys[SORA_KEYS.gate]),
    optimizerStep(ctx) {
      const c = ctx.config;
      // The gates' scheduler has the loop's shape (linear warmup/decay over the same steps): the same multiplier.
      const lr = (c.sparse_lr ?? ctx.baseLr) * (ctx.baseLr > 0 ? ctx.lr / ctx.baseLr : 0);
      for (const s of ctx.sites) {
        const key = s.keys[SORA_KEYS.gate];
        const p = ctx.params.get(key)!, g = ctx.grads.get(key)!;
        let st = ctx.state.opt.get(key);
        if (!st) ctx.state.opt.set(key, (st = { t: 0, m: new Float32Array(p.length), v: new Float32Array(p.length) }));
        st.t++;
        sparseAdamWStep(p, g, st.m, st.v, st.t, { ...SPARSE_ADAMW, lr, xi: s.config.sparse_lambda_2, threshold: s.config.threshold });
      }
    },
    stepMetrics({ sites, params }) {
      const gates = gateValues(sites, params, SORA_KEYS.gate);
      return { rank: Object.fromEntries(Object.entries(gates).map(([k, g]) => [k, activeRank(g)])), gates };
    },
    saveRunState: ({ state }) => ({ opt: new Map([...state.opt].map(([k, s]) => [k, { t: s.t, m: s.m.slice(), v: s.v.slice() }])) }),
    loadRunState({ state }, saved: any) {
      state.opt = new Map([...(saved.opt as Map<string, any>)].map(([k, s]) => [k, { t: s.t, m: Float32Array.from(s.m), v: Float32Array.from(s.v) }]));
    },
  },
};
