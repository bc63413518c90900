// The language-adapter alignment task (lorakit train --task align): its loss is
// mean ‖u(source) − t(target)‖² with u the adapted unit embedding and t the
// base model's unit embedding of the translation (checked against the
// PeftModel path at the start, where the LoRA's B = 0 leaves the base), and a
// few epochs lower it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTrainJob } from '../src/tasks/train.ts';
import { loadModel } from '../src/models/load.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';

const PAIRS = [
  ['Ich habe Hunger.', 'I am hungry.'],
  ['Wo ist der Bahnhof?', 'Where is the train station?'],
  ['Das Wetter ist heute schön.', 'The weather is nice today.'],
  ['Er liest ein Buch.', 'He is reading a book.'],
  ['Wir gehen morgen ins Kino.', 'We are going to the cinema tomorrow.'],
  ['Meine Katze schläft gern.', 'My cat likes to sleep.'],
];

test('align: the loss is mean ‖u(de) − t(en)‖² against the base model\'s English embeddings, and training lowers it', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-align-'));
  const data = path.join(dir, 'pairs.jsonl');
  fs.writeFileSync(data, PAIRS.map(([s, t]) => JSON.stringify({ source: s, target: t })).join('\n') + '\n');
  const { model, tokenizer } = await loadModel('use', 'encoder');
  const pm = new PeftModel(model, { threads: 1 });
  const unit = async (texts: string[]) => {
    const r = await pm.run(padBatch(texts.map((t) => tokenizer!.encode(t))));
    const H = r.dims[1], d = r.data as Float32Array;
    return texts.map((_, i) => {
      const v = d.slice(i * H, (i + 1) * H);
      const n = Math.sqrt(v.reduce((a, x) => a + x * x, 0));
      return v.map((x) => x / n);
    });
  };
  const u = await unit(PAIRS.map((p) => p[0])), t = await unit(PAIRS.map((p) => p[1]));
  await pm.release();
  const base = u.reduce((a, v, i) => a + v.reduce((s, x, j) => s + (x - t[i][j]) ** 2, 0), 0) / PAIRS.length;
  const once = await runTrainJob({ task: 'align', model: 'use', data, validation: data, method: 'lora', methodConfig: {}, epochs: 1, lr: 1e-12, batchSize: 6, seed: 1, out: path.join(dir, 'zero'), threads: 1 });
  assert.ok(Math.abs(once.validation!.loss - base) < 1e-4, `task loss ${once.validation!.loss} vs ${base} by hand`);
  const r = await runTrainJob({ task: 'align', model: 'use', data, validation: data, method: 'lora', methodConfig: {}, epochs: 8, lr: 5e-3, batchSize: 3, seed: 1, out: path.join(dir, 'run'), threads: 1 });
  assert.ok(r.validation!.loss < 0.7 * base, `loss ${base} → ${r.validation!.loss}`);
  assert.ok(fs.existsSync(path.join(dir, 'run/adapter/adapter_model.safetensors')));
});
