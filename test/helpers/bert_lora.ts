// A BERT-family fixture folder with the PyTorch reference's LoRA
// (tools/reference/hf_bert_family.py), and lorakit's own forward of the export
// graph with that adapter unmerged: what exported ONNX models are checked against.
import fs from 'node:fs';
import path from 'node:path';
import { AdapterSet } from '../../src/adapters/inject.ts';
import { lora } from '../../src/adapters/lora/index.ts';
import type { BertModel } from '../../src/models/bert.ts';
import { loadEncoderModel } from '../../src/models/hf_registry.ts';
import { buildExportGraph, type ExportOutput } from '../../src/peft/export.ts';
import { plainLinear } from '../../src/serve/peft_model.ts';
import { CompiledGraph } from '../../src/runtime/session.ts';

export const HF_FIXTURES = new URL('../fixtures/hf/', import.meta.url).pathname;

export interface IdsBatch { ids: BigInt64Array; mask: Float32Array; B: number; T: number }

export async function bertWithGoldenLora(name: string) {
  const dir = path.join(HF_FIXTURES, name);
  const gd = JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8'));
  const loaded = await loadEncoderModel(dir);
  const model = loaded.model as BertModel;
  const set = new AdapterSet(lora, lora.schema.parse({ r: gd.lora.r, lora_alpha: gd.lora.alpha }), model.sites, model.weights, { targetModules: gd.lora.targets });
  for (const [k, v] of Object.entries<{ data: number[] }>(gd.lora.params)) set.params.get(k)!.set(v.data);
  const batch: IdsBatch = { B: gd.input_ids.length, T: gd.input_ids[0].length, ids: BigInt64Array.from(gd.input_ids.flat(), BigInt), mask: Float32Array.from(gd.attention_mask.flat()) };
  return { dir, gd, model, set, batch, tokenizer: loaded.tokenizer };
}

/** lorakit's forward of the export graph with the adapter unmerged (its params fed per run); null: the plain model. */
export async function unmergedExportOutput(m: BertModel, set: AdapterSet | null, output: ExportOutput, b: IdsBatch): Promise<Float32Array> {
  const cg = await CompiledGraph.compile(buildExportGraph(m, set ? set.linear({ training: false }) : plainLinear, { output }).graph, { threads: 2 });
  try {
    const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
      input_ids: { data: b.ids, dims: [b.B, b.T] },
      attention_mask: { data: BigInt64Array.from(b.mask, (x) => BigInt(x)), dims: [b.B, b.T] },
    };
    for (const [k, v] of set?.params ?? []) feeds[k] = { data: v, dims: set!.shapes.get(k)! };
    return (await cg.run(feeds))[output].data as Float32Array;
  } finally {
    await cg.release();
  }
}
