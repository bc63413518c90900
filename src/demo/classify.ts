// Inference in the page with one or several trained adapters on the one
// frozen encoder (PEFT's PeftModel API, src/serve/peft_model.ts). Adapters are
// loaded from their PEFT files as bytes (what the page downloads), so what is
// served is what a user takes away. With several adapters whose ΔW has
// low-rank factors (LoRA, VeRA, NOLA ...), every (text, adapter) pair is one
// row of ONE batch; others run adapter by adapter.

import { readAdapter, type AdapterFiles } from '../peft/adapter_files.ts';
import { PEFT_PREFIX } from '../adapters/inject.ts';
import type { EncoderModel } from '../models/types.ts';
import { padBatch, PeftModel } from '../serve/peft_model.ts';
import { probeLogits } from '../train/linear_probe.ts';
import { HEAD_B, HEAD_W } from '../train/tasks/classification.ts';

export interface Prediction {
  adapter: string;
  label: string;
  /** Softmax over the adapter's labels. */
  probs: number[];
  labels: string[];
}

interface Served {
  head: Map<string, Float32Array>;
  labels: string[];
  maxLength: number;
  mixable: boolean;
}

export class AdapterServer {
  private readonly peft: PeftModel;
  private readonly served = new Map<string, Served>();

  constructor(
    private readonly model: EncoderModel,
    private readonly tokenizer: { encode(text: string): number[] },
  ) {
    this.peft = new PeftModel(model);
  }

  get names(): string[] {
    return [...this.served.keys()];
  }

  /** Loads a classification adapter from its files (a task head as modules_to_save, labels in lorakit's block). */
  add(name: string, files: AdapterFiles): void {
    const saved = readAdapter(files);
    const w = saved.tensors.get(PEFT_PREFIX + HEAD_W), b = saved.tensors.get(PEFT_PREFIX + HEAD_B);
    if (!w || !b) throw new Error(`adapter '${name}': no classification head (${HEAD_W}) in its files`);
    const labels: string[] = saved.config.lorakit?.labels ?? Array.from({ length: w.shape[0] }, (_, i) => String(i));
    const loaded = this.peft.loadAdapter(files, name, { warn: () => {} });
    this.served.set(name, { head: new Map([[HEAD_W, w.data], [HEAD_B, b.data]]), labels, maxLength: saved.config.lorakit?.max_length ?? 128, mixable: !!loaded.set.method.factors });
  }

  remove(name: string): void {
    if (!this.served.delete(name)) return;
    this.peft.deleteAdapter(name);
  }

  /** One batch for all (text, adapter) pairs when every loaded adapter has low-rank factors (the batch stacks them all); else one run per adapter. */
  howServed(names: string[]): 'one batch' | 'one run per adapter' {
    names.forEach((n) => this.get(n));
    return names.length > 1 && [...this.served.values()].every((s) => s.mixable) ? 'one batch' : 'one run per adapter';
  }

  /** Predictions for each text (outer) by each named adapter (inner). */
  async classify(texts: string[], names: string[]): Promise<Prediction[][]> {
    if (!texts.length || !names.length) return texts.map(() => []);
    const H = this.model.hiddenSize;
    const rows = texts.flatMap((text) => names.map((name) => ({ text, name })));
    const ids = rows.map((r) => this.tokenizer.encode(r.text).slice(0, this.get(r.name).maxLength));
    const pooled = new Float32Array(rows.length * H);
    if (this.howServed(names) === 'one batch') {
      pooled.set((await this.peft.runMixed(padBatch(ids), rows.map((r) => r.name))).data as Float32Array);
    } else {
      for (const name of names) {
        const at = rows.flatMap((r, i) => (r.name === name ? [i] : []));
        this.peft.setAdapter(name);
        const out = (await this.peft.run(padBatch(at.map((i) => ids[i])))).data as Float32Array;
        at.forEach((row, k) => pooled.set(out.subarray(k * H, (k + 1) * H), row * H));
      }
    }
    const preds = rows.map((r, i) => {
      const s = this.get(r.name);
      const logits = probeLogits(s.head, pooled.subarray(i * H, (i + 1) * H), 1, H, s.labels.length);
      const max = Math.max(...logits);
      const e = Array.from(logits, (z) => Math.exp(z - max));
      const z = e.reduce((a, b) => a + b, 0);
      const probs = e.map((x) => x / z);
      return { adapter: r.name, label: s.labels[probs.indexOf(Math.max(...probs))], probs, labels: s.labels };
    });
    return texts.map((_, t) => preds.slice(t * names.length, (t + 1) * names.length));
  }

  private get(name: string): Served {
    const s = this.served.get(name);
    if (!s) throw new Error(`no adapter named '${name}' (loaded: ${this.names.join(', ') || 'none'})`);
    return s;
  }

  async release(): Promise<void> {
    await this.peft.release();
  }
}
