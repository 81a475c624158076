// cllm info: a model's metadata, as a table or as JSON.
import chalk from 'chalk';
import { Command } from 'commander';
import { native, type BuildInfo } from '../engine/addon.js';
import { CllmError } from '../engine/errors.js';
import { humanBytes, humanCount } from './format.js';
import { loadModel } from './load-model.js';
import { modelOptions, type ModelFlags } from './options.js';

interface InfoFlags extends ModelFlags {
  json?: boolean;
}

/** Layers llama.cpp puts on the GPUs (and RPC servers): it counts the output layer as one more. */
function offloadedLayers(layers: number, gpuLayers: number, devices: BuildInfo['devices']): number {
  if (!devices.some((d) => d.gpu)) return 0;
  return gpuLayers < 0 ? layers + 1 : Math.min(gpuLayers, layers + 1);
}

export function infoCommand(): Command {
  return modelOptions(new Command('info').description("print a GGUF model's metadata").argument('[model]', 'the model (as -m)'), { context: false })
    .option('--json', 'print JSON')
    .action(async (positional: string | undefined, flags: InfoFlags) => {
      if (positional !== undefined && flags.model !== undefined && positional !== flags.model) throw new CllmError('give the model once: as -m or as an argument', 2);
      flags.model ??= positional;
      // Loaded as run loads it, so that the devices' memory and the offloaded layers are run's.
      const model = await loadModel(flags);
      const info = model.info;
      const build = native().buildInfo();
      const offloaded = offloadedLayers(info.layers, flags.gpuLayers ?? -1, build.devices);
      const tokenText = (id: number) => (id < 0 ? 'none' : JSON.stringify(model.detokenize([id], { renderSpecial: true })));
      const special = { bos: tokenText(info.bos), eos: tokenText(info.eos) };
      model.dispose();
      if (flags.json) {
        const { backend, llamaCppCommit, devices, exactKernels } = build;
        process.stdout.write(JSON.stringify({ ...info, backend, llamaCppCommit, exactKernels, devices, offloadedLayers: offloaded }, null, 2) + '\n');
        return;
      }
      const rows: [string, string][] = [
        ['file', info.path],
        ['name', info.name],
        ['architecture', info.architecture],
        ['parameters', `${humanCount(info.parameterCount)} (${info.parameterCount.toLocaleString('en-US')})`],
        ['file size', humanBytes(info.fileBytes)],
        ['quantization', info.quantization],
        ['layers', String(info.layers)],
        ['embedding length', String(info.embeddingLength)],
        ['vocabulary', info.vocabularySize.toLocaleString('en-US')],
        ['trained context', info.trainedContextLength.toLocaleString('en-US')],
        ['BOS', `${info.bos} ${special.bos}${info.addBos ? '' : ' (not added)'}`],
        ['EOS', `${info.eos} ${special.eos}`],
        ['chat template', info.chatTemplate ? `yes (${info.chatTemplate.length} characters)` : 'none (plain completion)'],
        ['backend', `${build.backend}, llama.cpp ${build.llamaCppCommit.slice(0, 10)}${build.exactKernels ? '' : ' (fast kernels: Jacobi may differ from plain decoding at near-ties)'}`],
        ...build.devices.map((d, i): [string, string] => [`device ${i}`, `${d.name}: ${d.description}, ${humanBytes(d.memoryFree)} free of ${humanBytes(d.memoryTotal)}`]),
        ['offloaded', `${offloaded} of ${info.layers + 1} layers (the output layer counts as one)`],
      ];
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [key, value] of rows) process.stdout.write(`${chalk.bold(key.padEnd(width))}  ${value}\n`);
    });
}
