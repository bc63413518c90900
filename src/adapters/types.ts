// The adapter interface every PEFT method implements (one folder per method).
// A method turns a frozen linear site into "base + its own sub-graph", owns the
// initialization of its parameters, and (where it has one) a dense ΔW for merge.

import type { z } from 'zod';
import type { Graph, Value } from '../graph/ir.ts';
import type { LinearSite } from '../models/types.ts';
import type { Rng } from '../util/rng.ts';

export interface ParamSpec {
  /** Key suffix after the module path, PEFT-style: 'lora_A.weight'. */
  key: string;
  shape: number[];
  data: Float32Array;
}

export interface AdapterContext<C, S = any> {
  site: LinearSite;
  config: C;
  rng: Rng;
  /** The set's method state (AdapterMethod.createState); absent when a method is called on its own. */
  state?: S;
  /** The frozen base weight (in the site's layout), for SVD/LU-style inits. */
  baseWeight: Float32Array;
  /**
   * For inits that change the frozen weight (PiSSA, OLoRA: the residual
   * W0 − s·B·A): the new base weight, in the site's layout. The AdapterSet
   * then feeds it in place of W0 (see AdapterSet.baseWeights).
   */
  setBaseWeight?(data: Float32Array): void;
}

/**
 * An initialization that is its own idea (src/adapters/<name>/), used by LoRA
 * through `init_lora_weights`: returns A [r, in] and B [out, r] (PEFT
 * orientation) and, where it moves part of W0 into the adapter, the residual
 * base weight [out, in].
 */
export interface LoraInit {
  /** Does this init handle the `init_lora_weights` value (e.g. 'pissa_niter_4')? */
  matches(value: string): boolean;
  init(args: { value: string; r: number; scaling: number; W: Float32Array; out: number; in: number; rng: Rng }): { A: Float32Array; B: Float32Array; residual?: Float32Array };
}

export interface ForwardContext<C, S = any> {
  g: Graph;
  site: LinearSite;
  config: C;
  /** The set's method state (AdapterMethod.createState); absent when a method is called on its own. */
  state?: S;
  /** Params of this module, by key. */
  p: Record<string, Value>;
  /** The module input [N, in] (after dropout where the method asks for it); for an embedding site the int64 token ids. */
  x: Value;
  /** Frozen base weight and its output [N, out] (embedding site: the table [vocab, dim] and table[ids]). */
  W: Value;
  /** The base layer's bias (already included in `base`), if it has one. */
  bias?: Value;
  base: Value;
  training: boolean;
}

export interface AdapterMethod<C = any, S = any> {
  /** Name used by --method and in adapter_config.json's `lorakit.method`. */
  name: string;
  schema: z.ZodType<C>;
  /** How the method looks in PEFT's adapter files (src/peft/ reads and writes every method through it). */
  peft: PeftDescriptor<C, S>;
  /**
   * The method's state for one AdapterSet, beside its trainable tensors (frozen
   * projections read from a file, the largest adapted shape, SMoRA's β, hook
   * snapshots). Made once per set after its config is planned; the set holds it
   * and hands it to every call below as `state`, so nothing lives in module
   * globals and two sets never share it. Without it the state is {}.
   */
  createState?(args: { config: C; targets: LinearSite[] }): S;
  /** Create this module's trainable parameters with their initial values. */
  init(ctx: AdapterContext<C, S>): ParamSpec[];
  /** The adapted output for one linear site. */
  forward(ctx: ForwardContext<C, S>): Value;
  /**
   * Dense ΔW in [out, in] layout for merging; absent when the method has none.
   * `baseWeight` is the frozen weight in [out, in] layout (DoRA's ΔW depends on it).
   */
  deltaWeight?(site: LinearSite, config: C, params: Record<string, Float32Array>, baseWeight?: Float32Array, state?: S): Float32Array;
  /**
   * ΔW as scale·B·A of small rank, where the method's ΔW has that form (LoRA,
   * VeRA, NOLA...): what a mixed-adapter batch stacks and add_weighted_adapter
   * concatenates. Absent for methods whose ΔW is not low-rank (DoRA's row
   * rescaling, sparse or spectral updates) or not one matrix (SMoRA's routing).
   * `baseWeight` as for deltaWeight (LoRA-XS, LoLDU, LaMDA, Hydra factor W0).
   */
  factors?(site: LinearSite, config: C, params: Record<string, Float32Array>, baseWeight?: Float32Array, state?: S): LowRankFactors;
  /**
   * PEFT add_weighted_adapter's 'linear' (A = Σ√wᵢ·sᵢ·Aᵢ, B = Σ√wᵢ·Bᵢ) is defined
   * on LoRA's own A and B: true where `factors` returns them unchanged (LoRA).
   */
  linearCombination?: boolean;
  /**
   * What the method trains is meant to end as a smaller plain LoRA (SoRA's open
   * gates, AdaLoRA's kept triplets...): `lorakit train` saves it through its
   * low-rank factors as PEFT LoRA with rank_pattern (src/peft/as_lora.ts) unless
   * told --save-as native; the native folder is kept beside it.
   */
  savesAsLora?: boolean;
  /** ΔW depends on the base weight (DoRA): unmerge from a merged weight is not exact. */
  deltaDependsOnBase?: boolean;
  /**
   * The method also adapts embedding sites (site.kind 'embedding', PEFT's lora.Embedding): its init,
   * forward and deltaWeight handle them. Without it, targeting an embedding table is an error.
   */
  adaptsEmbeddings?: boolean;
  /**
   * Once per AdapterSet, before any init: a config that depends on every
   * target's frozen weight at once (LaMDA++'s per-module ranks). The result
   * becomes the set's config, and so what is saved; weights in each site's layout.
   */
  planConfig?(config: C, targets: { site: LinearSite; weight: Float32Array }[]): C;
  /** Trainable parameter count for one site (checked against the formula in METHODS.md). */
  paramCount(site: LinearSite, config: C): number;
  /** Per-step hooks the trainer calls (src/adapters/hooks.ts): rank pruning, freezing, location updates... */
  hooks?: AdapterHooks<C, S>;
}

/**
 * ΔW = scale · B · A of one site, A [r, in] and B [out, r] in PEFT's
 * orientation ([out, in] is [dim, vocab] on an embedding). `scale` stays apart
 * from B so that LoRA's factors are its own tensors and s is applied where
 * PEFT applies it.
 */
export interface LowRankFactors {
  A: Float32Array;
  B: Float32Array;
  r: number;
  scale: number;
}

/**
 * How one method's adapter folder looks in PEFT's format: its fields of
 * adapter_config.json (beside the shared PeftConfig ones: target_modules,
 * bias, modules_to_save...) and its safetensors keys. The one reader/writer
 * (src/peft/config.ts, src/peft/adapter_files.ts) knows every method only
 * through this.
 */
export interface PeftDescriptor<C = any, S = any> {
  /** adapter_config.json's `peft_type` (PEFT's own spelling for PEFT's tuners: LORA, VERA, RANDLORA, FOURIERFT). */
  peftType: string;
  /**
   * A variant that shares its peft_type with another method (lorakit's dora is
   * PEFT's LORA with `use_dora: true`): whether a file's fields describe it.
   * Among the methods of one peft_type, a file without `lorakit.method` is read
   * as the one that selects it, else as the one without `selectedBy`.
   */
  selectedBy?(fields: Record<string, unknown>): boolean;
  /** PEFT's `bias` value for "biases of the adapted modules" (lora_only, vera_only, randlora_only, fourier_only). */
  onlyBias: string;
  /**
   * The method's fields of adapter_config.json with PEFT's names, types and
   * defaults (LoRA: PEFT's whole LoraConfig). Without it they are the method's
   * own schema's, and a null there (PEFT writes None for "unset") means the
   * field's default.
   */
  fields?: z.ZodObject<any>;
  /** The method's config from its parsed fields (default: the fields are the config). */
  configOf?(fields: Record<string, any>): C;
  /**
   * The method's fields of adapter_config.json for a config (default: the
   * config's own fields). `kept`: the fields of the file the adapter was
   * loaded from, when it has this peft_type (LoRA writes them back).
   */
  fieldsOf?(config: C, kept?: Record<string, unknown>): Record<string, unknown>;
  /** PEFT's older field names → today's (VeRA: init_vera_weights → init_weights). */
  renamed?: Record<string, string>;
  /** PEFT fields lorakit implements at one value (vera_dropout: 0): accepted at it (or null), refused by name otherwise. */
  fixed?: Record<string, unknown>;
  /** Per-module fields: '<x>_pattern' → the config field it sets per module (keys matched as PEFT's get_pattern_key). */
  patterns?: Record<string, string>;
  /** Every key suffix the method stores per module, PEFT's names ('lora_A.weight', 'lora_embedding_A'). */
  moduleKeys: string[];
  /** One module's config in a load error ('r 4'); default: the config as JSON. */
  describe?(config: C): string;
  /**
   * PEFT's file holds the trained biases of bias 'all' / '<x>_only' (LoRA). Without
   * it (PEFT saves only its own prefix's tensors for VeRA, RandLoRA, FourierFT) a
   * file may lack them; the base model's are then used, with a warning.
   */
  savesBiases?: boolean;
  /**
   * Frozen tensors stored once per adapter, outside any module (PEFT's VeRA /
   * RandLoRA projections with `save_projection: true`: `base_model.vera_A`).
   * `load` attaches those a file holds (names without 'base_model.') to the
   * set's state, so forward and ΔW use them instead of regenerating them from
   * the seed; `save` returns them again (null when there are none to write).
   */
  shared?: {
    names: string[];
    /** The boolean field saying the file holds them (PEFT's save_projection): read by the loader, written by `save`. */
    flag?: string;
    /**
     * PEFT also stores them under every adapted module (`<module>.randlora_A`: RandLoRA's layers hold the shared
     * dict, so its state dict lists them there), and warns of missing keys without them: written there too.
     */
    perModule?: boolean;
    load(state: S, config: C, tensors: Record<string, StoredTensor>, sites: LinearSite[]): void;
    save(state: S, config: C): { tensors: Record<string, StoredTensor>; config: Record<string, unknown> } | null;
  };
  /**
   * A config value PEFT's files cannot hold (FourierFT's ifft2_norm): the file
   * then holds the same ΔW in PEFT's terms, and lorakit's own block (not
   * adapter_config.json, whose unknown fields PEFT drops) keeps what restores
   * the config, so both read the adapter the same.
   */
  peftForm?: {
    /** Rewrites `tensors` and `fields` in place into PEFT's terms; returns the lorakit-block entries that restore the config (none: nothing to keep). */
    save(args: { sites: LinearSite[]; configFor(site: LinearSite): C; tensors: Record<string, StoredTensor>; fields: Record<string, any> }): Record<string, unknown> | undefined;
    /** The parsed config with lorakit's block applied (what `save` returned). */
    restore(config: C, lorakit: Record<string, any>): C;
    /** A file's tensors (PEFT's terms) into the restored config's terms, replacing entries of `tensors`. */
    load(args: { sites: LinearSite[]; configFor(site: LinearSite): C; tensors: Map<string, StoredTensor> }): void;
  };
  /**
   * Last edit of what a save writes, from the set's state (AdaLoRA: its
   * rank_pattern and total_step from the run, and the masked triplets dropped
   * from the tensors as PEFT's resize_state_dict_by_rank_pattern does).
   * `tensors` (full keys) and `fields` are edited in place.
   */
  finalizeSave?(args: { state: S; config: C; sites: LinearSite[]; tensors: Record<string, StoredTensor>; fields: Record<string, any> }): void;
  /**
   * Inits that moved part of W0 into the adapter (PiSSA, OLoRA): rewrites the
   * saved `tensors` and `fields` in place into the plain adapter PEFT loads on
   * the original base weight (SavedAdapterInfo.convertToLora). `initial` holds
   * the values at init of the sites whose init changed the base weight.
   */
  convertResidual?(args: {
    sites: LinearSite[];
    params: Map<string, Float32Array>;
    initial: Map<string, Float32Array>;
    shapes: Map<string, number[]>;
    tensors: Record<string, StoredTensor>;
    fields: Record<string, any>;
  }): void;
}

/** A tensor as adapter files hold it. */
export interface StoredTensor {
  shape: number[];
  data: Float32Array;
}

/** One adapted site as a hook sees it: its config and the full keys of its parameters by suffix. */
export interface HookSite<C = any> {
  site: LinearSite;
  config: C;
  /** Suffix ('lora_A.weight') → full key in `params` / `grads`. */
  keys: Record<string, string>;
}

export interface StepHookContext<C = any, S = any> {
  /** Optimizer steps taken so far (beforeStep, optimizerStep: this step's index; afterStep: index + 1). */
  step: number;
  totalSteps: number;
  /** This step's learning rate (the base rate times the schedule). */
  lr: number;
  /** The run's base learning rate (lr / baseLr is the schedule's multiplier at this step). */
  baseLr: number;
  /** Warmup steps of the run's schedule (a method's own parameter groups may follow the same shape). */
  warmupSteps: number;
  /** The run's seed (for a method's draws during training, e.g. IncreLoRA's new components). */
  seed: number;
  /** Every trainable tensor (adapter + head), live: hooks may write in place. */
  params: Map<string, Float32Array>;
  /** This step's gradients (after clipping): beforeStep may write in place (freezing = zeroing). */
  grads: Map<string, Float32Array>;
  /** The step's graph outputs (loss, and anything a method's forward declared with g.output). */
  outputs: Record<string, { data: ArrayLike<number | bigint>; dims: readonly number[] }>;
  config: C;
  sites: HookSite<C>[];
  /** The set's method state (AdapterMethod.createState): where per-run hook state lives. */
  state: S;
}

export interface FitHookContext<C = any, S = any> {
  config: C;
  sites: HookSite<C>[];
  state: S;
  /** Every trainable tensor (adapter + task head), live. */
  params: Map<string, Float32Array>;
  seed: number;
  /**
   * Σ over the first `batches` training batches (of `batchSize` examples, in a
   * seeded order) of ∂L/∂W for these sites' frozen weights, [out, in] float64,
   * L being the task's own loss with the adapter's current values. The loop
   * provides it, so a data-dependent init (LoRA-SB) works on every task.
   */
  weightGradients(sites: LinearSite[], o: { batches: number; batchSize: number }): Promise<Map<string, Float64Array>>;
}

/**
 * The general per-step mechanism (LaMDA's freezing, LoCA's location updates,
 * SMoRA's load-balancing bias, SoRA's proximal step...). The trainer calls
 * these through one call site each and knows nothing about the method.
 */
export interface AdapterHooks<C = any, S = any> {
  /**
   * Once before training starts (not when resuming from a checkpoint): data-
   * dependent inits such as LoRA-SB's (frozen-weight gradients over a few
   * batches, through `weightGradients`). May write `params` in place.
   */
  beforeFit?(ctx: FitHookContext<C, S>): Promise<void> | void;
  /**
   * At the start of every training run, fresh or resumed (after a checkpoint
   * is loaded, before beforeFit): drop per-run state (snapshots of tensors the
   * method keeps frozen), so nothing from an earlier run on the same set leaks in.
   */
  startRun?(ctx: { state: S; config: C; sites: HookSite<C>[] }): void;
  /** After gradients, before the optimizer step: may edit `grads` in place. */
  beforeStep?(ctx: StepHookContext<C, S>): void;
  /**
   * The method's own update of the tensors `ownedParams` names (SoRA's gates
   * with their sparse AdamW): called right after the shared optimizer's step,
   * which leaves those tensors alone. Their gradients (clipped with all the
   * others) are in `grads`.
   */
  optimizerStep?(ctx: StepHookContext<C, S>): void;
  /** Keys (in `params`) of the tensors `optimizerStep` updates; the shared optimizer skips them. */
  ownedParams?(ctx: { state: S; config: C; sites: HookSite<C>[] }): string[];
  /** After the optimizer step: may edit `params` in place. */
  afterStep?(ctx: StepHookContext<C, S>): void;
  /**
   * A scalar added to the task's training loss (SoRA's λ·Σ|g|/N_g, AdaLoRA's
   * orthogonality term), built once per training graph from the parameters
   * the graph holds: each adapted site's tensors by key suffix. null: none.
   */
  lossTerm?(ctx: { g: Graph; state: S; config: C; sites: (HookSite<C> & { p: Record<string, Value> })[] }): Value | null;
  /**
   * Figures written with each step's record in metrics.jsonl (after
   * afterStep): a module's active rank, gate values. Plain JSON values.
   */
  stepMetrics?(ctx: { state: S; config: C; sites: HookSite<C>[]; params: Map<string, Float32Array>; step: number }): Record<string, unknown>;
  /**
   * State of a training run that is not part of the adapter (a method's own
   * optimizer moments, importance averages): saved in checkpoints only, and
   * given back to loadRunState after startRun on --resume. Plain JSON values,
   * Float32Arrays and Maps of them.
   */
  saveRunState?(ctx: { state: S; config: C; sites: HookSite<C>[] }): unknown;
  loadRunState?(ctx: { state: S; config: C; sites: HookSite<C>[] }, saved: unknown): void;
  /**
   * Extra graph inputs fed on every run (train and eval): non-trainable state
   * that hooks update between steps (a router bias, integer locations).
   * While training, `step` is the index of the step the run computes and
   * `seed` the run's seed (per-step draws such as DyLoRA's rank).
   */
  feeds?(ctx: { state: S; config: C; sites: HookSite<C>[]; training: boolean; step?: number; seed?: number }): Record<string, { data: Float32Array | BigInt64Array; dims: number[] }>;
  /**
   * Non-trainable per-module state saved with the adapter so a reloaded
   * adapter reproduces outputs (SMoRA's β): key suffix → tensor. `stateKeys`
   * names the suffixes; `loadState` gets those a file holds for the module.
   */
  stateKeys?: string[];
  saveState?(ctx: { state: S; site: LinearSite; config: C }): Record<string, StoredTensor>;
  loadState?(ctx: { state: S; site: LinearSite; config: C; tensors: Record<string, StoredTensor> }): void;
}
