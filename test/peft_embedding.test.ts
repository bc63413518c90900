// LoRA on embedding layers, as PEFT's lora.Embedding does it, against
// tools/reference/peft_embedding_reference.py (plain PyTorch on the tiny HF
// fixtures): BERT (word_embeddings, padding_idx 0), GPT-2 (wte, tied lm_head)
// and Llama (embed_tokens, untied; rank/alpha_pattern on the embedding).
// PEFT-written adapters load and give the reference's outputs, loss and
// gradients; lorakit's files have PEFT's keys and the reference reads them
// back to lorakit's outputs; merged vs unmerged follows PEFT for tied heads.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { dora } from '../src/adapters/dora/index.ts';
import { grad } from '../src/autodiff/grad.ts';
import { Graph } from '../src/graph/ir.ts';
import * as op from '../src/graph/ops.ts';
import { readSafetensors, readSafetensorsHeader, writeSafetensors } from '../src/io/safetensors.ts';
import { BertModel } from '../src/models/bert.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { Generator } from '../src/serve/generate.ts';
import { loadModel } from '../src/models/hf_registry.ts';
import type { WeightMap } from '../src/models/types.ts';
import { AdapterLoadError, loadPeftAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { mixedLinear, tiedTargets } from '../src/serve/peft_model.ts';
import { CompiledGraph, HostTensor } from '../src/runtime/session.ts';
import { buildCausalLmGraph, causalLmFeeds, causalLmLoss, shiftLabels } from '../src/train/tasks/causal_lm.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';
import { assertGradClose, maskedMaxAbsDiff, maxAbsDiff } from './helpers/arrays.ts';

const FIX = new URL('./fixtures/', import.meta.url).pathname;
const REF = path.join(FIX, 'peft_embedding');
const SCRIPT = path.join(FIX, '..', '..', 'tools', 'reference', 'peft_embedding_reference.py');
const CASES = { bert: 'bert', gpt2: 'gpt2-tiny', llama: 'llama-tiny' } as const;
type CaseName = keyof typeof CASES;
const EMBEDDING: Record<CaseName, string> = { bert: 'bert.embeddings.word_embeddings', gpt2: 'transformer.wte', llama: 'model.embed_tokens' };
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-peft-emb-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Case {
  name: CaseName;
  model: BertModel | DecoderModel;
  gold: any;
  expected: any;
  dir: string;
}

async function loadCase(name: CaseName): Promise<Case> {
  const dir = path.join(FIX, 'hf', CASES[name]);
  const { model } = await loadModel(dir);
  return {
    name,
    model: model as BertModel | DecoderModel,
    gold: JSON.parse(fs.readFileSync(path.join(dir, 'golden.json'), 'utf8')),
    expected: JSON.parse(fs.readFileSync(path.join(REF, name, 'expected.json'), 'utf8')),
    dir: path.join(REF, name),
  };
}

/** Logits, loss (BERT: CE over the folder's head; decoders: causal-LM) and, with `grads`, d loss / d every adapter tensor. */
async function run(c: Case, set: AdapterSet | null, opts: { grads?: boolean; weights?: WeightMap } = {}) {
  const g = new Graph(`peft-emb-${c.name}`);
  const B = c.gold.input_ids.length, T = c.gold.input_ids[0].length;
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  const linear = set ? set.linear({ training: false }) : (s: any, x: any, W: any, b: any) => (s.layout === 'in_out' ? op.linear(x, W, b) : op.linearT(x, W, b));
  const feeds: Record<string, HostTensor> = {
    input_ids: { data: BigInt64Array.from(c.expected.input_ids.flat(), BigInt), dims: [B, T] },
    attention_mask: { data: Float32Array.from(c.gold.attention_mask.flat()), dims: [B, T] },
  };
  let logits, loss;
  if (c.model instanceof BertModel) {
    const model = opts.weights ? c.model.withWeights(opts.weights) : c.model;
    const tokenTypeIds = g.input('token_type_ids', 'int64', ['B', 'T']);
    logits = model.buildLogits(g, { inputIds, attentionMask, tokenTypeIds }, linear);
    loss = op.crossEntropy(logits, g.input('labels', 'int64', ['B']));
    feeds.token_type_ids = { data: BigInt64Array.from(c.gold.token_type_ids.flat(), BigInt), dims: [B, T] };
    feeds.labels = { data: BigInt64Array.from(c.gold.labels, BigInt), dims: [B] };
  } else {
    const model = opts.weights ? c.model.withWeights(opts.weights) : c.model;
    logits = model.build(g, { inputIds, attentionMask }, linear).logits;
    loss = causalLmLoss(logits, g.input('targets', 'int64', ['B', 'T']));
    feeds.targets = { data: shiftLabels(c.gold.labels.flat(), B, T), dims: [B, T] };
  }
  g.output('logits', logits);
  g.output('loss', loss);
  const params = g.params();
  if (opts.grads) grad(loss, params).forEach((gv, i) => g.output(`grad.${params[i].leaf!.name}`, gv));
  for (const p of params) feeds[p.leaf!.name] = { data: set!.params.get(p.leaf!.name)!, dims: p.shape as number[] };
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  const out = await cg.run(feeds);
  await cg.release();
  const grads: Record<string, Float32Array> = {};
  for (const k of Object.keys(out)) if (k.startsWith('grad.')) grads[k.slice(5)] = out[k].data as Float32Array;
  return { logits: out.logits.data as Float32Array, loss: Number(out.loss.data[0]), grads };
}

/** max |a − b| over real tokens (decoder logits at padded positions are not compared, as in hf_decoders.test.ts). */
function maxDiff(c: Case, a: ArrayLike<number>, b: ArrayLike<number>): number {
  return c.model instanceof BertModel ? maxAbsDiff(a, b) : maskedMaxAbsDiff(a, b, c.gold.attention_mask.flat());
}

function pythonCheck(dir: string, name: CaseName) {
  requireTorch();
  const out = path.join(dir, 'check.json');
  execFileSync(PY, [SCRIPT, '--check', dir, '--case', name, '--out', out], { stdio: 'inherit' });
  return JSON.parse(fs.readFileSync(out, 'utf8'));
}

for (const name of Object.keys(CASES) as CaseName[]) {
  test(`${name}: a PEFT adapter with lora_embedding_A/B (+ linear LoRA) gives the reference outputs, loss and gradients`, async () => {
    const c = await loadCase(name);
    const warnings: string[] = [];
    const { set } = loadPeftAdapter(c.model, c.dir, { warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, []);
    const emb = set.targets.find((s) => s.kind === 'embedding');
    assert.equal(emb?.name, EMBEDDING[name]);
    assert.deepEqual(set.shapes.get(`base_model.model.${emb!.name}.lora_embedding_A`), c.expected.keys[`base_model.model.${emb!.name}.lora_embedding_A`]);

    const un = await run(c, set, { grads: true });
    const base = await run(c, null);
    assert.ok(maxDiff(c, un.logits, base.logits) > 1e-2, 'the adapter must change the outputs');
    assert.ok(maxDiff(c, un.logits, c.expected.unmerged) < 1e-4, `unmerged max |Δ| ${maxDiff(c, un.logits, c.expected.unmerged)}`);
    assert.ok(Math.abs(un.loss - c.expected.loss) < 1e-4 * Math.max(1, c.expected.loss), `loss ${un.loss} vs ${c.expected.loss}`);

    // Gradients of every adapter tensor, the embedding's included (padding_idx rows get none, as F.embedding).
    assert.deepEqual(Object.keys(un.grads).sort(), Object.keys(c.expected.grads).sort());
    for (const [k, ref] of Object.entries<number[]>(c.expected.grads)) {
      assertGradClose(un.grads[k], ref, 1e-3, k);
    }
    if (c.expected.padding_idx !== null) {
      const V = emb!.inFeatures, pad = c.expected.padding_idx as number;
      assert.equal(c.expected.input_ids[0][3], pad, 'an attended token at padding_idx');
      assert.equal(c.gold.attention_mask[0][3], 1);
      const gA = un.grads[`base_model.model.${emb!.name}.lora_embedding_A`];
      for (let k = 0; k < gA.length / V; k++) assert.equal(gA[k * V + pad], 0, `d/dA[${k}, padding_idx] must be 0`);
    }

    // Merged: E += s·(B·A)ᵀ. With a tied head (GPT-2) PEFT's merge changes the head too, so merged ≠ unmerged.
    const merged = await run(c, null, { weights: set.mergeInto(c.model.weights) });
    assert.ok(maxDiff(c, merged.logits, c.expected.merged) < 1e-4, `merged max |Δ| ${maxDiff(c, merged.logits, c.expected.merged)}`);
    if (name === 'gpt2') {
      assert.deepEqual(tiedTargets(c.model, set).map((t) => t.site.name), ['transformer.wte']);
      assert.ok(maxDiff(c, merged.logits, un.logits) > 1e-1, 'tied head: PEFT merged and unmerged differ');
    } else {
      assert.deepEqual(tiedTargets(c.model, set), []);
      assert.ok(maxDiff(c, merged.logits, un.logits) < 1e-4, `merged vs unmerged max |Δ| ${maxDiff(c, merged.logits, un.logits)}`);
    }
  });

  test(`${name}: lorakit saves lora_embedding_A/B under PEFT's keys; the reference reads the file back to lorakit's outputs`, async (t) => {
    const c = await loadCase(name);
    const loaded = loadPeftAdapter(c.model, c.dir, { warn: () => {} });
    const set = loaded.set;
    // "Train" a little: new values for every tensor, so the file differs from the fixture.
    for (const v of set.params.values()) for (let i = 0; i < v.length; i++) v[i] += 0.05 * Math.sin(3 * i + v.length);
    const dir = path.join(tmp, `save-${name}`);
    saveAdapter(dir, set, { baseModel: `test/fixtures/hf/${CASES[name]}`, peftConfig: loaded.peft });
    const hdr = readSafetensorsHeader(path.join(dir, 'adapter_model.safetensors'));
    assert.deepEqual(Object.fromEntries([...hdr.tensors].map(([k, v]) => [k, v.shape]).sort()), c.expected.keys);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'adapter_config.json'), 'utf8'));
    const ref = JSON.parse(fs.readFileSync(path.join(c.dir, 'adapter_config.json'), 'utf8'));
    for (const k of ['r', 'lora_alpha', 'use_rslora', 'target_modules', 'rank_pattern', 'alpha_pattern', 'peft_type']) assert.deepEqual(cfg[k], ref[k], k);

    const ours = await run(c, set);
    const back = loadPeftAdapter(c.model, dir, { warn: () => {} }).set;
    for (const [k, v] of set.params) assert.deepEqual(back.params.get(k), v, k);
    await t.test('the PyTorch reference reads the file lorakit wrote: the same keys and shapes, the same outputs merged and unmerged', { skip: torchSkip }, async () => {
      const py = pythonCheck(dir, name);
      assert.deepEqual([py.missing, py.unexpected, py.wrong_shapes], [[], [], []]);
      assert.ok(maxDiff(c, py.unmerged, ours.logits) < 1e-4, `reference on lorakit's file: max |Δ| ${maxDiff(c, py.unmerged, ours.logits)}`);
      const merged = await run(c, null, { weights: set.mergeInto(c.model.weights) });
      assert.ok(maxDiff(c, py.merged, merged.logits) < 1e-4, `merged: max |Δ| ${maxDiff(c, py.merged, merged.logits)}`);
    });
  });
}

test('init_lora_weights on an embedding follows PEFT: A = 0, B ~ N(0, 1) (true, gaussian); both N(0, 1) (false)', async () => {
  const c = await loadCase('gpt2');
  const stats = (x: Float32Array) => {
    let s = 0, q = 0;
    for (const v of x) { s += v; q += v * v; }
    return { mean: s / x.length, std: Math.sqrt(q / x.length - (s / x.length) ** 2) };
  };
  for (const init of [true, 'gaussian', false] as const) {
    const set = new AdapterSet(lora, lora.schema.parse({ r: 8, lora_alpha: 16, init_lora_weights: init }), c.model.sites, c.model.weights, { targetModules: ['wte'], seed: 3 });
    const A = set.params.get('base_model.model.transformer.wte.lora_embedding_A')!;
    const B = set.params.get('base_model.model.transformer.wte.lora_embedding_B')!;
    assert.equal(A.length, 8 * 128);
    assert.equal(B.length, 32 * 8);
    for (const [name, x, zero] of [['A', A, init !== false], ['B', B, false]] as const) {
      const { mean, std } = stats(x);
      if (zero) assert.ok(x.every((v) => v === 0), `${init}: ${name} must be zeros`);
      else assert.ok(Math.abs(mean) < 0.2 && Math.abs(std - 1) < 0.15, `${init}: ${name} mean ${mean} std ${std}`);
    }
    assert.equal(lora.paramCount(set.targets[0], set.config), 8 * (128 + 32));
  }
});

test("'all-linear' leaves embeddings alone; naming one selects it; dropout is not applied to it", async () => {
  const c = await loadCase('gpt2');
  const m = c.model as DecoderModel;
  const all = new AdapterSet(lora, lora.schema.parse({ r: 2 }), m.sites, m.weights, { targetModules: 'all-linear', headNames: m.headNames });
  assert.ok(all.targets.length > 0 && all.targets.every((s) => s.kind !== 'embedding'));
  const set = new AdapterSet(lora, lora.schema.parse({ r: 2, lora_dropout: 0.5, init_lora_weights: false }), m.sites, m.weights, { targetModules: ['wte', 'c_fc'] });
  assert.deepEqual(set.targets.map((s) => s.name), ['transformer.wte', 'transformer.h.0.mlp.c_fc', 'transformer.h.1.mlp.c_fc']);
  assert.deepEqual(set.dropoutTargets.map((s) => s.name), ['transformer.h.0.mlp.c_fc', 'transformer.h.1.mlp.c_fc']);
  const { graph } = buildCausalLmGraph(m, set, 'train');
  assert.ok(!graph.leaf(AdapterSet.dropoutInput('transformer.wte')), 'no dropout mask for the embedding');
  assert.ok(graph.leaf(AdapterSet.dropoutInput('transformer.h.0.mlp.c_fc')));
  const B = c.gold.input_ids.length, T = c.gold.input_ids[0].length;
  const feeds = causalLmFeeds({ B, T, ids: BigInt64Array.from(c.gold.input_ids.flat(), BigInt), mask: Float32Array.from(c.gold.attention_mask.flat()), labels: BigInt64Array.from(c.gold.labels.flat(), BigInt) }, set, 'seed');
  assert.ok(!(AdapterSet.dropoutInput('transformer.wte') in feeds));
  const cg = await CompiledGraph.compile(graph, { threads: 1 });
  const out = await cg.run(feeds);
  await cg.release();
  assert.ok(Number.isFinite(Number(out.loss.data[0])));
  assert.ok((out['grad.base_model.model.transformer.wte.lora_embedding_A'].data as Float32Array).some((v) => v !== 0));
});

test('generation keeps a tied-head embedding adapter unmerged (PEFT: the head reads the base table) and merges an untied one', async () => {
  for (const name of ['gpt2', 'llama'] as const) {
    const c = await loadCase(name);
    const { set } = loadPeftAdapter(c.model, c.dir, { warn: () => {} });
    const gen = new Generator(c.model as DecoderModel, set, { threads: 1 });
    assert.equal(gen.model === c.model, name === 'gpt2', `${name}: ${name === 'gpt2' ? 'unmerged' : 'merged'}`);
    await gen.release();
  }
});

test('wrong embedding adapters fail naming the module and both shapes; methods without embedding support refuse them', async () => {
  const c = await loadCase('bert');
  const key = 'base_model.model.bert.embeddings.word_embeddings.lora_embedding_A';
  const V = (c.model as BertModel).config.vocab;
  // The adapter was trained after resizing the vocabulary (+8 tokens).
  const dir = path.join(tmp, 'resized');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(c.dir, 'adapter_config.json'), path.join(dir, 'adapter_config.json'));
  const file = readSafetensors(path.join(c.dir, 'adapter_model.safetensors'));
  const tensors = Object.fromEntries([...file.tensors].map(([k, t]) => [k, { dtype: 'F32' as const, shape: [...t.shape], data: t.data as Float32Array }]));
  tensors[key] = { dtype: 'F32', shape: [4, V + 8], data: new Float32Array(4 * (V + 8)) };
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  assert.throws(() => loadPeftAdapter(c.model, dir, { warn: () => {} }), (e: Error) => {
    assert.ok(e instanceof AdapterLoadError);
    assert.match(e.message, /bert\.embeddings\.word_embeddings/);
    assert.ok(e.message.includes(`[4,${V + 8}]`) && e.message.includes(`[4,${V}]`), e.message);
    assert.match(e.message, /num_embeddings/);
    return true;
  });
  // A linear LoRA key on the embedding module.
  tensors['base_model.model.bert.embeddings.word_embeddings.lora_A.weight'] = { dtype: 'F32', shape: [4, V], data: new Float32Array(4 * V) };
  delete tensors[key];
  writeSafetensors(path.join(dir, 'adapter_model.safetensors'), tensors, { format: 'pt' });
  assert.throws(() => loadPeftAdapter(c.model, dir, { warn: () => {} }), /word_embeddings': 'lora_A\.weight' does not fit an embedding/);
  // DoRA (here) has no embedding variant, mixed batches do not stack embedding adapters: clear errors
  // instead of silently dropping the embedding term. (add_weighted_adapter combines them, as PEFT:
  // test/peft_real.test.ts.)
  const m = c.model as BertModel;
  const { set } = loadPeftAdapter(m, c.dir, { warn: () => {} });
  assert.throws(() => mixedLinear([set]), /targets the embedding 'bert\.embeddings\.word_embeddings'/);
  assert.throws(
    () => new AdapterSet(dora, dora.schema.parse({ r: 2 }), m.sites, m.weights, { targetModules: ['word_embeddings', 'query'] }),
    /Method 'dora' cannot adapt the embedding module 'bert\.embeddings\.word_embeddings'/,
  );
});
