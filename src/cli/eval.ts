// cllm eval: held-out loss (nats per token) and perplexity of a model on a text file.
import chalk from 'chalk';
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { CllmError } from '../engine/errors.js';
import { addBuckets, documentLoss, emptyBuckets, splitDocuments, type TextLoss } from '../tasks/perplexity.js';
import { withModel } from './load-model.js';
import { modelOptions, positiveInteger, type ModelFlags } from './options.js';
import { withProgress } from './terminal.js';

interface EvalFlags extends ModelFlags {
  text: string;
  limit?: number;
  json?: boolean;
}

export function evalCommand(): Command {
  return modelOptions(new Command('eval').description('held-out loss: mean negative log-likelihood (nats/token) and perplexity of a text'))
    .requiredOption('--text <file>', 'text to score: documents separated by the byte 0x1E, or one document')
    .option('--limit <n>', 'score only the first n documents', positiveInteger('--limit'))
    .option('--json', 'print one JSON object')
    .action(async (flags: EvalFlags) => {
      let text: string;
      try {
        text = readFileSync(flags.text, 'utf8');
      } catch {
        throw new CllmError(`cannot read the text file ${flags.text}`);
      }
      const documents = splitDocuments(text).slice(0, flags.limit);
      if (documents.length === 0) throw new CllmError(`${flags.text} has no text to score`);
      await withModel(flags, {}, async (model, context) => {
        const loss: TextLoss = { nats: 0, tokens: 0, documents: 0, buckets: emptyBuckets() };
        const t0 = performance.now();
        await withProgress('eval {bar} {value}/{total} documents | {eta_formatted} left', documents.length, async (signal, bar) => {
          for (const document of documents) {
            if (signal.aborted) break;
            const scored = await documentLoss(context, Array.from(model.tokenize(document)));
            loss.nats += scored.nats;
            loss.tokens += scored.tokens;
            addBuckets(loss.buckets, scored.buckets);
            loss.documents++;
            bar?.increment();
          }
        });
        const interrupted = loss.documents < documents.length;
        const natsPerToken = loss.tokens ? loss.nats / loss.tokens : NaN;
        const result = {
          model: model.info.path,
          text: flags.text,
          documents: loss.documents,
          tokens: loss.tokens,
          natsPerToken,
          perplexity: Math.exp(natsPerToken),
          buckets: loss.buckets.map((b) => ({ from: b.from, to: b.to, tokens: b.tokens, natsPerToken: b.tokens ? b.nats / b.tokens : null })),
          contextSize: context.size,
          seconds: (performance.now() - t0) / 1000,
          interrupted,
        };
        if (flags.json) {
          process.stdout.write(JSON.stringify(result, null, 2) + '\n');
        } else {
          if (interrupted) process.stdout.write(chalk.yellow(`interrupted: scored ${loss.documents} of ${documents.length} documents\n`));
          process.stdout.write(`${natsPerToken.toFixed(4)} nats/token, perplexity ${result.perplexity.toFixed(3)} over ${loss.tokens} tokens of ${loss.documents} documents (${result.seconds.toFixed(1)} s)\n`);
          const buckets = result.buckets.map((b) => `${b.to === null ? `${b.from}+` : `${b.from}-${b.to}`} ${b.natsPerToken === null ? '-' : b.natsPerToken.toFixed(4)}`);
          process.stdout.write(`by position: ${buckets.join(' | ')}\n`);
        }
        if (interrupted) process.exitCode = 130;
      });
    });
}
