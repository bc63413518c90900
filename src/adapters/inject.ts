// Attaches one adapter method to the chosen linear sites of a model: owns the
// live parameter values (PEFT key → Float32Array), hands model builders a
// LinearFn that inserts the method's sub-graph, and merges ΔW into weights.
//
// Per-site configuration (PEFT's rank_pattern / alpha_pattern) comes from
// `options.siteConfig`; inits that change the frozen weight (PiSSA, OLoRA)
// record the residual with `setBaseWeight`, and the LinearFn feeds it in place
// of W0. `bias` ('all' | 'lora_only') and `modulesToSave` add trainable copies
// of base tensors under PEFT's keys: of a site's weight and bias (read in
// `linear`), and of tensors the sites do not cover (LayerNorm biases under
// bias 'all', a task head that is no site), read through the LinearFn's
// `tensor` hook, which every model builder asks before a frozen weight. Embedding sites (token tables) go through
// the LinearFn's `embed` hook, only for methods with `adaptsEmbeddings`.

import { Graph, Value } from '../graph/ir.ts';
import * as op from '../graph/ops.ts';
import type { LinearFn, LinearSite, WeightMap } from '../models/types.ts';
import { frozenLinear, frozenWeight } from '../quant/frozen_linear.ts';
import { dropFloat32, float32Of, isStandIn, markQuantized, quantizedFormOf } from '../quant/quantized_weights.ts';
import { Rng } from '../util/rng.ts';
import { selectTargets, TargetModules, matchesTarget, TargetError } from './targets.ts';
import type { AdapterMethod, HookSite, LowRankFactors } from './types.ts';

export const PEFT_PREFIX = 'base_model.model.';

/** Symbolic row count of every fed dropout mask (see AdapterSet.linear and adapters/feeds.ts). */
export const DROPOUT_ROWS = 'dropout_rows';

export interface AdapterSetOptions<C = any> {
  targetModules: TargetModules;
  seed?: number;
  /** Sites never adapted by 'all-linear' (output heads). */
  headNames?: string[];
  /** Further filter on the target sites (exclude_modules, layers_to_transform). */
  filter?: (site: LinearSite) => boolean;
  /** The config of one site (rank_pattern / alpha_pattern); default: the set's config. */
  siteConfig?: (site: LinearSite, config: C) => C;
  /**
   * PEFT `bias`: 'lora_only' trains the biases of adapted modules; 'all' every
   * bias of the model, as PEFT (every 1-D '<module>.bias' weight: linear
   * layers, LayerNorms...).
   */
  bias?: 'none' | 'all' | 'lora_only';
  /** PEFT `modules_to_save`: modules trained (and saved) whole: linear sites, or any module whose weights the model reads (a task head). */
  modulesToSave?: string[];
  /**
   * Refuse (before allocating anything) a config whose adapter would have more
   * parameters than this: a loader passes what its file can hold, so a hostile
   * r = 10⁹ fails with a message instead of exhausting memory.
   */
  maxParams?: number;
}

/** Where a trainable copy of a base tensor (bias or modules_to_save) comes from: a site's weight or bias, or any other weight of the model ('tensor'). */
interface BaseCopy {
  site?: string;
  role: 'weight' | 'bias' | 'tensor';
  /** The weight it stands in for. */
  weightKey: string;
}

function biasKeyOf(site: LinearSite): string {
  return site.weightKey.replace(/weight$/, 'bias');
}

/** Whether weight `key` belongs to module `m` or a submodule of it (m matches a module path as modules_to_save entries do: the path, or its '.'-suffix). */
export function moduleMatches(key: string, m: string): boolean {
  const parts = key.split('.');
  for (let i = 1; i < parts.length; i++) {
    const path = parts.slice(0, i).join('.');
    if (path === m || path.endsWith(`.${m}`)) return true;
  }
  return false;
}

/** [out, in] view of a weight stored in the site's layout. */
export function toOutIn(site: LinearSite, w: Float32Array): Float32Array {
  if (site.layout === 'out_in') return w;
  const m = site.outFeatures, n = site.inFeatures;
  const t = new Float32Array(m * n);
  for (let j = 0; j < n; j++) for (let i = 0; i < m; i++) t[i * n + j] = w[j * m + i];
  return t;
}

/** Back from [out, in] to the site's layout. */
export function fromOutIn(site: LinearSite, w: Float32Array): Float32Array {
  if (site.layout === 'out_in') return w;
  const m = site.outFeatures, n = site.inFeatures;
  const t = new Float32Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = w[i * n + j];
  return t;
}

export class AdapterSet<C = any> {
  readonly targets: LinearSite[];
  readonly params = new Map<string, Float32Array>();
  readonly shapes = new Map<string, number[]>();
  private keysBySite = new Map<string, string[]>();
  private siteConfigs = new Map<string, C>();
  /** Residual base weights written by inits such as PiSSA (weightKey → data in the site's layout). */
  readonly baseOverrides = new Map<string, Float32Array>();
  /** Adapter values at init, kept only for sites whose init changed the base weight (PiSSA/OLoRA → LoRA conversion on save). */
  readonly initialParams = new Map<string, Float32Array>();
  /** Trainable copies of base tensors (bias / modules_to_save), PEFT key → origin. */
  private baseCopies = new Map<string, BaseCopy>();
  /** The copies of weights outside the sites: weight key → PEFT key. */
  private tensorCopies = new Map<string, string>();
  private sitesByName: Map<string, LinearSite>;
  /** false = adapters bypassed (outputs equal the base model). */
  enabled = true;
  /** The method's own state for this set (AdapterMethod.createState): handed to every method call. */
  readonly state: unknown;
  private hookSiteList?: HookSite<C>[];

  constructor(
    readonly method: AdapterMethod<C>,
    readonly config: C,
    sites: LinearSite[],
    weights: WeightMap,
    readonly options: AdapterSetOptions<C>,
  ) {
    this.sitesByName = new Map(sites.map((s) => [s.name, s]));
    const saved = new Set(options.modulesToSave ?? []);
    const pool = sites.filter((s) => !saved.has(s.name) && ![...saved].some((m) => matchesTarget(s.name, [m])));
    this.targets = selectTargets(pool.length ? pool : sites, options.targetModules, options.headNames).filter((s) => !options.filter || options.filter(s));
    for (const site of this.targets) {
      if (site.kind === 'embedding' && !method.adaptsEmbeddings) {
        throw new Error(
          `Method '${method.name}' cannot adapt the embedding module '${site.name}' (a [${site.inFeatures}, ${site.outFeatures}] token table): ` +
            `leave it out of target_modules, or use method 'lora' (PEFT's lora.Embedding)`,
        );
      }
    }
    if (options.maxParams !== undefined) {
      let n = 0;
      for (const site of this.targets) n += method.paramCount(site, options.siteConfig ? options.siteConfig(site, this.config) : this.config);
      if (!(n <= options.maxParams)) {
        throw new TargetError(`the ${method.name} config asks for ${n} parameters on ${this.targets.length} modules, more than the ${options.maxParams} its weights file can hold: the config does not belong to these weights (check r / rank_pattern and target_modules)`);
      }
    }
    const rng = new Rng(options.seed ?? 0);
    const baseOf = (site: LinearSite) => {
      const w = weights.get(site.weightKey);
      if (!w) throw new Error(`Adapter: base weight '${site.weightKey}' of module '${site.name}' is missing from the model`);
      return w;
    };
    // The weight's values are read on demand: a quantized base (a stand-in) dequantizes only for the methods that read them.
    if (method.planConfig) this.config = method.planConfig(this.config, this.targets.map((site) => { const w = baseOf(site); return { site, get weight() { return float32Of(w.data); } }; }));
    this.state = method.createState ? method.createState({ config: this.config, targets: this.targets }) : {};
    for (const site of this.targets) {
      const w = baseOf(site);
      const config = options.siteConfig ? options.siteConfig(site, this.config) : this.config;
      this.siteConfigs.set(site.name, config);
      const specs = method.init({
        site,
        config,
        state: this.state,
        rng: rng.fork(site.name),
        get baseWeight() {
          return float32Of(w.data);
        },
        setBaseWeight: (data) => {
          if (data.length !== site.inFeatures * site.outFeatures) throw new Error(`setBaseWeight for '${site.name}': ${data.length} values, the weight has ${site.inFeatures * site.outFeatures}`);
          // On a quantized base the residual is the frozen weight now: quantized the same way (QPiSSA), its float32 values dropped as the base's were.
          const form = quantizedFormOf(w.data);
          if (form) markQuantized(data, form.dtype, site.inFeatures, site.outFeatures, site.layout);
          this.baseOverrides.set(site.weightKey, isStandIn(w.data) ? dropFloat32(data, site.layout) : data);
        },
      });
      const keys: string[] = [];
      for (const s of specs) {
        const key = `${PEFT_PREFIX}${site.name}.${s.key}`;
        if (this.baseOverrides.has(site.weightKey)) this.initialParams.set(key, Float32Array.from(s.data));
        this.params.set(key, s.data);
        this.shapes.set(key, s.shape);
        keys.push(key);
      }
      this.keysBySite.set(site.name, keys);
    }
    // Trainable copies of base tensors, PEFT's keys.
    const bias = options.bias ?? 'none';
    const addCopy = (site: LinearSite, role: 'weight' | 'bias', key: string) => {
      const weightKey = role === 'weight' ? site.weightKey : biasKeyOf(site);
      const src = weights.get(weightKey);
      if (!src || this.baseCopies.has(key)) return;
      const data = Float32Array.from(float32Of(role === 'weight' ? (this.baseOverrides.get(site.weightKey) ?? src.data) : src.data));
      this.params.set(key, data);
      this.shapes.set(key, src.shape.slice());
      this.baseCopies.set(key, { site: site.name, role, weightKey });
    };
    // Weights the sites read (their own weight and bias) are copied per site: a tied table stays shared elsewhere.
    const siteKeys = new Set(sites.flatMap((s) => [s.weightKey, biasKeyOf(s)]));
    const addTensorCopy = (weightKey: string) => {
      const src = weights.get(weightKey)!;
      const key = PEFT_PREFIX + weightKey;
      if (this.baseCopies.has(key)) return;
      this.params.set(key, Float32Array.from(float32Of(src.data)));
      this.shapes.set(key, src.shape.slice());
      this.baseCopies.set(key, { role: 'tensor', weightKey });
      this.tensorCopies.set(weightKey, key);
    };
    if (bias !== 'none') {
      for (const site of bias === 'all' ? sites : this.targets) {
        addCopy(site, 'bias', `${PEFT_PREFIX}${site.name}${this.isTarget(site.name) ? '.base_layer' : ''}.bias`);
      }
      // PEFT's 'all' trains every parameter named '*bias*'; buffers are not parameters (GPT-2's 4-D attn.bias mask).
      if (bias === 'all') for (const [k, t] of weights) if (k.endsWith('.bias') && t.shape.length === 1 && !siteKeys.has(k)) addTensorCopy(k);
    }
    for (const m of options.modulesToSave ?? []) {
      const matched = sites.filter((s) => s.name === m || s.name.endsWith(`.${m}`));
      for (const site of matched) {
        addCopy(site, 'weight', `${PEFT_PREFIX}${site.name}.weight`);
        addCopy(site, 'bias', `${PEFT_PREFIX}${site.name}.bias`);
      }
      // A module that is no site (a task head): every weight under it.
      const under = [...weights.keys()].filter((k) => !siteKeys.has(k) && moduleMatches(k, m));
      for (const k of under) addTensorCopy(k);
      if (!matched.length && !under.length) throw new Error(`modules_to_save: '${m}' names no module of this model (linear modules: ${sites.map((s) => s.name).join(', ')})`);
    }
  }

  /** The copy standing in for a model weight read outside the sites (the LinearFn's `tensor` hook), if any. */
  tensorCopy(weightKey: string): string | undefined {
    return this.tensorCopies.get(weightKey);
  }

  /** The adapted sites with their configs and parameter keys (what hooks see). */
  hookSites(): HookSite<C>[] {
    this.hookSiteList ??= this.targets.map((site) => {
      const prefix = `${PEFT_PREFIX}${site.name}.`;
      const keys: Record<string, string> = {};
      for (const k of this.siteKeys(site.name)) keys[k.slice(prefix.length)] = k;
      return { site, config: this.configFor(site), keys };
    });
    return this.hookSiteList;
  }

  isTarget(name: string): boolean {
    return this.keysBySite.has(name);
  }

  /** The config of one adapted site (after rank_pattern / alpha_pattern). */
  configFor(site: LinearSite | string): C {
    const name = typeof site === 'string' ? site : site.name;
    return this.siteConfigs.get(name) ?? this.config;
  }

  /** PEFT keys of one site's adapter parameters. */
  siteKeys(site: string): string[] {
    return this.keysBySite.get(site) ?? [];
  }

  /** The module a parameter key belongs to and the key's suffix ('lora_A.weight'; 'base_layer.bias' for a bias copy). */
  keyOwner(key: string): { module: string; suffix: string } | undefined {
    const copy = this.baseCopies.get(key);
    const module = copy ? (copy.site ?? copy.weightKey.slice(0, copy.weightKey.lastIndexOf('.'))) : this.targets.find((s) => this.keysBySite.get(s.name)!.includes(key))?.name;
    return module === undefined ? undefined : { module, suffix: key.slice(PEFT_PREFIX.length + module.length + 1) };
  }

  /** Keys of trainable base-tensor copies (bias, modules_to_save). */
  baseCopyKeys(): string[] {
    return [...this.baseCopies.keys()];
  }

  get dropout(): number {
    return (this.config as { lora_dropout?: number }).lora_dropout ?? 0;
  }

  /** Targets that take a dropout mask while training: PEFT applies none to embedding lookups. */
  get dropoutTargets(): LinearSite[] {
    return this.targets.filter((s) => s.kind !== 'embedding');
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

  /** The model's weights as this set's graph sees them: residuals (PiSSA/OLoRA) and trained copies in place. */
  baseWeights(weights: WeightMap, opts: { copies?: boolean } = {}): WeightMap {
    const out: WeightMap = new Map(weights);
    for (const [k, data] of this.baseOverrides) out.set(k, { shape: weights.get(k)!.shape, data });
    if (opts.copies ?? true) {
      for (const [key, c] of this.baseCopies) out.set(c.weightKey, { shape: this.shapes.get(key)!, data: this.params.get(key)! });
    }
    return out;
  }

  private copyFor(site: string, role: 'weight' | 'bias'): string | undefined {
    for (const [k, c] of this.baseCopies) if (c.site === site && c.role === role) return k;
    return undefined;
  }

  /** This site's adapter params as graph inputs, by key suffix ('lora_A.weight'). */
  private graphParams(g: Graph, site: LinearSite): Record<string, Value> {
    const p: Record<string, Value> = {};
    for (const key of this.keysBySite.get(site.name)!) {
      p[key.slice(PEFT_PREFIX.length + site.name.length + 1)] = g.param(key, this.shapes.get(key)!, this.params.get(key));
    }
    return p;
  }

  /**
   * A builder that read, as a frozen weight, a tensor this set trains a copy of
   * (without asking the LinearFn's `tensor` hook) would silently drop the copy:
   * checked at every call of the LinearFn, so it fails at the next site.
   */
  private checkTensorCopies(g: Graph): void {
    for (const k of this.tensorCopies.keys()) {
      if (g.leaf(k)?.leaf?.kind !== 'weight') continue;
      throw new Error(
        `The model's graph reads '${k}' as a frozen weight, but this adapter trains a copy of it (bias 'all' / modules_to_save): ` +
          `the model builder must ask the LinearFn's \`tensor\` hook for every weight it reads (src/models/types.ts, TensorFn)`,
      );
    }
  }

  /** The LinearFn model builders call; adapted sites get params as graph inputs. */
  linear(opts: { training: boolean }): LinearFn {
    const fn: LinearFn = (site, x, W, bias) => {
      const g: Graph = x.graph;
      if (this.tensorCopies.size && this.enabled) this.checkTensorCopies(g);
      if (!this.enabled) return frozenLinear(site.layout, x, W, bias);
      const wCopy = this.copyFor(site.name, 'weight');
      const bCopy = this.copyFor(site.name, 'bias');
      const override = this.baseOverrides.get(site.weightKey);
      if (wCopy) W = g.leaf(wCopy) ?? g.param(wCopy, this.shapes.get(wCopy)!, this.params.get(wCopy));
      else if (override) W = g.weight(`${site.weightKey}.residual`, override, W.shape as number[]);
      if (bCopy && bias) bias = g.leaf(bCopy) ?? g.param(bCopy, this.shapes.get(bCopy)!, this.params.get(bCopy));
      const base = frozenLinear(site.layout, x, W, bias);
      if (!this.isTarget(site.name)) return base;
      const p = this.graphParams(g, site);
      let xin = x;
      if (opts.training && this.dropout > 0) {
        // Masks come from the trainer's seeded RNG (already scaled by 1/(1-p)) so runs and resumes are exact.
        // Each is fed with DROPOUT_ROWS rows (as many as the batch's longest token stream) and cut to this
        // site's rows here: a site may see B·T, B·S (an encoder-decoder's encoder) or B rows (a pooler).
        const mask = g.input(AdapterSet.dropoutInput(site.name), 'float32', [DROPOUT_ROWS, site.inFeatures]);
        xin = op.mul(x, op.sliceDynamic(mask, g.ints([0]), op.slice(op.shapeOf(x), [0], [1], [0]), [0], x.shape));
      }
      // A quantized base: methods that read W see the dequantized weight the base computes with.
      return this.method.forward({ g, site, config: this.configFor(site), state: this.state, p, x: xin, W: frozenWeight(site.layout, W), bias, base, training: opts.training });
    };
    // Weights read outside the sites (LayerNorm biases, a head that is no site): their trainable copies.
    if (this.tensorCopies.size) {
      fn.tensor = (g, weightKey) => {
        if (!this.enabled) return undefined;
        const key = this.tensorCopies.get(weightKey);
        return key === undefined ? undefined : (g.leaf(key) ?? g.param(key, this.shapes.get(key)!, this.params.get(key)));
      };
    }
    // Token lookups (embedding sites): a modules_to_save copy replaces the table; no dropout (PEFT applies none).
    fn.embed = (site, ids, table) => {
      const g: Graph = ids.graph;
      if (!this.enabled) return op.gather(table, ids);
      const wCopy = this.copyFor(site.name, 'weight');
      if (wCopy) table = g.leaf(wCopy) ?? g.param(wCopy, this.shapes.get(wCopy)!, this.params.get(wCopy));
      const base = op.gather(table, ids);
      if (!this.isTarget(site.name)) return base;
      return this.method.forward({ g, site, config: this.configFor(site), state: this.state, p: this.graphParams(g, site), x: ids, W: table, base, training: opts.training });
    };
    return fn;
  }

  siteParams(site: LinearSite | string): Record<string, Float32Array> {
    const name = typeof site === 'string' ? site : site.name;
    const out: Record<string, Float32Array> = {};
    for (const key of this.keysBySite.get(name)!) out[key.slice(PEFT_PREFIX.length + name.length + 1)] = this.params.get(key)!;
    return out;
  }

  /** Dense ΔW [out, in] of one adapted site; `base` is that site's frozen weight in its own layout. */
  deltaFor(site: LinearSite, base: Float32Array): Float32Array {
    if (!this.method.deltaWeight) throw new Error(`Method '${this.method.name}' has no dense ΔW and cannot be merged`);
    return this.method.deltaWeight(site, this.configFor(site), this.siteParams(site), toOutIn(site, base), this.state);
  }

  /**
   * ΔW of one adapted site as scale·B·A (AdapterMethod.factors). `base` gives that
   * site's frozen weight in its own layout; it is read only for methods whose ΔW
   * depends on it (deltaDependsOnBase: LoRA-XS, LoLDU, LaMDA, Hydra factor W0).
   */
  factorsFor(site: LinearSite, base?: () => Float32Array): LowRankFactors {
    if (!this.method.factors) throw new Error(`Method '${this.method.name}' has no low-rank factors of ΔW`);
    const w = this.method.deltaDependsOnBase && base ? toOutIn(site, base()) : undefined;
    return this.method.factors(site, this.configFor(site), this.siteParams(site), w, this.state);
  }

  /**
   * A copy of `weights` with ΔW added (sign = −1 unmerges). Refuses NaN/inf.
   * Residual inits (PiSSA/OLoRA) and trained bias / modules_to_save copies are applied on merge.
   */
  mergeInto(weights: WeightMap, sign: 1 | -1 = 1): WeightMap {
    if (!this.method.deltaWeight) throw new Error(`Method '${this.method.name}' has no dense ΔW and cannot be merged`);
    const start = sign === 1 ? this.baseWeights(weights) : new Map(weights);
    const out: WeightMap = new Map(start);
    for (const site of this.targets) {
      const w = start.get(site.weightKey)!;
      if (sign === -1 && this.method.deltaDependsOnBase) {
        throw new Error(`Unmerging '${this.method.name}' from a merged weight is not supported: keep the original weights`);
      }
      const base = float32Of(w.data); // a quantized base merges into its dequantized weight
      const dW = this.deltaFor(site, base);
      for (let i = 0; i < dW.length; i++) {
        if (!Number.isFinite(dW[i])) throw new Error(`Refusing to merge: ΔW of '${site.name}' contains NaN/inf`);
      }
      const merged = base === w.data ? Float32Array.from(base) : base;
      const m = site.outFeatures, n = site.inFeatures;
      if (site.layout === 'out_in') for (let i = 0; i < m * n; i++) merged[i] += sign * dW[i];
      else for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) merged[j * m + i] += sign * dW[i * n + j];
      out.set(site.weightKey, { shape: w.shape, data: merged });
    }
    return out;
  }
}
