// The training step both sides of bench/browser_step.ts time: the bundled
// USE lite + LoRA (r=8, α=16 on qkv, output, conv1, conv2) + a 2-class head,
// cross-entropy, every adapter and head gradient in one run (the graph the
// demo page trains), then AdamW in TypeScript. Built by the same code in Node
// and in the page, from a seeded synthetic batch.

import { AdapterSet } from '../../src/adapters/inject.ts';
import { getMethod } from '../../src/adapters/registry.ts';
import { adapterFeeds } from '../../src/adapters/feeds.ts';
import type { EncoderModel } from '../../src/models/types.ts';
import { USE_DEFAULT_TARGETS } from '../../src/models/use_encoder.ts';
import { AdamW } from '../../src/optim/adamw.ts';
import type { CompiledGraph, HostTensor } from '../../src/runtime/session.ts';
import { buildTaskGraph } from '../../src/train/loop.ts';
import { ClassificationTask } from '../../src/train/tasks/classification.ts';
import { Rng } from '../../src/util/rng.ts';

export interface StepShape { batch: number; seqLen: number; seed: number }

export const STEP_SHAPE: StepShape = { batch: 32, seqLen: 64, seed: 0 };

export function trainingStep(model: EncoderModel, s: StepShape = STEP_SHAPE) {
  const lora = getMethod('lora');
  const adapters = new AdapterSet(lora, lora.schema.parse({ r: 8, lora_alpha: 16 }), model.sites, model.weights, { targetModules: USE_DEFAULT_TARGETS, seed: s.seed });
  const task = new ClassificationTask(model, { numLabels: 2, seed: s.seed });
  const { graph, trainable } = buildTaskGraph(task, adapters.linear({ training: true }), 'train');
  const rng = new Rng(s.seed).fork('bench-batch');
  const n = s.batch * s.seqLen;
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: BigInt64Array.from({ length: n }, () => BigInt(6 + rng.int(7994))), dims: [s.batch, s.seqLen] },
    attention_mask: { data: new Float32Array(n).fill(1), dims: [s.batch, s.seqLen] },
    labels: { data: BigInt64Array.from({ length: s.batch }, (_, i) => BigInt(i % 2)), dims: [s.batch] },
  };
  const params = new Map([...adapters.params, ...[...task.params].map(([k, t]) => [k, t.data] as const)]);
  const optimizer = new AdamW(params, { lr: 1e-3, weightDecay: 0.01 });
  /** One step: the fused run, then AdamW on every trainable tensor. Returns the loss. */
  const step = async (cg: CompiledGraph): Promise<number> => {
    const f: Record<string, HostTensor> = { ...feeds, ...adapterFeeds(adapters, { training: true }) };
    for (const [k, t] of task.params) f[k] = { data: t.data, dims: t.shape };
    const out = await cg.run(f);
    optimizer.step(new Map(trainable.map((k) => [k, out[`grad.${k}`].data as Float32Array])));
    return Number(out.loss.data[0]);
  };
  return { graph, trainable, step };
}

/** Median of `steps` timed steps after `warmup` untimed ones; the first loss (same graph, same batch: the same on every runtime). */
export async function timeSteps(cg: CompiledGraph, step: (cg: CompiledGraph) => Promise<number>, o: { warmup: number; steps: number }) {
  const firstLoss = await step(cg);
  for (let i = 1; i < o.warmup; i++) await step(cg);
  const ms: number[] = [];
  for (let i = 0; i < o.steps; i++) {
    const t0 = performance.now();
    await step(cg);
    ms.push(performance.now() - t0);
  }
  const sorted = [...ms].sort((a, b) => a - b);
  return { firstLoss, ms, medianMs: sorted[Math.floor(sorted.length / 2)] };
}
