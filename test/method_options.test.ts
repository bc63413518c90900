// `lorakit train --method <name> --method-option key=value`: parsing, unknown
// keys refused, a tiny VeRA run through the registry; the shared flags
// (--rank, --alpha, ...) set only what the user gave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { checkMethodOptions, collectMethodOption, methodConfigFromFlags, methodDefaults, parseInitLoraWeights } from '../src/cli/method_options.ts';
import { rankConfigs } from '../src/cli/compare.ts';
import { getMethod } from '../src/adapters/registry.ts';

const BIN = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'bin', 'lorakit.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '2' } });

test('--method-option values: numbers, booleans, null, JSON, strings; later wins', () => {
  let o: Record<string, unknown> = {};
  for (const kv of ['r=16', 'init_weights=false', 'sigma=null', 'x=[1,2]', 'name=abc', 'r=32']) o = collectMethodOption(kv, o);
  assert.deepEqual(o, { r: 32, init_weights: false, sigma: null, x: [1, 2], name: 'abc' });
  assert.throws(() => collectMethodOption('novalue', {}), /key=value/);
  assert.deepEqual(checkMethodOptions('vera', { d_initial: 0.05 }), { d_initial: 0.05 });
  assert.throws(() => checkMethodOptions('vera', { d_intial: 0.05 }), /'d_intial' is not a field of vera's config \(fields: r, projection_prng_key, d_initial, init_weights\)/);
});

test('lorakit train --method vera --method-option ... trains through the registry', () => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-vera-cli-'));
  const r = run('train', '--method', 'vera', '--rank', '16', '--method-option', 'd_initial=0.05', '--target-modules', 'qkv', '--max-train', '8', '--max-eval', '8', '--epochs', '1', '--batch', '8', '--no-baseline', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  // 2 qkv modules: (768 + 16) + (1536 + 16) VeRA parameters
  assert.match(r.stdout, /vera: 2 modules .* 2336 adapter parameters/);
  const bad = run('train', '--method', 'vera', '--method-option', 'alpha=3', '--quiet', '--out', out);
  assert.notEqual(bad.status, 0);
  assert.match(bad.stderr, /'alpha' is not a field of vera's config/);
});

test('methodConfigFromFlags: only the flags given, so each method keeps its own default rank', () => {
  const rankOf = (m: string, flags = {}) => (getMethod(m).schema.parse(methodConfigFromFlags(m, flags, {})) as { r: number }).r;
  assert.equal(rankOf('vera'), 256);
  assert.equal(rankOf('randlora'), 32);
  assert.equal(rankOf('lora'), 8);
  assert.equal(rankOf('vera', { rank: 16 }), 16);
  assert.deepEqual(methodConfigFromFlags('lora', {}, {}), { lora_alpha: 16 }, "lorakit train's LoRA alpha stays 16");
  assert.deepEqual(methodConfigFromFlags('nola', { alpha: 4 }, { num_basis_A: 8 }), { lora_alpha: 4, num_basis_A: 8 });
  assert.throws(() => methodConfigFromFlags('fourierft', { rank: 4 }, {}), /--rank: fourierft has no 'r'/);
  assert.throws(() => methodConfigFromFlags('vera', { useRslora: true }, {}), /--use-rslora: vera has no 'use_rslora'/);
  assert.match(methodDefaults('r'), /vera 256/);
  assert.match(methodDefaults('r'), /randlora 32/);
  assert.doesNotMatch(methodDefaults('r'), /hydra/);
  assert.deepEqual(['true', 'false', 'gaussian', 'pissa', 'pissa_niter_4', 'olora'].map(parseInitLoraWeights), [true, false, 'gaussian', 'pissa', 'pissa_niter_4', 'olora']);
  assert.throws(() => parseInitLoraWeights('eva'), /got 'eva'/);
});

test('compare --rank: r for the methods that have one, the others named', () => {
  const said: string[] = [];
  assert.deepEqual(rankConfigs(['lora', 'vera', 'hydra', 'fourierft'], 16, (m) => said.push(m)), { lora: { r: 16 }, vera: { r: 16 } });
  assert.match(said.join('\n'), /hydra, fourierft keep their own size/);
});
