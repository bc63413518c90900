// Takes docs/demo.png, the screenshot of the demo page after training that the
// README shows: Debian's Chromium (headless, playwright-core) uploads
// test/fixtures/demo/reviews.jsonl, trains a LoRA with the frozen-encoder
// baseline, then a second one, and classifies two texts with both.
//
//   npx tsx scripts/demo_screenshot.ts [--out docs/demo.png]

import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startDemoServer } from '../src/demo/server.ts';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');
const argv = process.argv.slice(2);
const outAt = argv.indexOf('--out');
const out = outAt >= 0 ? argv[outAt + 1] : path.join(root, 'docs', 'demo.png');
const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';

async function train(page: import('playwright-core').Page, settings: Record<string, string>) {
  for (const [id, v] of Object.entries(settings)) await page.fill(`#${id}`, v);
  await page.click('#train');
  await page.waitForSelector('#run-status[data-state=done], #run-status[data-state=failed]', { timeout: 600_000 });
  if ((await page.getAttribute('#run-status', 'data-state')) !== 'done') throw new Error(`training failed: ${await page.textContent('#run-error')}`);
}

const server = await startDemoServer({ port: 0 });
const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  await page.goto(server.url);
  await page.waitForSelector('#model-status[data-state=ready]', { timeout: 120_000 });
  await page.setInputFiles('#data-file', path.join(root, 'test', 'fixtures', 'demo', 'reviews.jsonl'));
  await page.waitForFunction(() => document.querySelector('#data-summary')!.textContent!.startsWith('reviews.jsonl'));
  await train(page, { epochs: '4', lr: '0.01', batch: '8', seed: '7' });
  await page.uncheck('#baseline');
  await train(page, { rank: '4', alpha: '8', epochs: '2', seed: '8' });
  await page.click('#classify');
  await page.waitForFunction(() => document.querySelectorAll('#predictions td[data-probs]').length > 0);
  await page.screenshot({ path: out, fullPage: true });
  console.log(`wrote ${path.relative(process.cwd(), out)}`);
} finally {
  await browser.close();
  await server.close();
}
