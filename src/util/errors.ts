// The error every reader of a user's file throws: its message starts with the
// file, then says what is wrong with it and what to do. Readers have their own
// subclasses (SafetensorsError, HfFolderError, TfjsWeightsError, JsonlError,
// AdapterLoadError...), so callers can tell them apart, and
// `instanceof FileFormatError` catches them all.

export class FileFormatError extends Error {
  /** The file (or folder) the problem is in; '' until a loader that knows it calls `inFile`. */
  file: string;
  constructor(file: string, problem: string, options?: { cause?: unknown }) {
    super(file ? `${file}: ${problem}` : problem, options);
    this.name = 'FileFormatError';
    this.file = file;
  }

  /** Names the file for a problem found before the file was known (a config checked in memory). */
  inFile(file: string): this {
    if (!this.file) {
      this.file = file;
      if (!this.message.includes(file)) this.message = `${file}: ${this.message}`;
    }
    return this;
  }
}

/** Errors that mean a bug in lorakit rather than a problem with the file (kept as the `cause` when wrapped). */
export function isInternalError(e: unknown): boolean {
  return e instanceof TypeError || e instanceof RangeError || e instanceof ReferenceError;
}
