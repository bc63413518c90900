#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader (no build step needed).
import { register } from 'tsx/esm/api';
register();
const { makeProgram } = await import('../src/cli/main.ts');
makeProgram().parseAsync(process.argv).catch((e) => {
  console.error(`lorakit: ${e.message}`);
  if (process.env.LORAKIT_DEBUG) console.error(e.stack);
  process.exit(1);
});
