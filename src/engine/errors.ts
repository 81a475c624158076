/** An error the user can cause and fix (a bad path, a bad flag, a full context): shown as one line, no stack. */
export class CllmError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CllmError';
  }
}

/** Runs a native call, turning its errors into CllmErrors so that the CLI shows them as one line. */
export function fromNative<T>(call: () => T): T {
  try {
    return call();
  } catch (err) {
    throw err instanceof CllmError ? err : new CllmError((err as Error).message);
  }
}
