// Decoder language models from a Hugging Face folder: config.json's model_type
// picks the family (GPT-2, Llama, Qwen2, Mistral).

import { DecoderModel, readHfFolderBasic } from './decoder.ts';
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

/** Loads config.json + model.safetensors from `dir` as a decoder model. */
export async function loadDecoder(dir: string): Promise<DecoderModel> {
  const { config, weights } = await readHfFolderBasic(dir);
  return decoderFromHf(config, weights, dir.split('/').filter(Boolean).pop() ?? String(config.model_type));
}
