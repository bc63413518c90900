// Decoder LMs (GPT-2, Llama with GQA, Qwen2 with q/k/v bias and tied head)
// against the plain-PyTorch reference (tools/reference/hf_decoders.py):
// logits, causal-LM loss and LoRA gradients, a LoRA training run that lowers
// the loss, and generation with the KV cache == without it == PyTorch greedy.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { Graph } from '../src/graph/ir.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { smoraBias } from '../src/adapters/smora/index.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { goldenAdapters, type GoldenLora } from './helpers/golden_lora.ts';
import { plainLinear, type DecoderModel } from '../src/models/decoder.ts';
import { loadDecoder, loadDecoderFolder, decoderFromHf } from '../src/models/load_decoder.ts';
import { Generator, pickToken } from '../src/serve/generate.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { buildCausalLmGraph, causalLmFeeds, CausalLmTask, encodeCausalLm, makeCausalLmBatch, type CausalLmBatch } from '../src/train/tasks/causal_lm.ts';
import { fit } from '../src/train/loop.ts';
import { runTrainJob } from '../src/tasks/train.ts';
import { readCausalLmJsonl } from '../src/data/records.ts';
import { Rng } from '../src/util/rng.ts';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { runGenerate } from '../src/cli/generate.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import { writeFileSync } from 'node:fs';
import { assertGradClose, maskedMaxAbsDiff, maxAbsDiff } from './helpers/arrays.ts';

const FIXTURES = new URL('./fixtures/hf/', import.meta.url).pathname;
const NAMES = ['gpt2-tiny', 'llama-tiny', 'qwen2-tiny', 'mistral-tiny'];

interface Golden {
  input_ids: number[][];
  attention_mask: number[][];
  labels: number[][];
  logits: number[];
  lora: GoldenLora;
  lora_loss: number;
  lora_grads: Record<string, number[]>;
  generate: { prompt: number[]; greedy: number[] };
}

function goldenBatch(gold: Golden): CausalLmBatch {
  const B = gold.input_ids.length, T = gold.input_ids[0].length;
  return {
    B, T,
    ids: BigInt64Array.from(gold.input_ids.flat(), BigInt),
    mask: Float32Array.from(gold.attention_mask.flat()),
    labels: BigInt64Array.from(gold.labels.flat(), BigInt),
  };
}

const releases: (() => Promise<void>)[] = [];
after(async () => {
  for (const r of releases) await r();
});

for (const name of NAMES) {
  describe(name, async () => {
    const dir = FIXTURES + name;
    const gold: Golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8'));
    const model = await loadDecoder(dir);
    const batch = goldenBatch(gold);

    test('logits match PyTorch (1e-4) at real tokens', async () => {
      const g = new Graph('logits');
      const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
      const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
      g.output('logits', model.build(g, { inputIds, attentionMask }, plainLinear).logits);
      const cg = await CompiledGraph.compile(g, { threads: 1 });
      releases.push(() => cg.release());
      const out = await cg.run({ input_ids: { data: batch.ids, dims: [batch.B, batch.T] }, attention_mask: { data: batch.mask, dims: [batch.B, batch.T] } });
      const V = model.config.vocabSize;
      assert.deepEqual(out.logits.dims, [batch.B, batch.T, V]);
      const L = out.logits.data as Float32Array;
      const maxDiff = maskedMaxAbsDiff(L, gold.logits, batch.mask);
      assert.ok(maxDiff < 1e-4, `max |Δlogit| ${maxDiff}`);
    });

    test('causal-LM loss and LoRA gradients match PyTorch (1e-3 relative)', async () => {
      const adapters = goldenAdapters(model, gold);
      const { graph, trainable } = buildCausalLmGraph(model, adapters, 'train');
      assert.deepEqual(new Set(trainable), new Set(Object.keys(gold.lora_grads)));
      const cg = await CompiledGraph.compile(graph, { threads: 1 });
      releases.push(() => cg.release());
      const out = await cg.run(causalLmFeeds(batch, adapters));
      const loss = Number(out.loss.data[0]);
      assert.ok(Math.abs(loss - gold.lora_loss) < 1e-4 * Math.max(1, gold.lora_loss), `loss ${loss} vs ${gold.lora_loss}`);
      for (const [k, ref] of Object.entries(gold.lora_grads)) {
        assertGradClose(out[`grad.${k}`].data as Float32Array, ref, 1e-3, k);
      }
    });

    test('a LoRA training run lowers the loss', async () => {
      const config = loraConfigSchema.parse({ r: 4, lora_alpha: 8 });
      const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 1 });
      const examples = [
        { ids: gold.generate.prompt.concat(gold.generate.greedy.slice(0, 3)), promptLength: 2 },
        { ids: gold.input_ids[0], promptLength: 3 },
      ];
      // One batch per epoch, constant lr: 15 steps of the one training loop.
      const r = await fit(new CausalLmTask(model, { padId: 0 }), adapters, { train: examples }, { epochs: 15, lr: 1e-2, batchSize: 2, seed: 0, weightDecay: 0, warmupRatio: 0, schedule: 'constant', threads: 1 });
      const losses = r.epochLosses;
      assert.ok(losses[losses.length - 1] < 0.7 * losses[0], `loss ${losses[0]} → ${losses[losses.length - 1]}`);
    });

    test('greedy generation: KV cache == no cache == PyTorch', async () => {
      const gen = new Generator(model, null, { threads: 1 });
      releases.push(() => gen.release());
      const opts = { maxNewTokens: gold.generate.greedy.length, stopTokens: [] };
      const cached = await gen.generate(gold.generate.prompt, { ...opts, useCache: true });
      const plain = await gen.generate(gold.generate.prompt, { ...opts, useCache: false });
      assert.deepEqual(cached.tokens, plain.tokens);
      assert.deepEqual(cached.tokens, gold.generate.greedy);
      assert.equal(cached.finish, 'length');
      // Sampling with a seed is reproducible and the cache does not change it.
      const s = { maxNewTokens: 12, stopTokens: [], doSample: true, temperature: 1.5, topK: 20, topP: 0.9, seed: 7 };
      const s1 = await gen.generate(gold.generate.prompt, s);
      const s2 = await gen.generate(gold.generate.prompt, { ...s, useCache: false });
      assert.deepEqual(s1.tokens, s2.tokens);
    });

    test('stop tokens end generation', async () => {
      const gen = new Generator(model, null, { threads: 1 });
      releases.push(() => gen.release());
      const first = gold.generate.greedy[0];
      const r = await gen.generate(gold.generate.prompt, { maxNewTokens: 5, stopTokens: [first] });
      assert.deepEqual(r.tokens, [first]);
      assert.equal(r.finish, 'stop');
    });
  });
}

describe('HF folders and the generate command', () => {
  test('loadModel (hf_registry) gives a decoder and its tokenizer', async () => {
    const m = await loadModel(FIXTURES + 'llama-tiny');
    assert.equal(m.kind, 'decoder');
    assert.equal((m.model as DecoderModel).config.numKvHeads, 2);
    const ids = m.tokenizer!.encode('once upon a time');
    assert.equal(ids[0], 1, 'Llama tokenizer adds <s>');
    assert.equal(m.tokenizer!.decode(ids, { skipSpecialTokens: true }), 'once upon a time');
  });

  test('generate with a saved LoRA adapter == Generator over the merged adapter; differs from the base model', async () => {
    const dir = FIXTURES + 'llama-tiny';
    const gold: Golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8'));
    const model = await loadDecoder(dir);
    const adapters = goldenAdapters(model, gold);
    const tmp = mkdtempSync(path.join(tmpdir(), 'lorakit-gen-'));
    try {
      saveAdapter(tmp, adapters, { baseModel: dir, taskType: 'CAUSAL_LM' });
      const opts = { maxNewTokens: 6, stopTokens: [] as number[] };
      const gen = new Generator(model, adapters, { threads: 1 });
      const expected = (await gen.generate(gold.generate.prompt, opts)).tokens;
      await gen.release();
      const base = (await new Generator(model, null, { threads: 1 }).generate(gold.generate.prompt, opts)).tokens;
      const r = await runGenerate({ model: dir, adapter: tmp, promptIds: gold.generate.prompt, maxNewTokens: 6, threads: 1 });
      assert.deepEqual(r.tokens.slice(0, expected.length), expected.slice(0, r.tokens.length));
      assert.notDeepEqual(expected, base);
      const t = await runGenerate({ model: dir, prompt: 'hello world', maxNewTokens: 4, threads: 1, cache: false });
      assert.equal(typeof t.text, 'string');
      assert.ok(t.tokens.length >= 1 && t.tokens.length <= 4);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('generate --adapter reads any method through the PEFT loader: VeRA (merged), SMoRA (unmerged, β fed) == Generator over the set', async () => {
    const dir = FIXTURES + 'llama-tiny';
    const gold: Golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8'));
    const model = await loadDecoder(dir);
    const opts = { maxNewTokens: 6, stopTokens: [] as number[] };
    const base = (await new Generator(model, null, { threads: 1 }).generate(gold.generate.prompt, opts)).tokens;
    const cases: [string, Record<string, unknown>][] = [['vera', { r: 8, init_weights: false }], ['smora', { num_ranks: 4, top_k: 2, init_weights: false }]];
    for (const [name, config] of cases) {
      const m = getMethod(name);
      const set = new AdapterSet(m, m.schema.parse(config), model.sites, model.weights, { targetModules: ['q_proj', 'v_proj'], headNames: model.headNames, seed: 3 });
      for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] *= 4;
      if (name === 'smora') for (const site of set.targets) smoraBias(set, site.name, 4).set([0.5, -0.5, 0.2, 0]);
      const tmp = mkdtempSync(path.join(tmpdir(), `lorakit-gen-${name}-`));
      try {
        saveAdapter(tmp, set, { baseModel: dir, taskType: 'CAUSAL_LM' });
        const gen = new Generator(model, set, { threads: 1 });
        const expected = (await gen.generate(gold.generate.prompt, opts)).tokens;
        await gen.release();
        assert.notDeepEqual(expected, base, `${name}: the adapter must change the tokens`);
        const r = await runGenerate({ model: dir, adapter: tmp, promptIds: gold.generate.prompt, maxNewTokens: 6, threads: 1 });
        assert.ok(r.tokens.length > 0);
        assert.deepEqual(r.tokens, expected.slice(0, r.tokens.length), name);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    }
  });
});

test('GPT-2 (Conv1D, fan_in_fan_out): merged LoRA weights give the logits of the unmerged adapter', async () => {
  const dir = FIXTURES + 'gpt2-tiny';
  const gold: Golden = JSON.parse(readFileSync(`${dir}/golden.json`, 'utf8'));
  const model = await loadDecoder(dir);
  const adapters = goldenAdapters(model, gold);
  const batch = goldenBatch(gold);
  const run = async (m: DecoderModel, linear: typeof plainLinear) => {
    const g = new Graph('merge');
    const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
    const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
    g.output('logits', m.build(g, { inputIds, attentionMask }, linear).logits);
    const cg = await CompiledGraph.compile(g, { threads: 1 });
    const feeds = causalLmFeeds(batch, linear === plainLinear ? null : adapters);
    delete (feeds as any).targets;
    const out = (await cg.run(feeds)).logits.data as Float32Array;
    await cg.release();
    return out;
  };
  const unmerged = await run(model, adapters.linear({ training: false }));
  const merged = await run(model.withWeights(adapters.mergeInto(model.weights)), plainLinear);
  const base = await run(model, plainLinear);
  const d = maxAbsDiff(merged, unmerged), dBase = maxAbsDiff(base, unmerged);
  assert.ok(d < 1e-4, `merged vs unmerged max |Δ| ${d}`);
  assert.ok(dBase > 1e-2, 'the adapter changes the logits');
});

test('lorakit generate (bin): text out, token count and speed on stderr; a non-decoder folder is refused', () => {
  const bin = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const run = (...args: string[]) => spawnSync(process.execPath, [bin, 'generate', ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '1' } });
  const r = run('--model', FIXTURES + 'qwen2-tiny', '--prompt', 'once upon a time', '--max-new-tokens', '3');
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.stdout.trim().length > 0);
  assert.match(r.stderr, /\[3 tokens, length; prompt 4 tokens/);
  const bad = run('--model', FIXTURES + 'bert', '--prompt', 'x');
  assert.equal(bad.status, 1);
  assert.match(bad.stderr, /an encoder does not generate text/);
});

describe('causal-LM job (JSONL → LoRA adapter)', () => {
  test('prompt/completion and text lines train an adapter that lowers the loss; generate loads it', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'lorakit-clm-'));
    try {
      const data = path.join(tmp, 'train.jsonl');
      const lines = [
        { prompt: 'once upon a time', completion: 'there lived a king' },
        { prompt: 'what is this', completion: 'a good movie' },
        { prompt: 'who was there', completion: 'the queen and the king' },
        { text: 'hello world, i love music' },
      ];
      writeFileSync(data, lines.map((l) => JSON.stringify(l)).join('\n') + '\n\n');
      const out = path.join(tmp, 'run');
      const dir = FIXTURES + 'llama-tiny';
      const r = await runTrainJob({ task: 'causal-lm', model: dir, data, out, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, epochs: 8, batchSize: 2, lr: 1e-2, seed: 0, warmupRatio: 0, schedule: 'constant', weightDecay: 0, threads: 1 });
      assert.equal(r.examples.train, 4);
      assert.equal(r.steps, 16);
      const [first, last] = [r.epochLosses[0], r.epochLosses[r.epochLosses.length - 1]];
      assert.ok(last < 0.7 * first, `epoch loss ${first} → ${last}`);
      assert.equal(r.adapterDir, path.join(out, 'adapter'));
      const g = await runGenerate({ model: dir, adapter: r.adapterDir, prompt: 'once upon a time', maxNewTokens: 5, threads: 1 });
      assert.ok(g.tokens.length >= 1);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('chat messages use the tokenizer chat template; loss only on the assistant turn', async () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'lorakit-clm-'));
    try {
      const data = path.join(tmp, 'chat.jsonl');
      const msg = (u: string, a: string) => JSON.stringify({ messages: [{ role: 'user', content: u }, { role: 'assistant', content: a }] });
      writeFileSync(data, [msg('hello', 'hello world'), msg('what is this', 'a movie')].join('\n'));
      const dir = FIXTURES + 'qwen2-tiny';
      const { tokenizer } = await loadDecoderFolder(dir);
      const ex = encodeCausalLm(readCausalLmJsonl(data), tokenizer!, 64);
      const prompt = tokenizer!.encode(tokenizer!.applyChatTemplate([{ role: 'user', content: 'hello' }], { addGenerationPrompt: true }), { addSpecialTokens: false });
      assert.equal(ex[0].promptLength, prompt.length);
      assert.deepEqual(ex[0].ids.slice(0, prompt.length), prompt);
      assert.equal(ex[0].ids[ex[0].ids.length - 1], tokenizer!.eosTokenId, 'the completion ends with EOS');
      const r = await runTrainJob({ task: 'causal-lm', model: dir, data, out: path.join(tmp, 'run'), method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, epochs: 6, batchSize: 2, lr: 1e-2, seed: 0, warmupRatio: 0, schedule: 'constant', weightDecay: 0, threads: 1 });
      const [first, last] = [r.epochLosses[0], r.epochLosses[r.epochLosses.length - 1]];
      assert.ok(last < first, `epoch loss ${first} → ${last}`);
      const g = await runGenerate({ model: dir, prompt: 'hello', chat: true, maxNewTokens: 3, threads: 1 });
      assert.ok(g.promptIds.length > 2);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });

  test('a bad line is reported with file:line', () => {
    const tmp = mkdtempSync(path.join(tmpdir(), 'lorakit-clm-'));
    try {
      const data = path.join(tmp, 'bad.jsonl');
      writeFileSync(data, '{"prompt": "a", "completion": "b"}\n{"prompt": 3}\n');
      assert.throws(() => readCausalLmJsonl(data), (e: Error) => e.message.startsWith(`${data}:2: expected`) && /A valid line looks like/.test(e.message));
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  });
});

test('lorakit train --task causal-lm then generate with the adapter (bin)', () => {
  const bin = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const tmp = mkdtempSync(path.join(tmpdir(), 'lorakit-clm-cli-'));
  try {
    const data = path.join(tmp, 'd.jsonl');
    writeFileSync(data, ['{"prompt": "once upon a time", "completion": "there lived a king"}', '{"prompt": "what is this", "completion": "a good movie"}'].join('\n'));
    const env = { ...process.env, LORAKIT_THREADS: '1' };
    const t = spawnSync(process.execPath, [bin, 'train', '--task', 'causal-lm', '--model', FIXTURES + 'llama-tiny', '--data', data, '--out', path.join(tmp, 'out'), '--epochs', '12', '--batch', '2', '--lr', '0.01', '--quiet'], { encoding: 'utf8', env });
    assert.equal(t.status, 0, t.stderr);
    assert.match(t.stdout, /2 training examples, \d+ trainable parameters, 12 steps; mean training loss per epoch/);
    const g = spawnSync(process.execPath, [bin, 'generate', '--model', FIXTURES + 'llama-tiny', '--adapter', path.join(tmp, 'out', 'adapter'), '--prompt', 'once upon a time', '--max-new-tokens', '6'], { encoding: 'utf8', env });
    assert.equal(g.status, 0, g.stderr);
    assert.equal(g.stdout.trim(), 'there lived a king');
    const bad = spawnSync(process.execPath, [bin, 'train', '--task', 'causal-lm', '--data', data], { encoding: 'utf8', env });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /--task causal-lm needs --model <dir>/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('an adapter on the tied lm_head is not merged (the embedding stays): generation == argmax of the unmerged graph', async () => {
  const dir = FIXTURES + 'qwen2-tiny';
  const model = await loadDecoder(dir);
  const config = loraConfigSchema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false });
  const adapters = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: ['lm_head', 'q_proj'], seed: 5 });
  const prompt = [5, 9, 14, 20];
  const gen = new Generator(model, adapters, { threads: 1 });
  const cached = (await gen.generate(prompt, { maxNewTokens: 4, stopTokens: [] })).tokens;
  const plain = (await gen.generate(prompt, { maxNewTokens: 4, stopTokens: [], useCache: false })).tokens;
  await gen.release();
  assert.deepEqual(cached, plain);
  // Reference: full forward with the unmerged adapter, greedy step by step.
  const g = new Graph('ref');
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  g.output('logits', model.build(g, { inputIds, attentionMask }, adapters.linear({ training: false }), { logits: 'last' }).logits);
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const seq = prompt.slice();
  for (let i = 0; i < 4; i++) {
    const feeds: Record<string, { data: any; dims: number[] }> = {
      input_ids: { data: BigInt64Array.from(seq, BigInt), dims: [1, seq.length] },
      attention_mask: { data: new Float32Array(seq.length).fill(1), dims: [1, seq.length] },
    };
    for (const [k, v] of adapters.params) feeds[k] = { data: v, dims: adapters.shapes.get(k)! };
    seq.push(pickToken((await cg.run(feeds)).logits.data as Float32Array, {}, new Rng(0)));
  }
  await cg.release();
  assert.deepEqual(cached, seq.slice(prompt.length));
});

describe('decoder helpers', () => {
  test('a Llama weight of the wrong shape is refused by name (the bench model once stored the token table as [dim, vocab])', async () => {
    const model = await loadDecoder(FIXTURES + 'llama-tiny');
    const key = 'model.embed_tokens.weight';
    const t = model.weights.get(key)!;
    const weights = new Map(model.weights);
    weights.set(key, { shape: [t.shape[1], t.shape[0]], data: t.data });
    assert.throws(() => model.withWeights(weights), new RegExp(`weight '${key}' has shape \\[${t.shape[1]},${t.shape[0]}\\], expected \\[${t.shape[0]},${t.shape[1]}\\]`));
  });

  test('pickToken: greedy, top-k = 1 is greedy, top-p keeps the head of the distribution', () => {
    const logits = Float32Array.from([0.1, 3, -1, 2.9, 0]);
    const rng = new Rng(3);
    assert.equal(pickToken(logits, {}, rng), 1);
    for (let i = 0; i < 20; i++) assert.equal(pickToken(logits, { doSample: true, topK: 1 }, rng), 1);
    for (let i = 0; i < 50; i++) assert.ok([1, 3].includes(pickToken(logits, { doSample: true, topP: 0.8 }, rng)));
    for (let i = 0; i < 50; i++) assert.ok([1, 3].includes(pickToken(logits, { doSample: true, topK: 2 }, rng)));
    // top-p alone over a larger vocabulary (candidates grown from the top 64): samples stay in the brute-force nucleus.
    for (const scale of [6, 1]) {
      const V = 1000, big = new Float32Array(V);
      for (let i = 0; i < V; i++) big[i] = scale * rng.normal();
      const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => big[b] - big[a]);
      const w = order.map((i) => Math.exp(big[i] - big[order[0]]));
      const z = w.reduce((a, b) => a + b, 0);
      const nucleus = new Set<number>();
      for (let i = 0, cum = 0; i < V && cum < 0.7; i++) {
        cum += w[i] / z;
        nucleus.add(order[i]);
      }
      for (let i = 0; i < 300; i++) assert.ok(nucleus.has(pickToken(big, { doSample: true, topP: 0.7 }, rng)), `scale ${scale}`);
    }
    // Frequencies follow softmax(logits / T) (plain sampling path, no sort).
    const counts = new Array(5).fill(0);
    for (let i = 0; i < 20000; i++) counts[pickToken(logits, { doSample: true, temperature: 2 }, rng)]++;
    const e = Array.from(logits, (x) => Math.exp(x / 2));
    const z = e.reduce((a, b) => a + b, 0);
    e.forEach((x, i) => assert.ok(Math.abs(counts[i] / 20000 - x / z) < 0.015, `token ${i}: ${counts[i] / 20000} vs ${x / z}`));
  });

  test('an unsupported model_type names the problem', () => {
    assert.throws(() => decoderFromHf({ model_type: 'bloom' }, new Map()), /model_type 'bloom' is not a supported decoder/);
  });
});
