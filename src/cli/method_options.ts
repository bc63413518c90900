// `--method-option key=value` (repeatable): fields of the chosen method's
// config (its zod schema in src/adapters/<name>/), e.g.
//   lorakit train --method vera --method-option d_initial=0.05 --method-option projection_prng_key=3
// Values: numbers, true/false, null, JSON arrays/objects, else strings.
// Unknown keys are refused with the method's known fields.
import { InvalidArgumentError } from 'commander';
import { getMethod, METHODS } from '../adapters/registry.ts';
import { INITS } from '../adapters/inits.ts';
import { TRAIN_DEFAULTS } from '../adapters/train_defaults.ts';

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


/** The field's default under lorakit train in every method that has it, e.g. 'lora 8, vera 256, randlora 32' (for --help). */
export function methodDefaults(field: string): string {
  return Object.entries(METHODS)
    .filter(([name]) => methodConfigKeys(name)?.includes(field))
    .map(([name, m]) => `${name} ${JSON.stringify({ ...(m.schema.parse({}) as Record<string, unknown>), ...TRAIN_DEFAULTS[name] }[field])}`)
    .join(', ');
}

/** The flags that set a config field of the method, as the user gave them (undefined = not given). */
export interface SharedFlags {
  rank?: number;
  alpha?: number;
  loraDropout?: number;
  useRslora?: boolean;
  initLoraWeights?: boolean | string;
}

const FLAG_FIELDS: [keyof SharedFlags, string, string][] = [
  ['rank', '--rank', 'r'],
  ['alpha', '--alpha', 'lora_alpha'],
  ['loraDropout', '--lora-dropout', 'lora_dropout'],
  ['useRslora', '--use-rslora', 'use_rslora'],
  ['initLoraWeights', '--init-lora-weights', 'init_lora_weights'],
];

/**
 * The method config from the train flags: only the fields the user gave (a
 * method keeps its own default rank, e.g. VeRA's 256), over lorakit train's
 * defaults, under --method-option. A flag the method has no field for, or one
 * given twice (flag and --method-option), is an error naming both.
 */
export function methodConfigFromFlags(method: string, flags: SharedFlags, methodOptions: Record<string, unknown>): Record<string, unknown> {
  const keys = methodConfigKeys(method);
  const out: Record<string, unknown> = { ...TRAIN_DEFAULTS[method] };
  for (const [flag, cli, field] of FLAG_FIELDS) {
    const v = flags[flag];
    if (v === undefined) continue;
    if (keys && !keys.includes(field)) throw new InvalidArgumentError(`${cli}: ${method} has no '${field}' (its config fields: ${keys.join(', ')}); set its size with --method-option <field>=<value>`);
    if (field in methodOptions) throw new InvalidArgumentError(`${cli} and --method-option ${field}=… both set ${field}; give one`);
    out[field] = v;
  }
  return { ...out, ...checkMethodOptions(method, methodOptions) };
}

/**
 * The adapter-config flags the user typed (not defaults), as {flag, field,
 * value}: what `train --from-adapter` checks against the adapter's config.
 * `source(key)` is commander's getOptionValueSource.
 */
export function givenConfigFlags(o: Record<string, any>, source: (key: string) => string | undefined, method: string, flags: SharedFlags): { flag: string; field: string; value: unknown }[] {
  const out: { flag: string; field: string; value: unknown }[] = [];
  if (source('method') === 'cli' || o.useDora) out.push({ flag: o.useDora ? '--use-dora' : '--method', field: 'method', value: method });
  for (const [flag, cli, field] of FLAG_FIELDS) if (flags[flag] !== undefined) out.push({ flag: cli, field, value: flags[flag] });
  if (o.targetModules !== undefined) out.push({ flag: '--target-modules', field: 'target_modules', value: o.targetModules });
  for (const [k, v] of Object.entries(o.methodOption ?? {})) out.push({ flag: `--method-option ${k}`, field: k, value: v });
  return out;
}

/** `--init-lora-weights`: true | false | gaussian | pissa | pissa_niter_<n> | olora (PEFT's values lorakit implements). */
export function parseInitLoraWeights(v: string): boolean | string {
  if (v === 'true') return true;
  if (v === 'false') return false;
  if (v === 'gaussian' || Object.values(INITS).some((i) => i.matches(v))) return v;
  throw new InvalidArgumentError(`--init-lora-weights must be true, false, gaussian, pissa, pissa_niter_<n> or olora, got '${v}'`);
}
