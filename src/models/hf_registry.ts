// Hugging Face folders → lorakit models: config.json's `model_type` picks the
// builder. One line per model_type; add yours to HF_MODELS.

import { HfFolder, HfTokenizer, loadHfFolder } from '../io/hf.ts';
import { bartFromFolder } from './bart.ts';
import { bertFromHf } from './bert.ts';
import { decoderFromFolder } from './load_decoder.ts';
import { t5FromFolder } from './t5.ts';
import type { EncoderModel } from './types.ts';

export type HfModelKind = 'encoder' | 'decoder' | 'seq2seq';

export interface HfModelEntry {
  kind: HfModelKind;
  /** Builds the model from the folder's config and weights (the return type depends on `kind`). */
  build: (folder: HfFolder) => unknown;
}

export const HF_MODELS: Record<string, HfModelEntry> = {
  bert: { kind: 'encoder', build: (f) => bertFromHf(f) },
  roberta: { kind: 'encoder', build: (f) => bertFromHf(f) },
  distilbert: { kind: 'encoder', build: (f) => bertFromHf(f) },
  gpt2: { kind: 'decoder', build: decoderFromFolder },
  llama: { kind: 'decoder', build: decoderFromFolder },
  qwen2: { kind: 'decoder', build: decoderFromFolder },
  mistral: { kind: 'decoder', build: decoderFromFolder },
  t5: { kind: 'seq2seq', build: t5FromFolder },
  bart: { kind: 'seq2seq', build: bartFromFolder },
};

export interface LoadedHfModel<M = unknown> {
  dir: string;
  modelType: string;
  kind: HfModelKind;
  config: any;
  model: M;
  tokenizer?: HfTokenizer;
  /** The folder as read (its tensors are the model's: builders do not copy them). */
  folder: HfFolder;
}

/** Loads a local Hugging Face model folder with the builder of its model_type. */
export async function loadModel(dir: string): Promise<LoadedHfModel> {
  const folder = await loadHfFolder(dir, { supportedModelTypes: Object.keys(HF_MODELS) });
  const entry = HF_MODELS[folder.config.model_type];
  return { dir, modelType: folder.config.model_type, kind: entry.kind, config: folder.config, model: entry.build(folder), tokenizer: folder.tokenizer, folder };
}

/** loadModel for encoder families (BERT, RoBERTa, DistilBERT): an error names the folder when it holds another kind. */
export async function loadEncoderModel(dir: string): Promise<LoadedHfModel<EncoderModel>> {
  const m = await loadModel(dir);
  if (m.kind !== 'encoder') throw new Error(`${dir}/config.json: model_type '${m.modelType}' is a ${m.kind} model, not an encoder (encoders: ${Object.entries(HF_MODELS).filter(([, e]) => e.kind === 'encoder').map(([k]) => k).join(', ')})`);
  return m as LoadedHfModel<EncoderModel>;
}
