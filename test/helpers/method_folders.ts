// The folders under src/adapters/ and what they hold: the AdapterMethods and
// LoraInits their index.ts exports, and their test_config.ts (what the shared
// harness runs them with). Found by reading the folders, not the registries,
// so a method that was never registered is found too.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { AdapterMethod, LoraInit } from '../../src/adapters/types.ts';
import type { AdapterTestConfig, LoraInitTestConfig } from '../../src/adapters/testing.ts';

export const ADAPTERS_DIR = path.resolve(import.meta.dirname, '../../src/adapters');

export interface AdapterFolder {
  folder: string;
  /** AdapterMethods exported by the folder's index.ts. */
  methods: AdapterMethod[];
  /** LoraInits exported by the folder's index.ts (PiSSA, OLoRA). */
  inits: LoraInit[];
  hasTestConfigFile: boolean;
  /** The `testConfig` export of test_config.ts, if any. */
  testConfig?: AdapterTestConfig | LoraInitTestConfig;
}

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

export function isAdapterMethod(x: unknown): x is AdapterMethod {
  return isObject(x) && typeof x.name === 'string' && isObject(x.peft) && isObject(x.schema) && typeof x.init === 'function' && typeof x.forward === 'function';
}

export function isLoraInit(x: unknown): x is LoraInit {
  return isObject(x) && typeof x.matches === 'function' && typeof x.init === 'function' && !('forward' in x);
}

export async function adapterFolders(): Promise<AdapterFolder[]> {
  const out: AdapterFolder[] = [];
  for (const e of fs.readdirSync(ADAPTERS_DIR, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!e.isDirectory()) continue;
    const dir = path.join(ADAPTERS_DIR, e.name);
    const index = path.join(dir, 'index.ts');
    const exports: Record<string, unknown> = fs.existsSync(index) ? await import(pathToFileURL(index).href) : {};
    const tcFile = path.join(dir, 'test_config.ts');
    const hasTestConfigFile = fs.existsSync(tcFile);
    const tc = hasTestConfigFile ? ((await import(pathToFileURL(tcFile).href)) as { testConfig?: AdapterTestConfig | LoraInitTestConfig }).testConfig : undefined;
    out.push({
      folder: e.name,
      methods: Object.values(exports).filter(isAdapterMethod),
      inits: Object.values(exports).filter(isLoraInit),
      hasTestConfigFile,
      testConfig: tc,
    });
  }
  return out;
}
