// Every adapter method (and LoRA init: QPiSSA, QOLoRA) trains on a 4-bit base:
// a short causal-LM run on llama-tiny loaded with --base-dtype nf4 and int4
// lowers the loss, with the frozen products on MatMulBnb4 / MatMulNBits and
// their input gradients through the same codes (src/graph/quantized_4bit.ts).
// Configs and learning rates are each method's own test_config.ts (the shared
// harness's), as the fp32 runs of test/adapter_suite.test.ts use them.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import type { HfTokenizer } from '../src/io/hf.ts';
import { fit } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { quantizedFormOf } from '../src/quant/quantized_weights.ts';
import { adapterCases } from './helpers/adapter_suite.ts';
import { adapterFolders } from './helpers/method_folders.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const PHRASES = ['red apples fall', 'green pears ripen', 'the blue sky clears', 'a dark night falls', 'the warm sun rises', 'cold rain pours'];
const DTYPES = ['nf4', 'int4'] as const;
const bases = new Map<string, { model: DecoderModel; tok: HfTokenizer }>();

before(async () => {
  for (const d of DTYPES) {
    const l = await loadModel(path.join(FIX, 'llama-tiny'), 'decoder', { baseDtype: d });
    bases.set(d, { model: l.model, tok: l.tokenizer! });
  }
});

const cases = adapterCases(await adapterFolders(), lora).filter((c) => !c.variant || c.residualInit);
test('the 4-bit method runs cover every registered method and both LoRA inits', () => assert.ok(cases.length >= 20, `${cases.length} cases`));

for (const c of cases) {
  test(`[${c.name}] trains on an nf4 and an int4 llama-tiny base (the loss falls)`, async () => {
    for (const d of DTYPES) {
      const { model, tok } = bases.get(d)!;
      const set = new AdapterSet(c.method, c.method.schema.parse(c.test.config), model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 2 });
      assert.equal(quantizedFormOf(model.weights.get(set.targets[0].weightKey)!.data)?.dtype, d);
      const data = PHRASES.map((p) => ({ ids: tok.encode(p), promptLength: 1 }));
      const r = await fit(new CausalLmTask(model, { padId: 0 }), set, { train: data }, { epochs: 4, lr: c.test.lr, batchSize: 2, seed: 4, warmupRatio: 0, schedule: 'constant', maxGradNorm: 1, threads: 1 });
      const [first, last] = [r.epochLosses[0], r.epochLosses.at(-1)!];
      assert.ok(Number.isFinite(last) && last < first, `${d}: mean training loss per epoch ${r.epochLosses.map((l) => l.toFixed(4)).join(' → ')}`);
    }
  });
}
