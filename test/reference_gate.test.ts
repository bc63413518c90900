// The gate of the reference checks (test/helpers/reference.ts, torch.ts): with
// torch missing, a reference test skips with a message on a developer's
// machine and FAILS in CI (CI=true, as .ci/run exports it). Checked on a small
// test file run by node's test runner in a child process, torch made missing
// by pointing LORAKIT_PYTHON at an interpreter that does not exist.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = new URL('..', import.meta.url).pathname;
const HELPER = new URL('./helpers/torch.ts', import.meta.url).pathname;

function runProbe(env: Record<string, string | undefined>) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-gate-'));
  const file = path.join(dir, 'probe.test.ts');
  fs.writeFileSync(file, [
    `import { test } from 'node:test';`,
    `import { requireTorch, torchSkip } from ${JSON.stringify(HELPER)};`,
    `test('a reference check', { skip: torchSkip }, () => { requireTorch(); });`,
  ].join('\n'));
  const base = { ...process.env };
  delete base.CI;
  delete base.NODE_TEST_CONTEXT; // else the child reports to this runner instead of printing TAP
  return spawnSync(process.execPath, ['--import', 'tsx', '--test', file], { cwd: ROOT, encoding: 'utf8', env: { ...base, ...env } as NodeJS.ProcessEnv });
}

test('torch missing: a reference test skips locally and says why', () => {
  const r = runProbe({ LORAKIT_PYTHON: '/nonexistent/python3' });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /# SKIP reference check skipped: \/nonexistent\/python3 cannot run .*install python3-torch/);
  assert.match(r.stdout, /# skipped 1/);
});

test('torch missing in CI: the same test fails, naming what is missing', () => {
  const r = runProbe({ LORAKIT_PYTHON: '/nonexistent/python3', CI: 'true' });
  assert.notEqual(r.status, 0, 'a missing reference must fail CI');
  assert.match(r.stdout, /reference check cannot run: \/nonexistent\/python3 cannot run/);
  assert.match(r.stdout, /# fail 1/);
  assert.match(r.stdout, /# skipped 0/);
});
