// cllm pull: downloads a GGUF model into the cache and prints its path, the only thing on stdout, so that
// `cllm run -m "$(cllm pull hf:ORG/REPO/FILE.gguf)"` works.
import chalk from 'chalk';
import { Command } from 'commander';
import { basename } from 'node:path';
import { pullWithProgress } from './download-progress.js';
import { humanBytes } from './format.js';

interface PullFlags {
  cacheDir?: string;
}

const ENVIRONMENT_HELP = `
Environment:
  HF_TOKEN       token for private and gated repositories (also HUGGING_FACE_HUB_TOKEN); sent to the hub only
  HF_ENDPOINT    the hub to pull hf: models from (default https://huggingface.co)
  CLLM_CACHE     the cache folder (default $XDG_CACHE_HOME/cllm or ~/.cache/cllm)

An interrupted download is kept as FILE.part in the cache; pulling again resumes it.`;

export function pullCommand(): Command {
  return new Command('pull')
    .description('download a GGUF model into the cache (once) and print its path')
    .argument('<model>', 'hf:ORG/REPO[@REVISION]/FILE.gguf or an http(s):// URL')
    .option('--cache-dir <dir>', 'the cache folder (default: $CLLM_CACHE or ~/.cache/cllm)')
    .addHelpText('after', ENVIRONMENT_HELP)
    .action(async (spec: string, flags: PullFlags) => {
      const started = Date.now();
      const result = await pullWithProgress(spec, flags.cacheDir);
      if (!result.cached) {
        const seconds = ((Date.now() - started) / 1000).toFixed(1);
        process.stderr.write(chalk.dim(`pulled ${basename(result.path)}: ${humanBytes(result.size)} in ${seconds} s${result.verified ? ', sha256 checked' : ''}`) + '\n');
      }
      process.stdout.write(result.path + '\n');
    });
}
