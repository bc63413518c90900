// Tests that rerun an independent reference (PyTorch scripts, the original USE
// tokenizer package) on lorakit's own outputs. CI installs every reference
// (.ci/run), so there a missing one is a failure, never a silent skip; on a
// developer's machine the test skips and says what is missing and how to get it.

/** CI=true (or 1 / yes), as .ci/run exports it. */
export const inCI = ['1', 'true', 'yes'].includes((process.env.CI ?? '').toLowerCase());

/**
 * The `skip` option of a reference test: false when the reference is there,
 * and also in CI (the test then runs and `requireReference` fails it); a
 * message naming what is missing otherwise.
 */
export function referenceSkip(missing: string | null): string | false {
  if (missing === null || inCI) return false;
  return `reference check skipped: ${missing} (CI installs it and fails without it)`;
}

/** Fails the running test when its reference is missing (reached only in CI, or when a test forgot referenceSkip). */
export function requireReference(missing: string | null): void {
  if (missing !== null) throw new Error(`reference check cannot run: ${missing}. .ci/run installs it; a reference test never passes without its reference${inCI ? ' in CI' : ''}`);
}
