/**
 * Gradient clipping by the global norm over all gradients, as
 * `torch.nn.utils.clip_grad_norm_`: the gradients are viewed as one
 * concatenated vector, its p-norm is `totalNorm`, and if
 * `maxNorm / (totalNorm + 1e-6) < 1` every gradient is multiplied by that
 * coefficient in place.
 *
 * Unlike torch's default, a non-finite norm (NaN or +-Infinity: some gradient
 * is NaN or infinite, or the sum overflowed) is never used to scale: the
 * gradients are left untouched and the result says `finite: false` so the
 * caller can skip the step, lower the loss scale, or stop. With
 * `errorIfNonfinite: true` it throws instead.
 */

export interface ClipResult {
  /** The p-norm of all gradients together (NaN or Infinity if non-finite). */
  totalNorm: number;
  /** False when totalNorm is NaN or infinite; the gradients were then not modified. */
  finite: boolean;
  /** The factor the gradients were multiplied by (1 when not clipped or non-finite). */
  scale: number;
  /** True when the gradients were scaled down. */
  clipped: boolean;
}

export interface ClipOptions {
  /** p of the norm: 2 (default), any p > 0, or Infinity (max abs). */
  normType?: number;
  /** Throw a NonFiniteGradientError instead of returning finite: false. */
  errorIfNonfinite?: boolean;
}

export class NonFiniteGradientError extends Error {
  constructor(readonly totalNorm: number, readonly offenders: string[]) {
    super(
      `clipGradNorm: the total gradient norm is ${totalNorm}` +
        (offenders.length ? `; non-finite values in: ${offenders.join(", ")}` : "") +
        ". The gradients were not modified.",
    );
    this.name = "NonFiniteGradientError";
  }
}

type Grads = Map<string, Float32Array> | Iterable<Float32Array>;

function entries(grads: Grads): [string, Float32Array][] {
  if (grads instanceof Map) return [...grads.entries()];
  return [...grads].map((g, i) => [String(i), g] as [string, Float32Array]);
}

/** The global p-norm of all gradients (float64 accumulation). */
export function globalGradNorm(grads: Grads, normType = 2): number {
  if (!(normType > 0)) throw new RangeError(`normType must be > 0 or Infinity, got ${normType}`);
  const list = entries(grads);
  if (normType === Infinity) {
    let m = 0;
    for (const [, g] of list) {
      for (let i = 0; i < g.length; i++) {
        const a = Math.abs(g[i]!);
        if (!(a <= m)) m = a; // also propagates NaN
        if (Number.isNaN(m)) return NaN;
      }
    }
    return m;
  }
  if (normType === 2) {
    // as torch: the norm of the per-tensor norms. Squares of float32 values
    // cannot overflow float64, so no scaling is needed.
    let total = 0;
    for (const [, g] of list) {
      let ss = 0;
      for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
      const n = Math.sqrt(ss);
      const n32 = Math.fround(n); // torch's per-tensor norm is a float32
      const use = Number.isFinite(n32) || !Number.isFinite(n) ? n32 : n;
      total += use * use;
    }
    return Math.sqrt(total);
  }
  let s = 0;
  for (const [, g] of list) for (let i = 0; i < g.length; i++) s += Math.abs(g[i]!) ** normType;
  return s ** (1 / normType);
}

/**
 * The factor clipping to `maxNorm` multiplies gradients of global norm
 * `totalNorm` by: min(1, maxNorm / (totalNorm + 1e-6)), 1 when the norm is
 * not finite. For a rule that applies it to its own update (LoRA-Pro).
 */
export function clipFactor(totalNorm: number, maxNorm: number): number {
  if (!Number.isFinite(totalNorm)) return 1;
  // torch: clip_coef = max_norm / (total_norm + 1e-6) on a float32 tensor,
  // which Python evaluates as reciprocal(total_norm + 1e-6) * max_norm.
  const f = Math.fround;
  const t32 = Number.isFinite(f(totalNorm)) ? f(totalNorm) : totalNorm;
  const coef = f(f(1 / f(t32 + f(1e-6))) * f(maxNorm));
  return coef < 1 ? coef : 1;
}

/**
 * Clips gradients in place to a global norm of at most `maxNorm` and returns
 * what happened. See the module comment for the non-finite case.
 */
export function clipGradNorm(grads: Grads, maxNorm: number, opts: ClipOptions = {}): ClipResult {
  if (!(maxNorm >= 0)) throw new RangeError(`clipGradNorm: maxNorm must be >= 0, got ${maxNorm}`);
  const normType = opts.normType ?? 2;
  const list = entries(grads);
  const totalNorm = globalGradNorm(list.map(([, g]) => g), normType);
  if (!Number.isFinite(totalNorm)) {
    if (opts.errorIfNonfinite) {
      const offenders = list.filter(([, g]) => g.some((x) => !Number.isFinite(x))).map(([n]) => n);
      throw new NonFiniteGradientError(totalNorm, offenders);
    }
    return { totalNorm, finite: false, scale: 1, clipped: false };
  }
  const coef = clipFactor(totalNorm, maxNorm);
  if (!(coef < 1)) return { totalNorm, finite: true, scale: 1, clipped: false };
  for (const [, g] of list) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return { totalNorm, finite: true, scale: coef, clipped: true };
}
