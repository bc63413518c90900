// The page's script: src/demo/app.ts and the library under it bundled by
// esbuild for browsers. package.json's "browser" field swaps the three
// environment modules (onnxruntime-web for onnxruntime-node, no file system,
// no run folder); a Node built-in that still reached the bundle fails the
// build, naming the file that imports it.

import { builtinModules } from 'node:module';
import path from 'node:path';
import * as esbuild from 'esbuild';

export interface Bundle {
  js: Uint8Array;
  map: Uint8Array;
  /** Source files in the bundle (relative to the project), for checks. */
  inputs: string[];
}

/** Fails on any import of a Node built-in (node:fs, path, ...): the browser has none. */
export const noNodeBuiltins: esbuild.Plugin = {
  name: 'no-node-builtins',
  setup(b) {
    const builtin = new Set(builtinModules);
    b.onResolve({ filter: /^[^./]/ }, (a) => {
      const bare = a.path.replace(/^node:/, '').split('/')[0];
      if (a.path.startsWith('node:') || builtin.has(bare) || a.path === 'onnxruntime-node') {
        return { errors: [{ text: `${a.path} (a Node module) imported by ${path.relative(process.cwd(), a.importer)}: it cannot run in a browser` }] };
      }
      return undefined;
    });
  },
};

export async function bundle(entry: string): Promise<Bundle> {
  const r = await esbuild.build({
    entryPoints: [entry],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    sourcemap: 'external',
    outfile: 'app.js', // names the map; nothing is written
    write: false,
    metafile: true,
    logLevel: 'silent',
    plugins: [noNodeBuiltins],
  });
  const js = r.outputFiles.find((f) => f.path.endsWith('.js'))!;
  const map = r.outputFiles.find((f) => f.path.endsWith('.map'))!;
  return { js: js.contents, map: map.contents, inputs: Object.keys(r.metafile.inputs) };
}

/** The demo page's script. */
export const DEMO_ENTRY = path.join(path.dirname(new URL(import.meta.url).pathname), 'app.ts');
