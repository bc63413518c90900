/**
 * Learning-rate schedules as multipliers of the base learning rate, with the
 * exact formulas of Hugging Face transformers' `get_*_schedule_with_warmup`.
 *
 * Convention (as `torch.optim.lr_scheduler.LambdaLR`): the learning rate used
 * by optimizer step k (k = 0, 1, 2, ...: the number of updates made before
 * it) is `baseLr * schedule(k)`. With warmup, step 0 therefore uses lr 0,
 * exactly as transformers does.
 */

/** Multiplier of the base learning rate for optimizer step `step` (0-based). */
export type Schedule = (step: number) => number;

export interface WarmupOptions {
  /** Steps of linear warmup from 0 to 1 (default 0). */
  warmupSteps?: number;
}

export interface DecayOptions extends WarmupOptions {
  /** Total number of optimizer steps of the run. */
  totalSteps: number;
}

function checkSteps(o: { warmupSteps?: number; totalSteps?: number }): void {
  const w = o.warmupSteps ?? 0;
  if (!Number.isInteger(w) || w < 0) throw new RangeError(`schedule: warmupSteps must be an integer >= 0, got ${w}`);
  if (o.totalSteps !== undefined && (!Number.isInteger(o.totalSteps) || o.totalSteps < 0)) {
    throw new RangeError(`schedule: totalSteps must be an integer >= 0, got ${o.totalSteps}`);
  }
}

/** transformers `get_constant_schedule`: always 1. */
export function constantSchedule(): Schedule {
  return () => 1;
}

/** transformers `get_constant_schedule_with_warmup`: linear warmup, then 1. */
export function constantWithWarmup({ warmupSteps = 0 }: WarmupOptions = {}): Schedule {
  checkSteps({ warmupSteps });
  return (step) => (step < warmupSteps ? step / Math.max(1, warmupSteps) : 1);
}

/**
 * transformers `get_linear_schedule_with_warmup`: linear warmup from 0 to 1
 * over `warmupSteps`, then linear decay to 0 at `totalSteps` (and 0 after).
 */
export function linearWarmupDecay({ warmupSteps = 0, totalSteps }: DecayOptions): Schedule {
  checkSteps({ warmupSteps, totalSteps });
  return (step) => {
    if (step < warmupSteps) return step / Math.max(1, warmupSteps);
    return Math.max(0, (totalSteps - step) / Math.max(1, totalSteps - warmupSteps));
  };
}

/**
 * transformers `get_cosine_schedule_with_warmup`: linear warmup, then cosine
 * from 1 down to 0 over the remaining steps (`numCycles` = 0.5 is a half
 * cosine; more cycles go up and down again). `minLrRatio` (default 0) lifts
 * the floor: multiplier = minLrRatio + (1 - minLrRatio) * cosine term.
 */
export function cosineWithWarmup({
  warmupSteps = 0,
  totalSteps,
  numCycles = 0.5,
  minLrRatio = 0,
}: DecayOptions & { numCycles?: number; minLrRatio?: number }): Schedule {
  checkSteps({ warmupSteps, totalSteps });
  if (!(minLrRatio >= 0 && minLrRatio <= 1)) throw new RangeError(`cosineWithWarmup: minLrRatio must be in [0, 1], got ${minLrRatio}`);
  return (step) => {
    if (step < warmupSteps) return step / Math.max(1, warmupSteps);
    const progress = (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
    const c = Math.max(0, 0.5 * (1 + Math.cos(Math.PI * numCycles * 2 * progress)));
    return minLrRatio + (1 - minLrRatio) * c;
  };
}

export type ScheduleSpec =
  | { kind: "constant"; warmupSteps?: number }
  | { kind: "linear"; warmupSteps?: number; totalSteps: number }
  | { kind: "cosine"; warmupSteps?: number; totalSteps: number; numCycles?: number; minLrRatio?: number };

/** Builds a schedule from a config object (e.g. from the CLI). */
export function makeSchedule(spec: ScheduleSpec): Schedule {
  switch (spec.kind) {
    case "constant":
      return constantWithWarmup(spec);
    case "linear":
      return linearWarmupDecay(spec);
    case "cosine":
      return cosineWithWarmup(spec);
    default: {
      const k: never = spec;
      throw new Error(`unknown schedule kind ${JSON.stringify((k as { kind: unknown }).kind)}`);
    }
  }
}

/** `baseLr * schedule(step)`. */
export function lrAt(baseLr: number, schedule: Schedule, step: number): number {
  return baseLr * schedule(step);
}
