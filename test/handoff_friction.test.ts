// What a user meets when an adapter goes between lorakit and PEFT / a
// cluster engine and back: base_model_name_or_path names the model as a PEFT
// user expects (the HF name in config.json, else an absolute path); the
// learning rate follows the warmup/decay --help promises on every task (the
// formulas of transformers' get_linear_schedule_with_warmup, written out here);
// `generate` runs an adapter with every config field it has (DoRA,
// rank_pattern, alpha_pattern) as PeftModel does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runTrainJob, silentUi, type JobUi } from '../src/tasks/train.ts';
import { loadDecoder } from '../src/models/load_decoder.ts';
import { createPeftAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { loadAdapterFor } from '../src/cli/generate.ts';
import { Generator } from '../src/serve/generate.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { Rng } from '../src/util/rng.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-handoff-'));
const STORY = [
  { prompt: 'once upon a time', completion: 'there lived a king' },
  { prompt: 'what is this', completion: 'a good movie' },
  { text: 'hello world, i love music' },
  { prompt: 'how are you', completion: 'fine, thanks' },
];

function copyFolder(src: string, patch: (cfg: Record<string, unknown>) => void): string {
  const dir = tmp();
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dir, f));
  const cfg = JSON.parse(fs.readFileSync(path.join(dir, 'config.json'), 'utf8'));
  patch(cfg);
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  return dir;
}

test("base_model_name_or_path: config.json's _name_or_path when it has one, else the folder's absolute path (not the path as typed)", async () => {
  const dir = tmp();
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, STORY.map((r) => JSON.stringify(r)).join('\n'));
  const named = copyFolder(FIX + 'llama-tiny', (c) => { c._name_or_path = 'tiny-org/llama-tiny'; });
  const plain = copyFolder(FIX + 'llama-tiny', () => {});
  const job = (model: string, out: string) => runTrainJob({ task: 'causal-lm', model, data, method: 'lora', methodConfig: {}, epochs: 1, lr: 0.01, batchSize: 8, seed: 1, threads: 1, out });
  const cfgOf = (out: string) => JSON.parse(fs.readFileSync(path.join(out, 'adapter', 'adapter_config.json'), 'utf8'));
  await job(named, path.join(dir, 'a'));
  assert.equal(cfgOf(path.join(dir, 'a')).base_model_name_or_path, 'tiny-org/llama-tiny');
  const cwd = process.cwd();
  process.chdir(path.dirname(plain));
  try {
    await job(path.basename(plain), path.join(dir, 'b'));
  } finally {
    process.chdir(cwd);
  }
  assert.equal(cfgOf(path.join(dir, 'b')).base_model_name_or_path, plain);
  // The folder itself is kept in lorakit's block, for lorakit's own commands (eval).
  assert.equal(JSON.parse(fs.readFileSync(path.join(dir, 'a', 'adapter', 'lorakit_config.json'), 'utf8')).base_model_dir, named);
});

test('--lr: linear warmup then linear decay to 0 on the causal-LM task, as transformers computes it; --schedule constant keeps it', async () => {
  const dir = tmp();
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, STORY.map((r) => JSON.stringify(r)).join('\n'));
  const lrs = async (o: { schedule?: 'linear' | 'constant' | 'cosine'; warmupRatio?: number }) => {
    const seen: number[] = [];
    const ui: JobUi = { ...silentUi, step: (s) => seen.push(s.lr) };
    await runTrainJob({ task: 'causal-lm', model: FIX + 'llama-tiny', data, method: 'lora', methodConfig: {}, epochs: 4, lr: 0.01, batchSize: 2, seed: 1, threads: 1, out: path.join(dir, String(Math.random())), ...o }, ui);
    return seen;
  };
  // 2 batches × 4 epochs = 8 steps, warmup round(0.25·8) = 2: transformers' lr_lambda(k) = k/2 for k < 2, else (8−k)/6.
  const T = 8, W = 2;
  const want = Array.from({ length: T }, (_, k) => 0.01 * (k < W ? k / W : Math.max(0, (T - k) / (T - W))));
  const got = await lrs({ warmupRatio: 0.25 });
  assert.equal(got.length, T);
  got.forEach((v, k) => assert.ok(Math.abs(v - want[k]) < 1e-12, `step ${k}: lr ${v}, transformers ${want[k]}`));
  assert.deepEqual(await lrs({ schedule: 'constant', warmupRatio: 0 }), Array(T).fill(0.01));
});

test('generate runs an adapter with use_dora, rank_pattern and alpha_pattern as PeftModel does (greedy tokens = argmax of its logits)', async () => {
  const model = await loadDecoder(FIX + 'llama-tiny');
  const json = {
    peft_type: 'LORA', r: 4, lora_alpha: 8, use_dora: true, target_modules: ['q_proj', 'v_proj', 'down_proj'],
    rank_pattern: { 'layers.1.self_attn.v_proj': 2 }, alpha_pattern: { down_proj: 64 },
  };
  const { set } = createPeftAdapter(model, json, { seed: 3, headNames: model.headNames });
  const rng = new Rng(11);
  for (const [k, p] of set.params) if (/lora_[AB]/.test(k)) for (let i = 0; i < p.length; i++) p[i] = (rng.uniform() * 2 - 1) * 0.6;
  const dir = tmp();
  saveAdapter(dir, set, { baseModel: 'llama-tiny', peftConfig: { config: json } });
  // The folder as generate reads it: the patterns and DoRA come back.
  const loaded = loadAdapterFor(model, dir);
  assert.equal(loaded.configFor(model.sites.find((s) => s.name === 'model.layers.1.self_attn.v_proj')!).r, 2);
  assert.equal((loaded.configFor(model.sites.find((s) => s.name === 'model.layers.0.mlp.down_proj')!) as { lora_alpha: number }).lora_alpha, 64);
  const prompt = [1, 5, 9, 14];
  const gen = new Generator(model, loaded, { threads: 1 });
  const pm = new PeftModel(model, { threads: 1 });
  pm.addAdapter('default', set);
  const bare = new PeftModel(model, { threads: 1 });
  try {
    const { tokens } = await gen.generate(prompt, { maxNewTokens: 6, stopTokens: [] });
    const seq = [...prompt];
    let differsFromBase = false;
    for (let i = 0; i < 6; i++) {
      const V = model.config.vocabSize;
      const argmaxLast = async (m: PeftModel) => {
        const logits = (await m.run(padBatch([seq]))).data as Float32Array;
        const last = logits.subarray((seq.length - 1) * V, seq.length * V);
        return last.indexOf(Math.max(...last));
      };
      const next = await argmaxLast(pm);
      if (next !== (await argmaxLast(bare))) differsFromBase = true;
      assert.equal(tokens[i], next, `token ${i}: generate ${tokens[i]}, PeftModel ${next}`);
      seq.push(next);
    }
    assert.ok(differsFromBase, 'the adapter must change what is generated');
  } finally {
    await gen.release();
    await pm.release();
    await bare.release();
  }
});
