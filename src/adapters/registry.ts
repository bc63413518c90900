// The one place a method is registered: adding a method = its folder + one line here.
import type { AdapterMethod } from './types.ts';
import { lora } from './lora/index.ts';

export const METHODS: Record<string, AdapterMethod> = {
  lora,
};

export function getMethod(name: string): AdapterMethod {
  const m = METHODS[name.toLowerCase()];
  if (!m) throw new Error(`Unknown adapter method '${name}'. Available: ${Object.keys(METHODS).join(', ')}`);
  return m;
}
