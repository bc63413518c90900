// The optimizer a run uses (`--optimizer adamw|sgd|galore|lorapro|allora`),
// built from what is trained: the rules in src/optim/ know tensors by name;
// here they learn which tensors are a LoRA layer's A and B (LoRA-Pro, ALLoRA)
// and which are full weight matrices (GaLore).

import type { AdapterSet } from '../adapters/inject.ts';
import { loraScaling, type LoraConfig } from '../adapters/lora/config.ts';
import { loraKeys } from '../adapters/lora/peft.ts';
import { PEFT_PREFIX } from '../adapters/inject.ts';
import { AdamW, type AdamWGroup } from '../optim/adamw.ts';
import { Allora } from '../optim/allora.ts';
import { Galore, type GaloreProjType } from '../optim/galore.ts';
import { LoraPro, type LoraPair } from '../optim/lorapro.ts';
import type { Optimizer } from '../optim/optimizer.ts';
import { Sgd } from '../optim/sgd.ts';

export type OptimizerSpec =
  | { kind: 'adamw' }
  | { kind: 'sgd'; momentum?: number }
  | { kind: 'galore'; rank?: number; updateProjGap?: number; scale?: number; projType?: GaloreProjType }
  | { kind: 'lorapro'; moments?: 'adam' | 'none'; shift?: number }
  | { kind: 'allora'; eta?: number; granularity?: 'row' | 'tensor' };

export const OPTIMIZER_KINDS = ['adamw', 'sgd', 'galore', 'lorapro', 'allora'] as const;

export interface OptimizerContext {
  /** Every trainable tensor, live. */
  params: Map<string, Float32Array>;
  adapters: AdapterSet | null;
  weightDecay: number;
  groups: AdamWGroup[];
  /** Full weight matrices [rows, cols] as stored (full fine-tuning): what GaLore projects. */
  matrices?: Map<string, [number, number]>;
}

/** The LoRA layers of a set: each site's A and B by parameter name, with ΔW = s·B·A. */
export function loraPairs(set: AdapterSet): LoraPair[] {
  if (set.method.name !== 'lora') return [];
  return set.targets.map((site) => {
    const c = set.configFor(site) as LoraConfig;
    const k = loraKeys(site);
    return { A: `${PEFT_PREFIX}${site.name}.${k.A}`, B: `${PEFT_PREFIX}${site.name}.${k.B}`, m: site.outFeatures, n: site.inFeatures, r: c.r, s: loraScaling(c) };
  });
}

export function makeOptimizer(spec: OptimizerSpec, ctx: OptimizerContext): Optimizer {
  const { params, adapters, weightDecay, groups } = ctx;
  const adamw = (ps: Map<string, Float32Array>) => new AdamW(ps, { weightDecay, groups });
  switch (spec.kind) {
    case 'adamw':
      return adamw(params);
    case 'sgd':
      return new Sgd(params, { momentum: spec.momentum, weightDecay, groups });
    case 'galore': {
      const targets = ctx.matrices ?? new Map();
      if (!targets.size) throw new Error('--optimizer galore projects the gradients of full weight matrices: use it with --full (full fine-tuning)');
      return new Galore(params, { rank: spec.rank ?? 128, updateProjGap: spec.updateProjGap ?? 200, scale: spec.scale ?? 0.25, projType: spec.projType, targets, weightDecay, groups });
    }
    case 'lorapro': {
      const pairs = adapters ? loraPairs(adapters) : [];
      if (!pairs.length) throw new Error(`--optimizer lorapro adjusts LoRA's A and B: it needs --method lora${adapters ? ` (this run trains ${adapters.method.name})` : ''}`);
      const paired = new Set(pairs.flatMap((p) => [p.A, p.B]));
      return new LoraPro(params, adamw(new Map([...params].filter(([k]) => !paired.has(k)))), { pairs, moments: spec.moments, shift: spec.shift });
    }
    case 'allora': {
      const pairs = adapters ? loraPairs(adapters) : [];
      if (!pairs.length) throw new Error(`--optimizer allora scales LoRA's A and B: it needs --method lora${adapters ? ` (this run trains ${adapters.method.name})` : ''}`);
      for (const site of adapters!.targets) {
        const c = adapters!.configFor(site) as LoraConfig;
        if (c.lora_dropout !== 0 || loraScaling(c) !== 1) {
          throw new Error(`ALLoRA trains LoRA without dropout and without the α/r scale; '${site.name}' has lora_dropout ${c.lora_dropout} and scale ${loraScaling(c)}: use --lora-dropout 0 and --alpha equal to --rank (the CLI sets both for --optimizer allora)`);
        }
      }
      const rows = new Map<string, number>(pairs.flatMap((p) => [[p.A, p.n], [p.B, p.r]] as [string, number][]));
      return new Allora(params, adamw(params), { eta: spec.eta, granularity: spec.granularity, rows });
    }
  }
}
