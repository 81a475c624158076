// cllm train: fine-tunes a base GGUF into a CLLM on `cllm collect` trajectories. The trainer is PyTorch
// (train/train.py); this command checks that Python can run it, then hands over the terminal.
import { Command, Option } from 'commander';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CllmError } from '../engine/errors.js';
import { integer, nonNegativeNumber, positiveInteger, positiveNumber } from './options.js';

const trainDir = fileURLToPath(new URL('../../train/', import.meta.url));

interface TrainFlags {
  base: string;
  data: string;
  output: string;
  steps?: number;
  batch?: number;
  lr?: number;
  warmup?: number;
  arWeight?: number;
  arTarget?: string;
  labelSmoothing?: number;
  context?: number;
  states?: number;
  replay?: number;
  lateStates?: boolean;
  freezeEmbeddings?: boolean;
  saveEvery?: number;
  device?: string;
  threads?: number;
  seed?: number;
}

export function trainCommand(): Command {
  return new Command('train')
    .description('fine-tune a llama GGUF into a Consistency LLM on Jacobi trajectories (consistency + AR loss); writes a GGUF')
    .requiredOption('--base <file>', 'the base model (a llama GGUF), the one the trajectories were collected with')
    .requiredOption('--data <file>', 'trajectories from `cllm collect` (JSONL)')
    .requiredOption('-o, --output <file>', 'the fine-tuned GGUF to write')
    .option('--steps <n>', 'optimizer steps (default 300)', positiveInteger('--steps'))
    .option('--batch <n>', 'trajectory records per step (default 8)', positiveInteger('--batch'))
    .option('--lr <x>', 'peak learning rate of AdamW, cosine schedule (default 1e-4)', positiveNumber('--lr'))
    .option('--warmup <n>', 'warmup steps (default: 5% of --steps)', integer('--warmup'))
    .option('--ar-weight <x>', 'weight of the AR loss against the consistency loss (default 10)', nonNegativeNumber('--ar-weight'))
    .addOption(new Option('--ar-target <name>', "the AR loss: teacher (cross-entropy on the teacher output, the paper's) or base (KL from the frozen base model) (default base)").choices(['teacher', 'base']))
    .option('--label-smoothing <x>', 'label smoothing of the AR loss on the teacher output (default 0.1)', nonNegativeNumber('--label-smoothing'))
    .option('--context <n>', 'tokens of text before a block kept in a training example (default 128)', positiveInteger('--context'))
    .option('--states <n>', 'trajectory states trained per record and step (default 4)', positiveInteger('--states'))
    .option('--late-states', 'train on the second half of each trajectory only: states with fewer wrong tokens')
    .option('--replay <n>', "tokens of each record's original prompt (real text) trained on with plain cross-entropy (default 128; 0 for none)", integer('--replay'))
    .option('--freeze-embeddings', 'keep the token embeddings (and a tied output layer) as in the base')
    .option('--save-every <n>', 'also write a complete GGUF every n steps, as OUTPUT-stepN.gguf', positiveInteger('--save-every'))
    .addOption(new Option('--device <name>', 'where to train (default auto: CUDA when available)').choices(['auto', 'cpu', 'cuda']))
    .option('--threads <n>', 'CPU threads (default: torch\'s choice)', positiveInteger('--threads'))
    .option('--seed <n>', 'seed of the data order and state choice (default 0)', integer('--seed'))
    .action(async (flags: TrainFlags) => {
      for (const [what, file] of [['base model', flags.base], ['trajectory file', flags.data]]) {
        if (!existsSync(file)) throw new CllmError(`${what} not found: ${file}`);
      }
      const python = findPython();
      const args = [`${trainDir}train.py`, '--base', flags.base, '--data', flags.data, '--output', flags.output];
      const passed: [string, unknown][] = [
        ['--steps', flags.steps], ['--batch', flags.batch], ['--lr', flags.lr], ['--warmup', flags.warmup], ['--ar-weight', flags.arWeight], ['--ar-target', flags.arTarget], ['--label-smoothing', flags.labelSmoothing],
        ['--context', flags.context], ['--states', flags.states], ['--replay', flags.replay], ['--save-every', flags.saveEvery], ['--device', flags.device], ['--threads', flags.threads], ['--seed', flags.seed],
      ];
      for (const [name, value] of passed) if (value !== undefined) args.push(name, String(value));
      if (flags.lateStates) args.push('--late-states');
      if (flags.freezeEmbeddings) args.push('--freeze-embeddings');
      process.exitCode = await runTrainer(python, args);
    });
}

/** The Python that runs the trainer: $CLLM_PYTHON or python3, with torch, numpy and gguf importable. */
function findPython(): string {
  const python = process.env.CLLM_PYTHON || 'python3';
  const probe = spawnSync(python, ['-c', 'import torch, numpy, gguf'], { encoding: 'utf8' });
  if (probe.error) throw new CllmError(`cllm train needs Python 3, and ${python} was not found: install it, or set CLLM_PYTHON to its path`);
  if (probe.status !== 0) {
    const missing = /No module named '([^']+)'/.exec(probe.stderr)?.[1] ?? 'torch, numpy or gguf';
    throw new CllmError(`cllm train needs ${missing} for ${python}: pip install -r ${trainDir}requirements.txt`);
  }
  return python;
}

function runTrainer(python: string, args: string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(python, args, { stdio: 'inherit' });
    // Ctrl-C reaches the trainer from the terminal; it writes nothing half-made and exits 130. Meanwhile
    // this process waits for it instead of dying first.
    const ignore = () => {};
    const forward = () => child.kill('SIGTERM');
    process.on('SIGINT', ignore);
    process.on('SIGTERM', forward);
    child.on('exit', (code, signal) => {
      process.off('SIGINT', ignore);
      process.off('SIGTERM', forward);
      resolve(code ?? (signal === 'SIGINT' ? 130 : 1));
    });
  });
}
