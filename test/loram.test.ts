// LoRAM (src/workflows/loram/): structured pruning, training on the pruned
// model and recovery onto the original, against tools/reference/loram.py (a
// PyTorch transcription of LLM-Pruner's importances and of LoRAM's official
// prune and recover code, on llama-tiny): the importances, the plan, the
// pruned model's logits with and without its LoRA, the recovered tensors, and
// the original model's logits with the recovered LoRA merged (1e-5). The
// recovered ΔW equals the pruned ΔW on every kept coordinate exactly.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { AdapterSet, PEFT_PREFIX } from '../src/adapters/inject.ts';
import { lora, loraDelta } from '../src/adapters/lora/index.ts';
import { adapterFeeds } from '../src/adapters/feeds.ts';
import { Graph } from '../src/graph/ir.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { plainLinear } from '../src/models/linear.ts';
import type { LinearFn } from '../src/models/types.ts';
import { loadPeftAdapter, readAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { Generator } from '../src/serve/generate.ts';
import { fit } from '../src/train/loop.ts';
import { CausalLmTask } from '../src/train/tasks/causal_lm.ts';
import { keptLayer, qFeatures, readPlan, type LoramPlan } from '../src/workflows/loram/plan.ts';
import { importances, loramShape, runLoramPrune } from '../src/workflows/loram/prune.ts';
import { recoverTensors, runLoramRecover } from '../src/workflows/loram/recover.ts';
import { llamaConfigFromHf } from '../src/models/llama.ts';
import { Trainer } from '../src/train/loop.ts';
import { PY, requireTorch, torchSkip } from './helpers/torch.ts';

const FIX = JSON.parse(fs.readFileSync(new URL('./fixtures/loram.json', import.meta.url), 'utf8'));
const LLAMA = new URL('./fixtures/hf/llama-tiny', import.meta.url).pathname;
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-loram-'));
after(() => fs.rmSync(TMP, { recursive: true, force: true }));

const calibration = (FIX.calibration.input_ids as number[][]).map((row, b) => ({ ids: row.filter((_, t) => FIX.calibration.attention_mask[b][t] > 0) }));
const f32 = (xs: number[]) => Float32Array.from(xs);

async function logits(model: DecoderModel, adapters?: AdapterSet): Promise<{ data: Float32Array; mask: number[] }> {
  const linear: LinearFn = adapters ? adapters.linear({ training: false }) : plainLinear;
  const g = new Graph('logits');
  const inputIds = g.input('input_ids', 'int64', ['B', 'T']);
  const attentionMask = g.input('attention_mask', 'float32', ['B', 'T']);
  g.output('logits', model.build(g, { inputIds, attentionMask }, linear).logits);
  const cg = await CompiledGraph.compile(g, { threads: 1 });
  try {
    const ids: number[][] = FIX.eval.input_ids, mask: number[][] = FIX.eval.attention_mask;
    const out = await cg.run({
      input_ids: { data: BigInt64Array.from(ids.flat(), BigInt), dims: [ids.length, ids[0].length] },
      attention_mask: { data: Float32Array.from(mask.flat()), dims: [ids.length, ids[0].length] },
      ...adapterFeeds(adapters ?? null, { training: false }),
    });
    return { data: out.logits.data as Float32Array, mask: mask.flat() };
  } finally {
    await cg.release();
  }
}

/** max |got − want| over real tokens, relative to max |want|. */
function logitError(got: { data: Float32Array; mask: number[] }, want: number[]): number {
  const per = want.length / got.mask.length;
  let num = 0, den = 0;
  for (let i = 0; i < want.length; i++) {
    if (!got.mask[Math.floor(i / per)]) continue;
    num = Math.max(num, Math.abs(got.data[i] - want[i]));
    den = Math.max(den, Math.abs(want[i]));
  }
  return num / den;
}

test("importances: LLM-Pruner's Taylor (|W ⊙ ∂L/∂W|) and magnitude (W²) group sums equal the PyTorch transcription (1e-5 relative)", async () => {
  const model = await loadDecoder(LLAMA);
  const shape = loramShape(llamaConfigFromHf(JSON.parse(fs.readFileSync(path.join(LLAMA, 'config.json'), 'utf8'))), 'llama-tiny');
  const trainer = new Trainer(new CausalLmTask(model, { padId: 0 }), null, { epochs: 1, lr: 1, batchSize: 2, seed: 0, threads: 1 });
  const grads = await trainer.weightGradients(calibration, model.sites.filter((s) => s.kind !== 'embedding' && s.name !== 'lm_head'), { batches: 1, batchSize: 2 });
  await trainer.release();
  for (const kind of ['taylor', 'magnitude'] as const) {
    const imp = importances(shape, model.weights, kind, [0, 1], kind === 'taylor' ? grads : undefined);
    for (const layer of [0, 1]) {
      for (const what of ['ffn', 'heads'] as const) {
        const got = imp.get(layer)![what], want: number[] = FIX.importance[kind][layer][what];
        assert.equal(got.length, want.length);
        const scale = Math.max(...want);
        for (let i = 0; i < want.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * scale, `${kind} layer ${layer} ${what}[${i}]: ${got[i]} vs ${want[i]}`);
      }
    }
  }
});

for (const [name, c] of Object.entries(FIX.cases as Record<string, any>)) {
  describe(`prune → LoRA → recover (${name}: layers ${c.layers.join(',')}, FFN ratio ${c.ffn_ratio}, attention ratio ${c.attn_ratio})`, () => {
    const prunedDir = path.join(TMP, `${name}-pruned`);
    let plan: LoramPlan;

    test('the Taylor plan is the reference\'s, and the pruned model (lorakit folder) gives the reference\'s logits without and with its LoRA (1e-5)', async () => {
      const res = await runLoramPrune({ model: LLAMA, out: prunedDir, importance: 'taylor', examples: calibration, layers: c.layers, ffnRatio: c.ffn_ratio, attnRatio: c.attn_ratio });
      plan = readPlan(prunedDir);
      assert.deepEqual(plan.layers, c.plan);
      assert.deepEqual(res.plan.layers, c.plan);
      const cfg = JSON.parse(fs.readFileSync(path.join(prunedDir, 'config.json'), 'utf8'));
      assert.equal(cfg.head_dim, 8);
      if (name === 'uniform') {
        // Pruned alike in every layer: a plain Hugging Face config.
        assert.deepEqual([cfg.intermediate_size, cfg.num_attention_heads, cfg.num_key_value_heads, cfg.lorakit_layers], [32, 2, 1, undefined]);
      } else {
        assert.deepEqual(cfg.lorakit_layers, (c.shapes as any[]).map((s) => ({ intermediate_size: s.I, num_attention_heads: s.heads, num_key_value_heads: s.kv })));
      }
      assert.ok(fs.existsSync(path.join(prunedDir, 'tokenizer.json')));
      const small = await loadDecoder(prunedDir);
      const base = await logits(small);
      assert.ok(logitError(base, c.pruned_logits) < 1e-5, `pruned logits: ${logitError(base, c.pruned_logits)}`);
      const adapters = new AdapterSet(lora, lora.schema.parse({ r: FIX.r, lora_alpha: FIX.lora_alpha }), small.sites, small.weights, { targetModules: 'all-linear', headNames: small.headNames });
      assert.equal(adapters.params.size, Object.keys(c.adapter).length);
      for (const [k, t] of Object.entries(c.adapter as Record<string, { shape: number[]; data: number[] }>)) {
        assert.deepEqual(adapters.shapes.get(k), t.shape, k);
        adapters.params.get(k)!.set(t.data);
      }
      const withLora = await logits(small, adapters);
      assert.ok(logitError(withLora, c.pruned_lora_logits) < 1e-5, `pruned + LoRA logits: ${logitError(withLora, c.pruned_lora_logits)}`);
      saveAdapter(path.join(TMP, `${name}-adapter`), adapters, { baseModel: prunedDir, taskType: 'CAUSAL_LM' });
    });

    test('recover: the reference\'s recovered tensors bit for bit; ΔW on the original equals the pruned ΔW at every kept coordinate and is 0 elsewhere', async () => {
      const out = path.join(TMP, `${name}-recovered`);
      const r = runLoramRecover({ adapter: path.join(TMP, `${name}-adapter`), pruned: prunedDir, out });
      assert.equal(r.changed, Object.keys(c.recovered).length);
      const rec = readAdapter(out);
      assert.equal(rec.config.base_model_name_or_path, path.resolve(LLAMA));
      for (const [k, t] of Object.entries(c.recovered as Record<string, { shape: number[]; data: number[] }>)) {
        const got = rec.tensors.get(k)!;
        assert.deepEqual(got.shape, t.shape, k);
        assert.deepEqual(got.data, f32(t.data), k);
      }
      const pruned = readAdapter(path.join(TMP, `${name}-adapter`));
      const s = FIX.lora_alpha / FIX.r;
      for (const lp of plan.layers) {
        const k = keptLayer(plan, lp);
        const keptBy: Record<string, [number[] | null, number[] | null]> = {
          'self_attn.q_proj': [k.qFeatures, null], 'self_attn.k_proj': [k.kvFeatures, null], 'self_attn.v_proj': [k.kvFeatures, null], 'self_attn.o_proj': [null, k.qFeatures],
          'mlp.gate_proj': [k.ffn, null], 'mlp.up_proj': [k.ffn, null], 'mlp.down_proj': [null, k.ffn],
        };
        for (const [m, [rows, cols]] of Object.entries(keptBy)) {
          const key = `${PEFT_PREFIX}model.layers.${lp.layer}.${m}`;
          const dW = (t: typeof pruned.tensors) => {
            const A = t.get(`${key}.lora_A.weight`)!, B = t.get(`${key}.lora_B.weight`)!;
            return { d: loraDelta(B.shape[0], A.shape[1], FIX.r, s, A.data, B.data), m: B.shape[0], n: A.shape[1] };
          };
          const full = dW(rec.tensors), small = dW(pruned.tensors);
          const R = rows ?? Array.from({ length: full.m }, (_, i) => i), C = cols ?? Array.from({ length: full.n }, (_, j) => j);
          const rowAt = new Map(R.map((r, i) => [r, i])), colAt = new Map(C.map((cc, j) => [cc, j]));
          let zeros = 0;
          for (let i = 0; i < full.m; i++) for (let j = 0; j < full.n; j++) {
            const v = full.d[i * full.n + j];
            const ri = rowAt.get(i), cj = colAt.get(j);
            if (ri === undefined || cj === undefined) {
              assert.equal(v, 0, `${m}: ΔW[${i},${j}] at a pruned coordinate`);
              zeros++;
            } else assert.equal(v, small.d[ri * small.n + cj], `${m}: ΔW[${i},${j}] at a kept coordinate`);
          }
          assert.ok(zeros > 0, `${m}: no pruned coordinate checked`);
        }
      }
    });

    test('the recovered adapter loads as a PEFT LoRA on the original model; merged (and unmerged) logits equal the reference\'s merged W + s·B·A (1e-5)', async () => {
      const full = await loadDecoder(LLAMA);
      const { set } = loadPeftAdapter(full, path.join(TMP, `${name}-recovered`), { headNames: full.headNames });
      const merged = await logits(full.withWeights(set.mergeInto(full.weights)));
      assert.ok(logitError(merged, c.full_recovered_logits) < 1e-5, `merged: ${logitError(merged, c.full_recovered_logits)}`);
      const unmerged = await logits(full, set);
      assert.ok(logitError(unmerged, c.full_recovered_logits) < 1e-5, `unmerged: ${logitError(unmerged, c.full_recovered_logits)}`);
    });
  });
}

test('the GQA expansion of KV heads to q/o features is the official formula (start = kv_start·g, length hd·g)', () => {
  // 8 query heads on 2 KV heads, head_dim 4: KV head 1 owns q features 16..31.
  assert.deepEqual(qFeatures([1], 4, 8, 2), Array.from({ length: 16 }, (_, i) => 16 + i));
  assert.deepEqual(qFeatures([0, 2], 2, 6, 3), [0, 1, 2, 3, 8, 9, 10, 11]);
});

test('a pruned model with per-layer widths trains a LoRA through the loop and generates with the KV cache as without it', async () => {
  const dir = path.join(TMP, 'layer1-pruned');
  if (!fs.existsSync(dir)) await runLoramPrune({ model: LLAMA, out: dir, importance: 'magnitude', layers: [1], ffnRatio: 0.25 });
  const small = await loadDecoder(dir);
  const adapters = new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8 }), small.sites, small.weights, { targetModules: 'all-linear', headNames: small.headNames, seed: 3 });
  const r = await fit(new CausalLmTask(small, { padId: 0 }), adapters, { train: calibration }, { epochs: 8, lr: 2e-2, batchSize: 2, seed: 0, warmupRatio: 0, schedule: 'constant', weightDecay: 0 });
  assert.ok(r.epochLosses.at(-1)! < r.epochLosses[0], `loss ${r.epochLosses[0]} → ${r.epochLosses.at(-1)}`);
  const gen = new Generator(small, adapters, { threads: 1 });
  try {
    const a = await gen.generate([5, 9, 11], { maxNewTokens: 6, stopTokens: [], useCache: true });
    const b = await gen.generate([5, 9, 11], { maxNewTokens: 6, stopTokens: [], useCache: false });
    assert.deepEqual(a.tokens, b.tokens);
  } finally {
    await gen.release();
  }
});

test('random-structured pruning is seeded; normA fills the pruned A columns of o/down with N(0, 1/r²) and keeps the kept ones', async () => {
  const a = await runLoramPrune({ model: LLAMA, out: path.join(TMP, 'rand-a'), importance: 'random', seed: 5 });
  const b = await runLoramPrune({ model: LLAMA, out: path.join(TMP, 'rand-b'), importance: 'random', seed: 5 });
  const c = await runLoramPrune({ model: LLAMA, out: path.join(TMP, 'rand-c'), importance: 'random', seed: 6 });
  assert.deepEqual(a.plan.layers, b.plan.layers);
  assert.notDeepEqual(a.plan.layers, c.plan.layers);
  assert.ok(a.parameters.pruned < a.parameters.original);
  const uniform = FIX.cases.uniform;
  const tensors = new Map(Object.entries(uniform.adapter as Record<string, { shape: number[]; data: number[] }>).map(([k, t]) => [k, { shape: t.shape, data: f32(t.data) }]));
  const plan = readPlan(path.join(TMP, 'uniform-pruned'));
  const zero = recoverTensors(tensors, plan);
  const normA = recoverTensors(tensors, plan, { fill: 'normA', seed: 1 });
  for (const [k, t] of zero) {
    const n = normA.get(k)!;
    if (!/(o_proj|down_proj)\.lora_A/.test(k) || !plan.layers.some((l) => k.includes(`layers.${l.layer}.`))) { assert.deepEqual(n.data, t.data, k); continue; }
    let kept = 0, filled: number[] = [];
    for (let i = 0; i < t.data.length; i++) {
      if (t.data[i] !== 0) { assert.equal(n.data[i], t.data[i]); kept++; } else filled.push(n.data[i]);
    }
    assert.ok(kept > 0 && filled.length > 0);
    const sd = Math.sqrt(filled.reduce((s, x) => s + x * x, 0) / filled.length);
    assert.ok(Math.abs(sd - 1 / FIX.r) < 0.25 / FIX.r, `${k}: std ${sd}`);
  }
});

test('errors say what is wrong: an adapter of another pruned model, DoRA, a model already pruned per layer, taylor without data', async () => {
  const uniformPlan = readPlan(path.join(TMP, 'uniform-pruned'));
  const other = readPlan(path.join(TMP, 'layer1-pruned'));
  const tensors = new Map(Object.entries(FIX.cases.uniform.adapter as Record<string, { shape: number[]; data: number[] }>).map(([k, t]) => [k, { shape: t.shape, data: f32(t.data) }]));
  assert.throws(() => recoverTensors(tensors, other), /keeps 48 of 64 along that axis: was the adapter trained on this pruned model\?/);
  const dora = new Map(tensors);
  dora.set(`${PEFT_PREFIX}model.layers.0.mlp.up_proj.lora_magnitude_vector`, { shape: [32], data: new Float32Array(32) });
  assert.throws(() => recoverTensors(dora, uniformPlan), /recovery is defined for LoRA's lora_A \/ lora_B/);
  await assert.rejects(runLoramPrune({ model: path.join(TMP, 'layer1-pruned'), out: path.join(TMP, 'x'), importance: 'magnitude' }), /already pruned with per-layer widths/);
  await assert.rejects(runLoramPrune({ model: LLAMA, out: path.join(TMP, 'x'), importance: 'taylor' }), /needs calibration text: --data/);
  await assert.rejects(runLoramPrune({ model: LLAMA, out: path.join(TMP, 'x'), importance: 'magnitude', layers: [2] }), /layer 2 does not exist \(the model has 2 layers/);
  assert.throws(() => runLoramRecover({ adapter: path.join(TMP, 'uniform-adapter'), pruned: LLAMA, out: path.join(TMP, 'y') }), /loram\.json: not found/);
});

test('the LoRAM reference reruns in PyTorch to the committed fixture', { skip: torchSkip }, () => {
  requireTorch();
  const out = path.join(TMP, 'ref.json');
  const r = spawnSync(PY, [new URL('../tools/reference/loram.py', import.meta.url).pathname, out], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const fresh = JSON.parse(fs.readFileSync(out, 'utf8'));
  assert.deepEqual(fresh.calibration, FIX.calibration);
  for (const n of Object.keys(FIX.cases)) {
    assert.deepEqual(fresh.cases[n].plan, FIX.cases[n].plan);
    assert.deepEqual(fresh.cases[n].recovered, FIX.cases[n].recovered);
    assert.deepEqual(fresh.cases[n].full_recovered_logits, FIX.cases[n].full_recovered_logits);
  }
});

test('lorakit loram prune / train / recover / generate from the command line', () => {
  const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
  const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8' });
  const data = path.join(TMP, 'cli.jsonl');
  fs.writeFileSync(data, Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: i % 2 ? 'once upon a time there lived a king' : 'the movie was very good' })).join('\n') + '\n');
  const small = path.join(TMP, 'cli-small'), run1 = path.join(TMP, 'cli-run'), rec = path.join(TMP, 'cli-rec');
  let r = run('loram', 'prune', '--model', LLAMA, '--data', data, '--ratio', '0.5', '--layers', '1', '--out', small);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /pruned 1 of 2 layers \(taylor importance\)/);
  r = run('train', '--task', 'causal-lm', '--model', small, '--data', data, '--epochs', '1', '--batch', '4', '--out', run1, '--quiet');
  assert.equal(r.status, 0, r.stderr);
  r = run('loram', 'recover', '--adapter', path.join(run1, 'adapter'), '--pruned', small, '--out', rec);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /recovered adapter: .* \(7 tensors padded back/);
  r = run('generate', '--model', LLAMA, '--adapter', rec, '--prompt', 'once upon', '--max-new-tokens', '3');
  assert.equal(r.status, 0, r.stderr);
  r = run('loram', 'recover', '--adapter', path.join(run1, 'adapter'), '--pruned', path.join(TMP, 'uniform-pruned'), '--out', path.join(TMP, 'cli-bad'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /was the adapter trained on this pruned model\?/);
  r = run('loram', 'prune', '--model', LLAMA, '--ratio', '1', '--out', path.join(TMP, 'cli-bad2'));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--ratio is the fraction removed, in \[0, 1\)/);
});
