// `--method-option key=value` (repeatable): fields of the chosen method's
// config (its zod schema in src/adapters/<name>/), e.g.
//   lorakit train --method vera --method-option d_initial=0.05 --method-option projection_prng_key=3
// Values: numbers, true/false, null, JSON arrays/objects, else strings.
// Unknown keys are refused with the method's known fields.
import { InvalidArgumentError } from 'commander';
import { getMethod } from '../adapters/registry.ts';

export function parseOptionValue(v: string): unknown {
  const s = v.trim();
  if (s === 'true') return true;
  if (s === 'false') return false;
  if (s === 'null') return null;
  if (s !== '' && Number.isFinite(Number(s))) return Number(s);
  if (/^[[{]/.test(s)) {
    try {
      return JSON.parse(s);
    } catch {
      throw new InvalidArgumentError(`--method-option value '${v}' looks like JSON but does not parse`);
    }
  }
  return s;
}

/** Commander accumulator for the repeatable `--method-option key=value`. */
export function collectMethodOption(kv: string, prev: Record<string, unknown>): Record<string, unknown> {
  const i = kv.indexOf('=');
  if (i <= 0) throw new InvalidArgumentError(`--method-option expects key=value, got '${kv}'`);
  return { ...prev, [kv.slice(0, i).trim()]: parseOptionValue(kv.slice(i + 1)) };
}

/** The method's config fields, when its schema is a zod object. */
export function methodConfigKeys(method: string): string[] | null {
  const shape = (getMethod(method).schema as unknown as { shape?: Record<string, unknown> }).shape;
  return shape ? Object.keys(shape) : null;
}

/** Refuses keys the method's config does not have (they would be dropped silently). */
export function checkMethodOptions(method: string, opts: Record<string, unknown>): Record<string, unknown> {
  const keys = methodConfigKeys(method);
  if (keys) {
    const bad = Object.keys(opts).filter((k) => !keys.includes(k));
    if (bad.length) throw new InvalidArgumentError(`--method-option: ${bad.map((b) => `'${b}'`).join(', ')} is not a field of ${method}'s config (fields: ${keys.join(', ')})`);
  }
  return opts;
}
