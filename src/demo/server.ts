// Serves the demo page (`npm run demo`, `lorakit demo`): the page and its
// bundled script, onnxruntime-web's WebAssembly files under /ort/, and the
// bundled model's files (model.json, weight shards, vocab.json) under /model/,
// straight from node_modules. The page is cross-origin isolated by default
// (COOP same-origin + COEP require-corp), which is what lets onnxruntime-web
// run more than one WebAssembly thread.

import fs from 'node:fs';
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { dirName, packageFile } from '../io/files.ts';
import { USE_PACKAGE_DIST } from '../models/use.ts';
import { bundle, DEMO_ENTRY, type Bundle } from './bundle.ts';

export interface DemoServerOptions {
  /** Default 5178; 0 picks a free port. */
  port?: number;
  /** Default 127.0.0.1 (this machine only). */
  host?: string;
  /** Cross-origin isolation headers (default true): without them the page runs one WebAssembly thread. */
  isolate?: boolean;
  /** Extra pages: URL path → [a TypeScript entry bundled like the demo's script, its HTML]. The benchmark page uses it. */
  pages?: Record<string, { entry: string; html: string }>;
}

export interface DemoServer {
  url: string;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8', '.mjs': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8', '.wasm': 'application/wasm', '.map': 'application/json; charset=utf-8',
};

/** A file inside `root` (no escaping it with ../), or null. */
function inside(root: string, rel: string): string | null {
  const full = path.resolve(root, '.' + path.posix.normalize('/' + rel));
  return full.startsWith(root + path.sep) && fs.existsSync(full) && fs.statSync(full).isFile() ? full : null;
}

export async function startDemoServer(o: DemoServerOptions = {}): Promise<DemoServer> {
  const here = path.dirname(DEMO_ENTRY);
  const ortDir = path.dirname(createRequire(import.meta.url).resolve('onnxruntime-web')); // its dist/ folder
  const modelDir = dirName(packageFile(`${USE_PACKAGE_DIST}/model.json`));
  // Bundled once at start (about a second), so a broken build fails here and not in the browser.
  const bundles = new Map<string, Bundle>([['/app', await bundle(DEMO_ENTRY)]]);
  const html = new Map<string, string>([['/', path.join(here, 'index.html')]]);
  for (const [at, page] of Object.entries(o.pages ?? {})) {
    bundles.set(`${at}.app`, await bundle(page.entry));
    html.set(at, page.html);
  }
  const isolate = o.isolate ?? true;

  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const send = (status: number, body: Uint8Array | string, type: string, cache = 'no-cache') => {
      res.writeHead(status, {
        'Content-Type': type,
        'Content-Length': Buffer.byteLength(body),
        'Cache-Control': cache,
        'Cross-Origin-Resource-Policy': 'same-origin',
        ...(isolate && { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp' }),
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    const file = (full: string | null, cache?: string) => (full ? send(200, fs.readFileSync(full), TYPES[path.extname(full)] ?? 'application/octet-stream', cache) : send(404, 'not found', 'text/plain'));
    const p = url.pathname;
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'GET only', 'text/plain');
    if (html.has(p)) return file(html.get(p)!);
    const js = p.match(/^(.*)\.js(\.map)?$/);
    if (js && bundles.has(js[1])) {
      const b = bundles.get(js[1])!;
      return send(200, js[2] ? b.map : b.js, TYPES[js[2] ? '.map' : '.js']);
    }
    if (p === '/style.css') return file(path.join(here, 'style.css'));
    if (p === '/favicon.ico') return send(204, '', 'image/x-icon');
    if (p.startsWith('/ort/')) return file(inside(ortDir, p.slice(5)), 'max-age=3600');
    if (p.startsWith('/model/')) return file(inside(modelDir, p.slice(7)), 'max-age=3600');
    send(404, 'not found', 'text/plain');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.port ?? 5178, o.host ?? '127.0.0.1', () => resolve());
  });
  const addr = server.address() as { port: number; address: string };
  return {
    url: `http://${addr.address === '::' ? 'localhost' : addr.address}:${addr.port}/`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
