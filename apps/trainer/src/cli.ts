#!/usr/bin/env node
/**
 * The `fr` command line. `pnpm fr <command> --help` from the repository root.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { FrError } from '@fr/core';
import { selectBackend, type BackendChoice } from './backend.js';
import { compareCommand, conformanceCommand, evalCommand, loadRun, parseDataArgument } from './commands.js';
import { embedFolder } from './embed.js';
import { formatReport } from './evaluate.js';
import { exportOnnxCommand } from './export.js';
import { commandLinePlugins, loadConfigWithPlugins } from './plugin-config.js';
import { loadPlugins } from './plugin-loader.js';
import { defaultPlugins } from './plugins.js';
import { train } from './train.js';
import { demoConfigPath } from './demo.js';

const USAGE = `fr <command> [options] [--plugin <module>]...

  train --config <file> [--resume] [--backend auto|cpu|webgpu]
        train a backbone with a loss; writes log.jsonl, checkpoint.safetensors and report.html
  eval --checkpoint <dir> [--data synthetic|<file.bin>]
        verification accuracy (10 folds), AUC, EER and TAR@FAR of a checkpoint
  embed --checkpoint <dir> --images <folder> [--out embeddings.jsonl]
        embeddings of every image of a folder (JSON lines: file, embedding)
  compare --config <file> --losses arcface,cosface,...
        the same backbone, data and budget with each loss; a table and compare.html
  conformance <file-or-dir>... [--backend cpu|webgpu] [--json]
        runs loss reference cases and prints their errors; exit 1 if any fails
  export --checkpoint <dir> --onnx <file.onnx>
        writes the trained backbone as an ONNX model (dynamic batch)
  demo
        the main job: the small network with ArcFace on the embedded synthetic faces
  --version
        the version of fr

  --plugin <module> (repeatable, every command) loads the losses and backbones a module exports
  (a package name or a path, resolved from the working directory), beside a config's plugins: list
  and the plugins a checkpoint records.
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
      plugin: { type: 'string', multiple: true },
      version: { type: 'boolean', default: false },
    },
  });
  if (command === '--version' || command === '-v' || values.version) {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    process.stdout.write(`fr ${pkg.version}\n`);
    return 0;
  }
  if (!command || values.help || command === 'help') {
    process.stdout.write(USAGE);
    return command ? 0 : 1;
  }
  const backendChoice = (values.backend ?? undefined) as BackendChoice | undefined;
  if (backendChoice && !['auto', 'cpu', 'webgpu'].includes(backendChoice)) {
    throw new FrError(`--backend ${backendChoice}: allowed values are auto, cpu, webgpu`);
  }
  const extra = commandLinePlugins(values.plugin);
  // Commands without a config get the built-in plugins and those of --plugin; the others also
  // load the plugins of their config.
  const plugins = command === 'train' || command === 'demo' || command === 'compare' ? defaultPlugins : await loadPlugins(defaultPlugins, extra);
  const notes = (line: string) => console.error(line);
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
      const loaded = await loadConfigWithPlugins(path, plugins, { extra, overrides, resume: values.resume, notes });
      const config = loaded.config;
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const started = performance.now();
      const result = await train(config, { plugins: loaded.plugins, backend, backendReason: reason, openDevice, resume: values.resume, signal, baseline: command === 'demo' });
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
      const loaded = await loadConfigWithPlugins(required(values.config, '--config'), plugins, { extra, overrides: backendChoice ? { backend: backendChoice } : {} });
      const config = loaded.config;
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const names = required(values.losses, '--losses').split(',').map((s) => s.trim()).filter(Boolean);
      const { table, reportPath } = await compareCommand(config, names, { plugins: loaded.plugins, backend, backendReason: reason, openDevice, signal });
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
