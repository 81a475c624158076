// cllm serve: the model behind an OpenAI-compatible HTTP API (src/server/), for editors, agents and scripts.
// Ctrl-C or SIGTERM stops accepting requests, turns the waiting ones away, lets the running one finish, and
// exits 0; a second Ctrl-C exits at once.
import chalk from 'chalk';
import { Command, Option } from 'commander';
import { basename } from 'node:path';
import type { DecoderName } from '../engine/generate.js';
import { createCllmServer } from '../server/server.js';
import { blockSize } from './generation.js';
import { withModel } from './load-model.js';
import { FAST_KERNELS_HELP, integerIn, modelOptions, positiveInteger, type ModelFlags } from './options.js';
import { exitRestoringTerminal } from './terminal.js';

interface ServeFlags extends ModelFlags {
  host: string;
  port: number;
  apiKey?: string;
  decoder: DecoderName;
  block: number;
  queue: number;
  alias?: string;
  fastKernels?: boolean;
}

export function serveCommand(): Command {
  return modelOptions(new Command('serve').description('serve the model over an OpenAI-compatible HTTP API (chat/completions, completions, models)'))
    .option('--host <address>', 'address to listen on (0.0.0.0: every interface)', '127.0.0.1')
    .option('--port <n>', 'port to listen on (0: any free one)', integerIn('--port', 0, 65535), 8080)
    .option('--api-key <key>', 'require Authorization: Bearer KEY (default: $CLLM_API_KEY; none: open)')
    .addOption(new Option('--decoder <name>', 'auto, jacobi or ar, as in cllm run').choices(['auto', 'jacobi', 'ar']).default('auto'))
    .option('-B, --block <n>', 'Jacobi block size (with --decoder jacobi)', positiveInteger('--block'), 16)
    .option('--queue <n>', 'requests that may wait for their turn; more get 503', positiveInteger('--queue'), 32)
    .option('--alias <name>', "the model's id in the API (default: the file's name)")
    .option('--fast-kernels', FAST_KERNELS_HELP)
    .action(async (flags: ServeFlags) => {
      const apiKey = flags.apiKey ?? (process.env.CLLM_API_KEY || undefined);
      const block = blockSize(flags);
      await withModel(flags, { exact: !flags.fastKernels, block, rollsBack: flags.decoder !== 'ar' }, async (model, context) => {
        const log = (line: string) => process.stderr.write(`${chalk.dim(new Date().toISOString())} ${line}\n`);
        const { server, shutdown } = createCllmServer({
          model,
          context,
          modelId: flags.alias ?? basename(model.info.path),
          decoding: { decoder: flags.decoder, block },
          apiKey,
          queueLimit: flags.queue,
          log,
        });
        await new Promise<void>((resolve, reject) => {
          const refused = (err: NodeJS.ErrnoException) => reject(new Error(err.code === 'EADDRINUSE' ? `port ${flags.port} on ${flags.host} is in use: pick another with --port` : `cannot listen on ${flags.host}:${flags.port}: ${err.message}`));
          server.once('error', refused);
          server.listen(flags.port, flags.host, () => {
            server.off('error', refused);
            resolve();
          });
        });
        // Once listening, an error (out of file descriptors) is logged, and the server goes on.
        server.on('error', (err) => log(`server error: ${err.message.split('\n')[0]}`));
        const address = server.address();
        const where = typeof address === 'object' && address ? `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}` : String(address);
        log(`serving ${basename(model.info.path)} on ${where}/v1 (${flags.decoder}${apiKey ? ', API key required' : ''}); Ctrl-C stops`);
        await new Promise<void>((resolve) => {
          const stop = (signal: string) => {
            process.off('SIGINT', onSigint);
            process.off('SIGTERM', onSigterm);
            process.once('SIGINT', () => exitRestoringTerminal(130));
            log(`${signal}: finishing the running request, then exiting`);
            shutdown().then(resolve);
          };
          const onSigint = () => stop('SIGINT');
          const onSigterm = () => stop('SIGTERM');
          process.on('SIGINT', onSigint);
          process.on('SIGTERM', onSigterm);
        });
      });
    });
}
