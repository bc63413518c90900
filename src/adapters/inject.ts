// Attaches one adapter method to the chosen linear sites of a model: owns the
// live parameter values (PEFT key → Float32Array), hands model builders a
// LinearFn that inserts the method's sub-graph, and merges ΔW into weights.

import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { LinearFn, LinearSite, WeightMap } from '../models/types.ts';
import { Rng } from '../util/rng.ts';
import { selectTargets, TargetModules } from './targets.ts';
import type { AdapterMethod } from './types.ts';

export const PEFT_PREFIX = 'base_model.model.';

export interface AdapterSetOptions {
  targetModules: TargetModules;
  seed?: number;
  /** Sites never adapted by 'all-linear' (output heads). */
  headNames?: string[];
}

export class AdapterSet<C = any> {
  readonly targets: LinearSite[];
  readonly params = new Map<string, Float32Array>();
  readonly shapes = new Map<string, number[]>();
  private keysBySite = new Map<string, string[]>();
  /** false = adapters bypassed (outputs equal the base model). */
  enabled = true;

  constructor(
    readonly method: AdapterMethod<C>,
    readonly config: C,
    sites: LinearSite[],
    weights: WeightMap,
    readonly options: AdapterSetOptions,
  ) {
    this.targets = selectTargets(sites, options.targetModules, options.headNames);
    const rng = new Rng(options.seed ?? 0);
    for (const site of this.targets) {
      const w = weights.get(site.weightKey);
      if (!w) throw new Error(`Adapter: base weight '${site.weightKey}' of module '${site.name}' is missing from the model`);
      const specs = method.init({ site, config, rng: rng.fork(site.name), baseWeight: w.data });
      const keys: string[] = [];
      for (const s of specs) {
        const key = `${PEFT_PREFIX}${site.name}.${s.key}`;
        this.params.set(key, s.data);
        this.shapes.set(key, s.shape);
        keys.push(key);
      }
      this.keysBySite.set(site.name, keys);
    }
  }

  isTarget(name: string): boolean {
    return this.keysBySite.has(name);
  }

  get dropout(): number {
    return (this.config as { lora_dropout?: number }).lora_dropout ?? 0;
  }

  /** Name of the dropout-mask input fed for a site while training. */
  static dropoutInput(site: string): string {
    return `dropout_mask.${site}`;
  }

  trainableCount(): number {
    let n = 0;
    for (const v of this.params.values()) n += v.length;
    return n;
  }

  /** The LinearFn model builders call; adapted sites get params as graph inputs. */
  linear(opts: { training: boolean }): LinearFn {
    return (site, x, W, bias) => {
      const g: Graph = x.graph;
      const base = site.layout === 'in_out' ? op.linear(x, W, bias) : op.linearT(x, W, bias);
      if (!this.enabled || !this.isTarget(site.name)) return base;
      const p: Record<string, Value> = {};
      for (const key of this.keysBySite.get(site.name)!) {
        p[key.slice(PEFT_PREFIX.length + site.name.length + 1)] = g.param(key, this.shapes.get(key)!, this.params.get(key));
      }
      let xin = x;
      if (opts.training && this.dropout > 0) {
        // Masks come from the trainer's seeded RNG (already scaled by 1/(1-p)) so runs and resumes are exact.
        xin = op.mul(x, g.input(AdapterSet.dropoutInput(site.name), 'float32', x.shape));
      }
      return this.method.forward({ g, site, config: this.config, p, x: xin, W, base, training: opts.training });
    };
  }

  private siteParams(site: LinearSite): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const key of this.keysBySite.get(site.name)!) out[key.slice(PEFT_PREFIX.length + site.name.length + 1)] = this.params.get(key)!;
    return out;
  }

  /** A copy of `weights` with ΔW added (sign = −1 unmerges). Refuses NaN/inf. */
  mergeInto(weights: WeightMap, sign: 1 | -1 = 1): WeightMap {
    if (!this.method.deltaWeight) throw new Error(`Method '${this.method.name}' has no dense ΔW and cannot be merged`);
    const out: WeightMap = new Map(weights);
    for (const site of this.targets) {
      const dW = this.method.deltaWeight(site, this.config, this.siteParams(site));
      for (let i = 0; i < dW.length; i++) {
        if (!Number.isFinite(dW[i])) throw new Error(`Refusing to merge: ΔW of '${site.name}' contains NaN/inf`);
      }
      const w = weights.get(site.weightKey)!;
      const merged = Float32Array.from(w.data);
      const m = site.outFeatures, n = site.inFeatures;
      if (site.layout === 'out_in') for (let i = 0; i < m * n; i++) merged[i] += sign * dW[i];
      else for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) merged[j * m + i] += sign * dW[i * n + j];
      out.set(site.weightKey, { shape: w.shape, data: merged });
    }
    return out;
  }
}
