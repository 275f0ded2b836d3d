#!/usr/bin/env node
/**
 * The `fr` command line. `pnpm fr <command> --help` from the repository root.
 */
import { resolve } from 'node:path';
import { FrError } from '@fr/core';
import { writeFileAtomic } from '@fr/core/node';
import { commandUsage, parseCommandLine, requiredOption, UsageError } from './cli-args.js';
import { InterruptedError, RunSignal } from './interrupt.js';
import { selectBackend, type BackendChoice } from './backend.js';
import { compareCommand, conformanceCommand, evalCommand, loadRun, parseDataArgument } from './commands.js';
import { embedFolder } from './embed.js';
import { formatReport } from './evaluate.js';
import { exportOnnxCommand, exportSafetensorsCommand } from './export.js';
import { importCommand } from './import.js';
import { commandLinePlugins, loadConfigWithPlugins } from './plugin-config.js';
import { loadPlugins } from './plugin-loader.js';
import { defaultPlugins } from './plugins.js';
import { train } from './train.js';
import { demoConfigPath } from './demo.js';

async function main(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(argv);
  if (parsed.kind === 'text') {
    process.stdout.write(parsed.text);
    return 0;
  }
  const { command, values, positionals } = parsed;
  const required = (name: string) => requiredOption(values, name, command);
  const backendChoice = values.backend as BackendChoice | undefined;
  const extra = commandLinePlugins(values.plugin as string[] | undefined);
  // Commands without a config get the built-in plugins and those of --plugin; the others also
  // load the plugins of their config.
  const plugins = command === 'train' || command === 'demo' || command === 'compare' ? defaultPlugins : await loadPlugins(defaultPlugins, extra);
  const notes = (line: string) => console.error(line);
  // Commands that train save a checkpoint on the first Ctrl-C; the others have nothing to keep and
  // keep the default disposition, which ends them at once even inside a long kernel.
  const signal = new RunSignal(() => process.exit(130), (line) => process.stderr.write(`${line}\n`));
  if (['train', 'demo', 'compare'].includes(command)) signal.install();

  switch (command) {
    case 'train':
    case 'demo': {
      const path = command === 'demo' ? demoConfigPath : required('config');
      const overrides: Record<string, unknown> = {};
      if (backendChoice) overrides.backend = backendChoice;
      if (values.output) overrides.output = values.output;
      const loaded = await loadConfigWithPlugins(path, plugins, { extra, overrides, resume: values.resume === true, notes });
      const config = loaded.config;
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const started = performance.now();
      const result = await train(config, { plugins: loaded.plugins, backend, backendReason: reason, openDevice, resume: values.resume === true, overwrite: values.overwrite === true, allowConfigChange: values['allow-config-change'] === true, signal, baseline: command === 'demo' });
      const seconds = ((performance.now() - started) / 1000).toFixed(0);
      const final = result.evaluations.at(-1)?.results ?? [];
      console.log(`\n${result.interrupted ? 'interrupted' : 'done'}: ${result.steps} steps in ${seconds} s, final loss ${result.finalLoss.toFixed(4)}`);
      for (const r of final) console.log(`held-out verification: ${formatReport(r)}`);
      for (const r of result.baseline) console.log(`baseline: ${formatReport(r)}`);
      console.log(`report: ${resolve(result.reportPath)}`);
      return result.interrupted ? 130 : 0;
    }
    case 'eval': {
      const dir = required('checkpoint');
      const { backend, reason } = await selectBackend(backendChoice ?? 'auto');
      console.error(`backend: ${reason}`);
      const data = values.data ? parseDataArgument(values.data as string, (await loadRun(dir, plugins, backend)).config) : null;
      const results = await evalCommand(dir, data, plugins, backend);
      for (const r of results) console.log(formatReport(r));
      return 0;
    }
    case 'embed': {
      const dir = required('checkpoint');
      const { backend } = await selectBackend(backendChoice ?? 'auto');
      const n = await embedFolder(dir, required('images'), (values.out as string | undefined) ?? 'embeddings.jsonl', plugins, backend);
      console.log(`wrote ${n} embeddings to ${(values.out as string | undefined) ?? 'embeddings.jsonl'}`);
      return 0;
    }
    case 'compare': {
      const loaded = await loadConfigWithPlugins(required('config'), plugins, { extra, overrides: backendChoice ? { backend: backendChoice } : {} });
      const config = loaded.config;
      const { backend, reason, openDevice } = await selectBackend(config.backend);
      const names = required('losses').split(',').map((s) => s.trim()).filter(Boolean);
      const { table, reportPath } = await compareCommand(config, names, { plugins: loaded.plugins, backend, backendReason: reason, openDevice, signal, overwrite: values.overwrite === true });
      console.log(table);
      console.log(`report: ${resolve(reportPath)}`);
      return 0;
    }
    case 'conformance': {
      if (positionals.length === 0) throw new UsageError('fr conformance: give reference case files or folders', commandUsage(command));
      const { backend, reason } = await selectBackend(backendChoice ?? 'cpu');
      if (!values.json) console.error(`backend: ${reason}`);
      const { results, text } = await conformanceCommand(positionals, plugins, backend);
      if (values.json) console.log(JSON.stringify(results, null, 2));
      else console.log(text);
      return results.every((r) => r.pass) ? 0 : 1;
    }
    case 'export': {
      const dir = required('checkpoint');
      if (!values.onnx === !values.safetensors) throw new UsageError('fr export: give one of --onnx <file> and --safetensors <file>', commandUsage(command));
      const file = (values.onnx ?? values.safetensors) as string;
      const { backend } = await selectBackend('cpu');
      const bytes = values.onnx ? await exportOnnxCommand(dir, plugins, backend) : await exportSafetensorsCommand(dir, plugins, backend);
      await writeFileAtomic(file, bytes);
      console.log(`wrote ${file} (${bytes.length} bytes)`);
      return 0;
    }
    case 'import': {
      if (positionals.length !== 1) throw new UsageError('fr import: give one model file (.pth, .pt or .onnx)', commandUsage(command));
      const { backend } = await selectBackend(backendChoice ?? 'cpu');
      const r = await importCommand({ file: positionals[0]!, configPath: values.config as string | undefined, out: required('out'), plugins, backend });
      console.log(`wrote ${r.checkpointPath}: backbone ${r.config.backbone.name} (${r.tensors} tensors) from ${positionals[0]}, step 0`);
      return 0;
    }
    default:
      throw new UsageError(`unknown command ${command}`, '');
  }
}

// A failure outside main's chain (a stray rejection, an error in a callback) is one line as well.
const fatal = (e: unknown) => {
  process.stderr.write(process.env.FR_DEBUG === '1' ? `${(e as Error)?.stack ?? String(e)}\n` : `error: ${(e as Error)?.message ?? String(e)} (FR_DEBUG=1 shows where)\n`);
  process.exit(1);
};
process.on('unhandledRejection', fatal);
process.on('uncaughtException', fatal);

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    const error = e as Error;
    // One line for the user; the stack only on request (FR_DEBUG=1), whatever was thrown.
    if (process.env.FR_DEBUG === '1') process.stderr.write(`${error?.stack ?? String(e)}\n`);
    else if (e instanceof UsageError) process.stderr.write(`error: ${error.message}\n\n${e.usage}`);
    else if (e instanceof FrError || typeof (e as NodeJS.ErrnoException)?.code === 'string') process.stderr.write(`error: ${error.message}\n`);
    else process.stderr.write(`error: ${error?.message ?? String(e)} (an internal error: FR_DEBUG=1 shows where)\n`);
    process.exit(e instanceof UsageError ? 2 : e instanceof InterruptedError ? 130 : 1);
  },
);
