// --base-dtype int8 (and nf4, int4) end to end on the tiny fixtures (the QLoRA workflow): a
// LoRA trained on a quantized base saves as a normal PEFT adapter that loads on
// the fp32 base and gives nearly the same loss there; methods that read the
// frozen weight (DoRA) train on the dequantized weight; generation runs the
// adapter unmerged on the int8 base; --full refuses a quantized base.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { runClassificationJob, runEvalJob } from '../src/tasks/classification.ts';
import { runTrainJob, silentUi } from '../src/tasks/train.ts';
import { runGenerate } from '../src/cli/generate.ts';
import { readAdapter } from '../src/peft/adapter_files.ts';
import { loadModel } from '../src/models/load.ts';
import { quantizedFormOf } from '../src/quant/quantized_weights.ts';
import { makeProgram } from '../src/cli/main.ts';

const FIX = new URL('./fixtures/hf/', import.meta.url).pathname;
const tmp = (l: string) => fs.mkdtempSync(path.join(os.tmpdir(), `lorakit-quant-${l}-`));
const tiny = { model: 'use', data: 'imdb', epochs: 1, lr: 5e-3, headLrScale: 5, batchSize: 8, maxTrain: 24, maxEval: 16, maxLen: 32, resume: false, baseline: false, threads: 1 };

for (const [dtype, ratio] of [['int8', 0.3], ['nf4', 0.17], ['int4', 0.17]] as const) test(`loading with baseDtype ${dtype} quantizes every linear weight once (not the embeddings), to < ${ratio}× the fp32 bytes; fp32 loads are untouched`, async () => {
  const q = await loadModel(FIX + 'llama-tiny', 'decoder', { baseDtype: dtype });
  const linear = q.model.sites.filter((s) => s.kind !== 'embedding');
  assert.ok(linear.length > 0 && q.quantization!.quantized.length === new Set(linear.map((s) => s.weightKey)).size);
  for (const s of linear) assert.equal(quantizedFormOf(q.model.weights.get(s.weightKey)!.data)?.dtype, dtype, s.name);
  for (const s of q.model.sites.filter((s) => s.kind === 'embedding')) assert.ok(!q.quantization!.quantized.includes(s.weightKey) || linear.some((l) => l.weightKey === s.weightKey));
  assert.ok(q.quantization!.storedBytes / q.quantization!.fp32Bytes < ratio, `${q.quantization!.storedBytes} / ${q.quantization!.fp32Bytes}`);
  const f = await loadModel(FIX + 'llama-tiny', 'decoder');
  assert.equal(f.quantization, undefined);
  for (const s of linear) assert.equal(quantizedFormOf(f.model.weights.get(s.weightKey)!.data), undefined);
});

// Loss on the fp32 base within 2 % (int8) / 10 % (4-bit) of the loss on the base it was trained on.
for (const [dtype, tol] of [['int8', 0.02], ['nf4', 0.1], ['int4', 0.1]] as const) {
  test(`QLoRA workflow: LoRA trained on the ${dtype} base saves as a PEFT LoRA that loads on the fp32 base (loss within ${tol * 100} %)`, async () => {
    const out = tmp(`cls-${dtype}`);
    const res = await runClassificationJob({ ...tiny, baseDtype: dtype, method: 'lora', methodConfig: { r: 4, lora_alpha: 8 }, seed: 5, out }, silentUi);
    assert.equal(res.baseDtype, dtype);
    const cfg = readAdapter(path.join(out, 'adapter')).config;
    assert.equal(cfg.peft_type, 'LORA');
    assert.equal(cfg.lorakit.base_dtype, dtype);
    const evalOn = (baseDtype: 'fp32' | typeof dtype) => runEvalJob({ adapter: path.join(out, 'adapter'), baseDtype, data: 'imdb', split: 'test', maxEval: 16, threads: 1 });
    const [onQuant, onFp32] = [await evalOn(dtype), await evalOn('fp32')];
    assert.ok(Number.isFinite(onFp32.loss) && onQuant.loss !== onFp32.loss, 'the two bases compute differently');
    assert.ok(Math.abs(onQuant.loss - onFp32.loss) <= tol * onFp32.loss, `${dtype} ${onQuant.loss} vs fp32 ${onFp32.loss}`);
  });
}

for (const dtype of ['int8', 'nf4', 'int4'] as const) test(`causal-lm DoRA on an ${dtype} llama-tiny base: the loss falls, the adapter generates on the ${dtype} and the fp32 base; --full refuses ${dtype}`, async () => {
  const dir = tmp(`lm-${dtype}`);
  const data = path.join(dir, 'story.jsonl');
  fs.writeFileSync(data, ['once upon a time there lived a king', 'what is this, a good movie', 'who was there: the queen and the king', 'hello world, i love music'].map((text) => JSON.stringify({ text })).join('\n') + '\n');
  const base = { task: 'causal-lm' as const, model: FIX + 'llama-tiny', data, method: 'dora', methodConfig: { r: 4, lora_alpha: 8 }, epochs: 6, lr: 0.02, batchSize: 2, seed: 3, threads: 1 };
  const r = await runTrainJob({ ...base, baseDtype: dtype, out: path.join(dir, dtype) }, silentUi);
  assert.equal(r.baseDtype, dtype);
  assert.ok(r.epochLosses.at(-1)! < r.epochLosses[0], `losses ${r.epochLosses}`);
  const adapter = path.join(dir, dtype, 'adapter');
  const gen = (baseDtype: 'fp32' | typeof dtype) => runGenerate({ model: FIX + 'llama-tiny', adapter, baseDtype, promptIds: [1, 5, 9], maxNewTokens: 4, threads: 1 });
  for (const d of [dtype, 'fp32'] as const) assert.equal((await gen(d)).tokens.length, 4, d);
  await assert.rejects(runTrainJob({ ...base, baseDtype: dtype, full: true, out: path.join(dir, 'full') }, silentUi), /--full trains every weight/);
});

test('--base-dtype is on train, eval and generate, and --help says what int8, nf4 and int4 are', () => {
  const program = makeProgram();
  for (const name of ['train', 'eval', 'generate']) {
    const cmd = program.commands.find((c) => c.name() === name)!;
    const help = cmd.helpInformation().replace(/\s+/g, ' ');
    assert.match(help, /--base-dtype <dtype>/, name);
    assert.match(help, /int8 = per-output-channel symmetric absmax, activations quantized per tensor by ORT's DynamicQuantizeMatMul/, name);
    assert.match(help, /nf4 = bitsandbytes' 4-bit NormalFloat, blocks of 64 with a float32 absmax/, name);
    assert.match(help, /int4 = 4-bit asymmetric codes with a scale and zero point per 32×32 tile, run by ORT's MatMulNBits/, name);
  }
});
