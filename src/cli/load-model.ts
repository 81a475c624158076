// What every command that decodes starts with: the model (pulled if remote, loaded with a progress bar), its
// context, the checks of the settings against them, and both disposed of at the end.
import { availableParallelism } from 'node:os';
import { basename } from 'node:path';
import { native } from '../engine/addon.js';
import type { Context } from '../engine/context.js';
import { CllmError } from '../engine/errors.js';
import { Model } from '../engine/model.js';
import { isRemoteSpec } from '../model-files/spec.js';
import { pullWithProgress } from './download-progress.js';
import type { ModelFlags } from './options.js';
import { interruptible, progressBar, warn } from './terminal.js';

export function modelPath(option: string | undefined): string {
  const path = option ?? process.env.CLLM_MODEL;
  if (!path) throw new CllmError('no model given: pass -m/--model FILE.gguf or set CLLM_MODEL', 2);
  return path;
}

/** Loads the model, with a progress bar on an interactive stderr. */
export async function loadModel(flags: ModelFlags): Promise<Model> {
  const spec = modelPath(flags.model);
  const path = isRemoteSpec(spec) ? (await pullWithProgress(spec)).path : spec;
  native().setVerbose(Boolean(flags.verbose));
  if (flags.gpuLayers !== undefined && flags.gpuLayers !== 0 && native().buildInfo().backend === 'cpu' && !flags.rpc) {
    warn('--gpu-layers has no effect: this cllm was built for the CPU (reinstall with CLLM_GPU=cuda, or add --rpc)');
  }
  // llama.cpp's own logs (--verbose) would tear the bar apart.
  const bar = flags.verbose ? undefined : progressBar(`loading ${basename(path)} {bar} {percentage}%`);
  const { release } = interruptible();
  bar?.start(100, 0);
  try {
    return await Model.load(path, { gpuLayers: flags.gpuLayers, rpc: flags.rpc, useMmap: flags.mmap === false ? false : undefined, onProgress: bar && ((f) => bar.update(Math.round(f * 100))) });
  } finally {
    bar?.stop();
    release();
  }
}

/**
 * Loads the model and creates its context, checks that a pass of `block` tokens fits, and that a model whose
 * state cannot be rolled back is not asked to (`rollsBack`, by default with blocks over 1: Jacobi, auto and
 * its calibration roll back), runs `use`, and disposes of the model whatever happens. `exact: false` takes
 * llama.cpp's own kernel choices.
 */
export async function withModel<T>(flags: ModelFlags, settings: { exact?: boolean; block?: number; rollsBack?: boolean }, use: (model: Model, context: Context) => Promise<T>): Promise<T> {
  const model = await loadModel(flags);
  try {
    warnAboutContext(model, flags);
    if (settings.rollsBack ?? (settings.block ?? 1) > 1) refuseRecurrent(model);
    const context = model.createContext({ contextSize: flags.ctx, batchSize: flags.batchSize, threads: flags.threads, exact: settings.exact });
    checkBlockFits(settings.block ?? 1, context.size);
    return await use(model, context);
  } finally {
    model.dispose();
  }
}

/** Settings that work, but badly: more threads than cores, or more context than the model was trained on. */
function warnAboutContext(model: Model, flags: { threads?: number; ctx?: number }): void {
  const cores = availableParallelism();
  if (flags.threads && flags.threads > cores) warn(`--threads ${flags.threads} is more than the ${cores} cores here, which slows decoding down`);
  const trained = model.info.trainedContextLength;
  if (flags.ctx && trained && flags.ctx > trained) warn(`--ctx ${flags.ctx} is more than the ${trained} tokens the model was trained on; text past that may degrade`);
}

function checkBlockFits(block: number, contextSize: number): void {
  if (block > contextSize) throw new CllmError(`a block of ${block} tokens does not fit in the context of ${contextSize}: lower --block or raise --ctx`, 2);
}

/** Jacobi and auto roll the KV cache back after every step, which recurrent state cannot do. */
function refuseRecurrent(model: Model): void {
  if (model.info.recurrent) {
    throw new CllmError(`${basename(model.info.path)} is a recurrent model (${model.info.architecture}), which cannot roll its state back: use --decoder ar`);
  }
}
