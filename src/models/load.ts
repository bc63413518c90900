// Any model lorakit runs, from one spec: 'use' (the bundled Universal
// Sentence Encoder lite, with its SentencePiece tokenizer) or a local Hugging
// Face folder (config.json's model_type picks the family: an encoder, a
// decoder LM or an encoder-decoder, with the folder's tokenizer.json).

import fs from 'node:fs';
import path from 'node:path';
import type { HfFolder, HfTokenizer, TensorTransform } from '../io/hf.ts';
import { quantizeBase, type BaseDtype, type BaseQuantization } from '../quant/base_dtype.ts';
import { UseTokenizer } from '../tokenize/sentencepiece.ts';
import { baseCachePath, readBaseCache } from './base_cache.ts';
import type { DecoderModel } from './decoder.ts';
import { HF_MODELS, linearSitesByTensor, loadModel as loadHfModel } from './hf_registry.ts';
import type { Seq2SeqModel } from './seq2seq.ts';
import type { EncoderModel } from './types.ts';
import { loadUseEncoder, USE_MODEL_NAME } from './use_encoder.ts';

/** What every task needs from a tokenizer; HF folders' tokenizers also encode sentence pairs. */
export interface TextTokenizer {
  encode(text: string): number[];
}

/**
 * `folder`: a Hugging Face folder as read (absent for the bundled model);
 * `quantization`: which frozen weights were quantized at load (--base-dtype), absent for fp32;
 * `savedBase`: the saved quantized base their codes came from (src/models/base_cache.ts), if one was used;
 * `quantizedWhileReading`: how many weights were quantized as they were read (the rest after the load).
 */
export type LoadedModel = (
  | { kind: 'encoder'; model: EncoderModel; tokenizer?: TextTokenizer | HfTokenizer; name: string; dir?: string; folder?: HfFolder }
  | { kind: 'decoder'; model: DecoderModel; tokenizer?: HfTokenizer; name: string; dir: string; folder: HfFolder }
  | { kind: 'seq2seq'; model: Seq2SeqModel; tokenizer?: HfTokenizer; name: string; dir: string; folder: HfFolder }
) & { quantization?: BaseQuantization; savedBase?: string; quantizedWhileReading?: number };

export interface LoadOptions {
  /** Quantize the frozen weights of the linear projections once, now (src/quant/); default fp32. */
  baseDtype?: BaseDtype;
  /** Take the quantized weights from the form `lorakit quantize` saved beside the folder when it is there and current (default true). */
  useSavedBase?: boolean;
  /** Where a warning goes (a saved quantized base that is stale or unreadable); default console.warn. */
  warn?: (message: string) => void;
}

export type ModelFamily = LoadedModel['kind'];

const FAMILY_NAMES: Record<ModelFamily, string> = {
  encoder: 'an encoder (the bundled USE model, BERT, RoBERTa, DistilBERT)',
  decoder: 'a decoder LM (GPT-2, Llama, Qwen2, Mistral)',
  seq2seq: 'an encoder-decoder (T5, BART)',
};

/**
 * Loads 'use' or a Hugging Face folder; the error says which specs are valid.
 * With `kind`, also checks the model's family (and narrows the type).
 */
export async function loadModel<K extends ModelFamily = ModelFamily>(spec: string, kind?: K, opts: LoadOptions = {}): Promise<Extract<LoadedModel, { kind: K }>> {
  const m = await loadAny(spec, opts);
  if (kind && m.kind !== kind) throw new Error(`model '${spec}' is ${FAMILY_NAMES[m.kind]}; this needs ${FAMILY_NAMES[kind]}`);
  if (opts.baseDtype && opts.baseDtype !== 'fp32') {
    const keyOf = new Map([...m.model.weights].map(([k, w]) => [w.data, k]));
    m.quantization = quantizeBase(m.model.weights, m.model.sites, opts.baseDtype);
    // The folder as read holds the same arrays (some models rename keys): it gets the stand-ins too, so no float32 copy stays reachable.
    for (const [k, w] of m.folder?.weights ?? []) {
      const now = m.model.weights.get(keyOf.get(w.data) ?? '')?.data;
      if (now && now !== w.data) m.folder!.weights.set(k, { ...w, data: now });
    }
  }
  return m as Extract<LoadedModel, { kind: K }>;
}

async function loadAny(spec: string, opts: LoadOptions): Promise<LoadedModel> {
  if (spec === 'use' || spec === 'default') return { kind: 'encoder', model: await loadUseEncoder(), tokenizer: UseTokenizer.fromVocabFile(), name: USE_MODEL_NAME };
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    const dtype = opts.baseDtype ?? 'fp32';
    const saved = dtype !== 'fp32' && opts.useSavedBase !== false ? readBaseCache(spec, dtype, opts.warn ?? ((w) => console.warn(w))) : undefined;
    const reading = dtype !== 'fp32' && !saved ? quantizeWhileReading(spec, dtype) : undefined;
    const m = await loadHfModel(spec, { tensorSource: saved, tensorTransform: reading?.transform });
    return { kind: m.kind, model: m.model, tokenizer: m.tokenizer, name: spec, dir: spec, folder: m.folder, ...(saved && { savedBase: baseCachePath(spec, dtype) }), ...(reading && { quantizedWhileReading: reading.count() }) } as LoadedModel;
  }
  throw new Error(
    `model '${spec}': not 'use' (the bundled model) and not a folder. Give a Hugging Face model folder with config.json, ` +
      `model.safetensors and tokenizer.json (model types: ${Object.keys(HF_MODELS).join(', ')})`,
  );
}

/**
 * Quantizes each linear weight of a folder as soon as it is read (its float32
 * array dropped before the next tensor is read), so the whole float32 model is
 * never resident: the sites are known from the headers
 * (linearSitesByTensor). Weights it cannot place are quantized after the
 * load, as before.
 */
function quantizeWhileReading(dir: string, dtype: BaseDtype): { transform: TensorTransform; count: () => number } | undefined {
  const sites = linearSitesByTensor(dir);
  if (!sites?.size) return undefined;
  let count = 0;
  const transform: TensorTransform = (name, data) => {
    const s = sites.get(name);
    if (!s || data.length !== s.inFeatures * s.outFeatures) return data;
    const one = new Map([[s.weightKey, { shape: s.layout === 'out_in' ? [s.outFeatures, s.inFeatures] : [s.inFeatures, s.outFeatures], data }]]);
    quantizeBase(one, [s], dtype);
    count++;
    return one.get(s.weightKey)!.data;
  };
  return { transform, count: () => count };
}

/**
 * What an adapter's base_model_name_or_path says about the model it was
 * trained on, as a PEFT user expects it: the Hugging Face name the folder's
 * config.json records (`_name_or_path`, what transformers' save_pretrained
 * writes), else the folder's absolute path (not the relative path typed on
 * the command line, which means nothing elsewhere), else the bundled model's name.
 */
export function peftBaseModelName(m: LoadedModel): string {
  const recorded = m.folder?.config?._name_or_path;
  if (typeof recorded === 'string' && recorded.trim() !== '') return recorded;
  return m.dir ? path.resolve(m.dir) : m.name;
}
