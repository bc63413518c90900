// CoDyRA: a gated LoRA without scale, its ranks closed by a rising threshold
// after a dense phase (config.ts). Keys (lorakit's; PEFT has no CoDyRA):
// lora_A.weight [r, in], lora_B.weight [out, r], lora_gate [1, r].
// Hooks: CoDyRA's own AdamW over A, B and g (β2 0.9999; state in checkpoints),
// then the threshold κ(t) on the gates (optimizerStep); active rank, gates and
// κ per step. Merging (mergeInto) is the official increment_task's merge: only
// open ranks contribute; the factors are the plain LoRA it becomes.
import { AdamW, type AdamWStateDict } from '../../optim/adamw.ts';
import type { AdapterMethod } from '../types.ts';
import { gatedDelta, gatedFactors, gatedForward, gatedInit, GATED_KEYS } from '../sora/gated.ts';
import { activeRank, thresholdGates } from '../sora/threshold.ts';
import { gateValues } from '../sora/index.ts';
import { CODYRA_BETAS, CodyraConfig, codyraConfigSchema, kappaAt } from './config.ts';

export const CODYRA_KEYS = GATED_KEYS;

/** CoDyRA's run state: its AdamW over A, B and g (made at the first step). */
export interface CodyraState {
  opt: AdamW | null;
  saved?: AdamWStateDict;
}

function ownedKeys(sites: { keys: Record<string, string> }[]): string[] {
  return sites.flatMap((s) => Object.values(CODYRA_KEYS).map((k) => s.keys[k]));
}

export const codyra: AdapterMethod<CodyraConfig, CodyraState> = {
  name: 'codyra',
  savesAsLora: true,
  schema: codyraConfigSchema,
  peft: { peftType: 'CODYRA', onlyBias: 'lora_only', moduleKeys: Object.values(CODYRA_KEYS), describe: (c) => `r ${c.r}` },
  createState: () => ({ opt: null }),

  init: gatedInit,

  forward({ p, x, base }) {
    return gatedForward(p, x, base, 1);
  },

  deltaWeight(site, config, params) {
    return gatedDelta(site, config.r, 1, params[CODYRA_KEYS.A], params[CODYRA_KEYS.B], params[CODYRA_KEYS.gate]);
  },

  factors(site, config, params) {
    return gatedFactors(site, config.r, 1, params[CODYRA_KEYS.A], params[CODYRA_KEYS.B], params[CODYRA_KEYS.gate]);
  },

  paramCount(site, config) {
    return config.r * (site.inFeatures + site.outFeatures + 1);
  },

  hooks: {
    startRun({ state }) {
      state.opt = null;
      state.saved = undefined;
    },
    ownedParams: ({ sites }) => ownedKeys(sites),
    optimizerStep(ctx) {
      const c = ctx.config;
      if (!ctx.state.opt) {
        const keys = ownedKeys(ctx.sites);
        ctx.state.opt = new AdamW(new Map(keys.map((k) => [k, ctx.params.get(k)!])), { betas: CODYRA_BETAS, weightDecay: c.weight_decay });
        if (ctx.state.saved) ctx.state.opt.loadStateDict(ctx.state.saved);
      }
      ctx.state.opt.step(new Map([...ctx.state.opt.params.keys()].map((k) => [k, ctx.grads.get(k)!])), ctx.lr);
      const { kappa, prune } = kappaAt(ctx.step, ctx.totalSteps, c);
      if (prune) for (const s of ctx.sites) thresholdGates(ctx.params.get(s.keys[CODYRA_KEYS.gate])!, kappa, 'official');
    },
    stepMetrics({ config, sites, params, step }) {
      const gates = gateValues(sites, params, CODYRA_KEYS.gate);
      return { rank: Object.fromEntries(Object.entries(gates).map(([k, g]) => [k, activeRank(g)])), gates, step };
    },
    saveRunState: ({ state }) => (state.opt ? { opt: state.opt.stateDict() } : null),
    loadRunState({ state }, saved: any) {
      state.saved = saved.opt;
      state.opt = null;
    },
  },
};
