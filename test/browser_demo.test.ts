// The demo page in a real browser (Debian's chromium, driven by
// playwright-core): upload a labeled JSONL file, train a LoRA for a few steps
// with onnxruntime-web, watch the loss fall, download the adapter, and check
// in Node that its tensors give the logits of a Node run of the same seed and
// data — `lorakit train` with the command the page prints — within 1e-4 (both
// run the same float32 graph; only the runtime differs). Then a second
// adapter, both served in one mixed batch in the page (compared with Node),
// `lorakit eval` on the downloaded folder, and bad input (malformed line, one
// label, empty file) that shows a message and loses nothing trained.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { unzipSync } from 'fflate';
import { chromium, type Page } from 'playwright-core';
import { startDemoServer } from '../src/demo/server.ts';
import { loadUseEncoder } from '../src/models/use_encoder.ts';
import { PEFT_PREFIX } from '../src/adapters/inject.ts';
import { readAdapter, type AdapterFiles } from '../src/peft/adapter_files.ts';
import { padBatch, PeftModel } from '../src/serve/peft_model.ts';
import { probeLogits } from '../src/train/linear_probe.ts';
import { HEAD_B, HEAD_W } from '../src/train/tasks/classification.ts';
import { UseTokenizer } from '../src/tokenize/sentencepiece.ts';
import { inCI, referenceSkip, requireReference } from './helpers/reference.ts';

const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';
const missing = fs.existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set LORAKIT_CHROMIUM)`;
const BIN = new URL('../bin/lorakit.js', import.meta.url).pathname;
const DATA = new URL('./fixtures/demo/reviews.jsonl', import.meta.url).pathname;
const TEXTS = fs.readFileSync(DATA, 'utf8').trim().split('\n').map((l) => JSON.parse(l).text as string);

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-browser-'));
const file = (name: string, text: string) => {
  fs.writeFileSync(path.join(tmp, name), text);
  return path.join(tmp, name);
};

async function settings(page: Page, s: Record<string, string>) {
  for (const [id, v] of Object.entries(s)) {
    if (id === 'method') await page.selectOption('#method', v);
    else await page.fill(`#${id}`, v);
  }
}

async function trainInPage(page: Page, runs: number): Promise<void> {
  await page.click('#train');
  await page.waitForSelector('#run-status[data-state=done], #run-status[data-state=failed]', { timeout: 300_000 });
  assert.equal(await page.getAttribute('#run-status', 'data-state'), 'done', `${await page.textContent('#run-status')} ${await page.textContent('#run-error')}`);
  assert.equal(await page.locator('#runs tr[data-name]').count(), runs);
}

async function downloadRun(page: Page, name: string): Promise<{ files: AdapterFiles }> {
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`#runs tr[data-name="${name}"] button.download`)]);
  assert.equal(dl.suggestedFilename(), `${name}.zip`);
  const bytes = fs.readFileSync((await dl.path())!);
  const files = new Map(Object.entries(unzipSync(bytes)).map(([k, v]) => [k.slice(name.length + 1), v] as const));
  assert.deepEqual([...files.keys()].sort(), ['adapter_config.json', 'adapter_model.safetensors', 'lorakit_config.json']);
  return { files };
}

/** Logits of `texts` through the bundled encoder with an adapter folder (or its files) and its head, in Node. */
async function nodeLogits(served: PeftModel, tok: UseTokenizer, name: string, source: string | AdapterFiles, texts: string[]): Promise<Float32Array> {
  served.loadAdapter(source, name);
  served.setAdapter(name);
  const saved = readAdapter(source);
  const head = new Map([[HEAD_W, saved.tensors.get(PEFT_PREFIX + HEAD_W)!.data], [HEAD_B, saved.tensors.get(PEFT_PREFIX + HEAD_B)!.data]]);
  const pooled = (await served.run(padBatch(texts.map((t) => tok.encode(t).slice(0, 128))))).data as Float32Array;
  return probeLogits(head, pooled, texts.length, 512, head.get(HEAD_B)!.length);
}

const maxAbsDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
};

const softmaxRows = (logits: Float32Array, c: number) =>
  Array.from({ length: logits.length / c }, (_, i) => {
    const row = Array.from(logits.subarray(i * c, (i + 1) * c));
    const m = Math.max(...row), e = row.map((z) => Math.exp(z - m)), s = e.reduce((a, b) => a + b, 0);
    return e.map((x) => x / s);
  });

test('the demo page trains in Chromium and its adapter gives the logits of the same run in Node', { skip: referenceSkip(missing), timeout: 900_000 }, async (t: TestContext) => {
  requireReference(missing);
  const server = await startDemoServer({ port: 0 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await (await browser.newContext({ acceptDownloads: true })).newPage();
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(server.url);
    await page.waitForSelector('#model-status[data-state=ready], #model-status[data-state=error]', { timeout: 120_000 });
    assert.equal(await page.getAttribute('#model-status', 'data-state'), 'ready', (await page.textContent('#model-status'))!);
    const runtime = (await page.textContent('#runtime'))!;
    assert.match(runtime, /onnxruntime-web 1\.\d+\.\d+ · wasm · 2 threads · cross-origin isolated/);

    // Upload and train: 36 training examples, batch 8, two epochs = 10 steps.
    await page.setInputFiles('#data-file', DATA);
    await page.waitForFunction(() => document.querySelector('#data-summary')!.textContent!.startsWith('reviews.jsonl'));
    assert.match((await page.textContent('#data-summary'))!, /44 examples, 2 labels .* 36 train \/ 4 validation \/ 4 test/);
    await settings(page, { epochs: '2', lr: '0.01', batch: '8', seed: '7' });
    await trainInPage(page, 1);
    const losses = (await page.locator('#step-log tbody tr').evaluateAll((rows) => rows.map((r) => Number((r as HTMLElement).dataset.loss))));
    assert.equal(losses.length, 10);
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    assert.ok(mean(losses.slice(-3)) < 0.5 * mean(losses.slice(0, 3)), `the loss falls: ${losses.map((l) => l.toFixed(3)).join(' ')}`);
    assert.match((await page.textContent('#plot'))!, /validation accuracy/);

    // The adapter as PEFT files, and the Node run the page names.
    const first = await downloadRun(page, 'lora-1');
    const command = (await page.textContent('#runs tr.command code'))!;
    assert.match(command, /^npx lorakit train --data reviews\.jsonl --method lora --rank 8 --alpha 16 .*--seed 7 .*--out runs\/lora-1$/);
    const out = path.join(tmp, 'node-run');
    const cli = spawnSync('sh', ['-c', `${command.replace(/^npx lorakit /, `"${process.execPath}" "${BIN}" `)} --out "${out}" --quiet`], { cwd: path.dirname(DATA), encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr + cli.stdout);

    const model = await loadUseEncoder();
    const tok = UseTokenizer.fromVocabFile();
    const served = new PeftModel(model);
    try {
      const browserLogits = await nodeLogits(served, tok, 'browser', first.files, TEXTS);
      const nodeRun = await nodeLogits(served, tok, 'node', path.join(out, 'adapter'), TEXTS);
      const logitDiff = maxAbsDiff(browserLogits, nodeRun);
      const b = readAdapter(first.files), n = readAdapter(path.join(out, 'adapter'));
      assert.deepEqual([...b.tensors.keys()].sort(), [...n.tensors.keys()].sort());
      const tensorDiff = Math.max(...[...n.tensors].map(([k, v]) => maxAbsDiff(b.tensors.get(k)!.data, v.data)));
      t.diagnostic(`browser vs Node run: logits max |Δ| ${logitDiff.toExponential(2)}, tensors max |Δ| ${tensorDiff.toExponential(2)} (44 texts, ${losses.length} steps)`);
      assert.ok(logitDiff < 1e-4, `logits differ by ${logitDiff}`);
      assert.ok(logitDiff > 0 || tensorDiff === 0, 'compared something');

      // lorakit eval reads the downloaded folder and scores the same test split as the page.
      const dir = path.join(tmp, 'lora-1');
      fs.mkdirSync(dir);
      for (const [k, v] of first.files) fs.writeFileSync(path.join(dir, k), v);
      const ev = spawnSync(process.execPath, [BIN, 'eval', '--adapter', dir, '--data', DATA], { encoding: 'utf8' });
      assert.equal(ev.status, 0, ev.stderr + ev.stdout);
      const pageTest = Number(await page.getAttribute('#runs tr[data-name="lora-1"] td[data-value]', 'data-value'));
      assert.ok(ev.stdout.includes(`test: accuracy ${(100 * pageTest).toFixed(2)}% `) && ev.stdout.includes('on 4 examples'), `lorakit eval: ${ev.stdout} (page: ${pageTest})`);

      // A second adapter, then both in one mixed batch in the page: its probabilities are Node's.
      await settings(page, { rank: '4', alpha: '8', epochs: '1', seed: '8' });
      await page.uncheck('#baseline');
      await trainInPage(page, 2);
      const second = await downloadRun(page, 'lora-2');
      const tryTexts = ['What a lovely, heartfelt film.', 'Two hours of my life I will never get back.', 'Fine.'];
      await page.fill('#try-text', tryTexts.join('\n'));
      await page.click('#classify');
      await page.waitForFunction(() => document.querySelectorAll('#predictions td[data-probs]').length === 6);
      assert.match((await page.textContent('#try-how'))!, /6 predictions \(3 texts × 2 adapters\), one batch/);
      const shown = await page.locator('#predictions td[data-probs]').evaluateAll((tds) => tds.map((td) => ({ adapter: (td as HTMLElement).dataset.adapter!, probs: JSON.parse((td as HTMLElement).dataset.probs!) as number[] })));
      const expected = {
        'lora-1': softmaxRows(await nodeLogits(served, tok, 'b1', first.files, tryTexts), 2),
        'lora-2': softmaxRows(await nodeLogits(served, tok, 'b2', second.files, tryTexts), 2),
      };
      shown.forEach((cell, i) => {
        const want = expected[cell.adapter as 'lora-1' | 'lora-2'][Math.floor(i / 2)];
        assert.ok(maxAbsDiff(cell.probs, want) < 1e-4, `text ${Math.floor(i / 2)} × ${cell.adapter}: page ${cell.probs}, Node ${want}`);
      });

      // Bad input: a clear message, and the data and both adapters stay (the same bytes download again).
      const bad: [string, string, RegExp][] = [
        ['malformed.jsonl', '{"text": "fine", "label": "positive"}\n{"text": "broken", label: 1}\n', /malformed\.jsonl:2: not valid JSON/],
        ['one_label.jsonl', Array.from({ length: 8 }, (_, i) => JSON.stringify({ text: `good film ${i}`, label: 'positive' })).join('\n'), /only one label \('positive', 8 examples\).*at least two labels/],
        ['empty.jsonl', '', /empty\.jsonl is empty/],
      ];
      for (const [name, text, message] of bad) {
        await page.setInputFiles('#data-file', file(name, text));
        await page.waitForSelector('#data-error:not([hidden])');
        const shownError = (await page.textContent('#data-error'))!;
        assert.match(shownError, message);
        assert.match(shownError, /Still using reviews\.jsonl \(44 examples\)/);
        assert.match((await page.textContent('#data-summary'))!, /^reviews\.jsonl: 44 examples/);
        assert.equal(await page.locator('#runs tr[data-name]').count(), 2);
        assert.equal(await page.isEnabled('#train'), true);
        await page.evaluate(() => document.querySelector('#data-error')!.setAttribute('hidden', ''));
      }
      await page.click('#tab-boxes');
      await page.fill('#text-a', 'good\nnice\ngreat\nsuperb\nlovely');
      await page.fill('#text-b', '');
      await page.click('#use-boxes');
      assert.match((await page.textContent('#data-error'))!, /text boxes has only one label \('positive', 5 examples\)/);
      const again = await downloadRun(page, 'lora-1');
      for (const [k, v] of first.files) assert.ok(Buffer.from(again.files.get(k)!).equals(Buffer.from(v)), `${k}: the first adapter downloads unchanged after the bad input`);
      assert.deepEqual(pageErrors, []);
    } finally {
      await served.release();
    }
  } finally {
    await browser.close();
    await server.close();
    if (!inCI) fs.rmSync(tmp, { recursive: true, force: true });
  }
});
