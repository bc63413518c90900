// lorakit as a dependency: `npm pack` (which builds dist/ with declarations),
// a scratch TypeScript project outside the repository installs the tarball,
// type-checks and compiles the README's API example against the installed
// package's types, runs it, and runs the installed `lorakit` command.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');

/** The README's API example: the ```ts block between the api-example markers. */
export function readmeApiExample(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const m = readme.match(/<!-- api-example:start -->\s*```ts\n([\s\S]*?)```\s*<!-- api-example:end -->/);
  assert.ok(m, 'README.md has no API example between <!-- api-example:start --> and <!-- api-example:end -->');
  return m[1];
}

function sh(cmd: string, args: string[], cwd: string) {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', npm_config_onnxruntime_node_install: 'skip', LORAKIT_THREADS: '1' } });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('a project outside the repo installs the packed tarball and runs the README API example with its types', { timeout: 900_000 }, () => {
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'lorakit-package-'));
  const packed = JSON.parse(sh('npm', ['pack', '--json', '--pack-destination', work], ROOT));
  const tarball = path.join(work, packed[0].filename);
  const files: string[] = packed[0].files.map((f: { path: string }) => f.path);
  for (const f of ['dist/index.js', 'dist/index.d.ts', 'bin/lorakit.js', 'src/cli/main.ts']) assert.ok(files.includes(f), `the package holds ${f}`);
  assert.ok(!files.some((f) => f.startsWith('test/')), 'tests are not packed');

  const proj = path.join(work, 'scratch');
  fs.mkdirSync(proj);
  fs.writeFileSync(path.join(proj, 'package.json'), JSON.stringify({ name: 'scratch', private: true, type: 'module' }, null, 2));
  fs.writeFileSync(path.join(proj, '.npmrc'), 'onnxruntime-node-install=skip\n');
  sh('npm', ['install', tarball, '--no-audit', '--no-fund', '--prefer-offline'], proj);

  fs.writeFileSync(path.join(proj, 'example.ts'), readmeApiExample());
  fs.writeFileSync(path.join(proj, 'tsconfig.json'), JSON.stringify({
    compilerOptions: {
      target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, outDir: 'out', skipLibCheck: true,
      types: ['node'], typeRoots: [path.join(ROOT, 'node_modules/@types')],
    },
    include: ['example.ts'],
  }, null, 2));
  // The repo's TypeScript compiles the scratch project: types come from the installed package's dist/*.d.ts.
  sh(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], proj);
  const out = sh(process.execPath, ['out/example.js'], proj);
  assert.match(out, /validation accuracy (0|0\.\d+|1)\n/);
  assert.match(out, /pooled embedding \[ 1, 512 \]/);
  for (const f of ['adapter_config.json', 'adapter_model.safetensors']) assert.ok(fs.existsSync(path.join(proj, 'my-adapter', f)), `my-adapter/${f}`);

  const help = sh(process.execPath, [path.join(proj, 'node_modules/.bin/lorakit'), 'train', '--help'], proj);
  assert.match(help, /--task <name>/);
  fs.rmSync(work, { recursive: true, force: true });
});
