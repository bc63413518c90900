// `lorakit demo`: serves the page that fine-tunes the bundled sentence
// encoder in the browser (src/demo/). Runs until interrupted.
import { Command } from 'commander';
import { startDemoServer } from '../demo/server.ts';
import { int } from './parse.ts';

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('Serve the browser demo: fine-tune the bundled sentence encoder with an adapter on your own labeled texts, in the page (onnxruntime-web)')
    .option('--port <n>', 'port (0 = any free one)', int('--port'), 5178)
    .option('--host <addr>', 'address to listen on (0.0.0.0 for other machines)', '127.0.0.1')
    .option('--no-isolate', 'no cross-origin isolation headers (onnxruntime-web then runs one WebAssembly thread)')
    .action(async (o) => {
      const server = await startDemoServer({ port: o.port, host: o.host, isolate: o.isolate });
      console.log(`lorakit demo: open ${server.url} in Chrome, Edge or Firefox (Ctrl-C stops the server)`);
      await new Promise<void>((resolve) => process.once('SIGINT', () => resolve()));
      await server.close();
    });
}
