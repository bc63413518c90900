// Option parsers shared by the lorakit commands: each rejects bad input with
// the flag's name and the value it got.
import { InvalidArgumentError, Option } from 'commander';
import { BASE_DTYPE_HELP, BASE_DTYPES } from '../quant/base_dtype.ts';

export const num = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isFinite(x)) throw new InvalidArgumentError(`${name} must be a finite number, got '${v}'`);
  return x;
};

export const int = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 0) throw new InvalidArgumentError(`${name} must be a non-negative integer, got '${v}'`);
  return x;
};

export const positiveInt = (name: string) => (v: string) => {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) throw new InvalidArgumentError(`${name} must be a positive integer, got '${v}'`);
  return x;
};

/** 'a,b' → ['a', 'b']; 'all-linear' stays a string (PEFT's special value). */
export const list = (v: string) => (v === 'all-linear' ? v : v.split(',').map((s) => s.trim()).filter(Boolean));

/** --base-dtype: the form of the frozen base weights (src/quant/); `fallback` = what no flag means (null: the command decides). */
export function baseDtypeOption(fallback: string | null = 'fp32', extraHelp = ''): Option {
  const o = new Option('--base-dtype <dtype>', BASE_DTYPE_HELP + extraHelp).choices([...BASE_DTYPES]);
  return fallback === null ? o : o.default(fallback);
}
