// The import structure of src/ (DESIGN.md's layering): no import circles, and
// each folder imports only from folders below it. Reads the sources' import
// statements (static, re-exports and dynamic import()), type-only ones too.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '../src');

/** Folders from the bottom up; a folder may import from its own level and those before it. */
const LAYERS: string[][] = [
  ['util', 'graph', 'io', 'linalg', 'tokenize', 'onnx'],
  ['autodiff', 'runtime', 'data', 'optim', 'quant'],
  ['models'],
  ['adapters'],
  ['peft'],
  ['serve'],
  ['summarize', 'retrieval'],
  ['duqgen'],
  ['train'],
  ['tasks'],
  ['cli'],
  ['.'], // src/index.ts: the public API
];

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : e.name.endsWith('.ts') ? [p] : [];
  });
}

/** Relative imports of every source file, resolved to files under src/. */
export function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const re = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|(?:^|\n)\s*import\s+['"](\.[^'"]+)['"]/g;
  for (const file of walk(SRC)) {
    const text = fs.readFileSync(file, 'utf8');
    const deps: string[] = [];
    for (const m of text.matchAll(re)) deps.push(path.resolve(path.dirname(file), m[1] ?? m[2] ?? m[3]));
    graph.set(file, deps);
  }
  return graph;
}

const rel = (f: string) => path.relative(SRC, f);
const folderOf = (f: string) => (rel(f).includes(path.sep) ? rel(f).split(path.sep)[0] : '.');

test('every src folder has a layer, and every import resolves to a file', () => {
  const graph = importGraph();
  const known = new Set(LAYERS.flat());
  for (const [file, deps] of graph) {
    assert.ok(known.has(folderOf(file)), `src/${folderOf(file)}/ has no layer in test/layering.test.ts's LAYERS: add it where it belongs`);
    for (const d of deps) assert.ok(fs.existsSync(d), `${rel(file)} imports ${rel(d)}, which does not exist`);
  }
});

test('no import circles in src/', () => {
  const graph = importGraph();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    state.set(f, 'open');
    stack.push(f);
    for (const d of graph.get(f) ?? []) {
      if (state.get(d) === 'open') cycles.push([...stack.slice(stack.indexOf(d)), d].map(rel).join(' → '));
      else if (!state.has(d)) visit(d);
    }
    stack.pop();
    state.set(f, 'done');
  };
  for (const f of graph.keys()) if (!state.has(f)) visit(f);
  assert.deepEqual(cycles, [], `import circles:\n${cycles.join('\n')}`);
});

test('each folder imports only from its own layer and those below (models/ knows nothing of adapters, peft, train, optim)', () => {
  const rank = new Map(LAYERS.flatMap((fs, i) => fs.map((f) => [f, i] as const)));
  const bad: string[] = [];
  for (const [file, deps] of importGraph()) {
    const from = folderOf(file);
    for (const d of deps) {
      const to = folderOf(d);
      if (rank.get(to)! > rank.get(from)!) bad.push(`${rel(file)} → ${rel(d)}`);
    }
  }
  const models = [...importGraph()].flatMap(([f, ds]) => (folderOf(f) === 'models' ? ds.filter((d) => ['adapters', 'peft', 'train', 'optim'].includes(folderOf(d))).map((d) => `${rel(f)} → ${rel(d)}`) : []));
  assert.deepEqual(models, [], 'src/models/ must not import adapters/, peft/, train/ or optim/');
  assert.deepEqual(bad, [], `imports that go up a layer:\n${bad.join('\n')}`);
});

test('graph nodes are made through the builders in src/graph/ (no raw addNode elsewhere)', () => {
  const raw = walk(SRC)
    .filter((f) => folderOf(f) !== 'graph')
    .flatMap((f) => fs.readFileSync(f, 'utf8').split('\n').flatMap((line, i) => (/\.addNode\(/.test(line) ? [`${rel(f)}:${i + 1}`] : [])));
  assert.deepEqual(raw, [], 'add a builder to src/graph/ops.ts instead');
});
