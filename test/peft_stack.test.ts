// Several adapters active at once (PeftModel.setActiveAdapters, the
// cross-lingual Stack(language, task)): for LoRA the stacked output equals one
// adapter holding ΔW1 + ΔW2 (PEFT's add_weighted_adapter 'cat', exact), and
// differs from either adapter alone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

test('stacked LoRA adapters = W0 + ΔW1 + ΔW2; order, switching back and errors', async () => {
  const model = await loadUseEncoder();
  const tok = UseTokenizer.fromVocabFile();
  const batch = padBatch(['Was ist die Hauptstadt?', 'The capital city of Germany is Berlin.'].map((t) => tok.encode(t)));
  const mk = (seed: number, targets: string[]) => new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false }), model.sites, model.weights, { targetModules: targets, seed });
  const pm = new PeftModel(model, { threads: 2 });
  pm.addAdapter('lang', mk(1, ['qkv', 'conv1']));
  pm.addAdapter('task', mk(2, ['qkv', 'conv2']));
  pm.addWeightedAdapter(['lang', 'task'], [1, 1], 'sum', 'cat');
  const out = async () => (await pm.run(batch)).data as Float32Array;
  pm.setAdapter('sum');
  const want = await out();
  pm.setActiveAdapters(['lang', 'task']);
  assert.deepEqual(pm.activeAdapters, ['lang', 'task']);
  const stacked = await out();
  assert.ok(maxAbsDiff(stacked, want) < 1e-5, `stacked vs ΔW1 + ΔW2: ${maxAbsDiff(stacked, want)}`);
  pm.setActiveAdapters(['task', 'lang']);
  assert.ok(maxAbsDiff(await out(), want) < 1e-5, 'LoRA deltas add in either order');
  pm.setAdapter('task');
  const task = await out();
  assert.ok(maxAbsDiff(task, want) > 1e-3, 'the task adapter alone differs');
  assert.deepEqual(pm.activeAdapters, ['task']);
  assert.throws(() => pm.setActiveAdapters(['lang', 'nope']), /No adapter named 'nope'/);
  assert.throws(() => pm.setActiveAdapters(['lang', 'lang']), /named twice/);
  await pm.release();
});
