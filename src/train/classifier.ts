// The classification graph outside a Trainer (benchmarks, exports, tests): the
// same graph the loop trains, built by the classification task.

import type { AdapterSet } from '../adapters/inject.ts';
import { plainLinear } from '../models/linear.ts';
import type { EncoderModel } from '../models/types.ts';
import { buildTaskGraph } from './loop.ts';
import { ClassificationTask, HEAD_B, HEAD_W, initHead } from './tasks/classification.ts';
import type { Graph } from '../graph/ir.ts';

export { HEAD_B, HEAD_W, initHead };

export interface ClassifierGraphs {
  graph: Graph;
  /** Trainable parameter names in output order (`grad.<name>` outputs). */
  trainable: string[];
}

/** 'train': loss + grad.<param> (inputs input_ids, attention_mask, labels); 'eval': logits and pooled. */
export function buildClassifierGraph(model: EncoderModel, adapters: AdapterSet | null, head: Map<string, Float32Array>, numLabels: number, mode: 'train' | 'eval', opts: { gradCheckpoint?: boolean } = {}): ClassifierGraphs {
  const task = new ClassificationTask(model, { numLabels, seed: 0 });
  for (const [k, v] of head) task.params.get(k)!.data.set(v);
  return buildTaskGraph(task, adapters ? adapters.linear({ training: mode === 'train' }) : plainLinear, mode, opts);
}
