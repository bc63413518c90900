// Full fine-tuning's output: the trained model itself. A Hugging Face folder
// stays one (the source's tensor names, config and tokenizer: it loads
// wherever the original did, `lorakit --model <dir>` included); the bundled
// encoder is written as lorakit's merged-model folder (what `lorakit merge`
// writes for it). A task's own tensors (a classification or ranking head) go
// beside it in task_head.safetensors.

import path from 'node:path';
import { writeSafetensors } from '../io/safetensors.ts';
import type { LoadedModel } from '../models/load.ts';
import { saveMergedHfFolder, saveMergedModel } from '../peft/export.ts';
import type { TrainTensor } from '../train/task.ts';

export const TASK_HEAD_FILE = 'task_head.safetensors';

/** The 2-D projection weights of a model (GaLore's targets): linear sites, output heads and embeddings left out. */
export function projectionMatrices(model: LoadedModel['model']): Set<string> {
  const heads = new Set('headNames' in model ? model.headNames : []);
  return new Set(model.sites.filter((s) => s.kind !== 'embedding' && !heads.has(s.name)).map((s) => s.weightKey));
}

/** Writes the fully fine-tuned model (its weights were trained in place) and the task's own tensors to `dir`. */
export function saveFullModel(dir: string, loaded: LoadedModel, taskParams: Map<string, TrainTensor>, info: Record<string, unknown>): void {
  const { model } = loaded;
  if (loaded.folder) saveMergedHfFolder(dir, loaded.folder, model, model.weights, { adapters: [] });
  else saveMergedModel(dir, model.weights, { base: loaded.name, adapters: [] });
  if (taskParams.size) {
    writeSafetensors(path.join(dir, TASK_HEAD_FILE), new Map([...taskParams].map(([k, t]) => [k, { dtype: 'F32' as const, shape: t.shape, data: t.data }])), { format: 'pt', lorakit: JSON.stringify({ fine_tuning: 'full', ...info }) });
  }
}
