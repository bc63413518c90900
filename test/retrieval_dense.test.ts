// Dense retrieval through the CLI: lorakit index --kind dense with a task
// adapter, lorakit search with the queries through [language, task] stacked;
// the run's scores equal cosines computed here with PeftModel (documents
// through the task adapter, queries through the merged language adapter + task).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { AdapterSet } from '../src/adapters/inject.ts';
import { lora } from '../src/adapters/lora/index.ts';
import { loadModel } from '../src/models/load.ts';
import { saveAdapter } from '../src/peft/adapter_files.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { readRun } from '../src/retrieval/trec.ts';
import { makeProgram } from '../src/cli/main.ts';

test('dense index with a task adapter, queries through a stacked language + task adapter: scores = cosines computed directly', async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-dense-'));
  const { model, tokenizer } = await loadModel('use', 'encoder');
  const mk = (seed: number) => new AdapterSet(lora, lora.schema.parse({ r: 4, lora_alpha: 8, init_lora_weights: false }), model.sites, model.weights, { targetModules: ['qkv', 'conv1'], seed });
  const taskDir = path.join(tmp, 'task'), langDir = path.join(tmp, 'lang');
  const task = mk(3), lang = mk(4);
  saveAdapter(taskDir, task, { baseModel: 'use' });
  saveAdapter(langDir, lang, { baseModel: 'use' });
  const docs = ['Berlin is the capital of Germany.', 'The river flows to the sea.', 'Cats sleep a lot.', 'Paris hosts the museum.'];
  const queries = ['Was ist die Hauptstadt von Deutschland?', 'Wo schlafen Katzen?'];
  const corpus = path.join(tmp, 'corpus.jsonl'), qfile = path.join(tmp, 'q.jsonl');
  fs.writeFileSync(corpus, docs.map((t, i) => JSON.stringify({ _id: `d${i}`, text: t })).join('\n') + '\n');
  fs.writeFileSync(qfile, queries.map((t, i) => JSON.stringify({ _id: `q${i}`, text: t })).join('\n') + '\n');
  const log = console.log;
  console.log = () => {};
  try {
    await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'index', '--kind', 'dense', '--corpus', corpus, '--adapter', taskDir, '--out', path.join(tmp, 'idx'), '--quiet']);
    await makeProgram().exitOverride().parseAsync(['node', 'lorakit', 'search', '--index', path.join(tmp, 'idx'), '--queries', qfile, '--query-adapter', `${langDir},${taskDir}`, '--top', '3', '--out', path.join(tmp, 'run.trec'), '--quiet']);
  } finally {
    console.log = log;
  }
  const pm = new PeftModel(model, { threads: 1 });
  pm.addAdapter('task', task);
  pm.addAdapter('lang', lang);
  const unit = async (texts: string[]) => {
    const r = await pm.run(padBatch(texts.map((t) => tokenizer!.encode(t))));
    const H = r.dims[1], d = r.data as Float32Array;
    return texts.map((_, i) => {
      const v = Array.from(d.subarray(i * H, (i + 1) * H));
      const n = Math.hypot(...v);
      return v.map((x) => x / n);
    });
  };
  pm.setAdapter('task');
  const D = await unit(docs);
  pm.setActiveAdapters(['lang', 'task']);
  const Q = await unit(queries);
  await pm.release();
  const run = readRun(path.join(tmp, 'run.trec'));
  Q.forEach((q, qi) => {
    const want = D.map((d, j) => ({ docno: `d${j}`, score: d.reduce((s, x, k) => s + x * q[k], 0) })).sort((a, b) => b.score - a.score).slice(0, 3);
    const got = run.get(`q${qi}`)!;
    assert.deepEqual(got.map((x) => x.docno), want.map((x) => x.docno));
    got.forEach((x, i) => assert.ok(Math.abs(x.score - want[i].score) < 1e-5, `${x.docno}: ${x.score} vs ${want[i].score}`));
  });
});
