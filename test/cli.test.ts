// The lorakit command as a user runs it: a tiny end-to-end run, eval of the
// saved adapter, and clear errors for bad input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BIN = path.resolve('bin/lorakit.js');
const run = (...args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, LORAKIT_THREADS: '2' } });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-cli-'));

test('train --help lists the main flags', () => {
  const r = run('train', '--help');
  assert.equal(r.status, 0);
  for (const flag of ['--model', '--data', '--target-modules', '--epochs', '--lr', '--batch', '--seed', '--out', '--max-train', '--max-eval', '--resume']) assert.match(r.stdout, new RegExp(flag));
});

test('a tiny train run writes a PEFT adapter, metrics and results; eval reproduces its test accuracy', () => {
  const out = tmp();
  const r = run('train', '--max-train', '48', '--max-eval', '16', '--epochs', '1', '--batch', '16', '--out', out, '--quiet');
  assert.equal(r.status, 0, r.stderr + r.stdout);
  assert.match(r.stdout, /frozen encoder \+ linear head/);
  assert.match(r.stdout, /lora encoder \+ linear head/);
  for (const f of ['adapter/adapter_config.json', 'adapter/adapter_model.safetensors', 'metrics.jsonl', 'results.json']) assert.ok(fs.existsSync(path.join(out, f)), f);
  const cfg = JSON.parse(fs.readFileSync(path.join(out, 'adapter/adapter_config.json'), 'utf8'));
  assert.equal(cfg.peft_type, 'LORA');
  assert.deepEqual(cfg.target_modules, ['qkv', 'output', 'conv1', 'conv2']);
  const lines = fs.readFileSync(path.join(out, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.some((l) => l.event === 'step' && Number.isFinite(l.loss)));
  const results = JSON.parse(fs.readFileSync(path.join(out, 'results.json'), 'utf8'));
  const loraAcc = results.rows.find((x: any) => x.system.startsWith('lora')).testAccuracy;
  const e = run('eval', '--adapter', path.join(out, 'adapter'), '--max-eval', '16');
  assert.equal(e.status, 0, e.stderr);
  assert.match(e.stdout, new RegExp(`accuracy ${(100 * loraAcc).toFixed(2)}%`));
});

test('a JSONL file with a missing label fails with the file, line number and a valid example', () => {
  const dir = tmp();
  const file = path.join(dir, 'bad.jsonl');
  fs.writeFileSync(file, '{"text":"good","label":1}\n{"text":"no label here"}\n');
  const r = run('train', '--data', file, '--out', path.join(dir, 'o'), '--quiet');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /bad\.jsonl:2: missing "label"/);
  assert.match(r.stderr, /A valid line looks like/);
});

test('a learning rate of NaN is refused before any work', () => {
  const r = run('train', '--lr', 'NaN');
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /--lr must be a finite number, got 'NaN'/);
});

test('a target module that matches nothing lists the modules that exist', () => {
  const r = run('train', '--target-modules', 'query,value', '--max-train', '8', '--max-eval', '8', '--no-baseline', '--quiet', '--out', tmp());
  assert.equal(r.status, 1);
  assert.match(r.stderr, /\["query","value"\] matched no module/);
  assert.match(r.stderr, /encoder\.layer\.0\.attention\.qkv/);
});

test('an unknown model is a clear error', () => {
  const r = run('train', '--model', './no-such-model', '--quiet');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /model '\.\/no-such-model': not 'use'/);
});
