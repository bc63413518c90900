// GGUF export (src/io/gguf.ts, src/peft/gguf_export.ts, `lorakit export-gguf`)
// checked against llama.cpp itself: node-llama-cpp (prebuilt llama.cpp CPU
// binaries from npm) loads the exported files and its greedy tokens and
// first-step logits must equal lorakit's on the same prompt ids — the base, the
// base with a LoRA merged in, and the base with the LoRA GGUF applied at load
// time. The tiny fixtures have 94 tokenizer entries for 128 embedding rows:
// the exported vocabulary is padded to 128 with unused [PADn] tokens, as
// llama.cpp's converter pads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readGgufFileInfo } from 'node-llama-cpp';
import { GgufError, gguf, parseGguf, readGguf, serializeGguf, toFloat16Bits, fromFloat16Bits } from '../src/io/gguf.ts';
import { runExportGguf } from '../src/cli/export_gguf.ts';
import { permuteRotaryRows } from '../src/peft/gguf_export.ts';
import { ggufVocabFromTokenizerJson } from '../src/tokenize/gguf_vocab.ts';
import { loadModel } from '../src/models/load.ts';
import type { DecoderModel } from '../src/models/decoder.ts';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { dora } from '../src/adapters/dora/index.ts';
import { getMethod } from '../src/adapters/registry.ts';
import { loraConfigSchema } from '../src/adapters/lora/config.ts';
import { loadPeftAdapter, saveAdapter } from '../src/peft/adapter_files.ts';
import { Generator } from '../src/serve/generate.ts';
import { buildForwardGraph } from '../src/models/forward.ts';
import { plainLinear } from '../src/models/linear.ts';
import { CompiledGraph } from '../src/runtime/session.ts';
import { loadLlamaCppPeer } from '../bench/peer_llama_cpp.ts';
import { maxAbsDiff } from './helpers/arrays.ts';

const FIXTURES = new URL('./fixtures/hf/', import.meta.url).pathname;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-gguf-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const PROMPT = [1, 17, 42, 5, 88, 23, 9, 61];
const NEW = 16;
/** |lorakit − llama.cpp| on the first step's logits (float32 both sides, different summation orders). */
const LOGIT_TOL = 1e-4;

async function lorakitLogits(model: DecoderModel, ids: number[]): Promise<Float32Array> {
  const { graph } = buildForwardGraph(model, plainLinear);
  const cg = await CompiledGraph.compile(graph, { threads: 1 });
  try {
    const out = await cg.run({ input_ids: { data: BigInt64Array.from(ids, BigInt), dims: [1, ids.length] }, attention_mask: { data: new Float32Array(ids.length).fill(1), dims: [1, ids.length] } });
    const V = model.config.vocabSize;
    return (out.output.data as Float32Array).slice((ids.length - 1) * V, ids.length * V);
  } finally {
    await cg.release();
  }
}

async function lorakitGreedy(model: DecoderModel, set: AdapterSet | null): Promise<number[]> {
  const gen = new Generator(model, set, { threads: 1 });
  try {
    return (await gen.generate(PROMPT, { maxNewTokens: NEW, stopTokens: [] })).tokens;
  } finally {
    await gen.release();
  }
}

describe('GGUF file format', () => {
  test('write → read round trip of every metadata type and F32/F16 tensors; node-llama-cpp reads the same', async () => {
    const meta = new Map([
      ['general.architecture', gguf.str('llama')],
      ['t.u8', { type: 'u8', value: 200 }], ['t.i8', { type: 'i8', value: -5 }], ['t.u16', { type: 'u16', value: 60000 }], ['t.i16', { type: 'i16', value: -300 }],
      ['t.u32', gguf.u32(4000000000)], ['t.i32', gguf.i32(-7)], ['t.f32', gguf.f32(0.5)], ['t.bool', gguf.bool(true)],
      ['t.u64', { type: 'u64', value: 2n ** 40n }], ['t.i64', { type: 'i64', value: -(2n ** 40n) }], ['t.f64', { type: 'f64', value: Math.PI }],
      ['t.strs', gguf.arr('string', ['a', 'βγ', ''])], ['t.ints', gguf.arr('i32', [1, -2, 3])],
    ] as const);
    const a = Float32Array.from({ length: 6 }, (_, i) => i - 2.5), b = Float32Array.from([0.1, -65504, 1e-8, 3]);
    const bytes = Buffer.concat(serializeGguf(new Map(meta as any), [{ name: 'a', shape: [2, 3], data: a }, { name: 'b', shape: [4], data: b, dtype: 'F16' }]));
    const f = parseGguf(bytes);
    assert.equal(f.version, 3);
    for (const [k, v] of meta) assert.deepEqual(f.metadata.get(k), v, k);
    assert.deepEqual(f.tensors.map((t) => [t.name, t.shape, t.dtype, t.offset % 32]), [['a', [2, 3], 'F32', 0], ['b', [4], 'F16', 0]]);
    assert.deepEqual(f.read('a'), a);
    assert.deepEqual([...f.read('b')], [...b].map((x) => fromFloat16Bits(toFloat16Bits(x))));
    // The other reader: node-llama-cpp's own parser of the same bytes.
    const file = path.join(tmp, 'rt.gguf');
    fs.writeFileSync(file, bytes);
    const info = await readGgufFileInfo(file, { logWarnings: false });
    assert.equal(info.version, 3);
    assert.equal((info.metadata as any).t.strs[1], 'βγ');
    assert.equal((info.metadata as any).t.u64, 2n ** 40n);
    assert.deepEqual(info.fullTensorInfo?.map((t) => [t.name, t.dimensions.map(Number)]), [['a', [3, 2]], ['b', [4]]]); // GGUF stores dims innermost first
  });

  test('float16 rounding follows IEEE binary16 (round to nearest even)', () => {
    // Bit patterns from the IEEE 754 binary16 definition.
    const cases: [number, number][] = [[1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [65520, 0x7c00], [2 ** -24, 0x0001], [2 ** -25, 0x0000], [1.5 * 2 ** -25, 0x0001], [0.1, 0x2e66], [1 + 2 ** -11, 0x3c00], [1 + 3 * 2 ** -11, 0x3c02], [Infinity, 0x7c00]];
    for (const [x, h] of cases) assert.equal(toFloat16Bits(x), h, `${x}`);
    assert.ok(Number.isNaN(fromFloat16Bits(toFloat16Bits(NaN))));
  });

  test('a truncated or corrupt file is refused with what is wrong', () => {
    const bytes = Buffer.concat(serializeGguf(new Map([['general.name', gguf.str('x')]]), [{ name: 'w', shape: [8, 8], data: new Float32Array(64) }]));
    assert.throws(() => parseGguf(bytes.subarray(0, bytes.length - 10), 'cut.gguf'), (e: unknown) => e instanceof GgufError && /cut\.gguf: truncated: tensor 'w'/.test(e.message));
    assert.throws(() => parseGguf(bytes.subarray(0, 30), 'cut.gguf'), (e: unknown) => e instanceof GgufError && /truncated: metadata/.test(e.message));
    const bad = Buffer.from(bytes);
    bad.write('GGUX', 0);
    assert.throws(() => parseGguf(bad), /not a GGUF file/);
    const badType = Buffer.from(bytes);
    badType.writeUInt32LE(77, 4 + 4 + 8 + 8 + 8 + 'general.name'.length); // the first value's type code
    assert.throws(() => parseGguf(badType), /unknown type code 77/);
  });

  test('the Q/K row permutation interleaves each head\'s two halves', () => {
    // One head of size 4, 1 column: HF rows [x0 x1 | y0 y1] → llama.cpp rows [x0 y0 x1 y1].
    assert.deepEqual([...permuteRotaryRows(Float32Array.from([10, 11, 20, 21, 30, 31, 40, 41]), 2, 1)], [10, 20, 11, 21, 30, 40, 31, 41]);
  });
});

for (const fixture of ['llama-tiny', 'qwen2-tiny']) {
  describe(`${fixture} in llama.cpp (node-llama-cpp)`, () => {
    let model: DecoderModel;
    let set: AdapterSet;
    const baseFile = path.join(tmp, `${fixture}.gguf`), mergedFile = path.join(tmp, `${fixture}-merged.gguf`), loraFile = path.join(tmp, `${fixture}-lora.gguf`);
    const adapterDir = path.join(tmp, `${fixture}-adapter`);
    const peers: { dispose(): Promise<void> }[] = [];
    after(async () => { for (const p of peers) await p.dispose(); });

    before(async () => {
      model = (await loadModel(FIXTURES + fixture, 'decoder')).model;
      // A seeded LoRA with B ≠ 0 on every linear module, saved as PEFT files; k_proj gets its own alpha
      // (alpha_pattern), which the LoRA GGUF's single alpha cannot hold: it is folded into lora_b.
      const config = loraConfigSchema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false });
      const seeded = new AdapterSet(lora, config, model.sites, model.weights, { targetModules: 'all-linear', headNames: model.headNames, seed: 3 });
      for (const [k, p] of seeded.params) if (k.includes('lora_B')) for (let i = 0; i < p.length; i++) p[i] *= 8; // large enough to change the tokens
      saveAdapter(adapterDir, seeded, { baseModel: FIXTURES + fixture, taskType: 'CAUSAL_LM' });
      const cfgFile = path.join(adapterDir, 'adapter_config.json');
      fs.writeFileSync(cfgFile, JSON.stringify({ ...JSON.parse(fs.readFileSync(cfgFile, 'utf8')), alpha_pattern: { k_proj: 40 } }));
      set = loadPeftAdapter(model, adapterDir, { headNames: model.headNames }).set;
      assert.equal(set.factorsFor(set.targets.find((s) => s.name.endsWith('k_proj'))!).scale, 10);
      await runExportGguf({ model: FIXTURES + fixture, out: baseFile });
      await runExportGguf({ model: FIXTURES + fixture, adapters: [adapterDir], out: mergedFile });
      await runExportGguf({ model: FIXTURES + fixture, adapters: [adapterDir], adapterOnly: true, out: loraFile });
    });

    test('the file holds the weights under llama.cpp names and the padded vocabulary', () => {
      const f = readGguf(baseFile);
      assert.equal(f.metadata.get('general.architecture')?.value, fixture === 'qwen2-tiny' ? 'qwen2' : 'llama');
      const tokens = f.metadata.get('tokenizer.ggml.tokens')!.value as string[];
      assert.equal(tokens.length, 128);
      assert.equal(tokens[127], '[PAD127]');
      assert.deepEqual(f.read('token_embd.weight'), model.weights.get('model.embed_tokens.weight')!.data);
      assert.equal(f.tensors.some((t) => t.name === 'output.weight'), !(model.config as any).tieWordEmbeddings);
      assert.deepEqual(f.read('blk.1.ffn_down.weight'), model.weights.get('model.layers.1.mlp.down_proj.weight')!.data);
    });

    test('greedy tokens and first-step logits equal lorakit: base, merged LoRA, LoRA GGUF at load time', async () => {
      const baseTokens = await lorakitGreedy(model, null);
      const adaptedTokens = await lorakitGreedy(model, set);
      assert.notDeepEqual(adaptedTokens, baseTokens, 'the seeded LoRA must change the greedy tokens (else the adapter checks prove nothing)');
      const merged = model.withWeights(set.mergeInto(model.weights));
      const cases = [
        { what: 'base', peer: await loadLlamaCppPeer(baseFile), tokens: baseTokens, logits: await lorakitLogits(model, PROMPT) },
        { what: 'merged LoRA', peer: await loadLlamaCppPeer(mergedFile), tokens: adaptedTokens, logits: await lorakitLogits(merged, PROMPT) },
        { what: 'LoRA GGUF at load time', peer: await loadLlamaCppPeer(baseFile, { lora: [{ filePath: loraFile }] }), tokens: adaptedTokens, logits: await lorakitLogits(merged, PROMPT) },
      ];
      for (const c of cases) {
        peers.push(c.peer);
        assert.deepEqual(await c.peer.greedy(PROMPT, NEW), c.tokens, `${fixture} ${c.what}: greedy tokens`);
        const d = maxAbsDiff((await c.peer.nextLogits(PROMPT)).subarray(0, c.logits.length), c.logits);
        console.log(`${fixture} ${c.what}: ${NEW} greedy tokens equal; first-step logits max |diff| ${d.toExponential(2)}`);
        assert.ok(d < LOGIT_TOL, `${fixture} ${c.what}: logits differ by ${d}`);
      }
    });
  });
}

describe('--adapter-only beyond plain LoRA on attention and MLP: llama.cpp at load time equals lorakit', () => {
  const cases: { what: string; method: string; config: Record<string, unknown>; targets: string[]; boostB?: number }[] = [
    // The untied head (output.weight) takes a LoRA pair like any projection.
    { what: 'LoRA on q_proj and the untied lm_head', method: 'lora', config: { r: 4, lora_alpha: 8, init_lora_weights: false }, targets: ['q_proj', 'lm_head'], boostB: 8 },
    // A method whose ΔW = s·B·A with frozen shared projections: written through its low-rank factors.
    { what: 'VeRA on q/k/v/o', method: 'vera', config: { r: 16, projection_prng_key: 3, init_weights: false }, targets: ['q_proj', 'k_proj', 'v_proj', 'o_proj'] },
  ];
  for (const c of cases) {
    test(c.what, async () => {
      const model = (await loadModel(FIXTURES + 'llama-tiny', 'decoder')).model;
      const method = getMethod(c.method);
      const set = new AdapterSet(method, method.schema.parse(c.config), model.sites, model.weights, { targetModules: c.targets, headNames: model.headNames, seed: 5 });
      if (c.boostB) for (const [k, p] of set.params) if (k.includes('lora_B')) for (let i = 0; i < p.length; i++) p[i] *= c.boostB;
      const dir = path.join(tmp, `only-${c.method}`);
      saveAdapter(dir, set, { baseModel: FIXTURES + 'llama-tiny', taskType: 'CAUSAL_LM' });
      const base = path.join(tmp, 'only-base.gguf'), file = path.join(tmp, `only-${c.method}.gguf`);
      await runExportGguf({ model: FIXTURES + 'llama-tiny', out: base });
      await runExportGguf({ model: FIXTURES + 'llama-tiny', adapters: [dir], adapterOnly: true, out: file });
      const loaded = loadPeftAdapter(model, dir, { headNames: model.headNames }).set;
      const want = await lorakitLogits(model.withWeights(loaded.mergeInto(model.weights)), PROMPT);
      const moved = maxAbsDiff(want, await lorakitLogits(model, PROMPT));
      assert.ok(moved > 100 * LOGIT_TOL, `the adapter must move the logits (moved ${moved})`);
      const peer = await loadLlamaCppPeer(base, { lora: [{ filePath: file }] });
      try {
        assert.deepEqual(await peer.greedy(PROMPT, NEW), await lorakitGreedy(model, loaded));
        const d = maxAbsDiff((await peer.nextLogits(PROMPT)).subarray(0, want.length), want);
        console.log(`llama-tiny ${c.what} as a GGUF LoRA: ${NEW} greedy tokens equal; logits max |diff| ${d.toExponential(2)} (the adapter moves them by ${moved.toFixed(3)})`);
        assert.ok(d < LOGIT_TOL, `logits differ by ${d}`);
      } finally {
        await peer.dispose();
      }
    });
  }
});

test('--dtype f16: half the bytes, loads in llama.cpp, first-step logits within float16 rounding of lorakit\'s', async () => {
  const f32 = await runExportGguf({ model: FIXTURES + 'llama-tiny', out: path.join(tmp, 'f32.gguf') });
  const f16 = await runExportGguf({ model: FIXTURES + 'llama-tiny', dtype: 'f16', out: path.join(tmp, 'f16.gguf') });
  assert.ok(f16.bytes < 0.6 * f32.bytes, `${f16.bytes} vs ${f32.bytes} bytes`);
  const model = (await loadModel(FIXTURES + 'llama-tiny', 'decoder')).model;
  const peer = await loadLlamaCppPeer(path.join(tmp, 'f16.gguf'));
  try {
    const ours = await lorakitLogits(model, PROMPT);
    const d = maxAbsDiff((await peer.nextLogits(PROMPT)).subarray(0, ours.length), ours);
    // float16 weights (and activations rounded to float16 by llama.cpp's F16 matmul): ~1e-3 of logits of size ~3.
    assert.ok(d > 1e-6 && d < 2e-2, `f16 logits differ by ${d}`);
  } finally {
    await peer.dispose();
  }
});

describe('export-gguf refuses what llama.cpp cannot take', () => {
  test('other families by name', async () => {
    await assert.rejects(runExportGguf({ model: FIXTURES + 'gpt2-tiny', out: path.join(tmp, 'x.gguf') }), /model_type 'gpt2' is not supported \(Llama, Mistral and Qwen2/);
  });

  test('--adapter-only with a method that has no low-rank ΔW (DoRA), by name; its merged export works', async () => {
    const model = (await loadModel(FIXTURES + 'llama-tiny', 'decoder')).model;
    const set = new AdapterSet(dora, loraConfigSchema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false, use_dora: true }), model.sites, model.weights, { targetModules: ['q_proj'], headNames: model.headNames, seed: 1 });
    const dir = path.join(tmp, 'dora');
    saveAdapter(dir, set, { baseModel: FIXTURES + 'llama-tiny', taskType: 'CAUSAL_LM' });
    await assert.rejects(runExportGguf({ model: FIXTURES + 'llama-tiny', adapters: [dir], adapterOnly: true, out: path.join(tmp, 'd.gguf') }), /method 'dora' has no low-rank ΔW.*--adapter instead/);
    const r = await runExportGguf({ model: FIXTURES + 'llama-tiny', adapters: [dir], out: path.join(tmp, 'd-merged.gguf') });
    assert.ok(r.bytes > 0);
  });

  test('--adapter-only with a LoRA on the embedding table, by module', async () => {
    const model = (await loadModel(FIXTURES + 'llama-tiny', 'decoder')).model;
    const set = new AdapterSet(lora, loraConfigSchema.parse({ r: 2, lora_alpha: 4, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['embed_tokens', 'q_proj'], headNames: model.headNames, seed: 1 });
    const dir = path.join(tmp, 'emb');
    saveAdapter(dir, set, { baseModel: FIXTURES + 'llama-tiny', taskType: 'CAUSAL_LM' });
    await assert.rejects(runExportGguf({ model: FIXTURES + 'llama-tiny', adapters: [dir], adapterOnly: true, out: path.join(tmp, 'e.gguf') }), /targets 'model\.embed_tokens' \(an embedding table\).*--adapter instead/);
  });

  test('a SentencePiece vocabulary without byte tokens (llama.cpp would abort the process loading it)', () => {
    const tok = { model: { type: 'Unigram', vocab: [['<unk>', 0], ['▁a', -1], ['b', -2]], unk_id: 0 } };
    assert.throws(() => ggufVocabFromTokenizerJson(tok, { vocabSize: 3, modelType: 'llama' }), /without byte tokens \(<0x0A> missing\)/);
    const bytes = Array.from({ length: 256 }, (_, i) => [`<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`, 0]);
    const meta = ggufVocabFromTokenizerJson({ model: { ...tok.model, vocab: [...tok.model.vocab, ...bytes] } }, { vocabSize: 260, modelType: 'llama' });
    assert.equal(meta.get('tokenizer.ggml.model')?.value, 'llama');
    assert.deepEqual((meta.get('tokenizer.ggml.token_type')!.value as number[]).slice(0, 5), [2, 1, 1, 6, 6]); // unknown, normal, normal, byte, byte
  });

  test('Mistral: a warning that llama.cpp has no sliding window', async () => {
    const warnings: string[] = [];
    await runExportGguf({ model: FIXTURES + 'mistral-tiny', out: path.join(tmp, 'mistral.gguf'), warn: (m) => warnings.push(m) });
    assert.match(warnings.join('\n'), /sliding_window 3: llama\.cpp's llama architecture attends to every earlier position/);
  });

  test('a folder without tokenizer.json', async () => {
    const dir = path.join(tmp, 'notok');
    fs.mkdirSync(dir);
    for (const f of ['config.json', 'model.safetensors']) fs.copyFileSync(FIXTURES + 'llama-tiny/' + f, path.join(dir, f));
    await assert.rejects(runExportGguf({ model: dir, out: path.join(tmp, 'n.gguf') }), /tokenizer\.json: not found; llama\.cpp refuses a model without a vocabulary/);
  });
});
