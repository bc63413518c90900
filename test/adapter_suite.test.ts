// Every adapter method through the shared harness (test/helpers/adapter_suite.ts),
// each with its folder's test config (src/adapters/<name>/test_config.ts), and
// the rule that keeps it so: a method folder without a registration or a test
// config fails here, by name.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { adapterCases, runAdapterSuite } from './helpers/adapter_suite.ts';
import { adapterFolders, type AdapterFolder } from './helpers/method_folders.ts';
import { METHODS } from '../src/adapters/registry.ts';
import { INITS } from '../src/adapters/inits.ts';
import type { AdapterMethod, LoraInit } from '../src/adapters/types.ts';
import type { AdapterTestConfig } from '../src/adapters/testing.ts';

const folders = await adapterFolders();

/** What is missing between the folders, the registries and the test configs, one message each (empty: all in order). */
export function registrationProblems(folders: AdapterFolder[], methods: Record<string, AdapterMethod>, inits: Record<string, LoraInit>): string[] {
  const problems: string[] = [];
  const where = (f: AdapterFolder) => `src/adapters/${f.folder}`;
  for (const f of folders) {
    if (f.methods.length + f.inits.length === 0) continue;
    if (f.methods.length + f.inits.length > 1) problems.push(`${where(f)}/index.ts exports ${f.methods.length + f.inits.length} methods/inits: one per folder, so its test config is unambiguous`);
    for (const m of f.methods) {
      if (methods[m.name] !== m) problems.push(`${where(f)}/index.ts exports method '${m.name}', which is not registered as METHODS.${m.name} in src/adapters/registry.ts`);
    }
    for (const i of f.inits) {
      if (!Object.values(inits).includes(i)) problems.push(`${where(f)}/index.ts exports a LoRA init that is not registered in INITS (src/adapters/inits.ts)`);
    }
    if (!f.hasTestConfigFile) problems.push(`${where(f)}/test_config.ts is missing: the shared adapter harness needs its test config (shape: src/adapters/testing.ts)`);
    else if (!f.testConfig) problems.push(`${where(f)}/test_config.ts does not export 'testConfig'`);
  }
  for (const [key, m] of Object.entries(methods)) {
    if (!folders.some((f) => f.methods.includes(m))) problems.push(`METHODS.${key} ('${m.name}') is not exported by any src/adapters/<folder>/index.ts, so it has no folder for its test config`);
  }
  for (const [key, i] of Object.entries(inits)) {
    if (!folders.some((f) => f.inits.includes(i))) problems.push(`INITS.${key} is not exported by any src/adapters/<folder>/index.ts, so it has no folder for its test config`);
  }
  return problems;
}

test('every method folder is registered and has a test config; every registered method and init has such a folder', () => {
  assert.deepEqual(registrationProblems(folders, METHODS, INITS), []);
  // The registries are not empty by accident of discovery: each entry was found in its folder.
  assert.equal(folders.filter((f) => f.methods.length).length, Object.keys(METHODS).length);
  assert.equal(folders.filter((f) => f.inits.length).length, Object.keys(INITS).length);
});

test('the registration check names what is missing (an unregistered method without a test config, a registered one without a folder)', () => {
  const fake = { ...METHODS.lora, name: 'newmethod' };
  const orphan = { ...METHODS.lora, name: 'orphan' };
  const problems = registrationProblems(
    [...folders, { folder: 'newmethod', methods: [fake], inits: [], hasTestConfigFile: false }, { folder: 'halfdone', methods: [orphan], inits: [], hasTestConfigFile: true }],
    { ...METHODS, orphan },
    INITS,
  );
  assert.deepEqual(problems, [
    `src/adapters/newmethod/index.ts exports method 'newmethod', which is not registered as METHODS.newmethod in src/adapters/registry.ts`,
    'src/adapters/newmethod/test_config.ts is missing: the shared adapter harness needs its test config (shape: src/adapters/testing.ts)',
    `src/adapters/halfdone/test_config.ts does not export 'testConfig'`,
  ]);
  const gone = registrationProblems(folders.filter((f) => f.folder !== 'vera'), METHODS, INITS);
  assert.deepEqual(gone, [`METHODS.vera ('vera') is not exported by any src/adapters/<folder>/index.ts, so it has no folder for its test config`]);
});

test('test configs name only fields their method knows (the schema would drop a misspelt one silently)', () => {
  for (const f of folders) {
    if (!f.testConfig) continue;
    const method = f.methods[0] ?? METHODS.lora;
    const tc = f.testConfig as AdapterTestConfig;
    for (const [label, fields] of [['config', tc.config], ['other', tc.other], ...Object.entries(tc.variants ?? {})] as const) {
      if (!fields) continue;
      const parsed = method.schema.parse({ ...tc.config, ...fields }) as Record<string, unknown>;
      for (const k of Object.keys(fields)) assert.ok(k in parsed, `src/adapters/${f.folder}/test_config.ts ${label}: '${k}' is not a field of ${method.name}'s config`);
    }
  }
});

const cases = adapterCases(folders, METHODS.lora);
test('the harness runs every registered method and LoRA init, and the LoRA-family variants', () => {
  const names = cases.map((c) => c.name);
  for (const m of Object.keys(METHODS)) assert.ok(names.includes(m), `no harness case for method '${m}'`);
  for (const i of Object.keys(INITS)) assert.ok(names.includes(i), `no harness case for init '${i}'`);
  assert.ok(names.includes('rslora'));
});

runAdapterSuite(cases);
