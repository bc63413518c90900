// Hugging Face folders → lorakit models: config.json's `model_type` picks the
// builder. One line per model_type; add yours to HF_MODELS.

import fs from 'node:fs';
import path from 'node:path';
import { HfFolder, HfFolderError, HfTokenizer, hfWeightFiles, loadHfFolder, type TensorSource, type TensorTransform } from '../io/hf.ts';
import { readSafetensorsHeader } from '../io/safetensors.ts';
import { FileFormatError } from '../util/errors.ts';
import { bartFromFolder } from './bart.ts';
import { bertFromHf } from './bert.ts';
import { decoderFromFolder } from './load_decoder.ts';
import { t5FromFolder } from './t5.ts';
import type { EncoderModel, LinearSite } from './types.ts';

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

// config.json fields that size the model: positive integers. Layer counts are
// bounded by the weights' tensor count (a layer has tensors), other sizes by
// SIZE_LIMIT, so a hostile config cannot make a builder loop or allocate
// without bound before the weights are checked against it.
const LAYER_FIELDS = ['num_hidden_layers', 'n_layer', 'num_layers', 'num_decoder_layers', 'encoder_layers', 'decoder_layers', 'n_layers'];
const SIZE_FIELDS = ['vocab_size', 'hidden_size', 'intermediate_size', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'max_position_embeddings',
  'n_embd', 'n_head', 'n_inner', 'n_positions', 'd_model', 'd_ff', 'd_kv', 'num_heads', 'encoder_attention_heads', 'decoder_attention_heads',
  'encoder_ffn_dim', 'decoder_ffn_dim', 'type_vocab_size', 'dim', 'hidden_dim', 'n_heads', 'relative_attention_num_buckets', 'relative_attention_max_distance', 'sliding_window'];
const STRING_FIELDS = ['hidden_act', 'activation_function', 'feed_forward_proj', 'position_embedding_type'];
const SIZE_LIMIT = 1 << 24;

function checkConfigSizes(configFile: string, c: Record<string, unknown>, tensors: number): void {
  const bad = (k: string, why: string) => new HfFolderError(configFile, `${k} = ${JSON.stringify(c[k])}: ${why}`);
  for (const k of LAYER_FIELDS) {
    if (c[k] === undefined || c[k] === null) continue;
    if (!(Number.isSafeInteger(c[k]) && (c[k] as number) >= 0)) throw bad(k, 'must be a non-negative integer');
    if ((c[k] as number) > tensors) throw bad(k, `more layers than model.safetensors has tensors (${tensors}): the config does not belong to these weights`);
  }
  for (const k of SIZE_FIELDS) {
    if (c[k] === undefined || c[k] === null) continue;
    if (!(Number.isSafeInteger(c[k]) && (c[k] as number) >= 1 && (c[k] as number) <= SIZE_LIMIT)) throw bad(k, `must be an integer from 1 to ${SIZE_LIMIT}`);
  }
  for (const k of STRING_FIELDS) if (c[k] !== undefined && c[k] !== null && typeof c[k] !== 'string') throw bad(k, 'must be a string');
}

/** Every adapted site's weight is in the folder with the shape the config implies ([out, in] or [in, out] as the site stores it). */
function checkSiteWeights(configFile: string, model: unknown, weights: Map<string, { shape: number[] }>): void {
  const sites = (model as { sites?: { name: string; weightKey: string; inFeatures: number; outFeatures: number; layout: string }[] }).sites ?? [];
  const normalized = (model as { weights?: Map<string, { shape: number[] }> }).weights ?? weights;
  for (const s of sites) {
    const w = normalized.get(s.weightKey);
    const want = s.layout === 'out_in' ? [s.outFeatures, s.inFeatures] : [s.inFeatures, s.outFeatures];
    if (!w) throw new HfFolderError(configFile, `the config implies a weight '${s.weightKey}' (module '${s.name}') that model.safetensors does not have: the config does not belong to these weights`);
    if (w.shape.join(',') !== want.join(',')) throw new HfFolderError(configFile, `module '${s.name}': the config implies a [${want}] weight, model.safetensors has '${s.weightKey}' [${w.shape}]`);
  }
}

/** Loads a local Hugging Face model folder with the builder of its model_type. */
export async function loadModel(dir: string, opts: { tensorSource?: TensorSource; tensorTransform?: TensorTransform } = {}): Promise<LoadedHfModel> {
  const folder = await loadHfFolder(dir, { supportedModelTypes: Object.keys(HF_MODELS), tensorSource: opts.tensorSource, tensorTransform: opts.tensorTransform });
  const entry = HF_MODELS[folder.config.model_type];
  const configFile = path.join(dir, 'config.json');
  let model: unknown;
  checkConfigSizes(configFile, folder.config, folder.weights.size);
  try {
    model = entry.build(folder);
    checkSiteWeights(configFile, model, folder.weights);
  } catch (e) {
    // The config and the weights disagree (or the config is out of range): name config.json; a bug keeps its cause.
    if (e instanceof FileFormatError) throw e.inFile(configFile);
    throw new HfFolderError(configFile, `cannot build a ${folder.config.model_type} model from it and model.safetensors: ${String((e as Error)?.message ?? e).replace(`${configFile}: `, '').replace(/^config\.json: /, '')}`, { cause: e });
  }
  return { dir, modelType: folder.config.model_type, kind: entry.kind, config: folder.config, model, tokenizer: folder.tokenizer, folder };
}

/** loadModel for encoder families (BERT, RoBERTa, DistilBERT): an error names the folder when it holds another kind. */
export async function loadEncoderModel(dir: string): Promise<LoadedHfModel<EncoderModel>> {
  const m = await loadModel(dir);
  if (m.kind !== 'encoder') throw new Error(`${dir}/config.json: model_type '${m.modelType}' is a ${m.kind} model, not an encoder (encoders: ${Object.entries(HF_MODELS).filter(([, e]) => e.kind === 'encoder').map(([k]) => k).join(', ')})`);
  return m as LoadedHfModel<EncoderModel>;
}

/**
 * The linear sites of a folder's model by the name of the tensor in its
 * safetensors that holds their weight, known before any weight is read: the
 * model is built from the headers alone (zero-length arrays of the right
 * shapes) and each site's weight found by identity. Only sites whose weight is
 * their own ('<site>.weight': not a tied head) and that the builder keeps as
 * read (not copied or derived) are listed. Undefined when the folder's model
 * cannot be built this way.
 */
export function linearSitesByTensor(dir: string): Map<string, LinearSite> | undefined {
  try {
    const config = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
    const entry = HF_MODELS[config.model_type];
    if (!entry) return undefined;
    const weights = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const f of hfWeightFiles(dir)) {
      for (const [name, t] of readSafetensorsHeader(f).tensors) if (['F32', 'F16', 'BF16', 'F64'].includes(t.dtype)) weights.set(name, { shape: t.shape, data: new Float32Array(0) });
    }
    const model = entry.build({ dir, config, weights } as HfFolder) as { sites?: LinearSite[]; weights?: Map<string, { data: unknown }> };
    const nameOf = new Map([...weights].map(([k, w]) => [w.data as unknown, k]));
    const out = new Map<string, LinearSite>();
    for (const s of model.sites ?? []) {
      const name = nameOf.get(model.weights?.get(s.weightKey)?.data);
      if (s.kind !== 'embedding' && s.weightKey === `${s.name}.weight` && name !== undefined) out.set(name, s);
    }
    return out;
  } catch {
    return undefined; // the ordinary load reports what is wrong with the folder
  }
}
