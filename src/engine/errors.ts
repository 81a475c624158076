/** An error the user can cause and fix (a bad path, a bad flag, a full context): shown as one line, no stack. */
export class CllmError extends Error {
  constructor(message: string, readonly exitCode = 1) {
    super(message);
    this.name = 'CllmError';
  }
}
