// `lorakit merge` and `lorakit export-onnx` (kept out of main.ts so the
// command file stays a list of commands). --model is 'use' (bundled), a folder
// `lorakit merge` wrote for it, or a Hugging Face folder of any family lorakit
// builds (encoders, decoder LMs, T5/BART).
import fs from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'commander';
import { HfFolder, loadHfFolder } from '../io/hf.ts';
import { loadUseEncoder, USE_MODEL_NAME } from '../models/use_encoder.ts';
import { HF_MODELS } from '../models/hf_registry.ts';
import {
  AnyModel, exportOnnx, ExportHead, ExportOutput, loadMergedWeights, MERGED_CONFIG, mergeAdapters, saveMergedHfFolder, saveMergedModel,
} from '../peft/export.ts';
import { loadPeftAdapter } from '../peft/adapter_files.ts';
import { HEAD_B, HEAD_W } from '../train/classifier.ts';
import { num } from './parse.ts';

interface Base { model: AnyModel; name: string; folder?: HfFolder }

async function loadBase(spec: string): Promise<Base> {
  if (spec === 'use' || spec === 'default') return { model: await loadUseEncoder(), name: USE_MODEL_NAME };
  if (fs.existsSync(spec) && fs.statSync(spec).isDirectory()) {
    const cfgPath = path.join(spec, MERGED_CONFIG);
    if (!fs.existsSync(cfgPath)) throw new Error(`--model ${spec}: no ${MERGED_CONFIG} (expected a Hugging Face model folder or one written by 'lorakit merge')`);
    const cfg = JSON.parse(fs.readFileSync(cfgPath, 'utf8'));
    if (cfg.model_type) {
      // The folder itself (not loadModel): the merged folder is written under the names of the tensors the model was built from.
      const folder = await loadHfFolder(spec, { supportedModelTypes: Object.keys(HF_MODELS), noTokenizer: true });
      return { model: HF_MODELS[folder.config.model_type].build(folder) as AnyModel, name: spec, folder };
    }
    const { base, weights } = loadMergedWeights(spec);
    if (base !== USE_MODEL_NAME && base !== 'use') throw new Error(`--model ${spec}: base '${base}' is not supported`);
    return { model: (await loadUseEncoder()).withWeights(weights), name: USE_MODEL_NAME };
  }
  throw new Error(`--model '${spec}': use 'use' (bundled), a Hugging Face model folder, or a folder written by 'lorakit merge'`);
}

export interface MergeOptions { model: string; adapters: string[]; weights?: number[]; out: string }

export async function runMerge(o: MergeOptions): Promise<{ modules: number }> {
  const base = await loadBase(o.model);
  const merged = mergeAdapters(base.model, o.adapters, o.weights);
  if (base.folder) return { modules: saveMergedHfFolder(o.out, base.folder, base.model, merged, { adapters: o.adapters, weights: o.weights }).changed };
  let changed = 0;
  for (const [k, v] of merged) if (v.data !== base.model.weights.get(k)?.data) changed++;
  saveMergedModel(o.out, merged, { base: base.name, adapters: o.adapters, weights: o.weights });
  return { modules: changed };
}

export interface ExportOptions extends MergeOptions { output?: ExportOutput }

export async function runExportOnnx(o: ExportOptions) {
  const base = await loadBase(o.model);
  let model = base.model;
  // One adapter trained by `lorakit train` carries its classification head (modules_to_save 'classifier'): export it as `logits`.
  const head = o.adapters.length === 1 ? headOf(loadPeftAdapter(model, o.adapters[0], { warn: () => {}, headNames: 'headNames' in model ? model.headNames : undefined }).extraTensors) : undefined;
  if (o.adapters.length) model = model.withWeights(mergeAdapters(model, o.adapters, o.weights));
  return exportOnnx(model, o.out, { output: o.output, head, copyFrom: base.folder?.dir });
}

function headOf(extra: Map<string, { shape: number[]; data: Float32Array }>): ExportHead | undefined {
  const w = extra.get(HEAD_W), b = extra.get(HEAD_B);
  return w && b ? { weight: w.data, bias: b.data, numLabels: w.shape[0] } : undefined;
}

export function registerMergeExport(program: Command): void {
  const collect = (v: string, prev: string[]) => [...prev, v];
  const weightsList = (v: string) => v.split(',').map((x) => num('--weights')(x.trim()));
  const modelHelp = "'use' (bundled), a Hugging Face folder (BERT/RoBERTa/DistilBERT, GPT-2/Llama/Qwen2/Mistral, T5/BART) or a folder written by lorakit merge";
  program
    .command('merge')
    .description('Merge one or more adapters into the base weights and write a model folder (a Hugging Face folder stays one: same tensor names, config and tokenizer)')
    .option('--model <name|dir>', modelHelp, 'use')
    .requiredOption('--adapter <dir>', 'adapter folder (repeat for several)', collect, [])
    .option('--weights <list>', 'one weight per --adapter, e.g. 0.7,0.3 (merged as W0 + Σ wᵢ·ΔWᵢ)', weightsList)
    .requiredOption('--out <dir>', 'output folder')
    .action(async (o) => {
      const r = await runMerge({ model: o.model, adapters: o.adapter, weights: o.weights, out: o.out });
      console.log(`merged ${o.adapter.length} adapter(s) into ${r.modules} tensor(s): ${o.out}`);
    });

  program
    .command('export-onnx')
    .description('Export a plain ONNX model (inputs input_ids, attention_mask) that onnxruntime and transformers.js load without lorakit; T5/BART: an encoder and a decoder model in a folder')
    .option('--model <name|dir>', modelHelp, 'use')
    .option('--adapter <dir>', 'merge this adapter first (repeat for several)', collect, [])
    .option('--weights <list>', 'one weight per --adapter', weightsList)
    .addOption(new Option('--output <name>', 'output tensor (default: logits for decoders and models with a head, last_hidden_state for BERT-family encoders, embeddings for use)').choices(['logits', 'last_hidden_state', 'embeddings']))
    .requiredOption('--out <file.onnx|dir>', 'an .onnx file, or a folder in transformers.js layout (onnx/model.onnx, or onnx/encoder_model.onnx + onnx/decoder_model.onnx for T5/BART, + config and tokenizer files)')
    .action(async (o) => {
      const r = await runExportOnnx({ model: o.model, adapters: o.adapter, weights: o.weights, out: o.out, output: o.output });
      for (const p of r.parts ?? [r]) console.log(`${p.file}: ${(p.bytes / 1e6).toFixed(1)} MB, inputs ${p.inputs.join(', ')}, output ${p.outputs.join(', ')}`);
    });
}
