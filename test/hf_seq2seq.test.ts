// T5 encoder-decoders (ReLU + tied head; gated-GELU + untied head) and BART against the
// plain-PyTorch reference (tools/reference/hf_seq2seq.py): logits, seq2seq loss
// and LoRA gradients, a LoRA training run that lowers the loss, and greedy
// generation with the decoder KV cache == without it == PyTorch greedy; seeded
// sampling (cache == no cache, top-k 1 == greedy) and stop tokens.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { goldenAdapters, type GoldenLora } from './helpers/golden_lora.ts';
import { plainLinear } from '../src/models/decoder.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import { shiftTokensRight, type Seq2SeqModel } from '../src/models/seq2seq.ts';
import { buildSeq2SeqGraph, seq2seqFeeds, Seq2SeqTask, type Seq2SeqBatch } from '../src/train/tasks/seq2seq.ts';
import { fit } from '../src/train/loop.ts';
import { Seq2SeqGenerator } from '../src/serve/seq2seq_generate.ts';
import { t5Bucket } from '../src/models/t5.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { maxAbsDiff } from './helpers/arrays.ts';
import { seq2seqLogitsGraph } from './helpers/seq2seq_logits.ts';

const FIXTURES = new URL('./fixtures/hf/', import.meta.url).pathname;
const NAMES = ['t5-tiny', 't5-gated-tiny', 'bart-tiny'];

interface Golden {
  input_ids: number[][];
  attention_mask: number[][];
  labels: number[][];
  decoder_input_ids: number[][];
  logits: number[];
  loss: number;
  lora: GoldenLora;
  lora_loss: number;
  lora_grads: Record<string, number[]>;
  generate: { prompt: number[]; greedy: number[] };
}

function goldenBatch(gold: Golden): Seq2SeqBatch {
  const B = gold.input_ids.length, S = gold.input_ids[0].length, T = gold.labels[0].length;
  return {
    B, S, T,
    inputIds: BigInt64Array.from(gold.input_ids.flat(), BigInt),
    attentionMask: Float32Array.from(gold.attention_mask.flat()),
    labels: BigInt64Array.from(gold.labels.flat(), BigInt),
  };
}

const releases: (() => Promise<void>)[] = [];
after(async () => {
  for (const r of releases) await r();
});

test('t5 relative position buckets match transformers (bidirectional and causal)', () => {
  // torch reference values for num_buckets=32, max_distance=128.
  const bi = [-200, -64, -20, -8, -7, -1, 0, 1, 7, 8, 20, 64, 200].map((r) => t5Bucket(r, true, 32, 128));
  assert.deepEqual(bi, [15, 14, 10, 8, 7, 1, 0, 17, 23, 24, 26, 30, 31]);
  const ca = [-200, -64, -20, -16, -15, -1, 0, 5].map((r) => t5Bucket(r, false, 32, 128));
  assert.deepEqual(ca, [31, 26, 17, 16, 15, 1, 0, 0]);
});

for (const name of NAMES) {
  describe(name, async () => {
    const dir = FIXTURES + name;
    const gold: Golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8'));
    const loaded = await loadModel(dir);
    assert.equal(loaded.kind, 'seq2seq');
    const model = loaded.model as Seq2SeqModel;
    const batch = goldenBatch(gold);

    test('decoder inputs = labels shifted right', () => {
      const d = shiftTokensRight(batch.labels, batch.B, batch.T, model.config.decoderStartTokenId, model.config.padTokenId);
      assert.deepEqual(Array.from(d, Number), gold.decoder_input_ids.flat());
    });

    test('logits match PyTorch (1e-4) and the seq2seq loss', async () => {
      const cg = await CompiledGraph.compile(seq2seqLogitsGraph(model, plainLinear, 'logits'), { threads: 1 });
      const f = seq2seqFeeds(model, batch, null);
      const out = (await cg.run({ input_ids: f.input_ids, attention_mask: f.attention_mask, decoder_input_ids: f.decoder_input_ids })).logits;
      await cg.release();
      assert.deepEqual(out.dims, [batch.B, batch.T, model.config.vocabSize]);
      const worst = maxAbsDiff(out.data as Float32Array, gold.logits);
      assert.ok(worst < 1e-4, `max |Δlogit| ${worst}`);

      const { graph } = buildSeq2SeqGraph(model, null, 'eval');
      const lg = await CompiledGraph.compile(graph, { threads: 1 });
      const loss = Number((await lg.run(f)).loss.data[0]);
      await lg.release();
      assert.ok(Math.abs(loss - gold.loss) < 1e-4, `loss ${loss} vs ${gold.loss}`);
    });

    test('LoRA loss and gradients match PyTorch (1e-3 rel)', async () => {
      const set = goldenAdapters(model, gold);
      const { graph } = buildSeq2SeqGraph(model, set, 'train');
      const cg = await CompiledGraph.compile(graph, { threads: 1 });
      const out = await cg.run(seq2seqFeeds(model, batch, set));
      await cg.release();
      assert.ok(Math.abs(Number(out.loss.data[0]) - gold.lora_loss) < 1e-4, `loss ${out.loss.data[0]} vs ${gold.lora_loss}`);
      for (const [k, ref] of Object.entries(gold.lora_grads)) {
        const got = out[`grad.${k}`].data as Float32Array;
        const scale = Math.max(...ref.map(Math.abs));
        const worst = maxAbsDiff(got, ref);
        assert.ok(worst <= 1e-3 * scale + 1e-7, `${k}: max |Δ| ${worst} (scale ${scale})`);
      }
    });

    test('a LoRA training run lowers the loss', async () => {
      const config = loraConfigSchema.parse({ r: 4, lora_alpha: 8 });
      const targetModules = model.config.modelType === 'bart' ? ['q_proj', 'v_proj'] : ['q', 'v'];
      const set2 = new AdapterSet(lora, config, model.sites, model.weights, { targetModules, headNames: model.headNames });
      // The batch's rows as examples, one batch per epoch (constant lr): the one training loop.
      const examples = Array.from({ length: batch.B }, (_, b) => ({
        src: Array.from(batch.inputIds.subarray(b * batch.S, (b + 1) * batch.S), Number).filter((_, s) => batch.attentionMask[b * batch.S + s] > 0),
        tgt: Array.from(batch.labels.subarray(b * batch.T, (b + 1) * batch.T), Number).filter((t) => t >= 0),
      }));
      const r = await fit(new Seq2SeqTask(model), set2, { train: examples }, { epochs: 12, lr: 1e-2, batchSize: batch.B, seed: 0, weightDecay: 0, warmupRatio: 0, schedule: 'constant', threads: 1 });
      const losses = r.epochLosses;
      assert.ok(losses[losses.length - 1] < losses[0] * 0.9, `losses ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    });

    test('greedy generation: KV cache == no cache == PyTorch', async () => {
      const gen = new Seq2SeqGenerator(model);
      releases.push(() => gen.release());
      const n = gold.generate.greedy.length;
      const cached = await gen.generate([gold.generate.prompt], { maxNewTokens: n });
      const plain = await gen.generate([gold.generate.prompt], { maxNewTokens: n, useCache: false });
      assert.deepEqual(cached[0], plain[0]);
      assert.deepEqual(cached[0], gold.generate.greedy);
      // Batched with padding: each row as if alone.
      const rows = [gold.input_ids[0], gold.input_ids[1].slice(0, 4)];
      const both = await gen.generate(rows, { maxNewTokens: 4 });
      const bothPlain = await gen.generate(rows, { maxNewTokens: 4, useCache: false });
      assert.deepEqual(both, bothPlain);
      assert.deepEqual(both[1], (await gen.generate([rows[1]], { maxNewTokens: 4 }))[0]);
    });

    test('seeded sampling: KV cache == no cache, reproducible, top-k 1 / temperature → 0 == greedy', async () => {
      const gen = new Seq2SeqGenerator(model);
      releases.push(() => gen.release());
      const rows = [gold.generate.prompt, gold.input_ids[0], gold.input_ids[1].slice(0, 4)];
      const n = 6;
      const greedy = await gen.generate(rows, { maxNewTokens: n, stopTokens: [] });
      const settings = [
        { doSample: true, temperature: 1.5 },
        { doSample: true, temperature: 0.8, topK: 5 },
        { doSample: true, temperature: 1.2, topP: 0.9 },
        { doSample: true, temperature: 2, topK: 20, topP: 0.95 },
      ];
      let differs = false;
      for (const s of settings) {
        for (const seed of [0, 7]) {
          const o = { ...s, seed, maxNewTokens: n, stopTokens: [] };
          const cached = await gen.generate(rows, o);
          const plain = await gen.generate(rows, { ...o, useCache: false });
          assert.deepEqual(cached, plain, `${JSON.stringify(s)} seed ${seed}`);
          assert.deepEqual(await gen.generate(rows, o), cached);
          if (JSON.stringify(cached) !== JSON.stringify(greedy)) differs = true;
        }
      }
      assert.ok(differs, 'sampling never left the greedy path');
      for (const useCache of [true, false]) {
        assert.deepEqual(await gen.generate(rows, { maxNewTokens: n, stopTokens: [], useCache, doSample: true, topK: 1, seed: 3 }), greedy);
        assert.deepEqual(await gen.generate(rows, { maxNewTokens: n, stopTokens: [], useCache, doSample: true, temperature: 1e-4, seed: 3 }), greedy);
      }
    });

    test('a stop token ends generation (greedy and sampled)', async () => {
      const gen = new Seq2SeqGenerator(model);
      releases.push(() => gen.release());
      const n = 8;
      for (const s of [{}, { doSample: true, temperature: 1.5, seed: 11 }]) {
        const full = (await gen.generate([gold.generate.prompt], { ...s, maxNewTokens: n, stopTokens: [] }))[0];
        assert.equal(full.length, n);
        const stopTok = full[2];
        const at = full.indexOf(stopTok);
        for (const useCache of [true, false]) {
          const got = (await gen.generate([gold.generate.prompt], { ...s, maxNewTokens: n, stopTokens: [stopTok], useCache }))[0];
          assert.deepEqual(got, full.slice(0, at + 1), JSON.stringify(s));
        }
      }
    });
  });
}
