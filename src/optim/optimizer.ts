// The one interface the training loop steps through, whatever the rule:
// AdamW (torch's), SGD, GaLore (Adam on low-rank projected gradients),
// LoRA-Pro (LoRA updates that follow full fine-tuning's Adam step) and
// ALLoRA (per-row gradient scaling in front of AdamW). Parameters are updated
// in place; the state is plain data (Float32Arrays, numbers, strings) so a
// checkpoint holds it and `--resume` continues exactly.

export interface StepOptions {
  /** For a rule with `appliesClip`: the clipping factor (≤ 1) the loop measured on the unclipped gradients it passes. */
  clipScale?: number;
}

export interface Optimizer {
  /**
   * True when the rule takes the unclipped gradients and applies the clipping factor to its own
   * update (LoRA-Pro: the official DeepSpeed step takes the norm before its adjustment and scales
   * what the adjustment returns). Otherwise the loop clips the gradients before `step`.
   */
  readonly appliesClip?: boolean;
  /** One update of every parameter that has a gradient in `grads`, at learning rate `lr` (the schedule's); await it (GaLore's runs on ONNX Runtime). */
  step(grads: Map<string, Float32Array>, lr: number, opts?: StepOptions): void | Promise<void>;
  /** A deep copy of the state as plain data, with a `kind` naming the rule. */
  stateDict(): { kind: string };
  /** Restores what stateDict returned (validated: a state of another rule or other parameters throws). */
  loadStateDict(state: any): void;
  /** Bytes the state holds (moments, projectors): what the trainer reports as optimizer memory. */
  stateBytes(): number;
  /** Frees what the rule holds outside the JavaScript heap (ONNX Runtime sessions). */
  release?(): Promise<void>;
}

/** Bytes of the typed arrays in a state tree. */
export function typedBytes(x: unknown): number {
  if (ArrayBuffer.isView(x)) return x.byteLength;
  if (x instanceof Map) return [...x.values()].reduce((s: number, v) => s + typedBytes(v), 0);
  if (Array.isArray(x)) return x.reduce((s: number, v) => s + typedBytes(v), 0);
  if (x && typeof x === 'object') return Object.values(x).reduce((s: number, v) => s + typedBytes(v), 0);
  return 0;
}

export function checkStateKind(rule: string, state: { kind?: unknown }, kind: string): void {
  if (!state || state.kind !== kind) {
    throw new Error(`${rule}: the saved optimizer state is '${String(state?.kind)}', this run uses '${kind}': resume with the optimizer the run started with (--optimizer)`);
  }
}
