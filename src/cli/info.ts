// cllm info: a model's metadata, as a table or as JSON.
import chalk from 'chalk';
import { Command } from 'commander';
import { native } from '../engine/addon.js';
import { humanBytes, humanCount, loadModel, modelOptions } from './shared.js';

interface InfoFlags {
  model?: string;
  json?: boolean;
  gpuLayers?: number;
  verbose?: boolean;
}

export function infoCommand(): Command {
  return modelOptions(new Command('info').description("print a GGUF model's metadata"), { context: false })
    .option('--json', 'print JSON')
    .action(async (flags: InfoFlags) => {
      const model = await loadModel({ ...flags, gpuLayers: flags.gpuLayers ?? 0 });
      const info = model.info;
      const build = native().buildInfo();
      const tokenText = (id: number) => (id < 0 ? 'none' : JSON.stringify(model.detokenize([id], { renderSpecial: true })));
      const special = { bos: tokenText(info.bos), eos: tokenText(info.eos) };
      model.dispose();
      if (flags.json) {
        process.stdout.write(JSON.stringify({ ...info, backend: build.backend, llamaCppCommit: build.llamaCppCommit }, null, 2) + '\n');
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
        ['backend', `${build.backend}, llama.cpp ${build.llamaCppCommit.slice(0, 10)}`],
      ];
      const width = Math.max(...rows.map(([k]) => k.length));
      for (const [key, value] of rows) process.stdout.write(`${chalk.bold(key.padEnd(width))}  ${value}\n`);
    });
}
