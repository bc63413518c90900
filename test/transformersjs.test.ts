// `lorakit export-onnx --out DIR` writes the folder layout transformers.js
// loads (config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx):
// @huggingface/transformers, offline from a local path and with no lorakit
// code, gives the same last_hidden_state as lorakit's unmerged LoRA (1e-4),
// through its own tokenizer and pipeline as well as from given ids.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { AutoModel, env, pipeline, Tensor } from '@huggingface/transformers';
import { makeProgram } from '../src/cli/main.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { bertWithGoldenLora, unmergedExportOutput } from './helpers/bert_lora.ts';

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-tjs-'));
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = root;
env.useFSCache = false;

for (const name of ['bert', 'roberta']) {
  describe(`transformers.js loads lorakit's export of ${name} + merged LoRA`, () => {
    let fx: Awaited<ReturnType<typeof bertWithGoldenLora>>;
    const folder = `${name}-lora`;
    before(async () => {
      fx = await bertWithGoldenLora(name);
      const aDir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-tjs-adapter-'));
      saveAdapter(aDir, fx.set, { baseModel: name });
      const log = console.log;
      console.log = () => {};
      try {
        await makeProgram().parseAsync(['node', 'lorakit', 'export-onnx', '--model', fx.dir, '--adapter', aDir, '--output', 'last_hidden_state', '--out', path.join(root, folder)]);
      } finally {
        console.log = log;
      }
      for (const f of ['config.json', 'tokenizer.json', 'tokenizer_config.json', 'onnx/model.onnx']) assert.ok(fs.existsSync(path.join(root, folder, f)), f);
    });

    test('AutoModel on a padded batch: last_hidden_state equals lorakit’s unmerged adapter (1e-4)', async () => {
      const model = await AutoModel.from_pretrained(folder, { dtype: 'fp32' });
      try {
        const b = fx.batch;
        const out = await model({
          input_ids: new Tensor('int64', b.ids, [b.B, b.T]),
          attention_mask: new Tensor('int64', BigInt64Array.from(b.mask, (x) => BigInt(x)), [b.B, b.T]),
        });
        assert.deepEqual(out.last_hidden_state.dims, [b.B, b.T, fx.model.hiddenSize]);
        const ours = await unmergedExportOutput(fx.model, fx.set, 'last_hidden_state', b);
        const d = maxAbsDiff(out.last_hidden_state.data as Float32Array, ours);
        assert.ok(d < 1e-4, `transformers.js vs lorakit max |Δ| ${d}`);
      } finally {
        await model.dispose();
      }
    });

    test("pipeline('feature-extraction') tokenizes as lorakit does and gives the same states (1e-4)", async () => {
      const text = 'a tiny model reads a short sentence';
      const extractor = await pipeline('feature-extraction', folder, { dtype: 'fp32' });
      try {
        const ids = extractor.tokenizer(text).input_ids.tolist()[0].map(Number);
        assert.deepEqual(ids, fx.tokenizer!.encode(text));
        const out = await extractor(text);
        const T = ids.length;
        const ours = await unmergedExportOutput(fx.model, fx.set, 'last_hidden_state', { B: 1, T, ids: BigInt64Array.from(ids, BigInt), mask: new Float32Array(T).fill(1) });
        assert.deepEqual(out.dims, [1, T, fx.model.hiddenSize]);
        const d = maxAbsDiff(out.data as Float32Array, ours);
        assert.ok(d < 1e-4, `pipeline vs lorakit max |Δ| ${d}`);
      } finally {
        await extractor.dispose();
      }
    });
  });
}
