// The runs behind bench/browser_step.ts (and its smoke test): the training
// step of step_graph.ts timed in Node (onnxruntime-node) and in Debian's
// Chromium (headless, playwright-core) on onnxruntime-web, side by side in one
// process, so a loaded machine slows every side alike.

import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { startDemoServer } from '../../src/demo/server.ts';
import { loadUseEncoder } from '../../src/models/use_encoder.ts';
import { CompiledGraph } from '../../src/runtime/session.ts';
import { STEP_SHAPE, timeSteps, trainingStep, type StepShape } from './step_graph.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
export const CHROMIUM = process.env.LORAKIT_CHROMIUM ?? '/usr/bin/chromium';

export interface BenchRow {
  side: 'node' | 'browser';
  /** What ran: the package and its backend. */
  label: string;
  threads: number;
  crossOriginIsolated?: boolean;
  compileMs: number;
  medianMs: number;
  ms: number[];
  firstLoss: number;
  /** browser / Node at the same thread count (browser rows; Node: the mean of its runs before and after). */
  ratio?: number;
}

export interface BenchOptions {
  shape?: StepShape;
  warmup?: number;
  steps?: number;
  /** Node intra-op thread counts (default [1, 2]). */
  nodeThreads?: number[];
  /** Node runs again after the browser's (default true); ratios are to the mean of before and after. */
  nodeAfter?: boolean;
  /** Browser runs (default: wasm 1 and 2 threads isolated, 1 thread not isolated). */
  browser?: BrowserRun[];
}

export interface BrowserRun {
  label: string;
  threads?: number;
  device?: 'wasm' | 'webgpu';
  /** Served without COOP/COEP: onnxruntime-web has one thread. */
  notIsolated?: boolean;
  chromiumArgs?: string[];
  /** A failure is noted in `failed` instead of ending the benchmark. */
  optional?: boolean;
}

export const DEFAULT_BROWSER_RUNS: BrowserRun[] = [
  { label: 'chromium wasm', threads: 1 },
  { label: 'chromium wasm', threads: 2 },
  { label: 'chromium wasm, not isolated', notIsolated: true },
];

/** Headless Chromium's WebGPU on SwiftShader (software; there is no GPU): checks the backend runs, not its speed. */
export const WEBGPU_RUN: BrowserRun = {
  label: 'chromium webgpu (SwiftShader)', threads: 2, device: 'webgpu', optional: true,
  chromiumArgs: ['--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-angle=swiftshader', '--use-webgpu-adapter=swiftshader'],
};

export async function benchBrowserStep(o: BenchOptions = {}): Promise<{ rows: BenchRow[]; failed: string[]; load1: number; shape: StepShape; warmup: number; steps: number }> {
  const shape = o.shape ?? STEP_SHAPE;
  const timing = { warmup: o.warmup ?? 3, steps: o.steps ?? 10 };
  const rows: BenchRow[] = [];
  const failed: string[] = [];

  // Node runs before and after the browser's: on a shared machine the load moves, and the pair shows by how much.
  const nodeRuns = async (when: 'before' | 'after') => {
    for (const threads of o.nodeThreads ?? [1, 2]) {
      const { graph, step } = trainingStep(await loadUseEncoder(), shape);
      const t0 = performance.now();
      const cg = await CompiledGraph.compile(graph, { threads });
      const compileMs = performance.now() - t0;
      try {
        const r = await timeSteps(cg, step, timing);
        rows.push({ side: 'node', label: `onnxruntime-node, cpu (${when})`, threads, compileMs, ...r });
      } finally {
        await cg.release();
      }
    }
  };
  await nodeRuns('before');

  const pages = { '/bench': { entry: path.join(here, 'step_page.ts'), html: path.join(here, 'step.html') } };
  const isolated = await startDemoServer({ port: 0, pages });
  const plain = await startDemoServer({ port: 0, pages, isolate: false });
  try {
    for (const run of o.browser ?? DEFAULT_BROWSER_RUNS) {
      const q = new URLSearchParams({ warmup: String(timing.warmup), steps: String(timing.steps), batch: String(shape.batch), seqLen: String(shape.seqLen), seed: String(shape.seed) });
      if (run.threads !== undefined) q.set('threads', String(run.threads));
      if (run.device) q.set('device', run.device);
      const b = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', ...(run.chromiumArgs ?? [])] });
      try {
        const page = await b.newPage();
        await page.goto(`${(run.notIsolated ? plain : isolated).url}bench?${q}`);
        await page.waitForFunction(() => document.getElementById('result')!.textContent !== '', undefined, { timeout: 1_800_000, polling: 500 });
        const r = JSON.parse((await page.textContent('#result'))!);
        if (r.error) throw new Error(`${run.label}: ${r.error}`);
        if (r.webgpuAdapter === false) throw new Error(`${run.label}: the page has no WebGPU adapter (onnxruntime-web would run wasm)`);
        rows.push({
          side: 'browser', label: `${run.label} (onnxruntime-web ${r.runtime.version}, ${r.runtime.device})`, threads: r.runtime.threads,
          crossOriginIsolated: r.runtime.crossOriginIsolated, compileMs: r.compileMs, medianMs: r.medianMs, ms: r.ms, firstLoss: r.firstLoss,
        });
      } catch (e) {
        if (!run.optional) throw e;
        failed.push(`${run.label}: ${(e as Error).message.split('\n')[0]}`);
      } finally {
        await b.close();
      }
    }
  } finally {
    await isolated.close();
    await plain.close();
  }
  if (o.nodeAfter ?? true) await nodeRuns('after');
  for (const r of rows) {
    const node = rows.filter((n) => n.side === 'node' && n.threads === r.threads);
    if (r.side === 'browser' && node.length) r.ratio = r.medianMs / (node.reduce((a, n) => a + n.medianMs, 0) / node.length);
  }
  return { rows, failed, load1: os.loadavg()[0], shape, ...timing };
}

/** The results as a Markdown table. */
export function benchTable(rows: BenchRow[]): string {
  const lines = ['| runtime | threads | cross-origin isolated | compile ms | ms / step (median) | browser / Node | first loss |', '|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const iso = r.side === 'node' ? '' : r.crossOriginIsolated ? 'yes' : 'no';
    lines.push(`| ${r.side === 'node' ? 'node: ' : ''}${r.label} | ${r.threads} | ${iso} | ${r.compileMs.toFixed(0)} | ${r.medianMs.toFixed(1)} | ${r.ratio === undefined ? '' : r.ratio.toFixed(2)} | ${r.firstLoss.toFixed(6)} |`);
  }
  return lines.join('\n');
}
