// The cllm command: one file per subcommand, registered here. Every error a user can cause ends as one
// line on stderr: exit code 2 for a usage error, 1 for anything else.
import chalk from 'chalk';
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { CllmError } from '../engine/errors.js';
import { benchCommand } from './bench.js';
import { collectCommand } from './collect.js';
import { evalCommand } from './eval.js';
import { infoCommand } from './info.js';
import { pullCommand } from './pull.js';
import { runCommand } from './run.js';
import { serveCommand } from './serve.js';
import { trainCommand } from './train.js';
import { native } from '../engine/addon.js';
import { describeWriteError } from './files.js';
import { exitRestoringTerminal, fail, outputClosed, restoreTerminal } from './terminal.js';

/** Commander's "error: ..." becomes one line in cllm's own style. */
function usageError(text: string, write: (text: string) => void): void {
  write(`${chalk.red('cllm:')} ${text.trim().replace(/^error: /, '')} (see --help)\n`);
}

// https://no-color.org: any non-empty NO_COLOR turns colours off; chalk already drops them off a TTY.
if (process.env.NO_COLOR) chalk.level = 0;

// A reader that goes away (`cllm run ... | head`) is the end of the output, not an error. Decoding stops
// after its current step and the process ends normally: exiting at once, in the middle of a pass on the
// context's own thread, could tear llama.cpp down under it. Any other write error (a full disk) stops it
// the same way, with one line and exit code 1.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code !== 'EPIPE' && err.code !== 'ERR_STREAM_DESTROYED' && !outputClosed.signal.aborted) {
    fail(`cannot write the output to stdout: ${describeWriteError(err)}`);
    outputFailed = true;
  }
  outputClosed.abort();
});
// Nothing is left to tell a user whose stderr is gone.
process.stderr.on('error', () => {});
let outputFailed = false;

// A damaged model file ends in one line, not a crash or a backtrace.
native().installCrashGuard();

// Ctrl-C between the phases that handle it (loading, decoding; see interruptible()) ends the command at once.
process.on('SIGINT', () => {
  if (process.listenerCount('SIGINT') === 1) exitRestoringTerminal(130);
});

// Killed from outside (a closed terminal, kill): show the cursor that progress bars hide and leave raw mode,
// then die of the same signal, as a shell expects.
for (const signal of ['SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    // cllm serve shuts down gracefully on SIGTERM: its own listener then has the signal.
    if (process.listenerCount(signal) > 0) return;
    restoreTerminal();
    process.kill(process.pid, signal);
  });
}

const program = new Command('cllm')
  .description('Fast local LLM generation with Jacobi decoding of Consistency LLMs, on llama.cpp')
  .version(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version)
  .exitOverride()
  .configureOutput({ outputError: usageError });

for (const command of [runCommand(), serveCommand(), benchCommand(), infoCommand(), collectCommand(), trainCommand(), evalCommand(), pullCommand()]) {
  program.addCommand(command.exitOverride().configureOutput({ outputError: usageError }));
}

try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // Commander already printed the message; --help and --version end here with code 0.
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if (err instanceof CllmError) {
    fail(err.message, err.exitCode);
  } else {
    fail((err as Error)?.message?.split('\n')[0] ?? String(err));
    if (process.env.CLLM_DEBUG) console.error(err);
  }
}
// Stopped because the reader went away, not by Ctrl-C: the output ended as asked.
if (outputClosed.signal.aborted && process.exitCode === 130) process.exitCode = 0;
if (outputFailed) process.exitCode = 1;
