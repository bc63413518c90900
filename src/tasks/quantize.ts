// `lorakit quantize`: quantize a model folder's frozen linear weights once and
// save them beside it (src/models/base_cache.ts), so later loads with that
// --base-dtype skip the quantization and never read those float32 weights.

import { saveBaseCache } from '../models/base_cache.ts';
import { loadModel } from '../models/load.ts';
import type { BaseDtype } from '../quant/base_dtype.ts';

export interface QuantizeJobResult {
  file: string;
  /** Weights saved, and the file's size. */
  weights: number;
  bytes: number;
  /** The quantized weights' bytes as float32 and as codes + scales. */
  fp32Bytes: number;
  storedBytes: number;
  seconds: number;
}

export async function runQuantizeJob(o: { model: string; baseDtype: BaseDtype }): Promise<QuantizeJobResult> {
  const t0 = performance.now();
  if (o.baseDtype === 'fp32') throw new Error('--base-dtype fp32 is the model as it is: give the quantized form to save (int8, nf4 or int4)');
  const loaded = await loadModel(o.model, undefined, { baseDtype: o.baseDtype, useSavedBase: false });
  if (!loaded.folder) throw new Error(`--model ${o.model}: the bundled model has no folder to save beside; give a Hugging Face model folder`);
  const saved = saveBaseCache(loaded.folder, loaded.model, o.baseDtype);
  const q = loaded.quantization!;
  return { ...saved, fp32Bytes: q.fp32Bytes, storedBytes: q.storedBytes, seconds: (performance.now() - t0) / 1000 };
}
