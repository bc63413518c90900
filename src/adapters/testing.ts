// What each method folder tells the shared adapter test harness
// (test/helpers/adapter_suite.ts) in its `test_config.ts`. The harness runs
// every registered method with it on the bundled USE model; a folder that
// exports an AdapterMethod (or a LoraInit) without one fails
// test/adapter_suite.test.ts. The fields state what the method is expected
// to support, so the harness checks the behaviour against them (a capability
// declared absent must be refused, not silently skipped).
import type { LoraConfig } from './lora/config.ts';

/** What merging the adapter into the frozen weights does. */
export type MergeSupport =
  /** Dense ΔW: merged == unmerged, and unmerging restores the weights. */
  | 'merge-unmerge'
  /** Dense ΔW that depends on W0 (DoRA, Hydra, SVD/LU-based): merged == unmerged; unmerging is refused. */
  | 'merge'
  /** No dense ΔW (the update depends on each token): merging is refused. */
  | 'none';

export interface AdapterTestConfig<C = Record<string, unknown>> {
  /**
   * Config fields (parsed by the method's schema) that make the adapter change
   * outputs from the start (`init_weights: false` ...), with small ranks so the
   * harness stays fast. Non-default values also check the config's round trip.
   */
  config: Partial<C>;
  /** Fields of the second adapter in the several-adapters checks (it also gets another seed). */
  other?: Partial<C>;
  /** target_modules on the bundled USE model; default: the harness's two sites (one with more outputs than inputs, one with fewer). */
  targetModules?: string[];
  merge: MergeSupport;
  /** Weighted combination into one adapter (PeftModel.addWeightedAdapter); false: it must be refused. */
  combine: boolean;
  /** One batch whose rows use different adapters (PeftModel.runMixed); false: it must be refused. */
  mixedBatches: boolean;
  /**
   * Key suffixes of tensors the method stores with the adapter but keeps fixed
   * while training (LoRA-SB's lorasb_A / lorasb_B): they must come out of
   * training exactly as they went in; every other adapter tensor must move.
   */
  frozenInTraining?: string[];
  /**
   * A learning rate at which a few training steps on a task lower the loss:
   * the harness trains with it, and the check that the loss falls will use it.
   */
  lr: number;
  /** Further cases of the same method under their own names (LoRA: rsLoRA): fields over `config`. */
  variants?: Record<string, Partial<C>>;
}

/**
 * A LoRA init that is its own folder (PiSSA, OLoRA): the harness runs LoRA with
 * it. Such inits move part of W0 into the adapter (a residual base), which the
 * harness checks: unchanged outputs at init, conversion to plain LoRA on save.
 */
export interface LoraInitTestConfig {
  /** LoRA config fields, `init_lora_weights` naming this init. */
  config: Partial<LoraConfig>;
  targetModules?: string[];
  lr: number;
}
