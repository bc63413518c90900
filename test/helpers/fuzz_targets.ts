// The files lorakit reads, as fuzz targets (test/helpers/fuzz.ts): safetensors,
// adapter_config.json, a Hugging Face config.json, tokenizer.json, a tfjs
// model.json with its shards, and JSONL training data.
import fc from 'fast-check';
import fs from 'node:fs';
import path from 'node:path';
import { serializeSafetensors, readSafetensors, type Dtype } from '../../src/io/safetensors.ts';
import { HfTokenizer } from '../../src/io/hf.ts';
import { loadTfjsWeights } from '../../src/io/tfjs.ts';
import { loadPeftAdapter } from '../../src/peft/adapter_files.ts';
import { peftTypes } from '../../src/adapters/registry.ts';
import { loadModel } from '../../src/models/hf_registry.ts';
import { readJsonl } from '../../src/data/jsonl.ts';
import { readCausalLmJsonl, readEmbedJsonl, readRerankJsonl, readSeq2SeqJsonl } from '../../src/data/records.ts';
import { PEFT_REF, tinyModel } from './tiny_model.ts';
import { FileFormatError } from '../../src/util/errors.ts';
import { FuzzTarget, hostileNumber, hostileValue, jsonFileText, mutatedObject } from './fuzz.ts';

const HF = new URL('../fixtures/hf/', import.meta.url).pathname;
const write = (file: string, bytes: Uint8Array) => {
  fs.writeFileSync(file, bytes);
  return { file, bytes: bytes.length };
};

// ---- safetensors --------------------------------------------------------------

const DTYPES: Dtype[] = ['F32', 'F16', 'BF16', 'F64', 'I64', 'I32', 'I8', 'U8', 'BOOL'];
const ARRAYS: Record<Dtype, (n: number) => any> = {
  F32: (n) => new Float32Array(n), F64: (n) => new Float64Array(n), I64: (n) => new BigInt64Array(n), I32: (n) => new Int32Array(n),
  I8: (n) => new Int8Array(n), U8: (n) => new Uint8Array(n), BOOL: (n) => new Uint8Array(n), F16: (n) => new Uint16Array(n), BF16: (n) => new Uint16Array(n),
};

const validSafetensors = () => fc.uniqueArray(
  fc.record({ name: fc.string({ minLength: 1, maxLength: 6 }), dtype: fc.constantFrom(...DTYPES), shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }) }),
  { maxLength: 4, selector: (t) => t.name },
).filter((ts) => ts.every((t) => t.name !== '__metadata__')).map((ts) => serializeSafetensors(Object.fromEntries(ts.map((t) => {
  const n = t.shape.reduce((a, b) => a * b, 1);
  return [t.name, { dtype: t.dtype, shape: t.shape, data: ARRAYS[t.dtype](n) }];
})), { format: 'pt' }));

const entry = () => fc.record({
  dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...DTYPES, 'I16', 'U64', 'F8_E4M3', 'C64') }, { weight: 1, arbitrary: hostileValue() }),
  shape: fc.oneof({ weight: 4, arbitrary: fc.array(hostileNumber(), { maxLength: 4 }) }, { weight: 1, arbitrary: hostileValue() }),
  data_offsets: fc.oneof({ weight: 4, arbitrary: fc.tuple(hostileNumber(), hostileNumber()) }, { weight: 1, arbitrary: fc.array(fc.integer({ min: 0, max: 300 }), { maxLength: 3 }) }, { weight: 1, arbitrary: hostileValue() }),
}, { requiredKeys: [] });

/** A header of hostile entries, a data block, and a length prefix that is right, or anything. */
const hostileSafetensors = () => fc.tuple(
  fc.dictionary(fc.oneof(fc.string({ maxLength: 6 }), fc.constant('__metadata__')), fc.oneof({ weight: 5, arbitrary: entry() }, { weight: 1, arbitrary: hostileValue() }), { maxKeys: 4 }),
  fc.integer({ min: 0, max: 300 }),
  fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { freq: 4 }),
).map(([header, dataLen, prefix]) => {
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(8 + json.length + dataLen);
  new DataView(out.buffer).setBigUint64(0, prefix ?? BigInt(json.length), true);
  out.set(json, 8);
  return out;
});

/** A valid file with bytes flipped, cut short or extended. */
const damagedSafetensors = () => fc.tuple(validSafetensors(), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 4 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 16 })).map(([b, flips, cut, extra]) => {
  let out = new Uint8Array([...b, ...(cut === null ? extra : [])]);
  for (const [i, v] of flips) if (out.length) out[i % out.length] = v;
  if (cut !== null) out = out.subarray(0, cut % (out.length + 1));
  return out;
});

export const safetensorsTarget: FuzzTarget<Uint8Array> = {
  name: 'safetensors',
  arbitrary: () => fc.oneof(validSafetensors(), hostileSafetensors(), damagedSafetensors(), fc.uint8Array({ maxLength: 40 })),
  write: (dir, c) => write(path.join(dir, 'model.safetensors'), c),
  load: (file) => {
    const f = readSafetensors(file);
    let total = 0;
    for (const t of f.tensors.values()) total += t.data.byteLength;
    if (total > 2 * fs.statSync(file).size) throw new Error(`decoded ${total} bytes from a ${fs.statSync(file).size}-byte file`);
  },
};

// ---- adapter_config.json --------------------------------------------------------

const LORA_CONFIG = JSON.parse(fs.readFileSync(path.join(PEFT_REF, 'lora', 'adapter_config.json'), 'utf8'));
const model = tinyModel();

export const adapterConfigTarget: FuzzTarget<Uint8Array> = {
  name: 'adapter_config.json',
  arbitrary: () => jsonFileText(mutatedObject(LORA_CONFIG, [
    'peft_type', 'r', 'lora_alpha', 'target_modules', 'exclude_modules', 'rank_pattern', 'alpha_pattern', 'modules_to_save', 'bias', 'use_dora', 'use_rslora',
    'layers_to_transform', 'layers_pattern', 'init_lora_weights', 'lora_dropout', 'fan_in_fan_out', 'lorakit', 'task_type', 'inference_mode',
  ], () => fc.oneof(hostileValue(), fc.constantFrom(...peftTypes(), 'q_proj', ['q_proj'], ['v_proj', 'nope'], '.*', { q_proj: 2 }, { method: 'vera' }, { method: 'dora' })))),
  write: (dir, c) => {
    const adapter = path.join(dir, 'adapter');
    if (!fs.existsSync(adapter)) {
      fs.mkdirSync(adapter);
      fs.copyFileSync(path.join(PEFT_REF, 'lora', 'adapter_model.safetensors'), path.join(adapter, 'adapter_model.safetensors'));
    }
    fs.writeFileSync(path.join(adapter, 'adapter_config.json'), c);
    return { file: path.join(adapter, 'adapter_config.json'), bytes: c.length + fs.statSync(path.join(adapter, 'adapter_model.safetensors')).size };
  },
  load: (file) => loadPeftAdapter(model, path.dirname(file), { warn: () => {} }),
};

// ---- config.json of a Hugging Face folder ------------------------------------------

const FAMILIES = ['llama-tiny', 'gpt2-tiny', 'bert', 't5-tiny', 'bart-tiny'];
const CONFIGS = Object.fromEntries(FAMILIES.map((f) => [f, JSON.parse(fs.readFileSync(path.join(HF, f, 'config.json'), 'utf8'))]));

export const hfConfigTarget: FuzzTarget<[string, Uint8Array]> = {
  name: 'config.json',
  arbitrary: () => fc.constantFrom(...FAMILIES).chain((f) => fc.tuple(fc.constant(f), jsonFileText(mutatedObject(CONFIGS[f], Object.keys(CONFIGS[f]), () => fc.oneof(hostileValue(), fc.constantFrom('llama', 'gpt2', 'bert', 't5', 'bart', 'mistral', 'qwen2', 'roberta')))))),
  write: (dir, [family, text]) => {
    const d = path.join(dir, family);
    if (!fs.existsSync(d)) {
      fs.mkdirSync(d);
      fs.copyFileSync(path.join(HF, family, 'model.safetensors'), path.join(d, 'model.safetensors'));
    }
    fs.writeFileSync(path.join(d, 'config.json'), text);
    return { file: path.join(d, 'config.json'), bytes: text.length + fs.statSync(path.join(d, 'model.safetensors')).size };
  },
  load: (file) => loadModel(path.dirname(file)),
};

// ---- tokenizer.json -----------------------------------------------------------------

const TOKENIZERS = Object.fromEntries(['llama-tiny', 'gpt2-tiny', 'bert'].map((f) => [f, JSON.parse(fs.readFileSync(path.join(HF, f, 'tokenizer.json'), 'utf8'))]));

/** A tokenizer.json with parts replaced: whole sections, the model's fields, vocabulary entries. */
const mutatedTokenizer = (base: any) => fc.oneof(
  mutatedObject(base, Object.keys(base)),
  mutatedObject(base.model, Object.keys(base.model)).map((m) => ({ ...base, model: m })),
  fc.array(fc.tuple(fc.string({ maxLength: 4 }), hostileValue()), { minLength: 1, maxLength: 3 }).map((es) => {
    const t = structuredClone(base);
    if (t.model.vocab && !Array.isArray(t.model.vocab)) for (const [k, v] of es) t.model.vocab[k] = v;
    else if (Array.isArray(t.model.vocab)) for (const [k, v] of es) t.model.vocab.push([k, v]);
    return t;
  }),
  fc.array(fc.record({ id: hostileValue(), content: fc.oneof(fc.string({ maxLength: 4 }), hostileValue()), special: fc.boolean() }), { minLength: 1, maxLength: 3 }).map((added) => ({ ...base, added_tokens: [...(base.added_tokens ?? []), ...added] })),
);

export const tokenizerTarget: FuzzTarget<[string, Uint8Array]> = {
  name: 'tokenizer.json',
  arbitrary: () => fc.constantFrom(...Object.keys(TOKENIZERS)).chain((f) => fc.tuple(fc.constant(f), jsonFileText(mutatedTokenizer(TOKENIZERS[f])))),
  write: (dir, [family, text]) => {
    const d = path.join(dir, family);
    fs.mkdirSync(d, { recursive: true });
    return write(path.join(d, 'tokenizer.json'), text);
  },
  load: (file) => {
    const tok = HfTokenizer.fromFolder(path.dirname(file));
    tok.decode(tok.encode('Hello world, 12 apples!'));
  },
};

// ---- tfjs model.json + shards ----------------------------------------------------------

interface TfjsCase { manifest: unknown; shards: [string, number][] }

const tfjsCase = () => {
  const weight = fc.record({
    name: fc.oneof({ weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 6 }) }, { weight: 1, arbitrary: hostileValue() }),
    shape: fc.oneof({ weight: 4, arbitrary: fc.array(hostileNumber(), { maxLength: 3 }) }, { weight: 1, arbitrary: hostileValue() }),
    dtype: fc.oneof({ weight: 4, arbitrary: fc.constantFrom('float32', 'int32') }, { weight: 1, arbitrary: fc.constantFrom('float16', 'uint8', 'string', 'bool') }, { weight: 1, arbitrary: hostileValue() }),
    quantization: fc.option(fc.record({ dtype: fc.constantFrom('uint8', 'uint16') }), { freq: 8 }),
  }, { requiredKeys: ['name', 'shape', 'dtype'] });
  const shardPath = fc.oneof(
    { weight: 6, arbitrary: fc.constantFrom('group1-shard1of2.bin', 'group1-shard2of2.bin') },
    { weight: 1, arbitrary: fc.constantFrom('missing.bin', '../outside.bin', '/dev/zero', '/etc/hostname', '.', 'sub', '') },
    { weight: 1, arbitrary: hostileValue() },
  );
  const group = fc.record({ paths: fc.oneof({ weight: 5, arbitrary: fc.array(shardPath, { maxLength: 3 }) }, { weight: 1, arbitrary: hostileValue() }), weights: fc.oneof({ weight: 5, arbitrary: fc.array(weight, { maxLength: 4 }) }, { weight: 1, arbitrary: hostileValue() }) }, { requiredKeys: [] });
  const manifest = fc.oneof(
    { weight: 8, arbitrary: fc.record({ format: fc.constant('graph-model'), weightsManifest: fc.oneof({ weight: 6, arbitrary: fc.array(group, { maxLength: 3 }) }, { weight: 1, arbitrary: hostileValue() }) }) },
    { weight: 1, arbitrary: hostileValue() },
  );
  return fc.record({ manifest, shards: fc.tuple(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 0, max: 64 })).map(([a, b]) => [['group1-shard1of2.bin', a], ['group1-shard2of2.bin', b]] as [string, number][]) });
};

export const tfjsTarget: FuzzTarget<TfjsCase> = {
  name: 'tfjs model.json',
  arbitrary: tfjsCase,
  write: (dir, c) => {
    fs.mkdirSync(path.join(dir, 'sub'), { recursive: true });
    let bytes = 0;
    for (const [name, n] of c.shards) {
      fs.writeFileSync(path.join(dir, name), new Uint8Array(n).fill(7));
      bytes += n;
    }
    const text = JSON.stringify(c.manifest) ?? 'null';
    fs.writeFileSync(path.join(dir, 'model.json'), text);
    return { file: path.join(dir, 'model.json'), bytes: bytes + text.length };
  },
  load: (file) => loadTfjsWeights(file),
};

// ---- JSONL training data -------------------------------------------------------------

const jsonlLine = () => fc.oneof(
  { weight: 3, arbitrary: fc.record({ text: fc.oneof(fc.string({ maxLength: 8 }), hostileValue()), label: fc.oneof(fc.integer({ min: 0, max: 3 }), fc.constantFrom('pos', 'neg'), hostileValue()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 2, arbitrary: fc.record({ prompt: fc.string({ maxLength: 6 }), completion: fc.oneof(fc.string({ maxLength: 6 }), hostileValue()), source: fc.string({ maxLength: 6 }), target: fc.oneof(fc.string({ maxLength: 6 }), hostileValue()), query: fc.string({ maxLength: 6 }), documents: fc.oneof(fc.array(fc.string({ maxLength: 4 }), { maxLength: 3 }), hostileValue()), labels: fc.oneof(fc.array(hostileNumber(), { maxLength: 3 }), hostileValue()), positive: fc.string({ maxLength: 4 }), negatives: fc.oneof(fc.array(fc.string({ maxLength: 4 }), { maxLength: 2 }), hostileValue()), anchor: fc.string({ maxLength: 4 }), messages: fc.oneof(fc.array(fc.record({ role: fc.constantFrom('user', 'assistant', 'system'), content: fc.string({ maxLength: 4 }) }), { maxLength: 3 }), hostileValue()) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)) },
  { weight: 1, arbitrary: fc.string({ maxLength: 20 }) },
  { weight: 1, arbitrary: fc.constantFrom('', '   ', '\r', '{', '{"text": "a", "label": 1', '\uFEFF{"text":"a","label":0}', '{"text":"\\ud800","label":0}') },
);

export const jsonlTarget: FuzzTarget<Uint8Array> = {
  name: 'JSONL data',
  arbitrary: () => fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.array(jsonlLine(), { maxLength: 8 }), fc.constantFrom('\n', '\r\n')).map(([ls, nl]) => new TextEncoder().encode(ls.join(nl))) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 64 }) },
  ),
  write: (dir, c) => write(path.join(dir, 'data.jsonl'), c),
  load: (file) => {
    // Every reader of a task's data: each loads or rejects the file on its own.
    const errors: unknown[] = [];
    for (const read of [readJsonl, readCausalLmJsonl, readSeq2SeqJsonl, readRerankJsonl, readEmbedJsonl] as ((f: string) => unknown)[]) {
      try {
        read(file);
      } catch (e) {
        errors.push(e);
      }
    }
    // Any reader's wrong error fails the case; a file no reader takes is rejected.
    const bad = errors.find((e) => !(e instanceof FileFormatError) || !e.message.includes(file));
    if (bad || errors.length === 5) throw bad ?? errors[0];
  },
};

export const TARGETS = [safetensorsTarget, adapterConfigTarget, hfConfigTarget, tokenizerTarget, tfjsTarget, jsonlTarget] as FuzzTarget<any>[];
