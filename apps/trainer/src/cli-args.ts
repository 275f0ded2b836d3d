/**
 * The command line's grammar: each command's options and usage, `--help` and `--version`, and
 * usage errors (an unknown option, a missing value) as one line naming the option, exit 2.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { FrError } from '@fr/core';
import { BACKEND_CHOICES, type BackendChoice } from './backend.js';

/** A mistake in the command line itself: printed with the command's usage, exit status 2. */
export class UsageError extends FrError {
  override name = 'UsageError';
  constructor(message: string, readonly usage: string) {
    super(message);
  }
}

type Options = NonNullable<ParseArgsConfig['options']>;

interface CommandSpec {
  usage: string;
  options: Options;
  positionals?: boolean;
}

const backend = { type: 'string' } as const;
const help = { type: 'boolean', short: 'h' } as const;
// Every command takes --plugin: the losses and backbones a module exports join the built-in ones.
const plugin = { type: 'string', multiple: true } as const;

export const COMMANDS: Record<string, CommandSpec> = {
  train: {
    usage: `train --config <file> [--resume | --overwrite] [--allow-config-change] [--output <dir>] [--backend auto|cpu|wasm|webgpu]
        train a backbone with a loss; writes log.jsonl, checkpoint.safetensors and report.html.
        A folder that holds a run is refused unless --resume (continue it) or --overwrite (replace it);
        --resume refuses a changed config unless --allow-config-change`,
    options: {
      config: { type: 'string' }, resume: { type: 'boolean' }, overwrite: { type: 'boolean' },
      'allow-config-change': { type: 'boolean' }, output: { type: 'string' }, backend, help, plugin,
    },
  },
  eval: {
    usage: `eval --checkpoint <dir|file.safetensors> [--data synthetic|<file.bin>] [--backend auto|cpu|wasm|webgpu]
        verification accuracy (10 folds), AUC, EER and TAR@FAR of a checkpoint`,
    options: { checkpoint: { type: 'string' }, data: { type: 'string' }, backend, help, plugin },
  },
  embed: {
    usage: `embed --checkpoint <dir> --images <folder> [--out embeddings.jsonl] [--backend auto|cpu|wasm|webgpu]
        embeddings of every image of a folder (JSON lines: file, embedding)`,
    options: { checkpoint: { type: 'string' }, images: { type: 'string' }, out: { type: 'string' }, backend, help, plugin },
  },
  compare: {
    usage: `compare --config <file> --losses arcface,cosface,... [--overwrite] [--backend auto|cpu|wasm|webgpu]
        the same backbone, data and budget with each loss; a table and compare.html`,
    options: { config: { type: 'string' }, losses: { type: 'string' }, overwrite: { type: 'boolean' }, backend, help, plugin },
  },
  conformance: {
    usage: `conformance <file-or-dir>... [--backend cpu|wasm|webgpu] [--json]
        runs loss reference cases and prints their errors; exit 1 if any fails or there is none`,
    options: { backend, json: { type: 'boolean' }, help, plugin },
    positionals: true,
  },
  export: {
    usage: `export --checkpoint <dir> (--onnx <file.onnx> | --safetensors <file>)
        writes the trained backbone as an ONNX model (dynamic batch), or as the state_dict
        PyTorch loads (insightface names, num_batches_tracked included)`,
    options: { checkpoint: { type: 'string' }, onnx: { type: 'string' }, safetensors: { type: 'string' }, help, plugin },
  },
  import: {
    usage: `import <model.pth|model.onnx> [--config <file>] --out <dir> [--backend auto|cpu|wasm|webgpu]
        a PyTorch state_dict (with a config naming its backbone) or an ONNX model as a run
        folder at step 0, for embed, eval, export and fine-tuning (train --resume)`,
    options: { config: { type: 'string' }, out: { type: 'string' }, backend, help, plugin },
    positionals: true,
  },
  demo: {
    usage: `demo [--resume | --overwrite] [--output <dir>] [--backend auto|cpu|wasm|webgpu]
        the main job: the small network with ArcFace on the embedded synthetic faces`,
    options: { resume: { type: 'boolean' }, overwrite: { type: 'boolean' }, output: { type: 'string' }, backend, help, plugin },
  },
};

export const USAGE = `fr <command> [options] [--plugin <module>]...     (fr <command> --help, fr --version)

${Object.values(COMMANDS).map((c) => `  ${c.usage}`).join('\n')}

  --plugin <module> (repeatable, every command) loads the losses and backbones a module exports
  (a package name or a path, resolved from the working directory), beside a config's plugins: list
  and the plugins a checkpoint records.
`;

export type ParsedCommandLine =
  | { kind: 'text'; text: string }
  | { kind: 'run'; command: string; values: Record<string, string | string[] | boolean | undefined>; positionals: string[] };

export function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return `fr ${pkg.version}`;
}

/** Reads `fr <command> [options]`; throws UsageError for anything it cannot take. */
export function parseCommandLine(argv: readonly string[]): ParsedCommandLine {
  // `pnpm fr -- train ...` and `pnpm demo -- --overwrite` hand on the `--` that npm needs.
  const [command, ...rest] = argv.filter((a, i) => !(a === '--' && (i === 0 || (i === 1 && argv[0] !== '--'))));
  if (command === undefined) throw new UsageError('give a command', USAGE);
  if (command === '--help' || command === '-h' || command === 'help') return { kind: 'text', text: USAGE };
  if (command === '--version' || command === '-v') return { kind: 'text', text: `${version()}\n` };
  const spec = COMMANDS[command];
  if (!spec) {
    const what = command.startsWith('-') ? `unknown option ${command} before the command` : `unknown command ${JSON.stringify(command)}`;
    throw new UsageError(`${what}; commands: ${Object.keys(COMMANDS).join(', ')}`, USAGE);
  }
  const usage = commandUsage(command);
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...rest], options: spec.options, allowPositionals: true, strict: true });
  } catch (e) {
    throw new UsageError(`fr ${command}: ${usageProblem(e as Error & { code?: string })}`, usage);
  }
  const { values, positionals } = parsed;
  if (values.help) return { kind: 'text', text: usage };
  if (positionals.length && !spec.positionals) {
    throw new UsageError(`fr ${command}: unexpected argument ${JSON.stringify(positionals[0])}`, usage);
  }
  if (values.resume && values.overwrite) throw new UsageError(`fr ${command}: give --resume or --overwrite, not both`, usage);
  if (values.backend !== undefined && !BACKEND_CHOICES.includes(values.backend as BackendChoice)) {
    throw new UsageError(`fr ${command}: --backend ${values.backend}: allowed values are ${BACKEND_CHOICES.join(', ')}`, usage);
  }
  return { kind: 'run', command, values: values as Record<string, string | string[] | boolean | undefined>, positionals };
}

/** Node's parseArgs messages, as one line naming the option. */
function usageProblem(e: Error & { code?: string }): string {
  const option = /'(-[^' ]+)/.exec(e.message)?.[1] ?? '';
  switch (e.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION':
      return `unknown option ${option}`;
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      return /argument missing/.test(e.message) ? `option ${option} needs a value` : `option ${option} takes no value`;
    default:
      return e.message;
  }
}

/** The usage text printed with a command's UsageError. */
export function commandUsage(command: string): string {
  return `fr ${COMMANDS[command]!.usage}\n`;
}

/** A required option's value; a UsageError names it when it is missing. */
export function requiredOption(values: Record<string, unknown>, name: string, command: string): string {
  const v = values[name];
  if (typeof v !== 'string' || v === '') throw new UsageError(`fr ${command}: missing --${name}`, commandUsage(command));
  return v;
}
