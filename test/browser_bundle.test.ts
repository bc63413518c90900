// The library in a browser bundle: esbuild builds src/browser.ts (the public
// browser entry) and the demo page for browsers with no Node built-in in
// them; package.json's "browser" field swaps exactly the three environment
// modules (each with the same exports as its Node twin); the swapped-in
// modules say what to use instead; and the bundled model loads over HTTP
// exactly as it loads from disk.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { bundle, DEMO_ENTRY } from '../src/demo/bundle.ts';
import { startDemoServer } from '../src/demo/server.ts';
import { fetchUseModel } from '../src/models/use_fetch.ts';
import { loadUseWeights } from '../src/models/use.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';

const ROOT = path.resolve(import.meta.dirname, '..');
const SRC = path.join(ROOT, 'src');
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));

const twins = () =>
  fs.readdirSync(SRC, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.browser.ts'))
    .map((f) => f.replace(/\.browser\.ts$/, ''))
    .sort();

test('package.json "browser" swaps each .browser.ts twin, in src/ and dist/, and nothing else', () => {
  const pairs = twins();
  assert.deepEqual(pairs, ['io/files', 'runtime/ort', 'train/run_folder']);
  const want = Object.fromEntries([...pairs.map((p) => [`./src/${p}.ts`, `./src/${p}.browser.ts`]), ...pairs.map((p) => [`./dist/${p}.js`, `./dist/${p}.browser.js`])]);
  assert.deepEqual(pkg.browser, want);
  assert.equal(pkg.exports['.'].browser, './dist/browser.js');
});

test('each browser twin exports what its Node module exports', async () => {
  for (const p of twins()) {
    const source = (f: string) => fs.readFileSync(path.join(SRC, f), 'utf8');
    const names = (text: string) => [...text.matchAll(/^export (?:const|function|class|interface|type|async function) (\w+)/gm)].map((m) => m[1]).sort();
    const node = names(source(`${p}.ts`)), browser = names(source(`${p}.browser.ts`));
    for (const n of node) assert.ok(browser.includes(n), `src/${p}.browser.ts lacks '${n}' (exported by src/${p}.ts)`);
  }
});

test('the browser entry and the demo page bundle for browsers with no Node built-in', async () => {
  for (const entry of [path.join(SRC, 'browser.ts'), DEMO_ENTRY]) {
    const b = await bundle(entry);
    const inputs = b.inputs.map((f) => path.relative(ROOT, path.resolve(ROOT, f)));
    for (const p of twins()) {
      assert.ok(inputs.includes(`src/${p}.browser.ts`), `${path.basename(entry)}: src/${p}.browser.ts is not in the bundle`);
      assert.ok(!inputs.includes(`src/${p}.ts`), `${path.basename(entry)}: the Node module src/${p}.ts reached the bundle`);
    }
    assert.ok(!inputs.some((f) => f.includes('node_modules/onnxruntime-node/')), 'onnxruntime-node reached the bundle');
    assert.ok(inputs.some((f) => f.includes('node_modules/onnxruntime-web/')), 'onnxruntime-web is bundled');
    const js = new TextDecoder().decode(b.js);
    assert.ok(!/(?:from|import|require)\s*\(?\s*["'](?:node:|onnxruntime-node)/.test(js), 'no import of a Node module is left in the bundle');
  }
});

test('a Node built-in reaching the bundle fails the build, naming the importer', async () => {
  // The job layer reads files: never part of the browser entry.
  await assert.rejects(bundle(path.join(SRC, 'tasks', 'train.ts')), /node:fs \(a Node module\) imported by src\/[\w/]+\.ts: it cannot run in a browser/);
});

test('in a browser bundle, file access and run folders say what to use instead', async () => {
  const files = await import('../src/io/files.browser.ts');
  assert.throws(() => files.readText('data.jsonl'), /readText\("data\.jsonl"\): a web page has no file system.*adapterFiles\(\).*parseJsonl\(\)/);
  const { RunFolder } = await import('../src/train/run_folder.browser.ts');
  assert.throws(() => RunFolder.open('runs/x', { resume: false }), /outDir \('runs\/x'\).*Leave outDir out in a browser/);
});

test('fetchUseModel over HTTP gives the weights and tokenizer loadUseWeights reads from disk; a wrong address says what to serve', async () => {
  const server = await startDemoServer({ port: 0 });
  try {
    const loaded: number[] = [];
    const { model, tokenizer } = await fetchUseModel(`${server.url}model/`, { onProgress: (n) => loaded.push(n) });
    const disk = await loadUseWeights();
    assert.deepEqual([...model.weights.keys()].sort(), Object.keys(disk.tensors).sort());
    for (const [k, t] of Object.entries(disk.tensors)) {
      const w = model.weights.get(k)!;
      assert.deepEqual(w.shape, t.shape, k);
      assert.ok(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength).equals(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)), k);
    }
    assert.equal(loaded.at(-1), 27_903_656, 'progress reaches the seven shards\' bytes');
    const text = 'A wonderful, moving film — naïve but ￼charming!';
    assert.deepEqual(tokenizer.encode(text), UseTokenizer.fromVocabFile().encode(text));
    await assert.rejects(fetchUseModel(`${server.url}nothing/`), /GET http:\/\/127\.0\.0\.1:\d+\/nothing\/model\.json: HTTP 404 Not Found\. Serve the files of @energetic-ai\/model-embeddings-en\/dist at this address/);
  } finally {
    await server.close();
  }
});
