// Decoder language models from a Hugging Face folder: config.json's model_type
// picks the family (GPT-2, Llama, Qwen2, Mistral); src/io/hf.ts reads the
// weights (single or sharded safetensors, fp16/bf16 upcast) and tokenizer.

import path from 'node:path';
import { HfFolder, HfTokenizer, loadHfFolder } from '../io/hf.ts';
import type { DecoderModel } from './decoder.ts';
import { createGpt2, gpt2ConfigFromHf } from './gpt2.ts';
import { createLlama, LLAMA_FAMILY, llamaConfigFromHf } from './llama.ts';
import type { WeightMap } from './types.ts';

export const DECODER_BUILDERS: Record<string, (config: Record<string, any>, weights: WeightMap, name: string) => DecoderModel> = {
  gpt2: (c, w, n) => createGpt2(gpt2ConfigFromHf(c), w, n),
  ...Object.fromEntries(LLAMA_FAMILY.map((t) => [t, (c: Record<string, any>, w: WeightMap, n: string) => createLlama(llamaConfigFromHf(c), w, n)])),
};

export function decoderFromHf(config: Record<string, any>, weights: WeightMap, name = String(config.model_type)): DecoderModel {
  const build = DECODER_BUILDERS[config.model_type];
  if (!build) {
    throw new Error(`config.json: model_type '${config.model_type}' is not a supported decoder (supported: ${Object.keys(DECODER_BUILDERS).join(', ')})`);
  }
  return build(config, weights, name);
}

/** The decoder of an already-read folder (what src/models/hf_registry.ts calls). */
export function decoderFromFolder(f: HfFolder): DecoderModel {
  return decoderFromHf(f.config, f.weights, path.basename(path.resolve(f.dir)));
}

/** Loads a Hugging Face decoder folder: the model and, where the folder has one, its tokenizer. */
export async function loadDecoderFolder(dir: string): Promise<{ model: DecoderModel; tokenizer?: HfTokenizer; config: Record<string, any> }> {
  const f = await loadHfFolder(dir, { supportedModelTypes: Object.keys(DECODER_BUILDERS) });
  return { model: decoderFromFolder(f), tokenizer: f.tokenizer, config: f.config };
}

/** Loads config.json + safetensors from `dir` as a decoder model. */
export async function loadDecoder(dir: string): Promise<DecoderModel> {
  return (await loadDecoderFolder(dir)).model;
}
