// A local Hugging Face model folder: config.json, model.safetensors (or the
// sharded model.safetensors.index.json + shards), tokenizer.json (through
// @huggingface/tokenizers) and tokenizer_config.json's chat template (through
// @huggingface/jinja). Weights come back as Float32Array whatever their stored
// float type (F16 / BF16 upcast exactly by safetensors.ts, F64 rounded).
// Every problem is reported with the file it comes from.

import fs from 'node:fs';
import path from 'node:path';
import { Template } from '@huggingface/jinja';
import { Tokenizer } from '@huggingface/tokenizers';
import { readSafetensors, type TensorData } from './safetensors.ts';
import { FileFormatError } from '../util/errors.ts';

export type HfWeights = Map<string, { shape: number[]; data: Float32Array }>;

export interface HfFolder {
  dir: string;
  config: any;
  weights: HfWeights;
  tokenizer?: HfTokenizer;
}

export interface LoadHfOptions {
  /** model_type values the caller can build; anything else is an error listing them. */
  supportedModelTypes?: string[];
  /** Skip tokenizer.json even where it exists. */
  noTokenizer?: boolean;
  /**
   * Weights the caller already holds in another form (a saved quantized base):
   * for a tensor name and its shape, the array to use instead of reading its
   * bytes (undefined: read it). The whole float32 model is then never resident.
   */
  tensorSource?: TensorSource;
  /** Each float32 weight as it is read, before the next one is (e.g. quantized at once: the whole float32 model is never resident). */
  tensorTransform?: TensorTransform;
}

export type TensorSource = (name: string, shape: number[]) => Float32Array | undefined;
export type TensorTransform = (name: string, data: Float32Array) => Float32Array;

export class HfFolderError extends FileFormatError {
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(file, problem, options);
    this.name = 'HfFolderError';
  }
}

export interface ChatMessage {
  role: string;
  content: string;
}

function readJson(file: string, what: string): any {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new HfFolderError(file, code === 'ENOENT' ? `missing (a Hugging Face model folder needs ${what})` : `cannot read (${code ?? (e as Error).message})`);
  }
  try {
    const v = JSON.parse(text);
    if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new Error('not a JSON object');
    return v;
  } catch (e) {
    throw new HfFolderError(file, `invalid JSON (${(e as Error).message})`);
  }
}

/** A special-token entry of tokenizer_config.json: a string or an AddedToken dict. */
function tokenText(t: unknown): string | undefined {
  if (typeof t === 'string') return t;
  if (t && typeof t === 'object' && typeof (t as any).content === 'string') return (t as any).content;
  return undefined;
}

/**
 * Token ids of tokenizer.json's vocabulary and added tokens must be integers
 * near the entry count: the tokenizer allocates a table up to the largest id,
 * so one hostile id (10⁹) would take gigabytes.
 */
function checkTokenIds(json: any, file: string): void {
  const vocab = json?.model?.vocab;
  const ids: [string, unknown][] = vocab && typeof vocab === 'object' && !Array.isArray(vocab) ? Object.entries(vocab) : [];
  const added: unknown[] = Array.isArray(json?.added_tokens) ? json.added_tokens : [];
  for (const t of added) ids.push([String((t as any)?.content), (t as any)?.id]);
  const entries = ids.length + (Array.isArray(vocab) ? vocab.length : 0);
  const limit = 2 * entries + 1024;
  for (const [token, id] of ids) {
    if (!(Number.isSafeInteger(id) && (id as number) >= 0 && (id as number) < limit)) {
      throw new HfFolderError(file, `token ${JSON.stringify(token).slice(0, 40)} has id ${JSON.stringify(id)}: ids must be integers from 0 up to about the number of tokens (${entries}); the file is corrupt`);
    }
  }
}

/** tokenizer.json (+ tokenizer_config.json) through @huggingface/tokenizers. */
export class HfTokenizer {
  readonly vocabSize: number;
  readonly eosTokenId?: number;
  readonly padTokenId?: number;
  readonly bosTokenId?: number;
  private template?: Template;

  constructor(
    readonly tokenizer: Tokenizer,
    readonly tokenizerConfig: Record<string, any> = {},
    modelConfig: Record<string, any> = {},
    readonly file = 'tokenizer.json',
  ) {
    let max = -1;
    for (const id of tokenizer.get_vocab(true).values()) if (id > max) max = id;
    this.vocabSize = max + 1;
    const idOf = (key: string, cfgKey: string): number | undefined => {
      const t = tokenText(tokenizerConfig[key]);
      const fromTok = t !== undefined ? tokenizer.token_to_id(t) : undefined;
      if (fromTok !== undefined) return fromTok;
      const c = modelConfig[cfgKey];
      return typeof c === 'number' ? c : Array.isArray(c) && typeof c[0] === 'number' ? c[0] : undefined;
    };
    this.eosTokenId = idOf('eos_token', 'eos_token_id');
    this.padTokenId = idOf('pad_token', 'pad_token_id');
    this.bosTokenId = idOf('bos_token', 'bos_token_id');
    let tpl = tokenizerConfig.chat_template;
    if (Array.isArray(tpl)) tpl = (tpl.find((t: any) => t?.name === 'default') ?? tpl[0])?.template;
    if (typeof tpl === 'string') this.template = new Template(tpl);
  }

  /** Reads `<dir>/tokenizer.json` and, where present, `<dir>/tokenizer_config.json`. */
  static fromFolder(dir: string, modelConfig: Record<string, any> = {}): HfTokenizer {
    const file = path.join(dir, 'tokenizer.json');
    const json = readJson(file, 'tokenizer.json');
    const cfgFile = path.join(dir, 'tokenizer_config.json');
    const cfg = fs.existsSync(cfgFile) ? readJson(cfgFile, 'tokenizer_config.json') : {};
    checkTokenIds(json, file);
    let tok: Tokenizer;
    try {
      tok = new Tokenizer(json, cfg);
      // Some broken files only fail when used: a round trip now, so they fail here, naming the file.
      tok.decode(tok.encode('Hello world, 12 apples!').ids);
    } catch (e) {
      throw new HfFolderError(file, `cannot build the tokenizer (${(e as Error)?.message ?? String(e)}): the file is corrupt or from an unsupported tokenizers version`);
    }
    return new HfTokenizer(tok, cfg, modelConfig, file);
  }

  /** Token ids of `text`; special tokens ([CLS] … [SEP], <s> … </s>) added by default, as in transformers. */
  encode(text: string, opts: { addSpecialTokens?: boolean } = {}): number[] {
    return this.tokenizer.encode(text, { add_special_tokens: opts.addSpecialTokens ?? true }).ids;
  }

  /** A sentence pair (cross-encoders): ids and token_type_ids (0 for the first segment, 1 for the second). */
  encodePair(a: string, b: string, opts: { addSpecialTokens?: boolean } = {}): { ids: number[]; tokenTypeIds: number[] } {
    const e = this.tokenizer.encode(a, { text_pair: b, add_special_tokens: opts.addSpecialTokens ?? true, return_token_type_ids: true });
    return { ids: e.ids, tokenTypeIds: e.token_type_ids };
  }

  decode(ids: number[], opts: { skipSpecialTokens?: boolean } = {}): string {
    return this.tokenizer.decode(ids, { skip_special_tokens: opts.skipSpecialTokens ?? false });
  }

  get hasChatTemplate(): boolean {
    return this.template !== undefined;
  }

  /** Renders tokenizer_config.json's `chat_template` (jinja) over the messages. */
  applyChatTemplate(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean } = {}): string {
    if (!this.template) throw new Error(`${path.join(path.dirname(this.file), 'tokenizer_config.json')}: no chat_template`);
    const c = this.tokenizerConfig;
    return this.template.render({
      messages,
      add_generation_prompt: opts.addGenerationPrompt ?? false,
      bos_token: tokenText(c.bos_token) ?? '',
      eos_token: tokenText(c.eos_token) ?? '',
      pad_token: tokenText(c.pad_token) ?? '',
      unk_token: tokenText(c.unk_token) ?? '',
    });
  }
}

/** Safetensors files of a Hugging Face folder (model.safetensors, or the shards of its index). */
export function hfWeightFiles(dir: string): string[] {
  const index = path.join(dir, 'model.safetensors.index.json');
  if (fs.existsSync(index)) return [...new Set(Object.values(readJson(index, 'model.safetensors.index.json').weight_map as Record<string, string>))].map((f) => path.join(dir, f));
  return [path.join(dir, 'model.safetensors')];
}

/** Weights of a folder: model.safetensors, or model.safetensors.index.json and its shards. */
export function readHfWeights(dir: string, source?: TensorSource, transform?: TensorTransform): HfWeights {
  const single = path.join(dir, 'model.safetensors');
  const index = path.join(dir, 'model.safetensors.index.json');
  const out: HfWeights = new Map();
  const addFile = (file: string, only?: Set<string>) => {
    const skip = (name: string, info: { shape: number[] }) => {
      if (only && !only.has(name)) return false;
      const held = source?.(name, info.shape);
      if (held) out.set(name, { shape: info.shape, data: held });
      return held !== undefined;
    };
    const map = (name: string, t: TensorData): TensorData => (transform && t.data instanceof Float32Array && (!only || only.has(name)) ? { ...t, data: transform(name, t.data) } : t);
    for (const [name, t] of readSafetensors(file, { skip, map }).tensors) {
      if (only && !only.has(name)) continue;
      if (t.data instanceof Float32Array) out.set(name, { shape: t.shape, data: t.data });
      else if (t.data instanceof Float64Array) out.set(name, { shape: t.shape, data: Float32Array.from(t.data) });
      // Integer buffers (position_ids, token_type_ids of older BERT checkpoints) are not weights: skipped.
    }
  };
  if (fs.existsSync(index)) {
    const idx = readJson(index, 'model.safetensors.index.json');
    const wm = idx.weight_map;
    if (!wm || typeof wm !== 'object') throw new HfFolderError(index, "no 'weight_map' object");
    const byShard = new Map<string, Set<string>>();
    for (const [name, shard] of Object.entries(wm)) {
      if (typeof shard !== 'string') throw new HfFolderError(index, `weight_map['${name}'] is not a file name`);
      if (!byShard.has(shard)) byShard.set(shard, new Set());
      byShard.get(shard)!.add(name);
    }
    for (const [shard, names] of byShard) {
      const file = path.join(dir, shard);
      if (!fs.existsSync(file)) {
        throw new HfFolderError(file, `missing shard: model.safetensors.index.json (${index}) maps ${names.size} tensors to it (e.g. '${[...names][0]}'); the folder is incomplete, re-download it`);
      }
      addFile(file, names);
      for (const n of names) {
        if (!out.has(n)) {
          // present as an integer buffer is fine; absent is not
          const hdr = readSafetensors(file, { upcast: false }).tensors;
          if (!hdr.has(n)) throw new HfFolderError(file, `tensor '${n}' listed for this shard in model.safetensors.index.json is not in the file`);
        }
      }
    }
    return out;
  }
  if (fs.existsSync(single)) {
    addFile(single);
    return out;
  }
  const present = fs.readdirSync(dir).filter((f) => /\.(bin|pt|pth|h5|msgpack|ckpt|safetensors)$/.test(f));
  throw new HfFolderError(
    dir,
    `no model.safetensors or model.safetensors.index.json` +
      (present.length ? ` (found ${present.join(', ')}: convert them to safetensors first)` : ''),
  );
}

function checkModelType(configFile: string, config: any, supported?: string[]) {
  const mt = config.model_type;
  if (typeof mt !== 'string') throw new HfFolderError(configFile, "no 'model_type' field (is this a Hugging Face transformers config?)");
  if (supported && !supported.includes(mt)) {
    const arch = Array.isArray(config.architectures) ? ` (architectures: ${config.architectures.join(', ')})` : '';
    throw new HfFolderError(configFile, `unsupported model_type '${mt}'${arch}; supported model_type values: ${supported.join(', ')}`);
  }
}

/** Reads a local Hugging Face model folder (config, weights, tokenizer). */
export async function loadHfFolder(dir: string, opts: LoadHfOptions = {}): Promise<HfFolder> {
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new HfFolderError(dir, 'not a folder');
  const configFile = path.join(dir, 'config.json');
  const config = readJson(configFile, 'config.json');
  checkModelType(configFile, config, opts.supportedModelTypes);
  const weights = readHfWeights(dir, opts.tensorSource, opts.tensorTransform);
  let tokenizer: HfTokenizer | undefined;
  if (!opts.noTokenizer && fs.existsSync(path.join(dir, 'tokenizer.json'))) {
    tokenizer = HfTokenizer.fromFolder(dir, config);
    const vocab = config.vocab_size ?? config.text_config?.vocab_size;
    if (typeof vocab === 'number' && tokenizer.vocabSize > vocab) {
      throw new HfFolderError(
        path.join(dir, 'tokenizer.json'),
        `the tokenizer has ${tokenizer.vocabSize} tokens but the model has vocab_size ${vocab} (${configFile}): ids ≥ ${vocab} have no embedding row; this tokenizer does not belong to this model`,
      );
    }
  }
  return { dir, config, weights, tokenizer };
}
