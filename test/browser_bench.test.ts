// The browser benchmark's smoke run (bench/browser_step.ts --smoke): a tiny
// batch through the same code. Node is the oracle: Chromium's onnxruntime-web
// (1 thread, 2 threads in the isolated page, 1 thread in a page that is not)
// runs the same graph on the same seeded batch and must reach Node's first
// loss, and the threads it reports must be the ones asked for.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { benchBrowserStep, benchTable, CHROMIUM } from '../bench/browser/run_bench.ts';
import { referenceSkip, requireReference } from './helpers/reference.ts';

const missing = fs.existsSync(CHROMIUM) ? null : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set LORAKIT_CHROMIUM)`;

test('browser step benchmark (smoke): Chromium wasm at 1 and 2 threads reaches the Node run\'s first loss', { skip: referenceSkip(missing), timeout: 600_000 }, async (t) => {
  requireReference(missing);
  const r = await benchBrowserStep({
    shape: { batch: 4, seqLen: 16, seed: 3 }, warmup: 1, steps: 1, nodeThreads: [1], nodeAfter: false,
    browser: [{ label: 'wasm', threads: 2 }, { label: 'wasm, not isolated', notIsolated: true }],
  });
  for (const line of benchTable(r.rows).split('\n')) t.diagnostic(line);
  assert.deepEqual(r.rows.map((x) => [x.side, x.threads, x.crossOriginIsolated]), [['node', 1, undefined], ['browser', 2, true], ['browser', 1, false]]);
  const loss = r.rows[0].firstLoss;
  assert.ok(Number.isFinite(loss) && loss > 0.3 && loss < 1.5, `a 2-class cross-entropy near ln 2 at init: ${loss}`);
  for (const row of r.rows.slice(1)) {
    assert.ok(Math.abs(row.firstLoss - loss) < 1e-5, `${row.label}: first loss ${row.firstLoss} vs Node ${loss}`);
    assert.ok(row.medianMs > 0 && row.ms.length === 1);
  }
  assert.ok(r.rows[2].ratio! > 0, 'the 1-thread browser row has a ratio to Node at 1 thread');
});
