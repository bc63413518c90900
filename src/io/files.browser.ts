// files.ts in a browser bundle (package.json "browser"): a page has no file
// system. Each call fails with what to use instead: lorakit's browser API
// takes and gives bytes (adapterFiles / loadPeftAdapter(model, files),
// parseJsonl, UseTokenizer.fromVocab, fetchUseModel).

import type * as Node from './files.ts';

export type RandomAccessFile = Node.RandomAccessFile;

export class NoFileSystemError extends Error {
  constructor(what: string) {
    super(
      `${what}: a web page has no file system. In the browser, lorakit takes and gives bytes: adapterFiles() and ` +
        'loadPeftAdapter(model, files) for adapters, parseJsonl() for data, fetchUseModel() for the bundled model',
    );
    this.name = 'NoFileSystemError';
  }
}

const none = (what: string) => (...args: unknown[]): never => {
  throw new NoFileSystemError(`${what}(${args.filter((a) => typeof a === 'string').map((a) => JSON.stringify(a)).join(', ')})`);
};

export const readText: typeof Node.readText = none('readText');
export const readBytes: typeof Node.readBytes = none('readBytes');
export const readBytesAsync: typeof Node.readBytesAsync = none('readBytesAsync');
export const writeBytes: typeof Node.writeBytes = none('writeBytes');
export const writeAtomic: typeof Node.writeAtomic = none('writeAtomic');
export const exists: typeof Node.exists = none('exists');
export const kindOf: typeof Node.kindOf = none('kindOf');
export const fileSize: typeof Node.fileSize = none('fileSize');
export const removeFile: typeof Node.removeFile = none('removeFile');
export const makeDirs: typeof Node.makeDirs = none('makeDirs');
export const openRandomAccess: typeof Node.openRandomAccess = none('openRandomAccess');
export const packageFile: typeof Node.packageFile = none('packageFile');

// Paths are plain strings: joined POSIX-style, so messages can still name them.
export const joinPath: typeof Node.joinPath = (...parts) => parts.filter(Boolean).join('/').replace(/\/+/g, '/');
export const resolvePath: typeof Node.resolvePath = (...parts) => joinPath(...parts);
export const dirName: typeof Node.dirName = (p) => (p.includes('/') ? p.slice(0, p.lastIndexOf('/')) || '/' : '.');
export const isAbsolutePath: typeof Node.isAbsolutePath = (p) => p.startsWith('/');
export const PATH_SEP = '/';
