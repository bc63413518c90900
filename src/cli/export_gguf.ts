// `lorakit export-gguf`: a Llama / Mistral / Qwen2 folder as one GGUF file for
// llama.cpp (node-llama-cpp, llama-cli, Ollama...), with adapters merged in;
// or, with --adapter-only, the adapter alone as a GGUF LoRA that llama.cpp
// applies at load time on the GGUF of the unchanged base.
import fs from 'node:fs';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadModel } from '../models/load.ts';
import type { LlamaConfig } from '../models/llama.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { mergeAdapters } from '../peft/export.ts';
import { exportLoraGguf, exportModelGguf, ggufArchitecture } from '../peft/gguf_export.ts';
import { ggufVocabFromTokenizerJson } from '../tokenize/gguf_vocab.ts';
import type { GgufDtype } from '../io/gguf.ts';
import { num } from './parse.ts';

export interface ExportGgufOptions {
  model: string;
  adapters?: string[];
  weights?: number[];
  out: string;
  /** Write the single --adapter as a GGUF LoRA instead of a merged model. */
  adapterOnly?: boolean;
  dtype?: 'f32' | 'f16';
  warn?: (m: string) => void;
}

export interface ExportGgufResult { file: string; bytes: number; tensors?: number; modules?: number; alpha?: number }

function readJsonIf(file: string): Record<string, any> | undefined {
  if (!fs.existsSync(file)) return undefined;
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new Error(`${file}: invalid JSON (${(e as Error).message})`);
  }
}

export async function runExportGguf(o: ExportGgufOptions): Promise<ExportGgufResult> {
  const warn = o.warn ?? ((m: string) => console.warn(m));
  const adapters = o.adapters ?? [];
  const { model } = await loadModel(o.model, 'decoder');
  ggufArchitecture(model); // refuses other families before any work
  const c = model.config as LlamaConfig;
  const dtype: GgufDtype = o.dtype === 'f16' ? 'F16' : 'F32';
  const name = path.basename(path.resolve(o.model));
  if (o.adapterOnly) {
    if (adapters.length !== 1) throw new InvalidArgumentError('--adapter-only needs exactly one --adapter');
    const { set } = loadPeftAdapter(model, adapters[0], { warn, headNames: model.headNames });
    const r = exportLoraGguf(model, set, o.out, { name: `${name}-${path.basename(path.resolve(adapters[0]))}`, dtype });
    return { file: o.out, ...r };
  }
  const tokFile = path.join(o.model, 'tokenizer.json');
  const tok = readJsonIf(tokFile);
  if (!tok) throw new Error(`${tokFile}: not found; llama.cpp refuses a model without a vocabulary, so export-gguf needs the folder's tokenizer.json`);
  const tokCfg = readJsonIf(path.join(o.model, 'tokenizer_config.json')) ?? {};
  const vocab = ggufVocabFromTokenizerJson(tok, {
    vocabSize: c.vocabSize, modelType: c.modelType, bosTokenId: c.bosTokenId, eosTokenId: c.eosTokenIds[0], padTokenId: c.padTokenId,
    addBos: typeof tokCfg.add_bos_token === 'boolean' ? tokCfg.add_bos_token : undefined,
    addEos: typeof tokCfg.add_eos_token === 'boolean' ? tokCfg.add_eos_token : undefined,
  });
  if (c.slidingWindow !== undefined && c.slidingWindow < c.maxPositions) {
    warn(`export-gguf: sliding_window ${c.slidingWindow}: llama.cpp's llama architecture attends to every earlier position, so outputs differ from lorakit's once a sequence is longer than ${c.slidingWindow} tokens`);
  }
  const merged = adapters.length ? model.withWeights(mergeAdapters(model, adapters, o.weights, warn)) : model;
  const r = exportModelGguf(merged, o.out, { vocab, name, dtype });
  return { file: o.out, ...r };
}

export function registerExportGguf(program: Command): void {
  const collect = (v: string, prev: string[]) => [...prev, v];
  program
    .command('export-gguf')
    .description('Export a Llama / Mistral / Qwen2 folder as GGUF for llama.cpp and node-llama-cpp (adapters merged in), or with --adapter-only the adapter as a GGUF LoRA applied at load time')
    .requiredOption('--model <dir>', 'Hugging Face Llama, Mistral or Qwen2 folder (config.json, model.safetensors, tokenizer.json)')
    .option('--adapter <dir>', 'adapter folder: merged into the weights (repeat for several); with --adapter-only, the one adapter to write', collect, [])
    .option('--weights <list>', 'one weight per --adapter (merged as W0 + Σ wᵢ·ΔWᵢ)', (v) => v.split(',').map((x) => num('--weights')(x.trim())))
    .option('--adapter-only', 'write the adapter alone as a GGUF LoRA (plain LoRA and other low-rank methods; llama.cpp applies it on the base GGUF)', false)
    .addOption(new Option('--dtype <type>', 'float type of the weight matrices (norms stay f32)').choices(['f32', 'f16']).default('f32'))
    .requiredOption('--out <file.gguf>', 'output file')
    .action(async (o) => {
      const r = await runExportGguf({ model: o.model, adapters: o.adapter, weights: o.weights, out: o.out, adapterOnly: o.adapterOnly, dtype: o.dtype });
      const what = r.modules !== undefined ? `LoRA of ${r.modules} module(s), alpha ${r.alpha}` : `${r.tensors} tensors`;
      console.log(`${r.file}: ${(r.bytes / 1e6).toFixed(1)} MB, ${what}`);
    });
}
