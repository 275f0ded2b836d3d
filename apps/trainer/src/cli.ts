#!/usr/bin/env node
/**
 * The `fr` command line. `pnpm fr <command> --help` from the repository root.
 */
import { parseArgs } from 'node:util';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FrError } from '@fr/core';
import { BACKEND_CHOICES, selectBackend, type BackendChoice } from './backend.js';
import { compareCommand, conformanceCommand, evalCommand, loadRun, parseDataArgument } from './commands.js';
import { loadConfig } from './config.js';
import { embedFolder } from './embed.js';
import { formatReport } from './evaluate.js';
import { exportOnnxCommand } from './export.js';
import { defaultPlugins } from './plugins.js';
import { train } from './train.js';
import { demoConfigPath } from './demo.js';

const USAGE = `fr <command> [options]

  train --config <file> [--resume] [--backend auto|cpu|wasm|webgpu]
        train a backbone with a loss; writes log.jsonl, checkpoint.safetensors and report.html
  eval --checkpoint <dir> [--data synthetic|<file.bin>]
        verification accuracy (10 folds), AUC, EER and TAR@FAR of a checkpoint
  embed --checkpoint <dir> --images <folder> [--out embeddings.jsonl]
        embeddings of every image of a folder (JSON lines: file, embedding)
  compare --config <file> --losses arcface,cosface,...
        the same backbone, data and budget with each loss; a table and compare.html
  conformance <file-or-dir>... [--backend cpu|wasm|webgpu] [--json]
        runs loss reference cases and prints their errors; exit 1 if any fails
  export --checkpoint <dir> --onnx <file.onnx>
        writes the trained backbone as an ONNX model (dynamic batch)
  demo
        the main job: the small network with ArcFace on the embedded synthetic faces
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const { values, positionals } = parseArgs({
    args: rest,
    allowPositionals: true,
    options: {
      config: { type: 'string' },
      resume: { type: 'boolean', default: false },
      backend: { type: 'string' },
      checkpoint: { type: 'string' },
      data: { type: 'string' },
      images: { type: 'string' },
      out: { type: 'string' },
      losses: { type: 'string' },
      json: { type: 'boolean', default: false },
      onnx: { type: 'string' },
      output: { type: 'string' },
      help: { type: 'boolean', default: false },
    },
  });
  if (!command || values.help || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 1;
  }
  const backendChoice = (values.backend ?? undefined) as BackendChoice | undefined;
  if (backendChoice && !BACKEND_CHOICES.includes(backendChoice)) {
    throw new FrError(`--backend ${backendChoice}: allowed values are ${BACKEND_CHOICES.join(', ')}`);
  }
  const plugins = defaultPlugins;
  const signal = { interrupted: false };
  process.on('SIGINT', () => {
    if (signal.interrupted) process.exit(130);
    signal.interrupted = true;
    process.stderr.write('\ninterrupt: saving a checkpoint after this step (Ctrl-C again to quit at once)\n');
  });

  switch (command) {
    case 'train':
    case 'demo': {
      const path = command === 'demo' ? demoConfigPath : required(values.config, '--config');
      const overrides: Record<string, unknown> = {};
      if (backendChoice) overrides.backend = backendChoice;
      if (values.output) overrides.output = values.output;
      const config = await loadConfig(path, plugins, overrides);
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const started = performance.now();
      const result = await train(config, { plugins, backend, backendReason: reason, openDevice, resume: values.resume, signal, baseline: command === 'demo' });
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      const final = result.evaluations.at(-1)?.results ?? [];
      console.log(`\n${result.interrupted ? 'interrupted' : 'done'}: ${result.steps} steps in ${seconds} s, final loss ${result.finalLoss.toFixed(4)}`);
      for (const r of final) console.log(`held-out verification: ${formatReport(r)}`);
      for (const r of result.baseline) console.log(`baseline: ${formatReport(r)}`);
      console.log(`report: ${resolve(result.reportPath)}`);
      return result.interrupted ? 130 : 0;
    }
    case 'eval': {
      const dir = required(values.checkpoint, '--checkpoint');
      const { backend, reason } = await selectBackend(backendChoice ?? 'auto');
      console.error(`backend: ${reason}`);
      const data = values.data ? parseDataArgument(values.data, (await loadRun(dir, plugins, backend)).config) : null;
      const results = await evalCommand(dir, data, plugins, backend);
      for (const r of results) console.log(formatReport(r));
      return 0;
    }
    case 'embed': {
      const dir = required(values.checkpoint, '--checkpoint');
      const { backend } = await selectBackend(backendChoice ?? 'auto');
      const n = await embedFolder(dir, required(values.images, '--images'), values.out ?? 'embeddings.jsonl', plugins, backend);
      console.log(`wrote ${n} embeddings to ${values.out ?? 'embeddings.jsonl'}`);
      return 0;
    }
    case 'compare': {
      const config = await loadConfig(required(values.config, '--config'), plugins, backendChoice ? { backend: backendChoice } : {});
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const names = required(values.losses, '--losses').split(',').map((s) => s.trim()).filter(Boolean);
      const { table, reportPath } = await compareCommand(config, names, { plugins, backend, backendReason: reason, openDevice, signal });
      console.log(table);
      console.log(`report: ${resolve(reportPath)}`);
      return 0;
    }
    case 'conformance': {
      if (positionals.length === 0) throw new FrError('fr conformance: give reference case files or folders');
      const { backend, reason } = await selectBackend(backendChoice ?? 'cpu');
      if (!values.json) console.error(`backend: ${reason}`);
      const { results, text } = await conformanceCommand(positionals, plugins, backend);
      if (values.json) console.log(JSON.stringify(results, null, 2));
      else console.log(text);
      return results.every((r) => r.pass) ? 0 : 1;
    }
    case 'export': {
      const dir = required(values.checkpoint, '--checkpoint');
      const file = required(values.onnx, '--onnx');
      const { backend } = await selectBackend('cpu');
      const bytes = await exportOnnxCommand(dir, plugins, backend);
      await writeFile(file, bytes);
      console.log(`wrote ${file} (${bytes.length} bytes)`);
      return 0;
    }
    default:
      process.stderr.write(`unknown command ${command}\n\n${USAGE}`);
      return 1;
  }
}

function required(v: string | undefined, flag: string): string {
  if (!v) throw new FrError(`missing ${flag}`);
  return v;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    // Errors the toolkit raises on purpose are messages for the user, not stack traces.
    if (e instanceof FrError || (e as Error)?.name?.endsWith('Error') && (e as Error).message && !(e instanceof TypeError)) {
      process.stderr.write(`error: ${(e as Error).message}\n`);
    } else {
      process.stderr.write(`${(e as Error)?.stack ?? String(e)}\n`);
    }
    process.exit(1);
  },
);
