// The one interface the training loop steps through, whatever the rule:
// AdamW (torch's), SGD, GaLore (Adam on low-rank projected gradients),
// LoRA-Pro (LoRA updates that follow full fine-tuning's Adam step) and
// ALLoRA (per-row gradient scaling in front of AdamW). Parameters are updated
// in place; the state is plain data (Float32Arrays, numbers, strings) so a
// checkpoint holds it and `--resume` continues exactly.

export interface Optimizer {
  /** One update of every parameter that has a gradient in `grads`, at learning rate `lr` (the schedule's); await it (GaLore's runs on ONNX Runtime). */
  step(grads: Map<string, Float32Array>, lr: number): void | Promise<void>;
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
