// cllm train: fine-tunes a base GGUF into a CLLM on `cllm collect` trajectories. The trainer is PyTorch
// (train/train.py); this command checks that Python can run it, then hands it the options and the terminal.
import { Command } from 'commander';
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { CllmError } from '../engine/errors.js';

const trainDir = fileURLToPath(new URL('../../train/', import.meta.url));

export function trainCommand(): Command {
  // The trainer's options live in train/train.py alone, defaults and help included: they pass through as typed.
  return new Command('train')
    .description('fine-tune a llama GGUF into a Consistency LLM on Jacobi trajectories (consistency + AR loss); writes a GGUF (cllm train --help lists the options)')
    .argument('[options...]', "the trainer's options: --base BASE.gguf --data TRAJECTORIES.jsonl -o OUT.gguf [...]")
    .helpOption(false)
    .allowUnknownOption()
    .action(async (options: string[]) => {
      process.exitCode = await runTrainer(findPython(), [`${trainDir}train.py`, ...options]);
    });
}

/** The Python that runs the trainer: $CLLM_PYTHON or python3, with torch, numpy, gguf and tokenizers importable. */
function findPython(): string {
  const python = process.env.CLLM_PYTHON || 'python3';
  const probe = spawnSync(python, ['-c', 'import torch, numpy, gguf, tokenizers'], { encoding: 'utf8' });
  if (probe.error) throw new CllmError(`cllm train needs Python 3, and ${python} was not found: install it, or set CLLM_PYTHON to its path`);
  if (probe.status !== 0) {
    const missing = /No module named '([^']+)'/.exec(probe.stderr)?.[1] ?? 'torch, numpy, gguf or tokenizers';
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
