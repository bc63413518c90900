// `lorakit train`'s method flags as a user runs them: a method keeps its own
// default rank unless --rank is given (VeRA's 256, not LoRA's 8), and PEFT's
// LoRA options (--use-dora, --use-rslora, --init-lora-weights, --lora-dropout,
// --alpha, --loraplus-lr-ratio) reach training and the saved adapter_config.json.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { readAdapter } from '../src/peft/adapter_files.ts';

const BIN = path.resolve('bin/lorakit.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '2' } });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-flags-'));
const TINY = ['--max-train', '16', '--max-eval', '8', '--epochs', '1', '--batch', '8', '--no-baseline', '--quiet'];

test('--method vera without --rank trains at VeRA\'s own rank (256); eval reloads it to the same accuracy', () => {
  const out = tmp();
  const r = run('train', '--method', 'vera', '--target-modules', 'qkv', ...TINY, '--out', out);
  assert.equal(r.status, 0, r.stderr);
  // 2 qkv modules: (768 + 256) + (1536 + 256) VeRA parameters
  assert.match(r.stdout, /vera: 2 modules .* 2816 adapter parameters/);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'VERA');
  assert.equal(cfg.r, 256);
  const acc = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).rows[0].testAccuracy;
  const e = run('eval', '--adapter', path.join(out, 'adapter'), '--max-eval', '8');
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, new RegExp(`accuracy ${(100 * acc).toFixed(2)}%`));
});

test('PEFT LoRA flags reach adapter_config.json; --loraplus-lr-ratio speeds up lora_B', () => {
  const flags = ['--rank', '4', '--alpha', '12', '--lora-dropout', '0.1', '--use-rslora', '--use-dora', '--init-lora-weights', 'gaussian', '--target-modules', 'qkv', ...TINY];
  const [plus, plain] = [tmp(), tmp()];
  const a = run('train', ...flags, '--loraplus-lr-ratio', '16', '--out', plus);
  assert.equal(a.status, 0, a.stderr);
  const cfg = JSON.parse(fs.readFileSync(path.join(plus, 'adapter/adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.equal(cfg.use_dora, true);
  assert.equal(cfg.use_rslora, true);
  assert.equal(cfg.init_lora_weights, 'gaussian');
  assert.equal(cfg.lora_dropout, 0.1);
  assert.equal(cfg.lora_alpha, 12);
  assert.equal(cfg.r, 4);
  // lorakit's own block sits beside adapter_config.json (lorakit_config.json), which holds PEFT's fields only.
  assert.equal(cfg.lorakit, undefined);
  const meta = JSON.parse(fs.readFileSync(path.join(plus, 'adapter/lorakit_config.json'), 'utf8'));
  assert.equal(meta.method, 'dora');
  assert.equal(meta.loraplus_lr_ratio, 16);
  const b = run('train', ...flags, '--out', plain);
  assert.equal(b.status, 0, b.stderr);
  assert.equal(readAdapter(path.join(plain, 'adapter')).config.lorakit.loraplus_lr_ratio, undefined);
  // B starts at 0 (gaussian init); Adam's first steps move each entry by ≈ lr·ratio, so |B| grows ≈ 16× faster.
  const meanAbsB = (dir: string) => {
    let s = 0, n = 0;
    for (const [k, t] of readAdapter(path.join(dir, 'adapter')).tensors) if (k.endsWith('lora_B.weight')) for (const v of t.data) { s += Math.abs(v); n++; }
    return s / n;
  };
  const ratio = meanAbsB(plus) / meanAbsB(plain);
  assert.ok(ratio > 8 && ratio < 32, `mean |lora_B| with LoRA+ 16 / without = ${ratio}`);
});

test('flags a method does not have are refused with what to use instead', () => {
  const cases: [string[], RegExp][] = [
    [['--method', 'hydra', '--rank', '4'], /--rank: hydra has no 'r' \(its config fields: r_seq, r_par/],
    [['--method', 'vera', '--use-dora'], /--use-dora applies to LoRA/],
    [['--method', 'vera', '--loraplus-lr-ratio', '4'], /--loraplus-lr-ratio .* needs --method lora or dora/],
    [['--init-lora-weights', 'loftq'], /--init-lora-weights must be true, false, gaussian, pissa, pissa_niter_<n> or olora, got 'loftq'/],
    [['--rank', '4', '--method-option', 'r=8'], /--rank and --method-option r=… both set r/],
    [['--task', 'causal-lm', '--use-dora'], /--task causal-lm needs --data <file\.jsonl>/],
    [['--task', 'seq2seq', '--data', 'x.jsonl'], /--task seq2seq needs --model <dir>: a T5 or BART folder/],
    [['--task', 'rerank', '--data', 'x.jsonl', '--validation', 'y.jsonl'], /x\.jsonl: not found/],
    [['--validation', 'y.jsonl'], /--validation: classification makes its own/],
  ];
  for (const [args, re] of cases) {
    const r = run('train', ...args, '--quiet', '--out', tmp());
    assert.notEqual(r.status, 0, args.join(' '));
    assert.match(r.stderr, re, args.join(' '));
  }
});

test('--head-init probe starts from the frozen-encoder probe: with a vanishing lr the adapter run scores what the probe scored', () => {
  const out = tmp();
  const r = run('train', '--head-init', 'probe', '--lr', '1e-12', '--head-lr-scale', '1', '--target-modules', 'qkv', '--max-train', '64', '--max-eval', '48', '--max-len', '32', '--epochs', '1', '--batch', '8', '--seed', '3', '--quiet', '--out', out);
  assert.equal(r.status, 0, r.stderr);
  const [probe, tuned] = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8')).rows;
  assert.ok(probe.testAccuracy > 0.6, `probe ${probe.testAccuracy}`);
  assert.equal(tuned.testAccuracy, probe.testAccuracy);
  assert.match(run('train', '--head-init', 'nope').stderr, /Allowed choices are random, probe/);
});
