/** The command line: help, version, usage errors (exit 2), and no stack trace for any input. */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { COMMANDS, parseCommandLine, requiredOption, UsageError } from '../src/cli-args.js';
import { runCli, tmp } from './helpers.js';

const usageError = (argv: string[]) => {
  try {
    parseCommandLine(argv);
  } catch (e) {
    expect(e).toBeInstanceOf(UsageError);
    return (e as UsageError).message;
  }
  throw new Error(`${argv.join(' ')} parsed without an error`);
};

/** A stack trace's frames ("    at f (file:1:2)"). */
const STACK = /^\s+at .+[:(]/m;

describe('parsing', () => {
  test('--help, <command> --help and --version are text, for every command', () => {
    expect(usageError([])).toBe('give a command');
    // The `--` that `pnpm fr -- ...` and `pnpm demo -- ...` pass on.
    expect(parseCommandLine(['--', '--version'])).toEqual(parseCommandLine(['--version']));
    expect(parseCommandLine(['demo', '--', '--overwrite'])).toMatchObject({ kind: 'run', command: 'demo', values: { overwrite: true } });
    expect(parseCommandLine(['--help'])).toMatchObject({ kind: 'text', text: expect.stringContaining('fr <command> [options]') });
    expect(parseCommandLine(['--version'])).toEqual({ kind: 'text', text: expect.stringMatching(/^fr \d+\.\d+\.\d+\n$/) });
    for (const command of Object.keys(COMMANDS)) {
      expect(parseCommandLine([command, '--help'])).toEqual({ kind: 'text', text: `fr ${COMMANDS[command].usage}\n` });
    }
  });
  test('unknown options, missing values, stray arguments and unknown commands name what is wrong', () => {
    expect(usageError(['train', '--resumee'])).toBe('fr train: unknown option --resumee');
    expect(usageError(['train', '--config'])).toBe('fr train: option --config needs a value');
    expect(usageError(['train', '--resume=yes'])).toBe('fr train: option --resume takes no value');
    expect(usageError(['eval', 'runs/x'])).toBe('fr eval: unexpected argument "runs/x"');
    expect(usageError(['train', '--config', 'a.yaml', '--resume', '--overwrite'])).toBe('fr train: give --resume or --overwrite, not both');
    expect(usageError(['eval', '--checkpoint', 'x', '--backend', 'tpu'])).toBe('fr eval: --backend tpu: allowed values are auto, cpu, wasm, webgpu');
    expect(() => requiredOption({}, 'checkpoint', 'eval')).toThrow(/^fr eval: missing --checkpoint$/);
    expect(usageError(['trian'])).toMatch(/^unknown command "trian"; commands: train, eval, embed, compare, conformance, export, import, demo$/);
  });
});

describe('fr as a user runs it', () => {
  test.concurrent('fr --help and fr --version exit 0', async () => {
    const [help, version] = await Promise.all([runCli(['--help']), runCli(['--version'])]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('fr <command> [options]');
    expect(version.code).toBe(0);
    expect(version.stdout).toMatch(/^fr \d+\.\d+\.\d+$/m);
  });

  test.concurrent('an unknown option is one line naming it, with the usage, exit 2', async () => {
    const r = await runCli(['train', '--resumee']);
    expect(r.code).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe('error: fr train: unknown option --resumee');
    expect(r.stderr).toContain('fr train --config <file>');
    expect(r.stderr).not.toMatch(STACK);
    expect(r.stderr).not.toContain('ERR_PARSE_ARGS');
  });

  test.concurrent('bad files give one error line, no stack trace; FR_DEBUG=1 shows it', async () => {
    const dir = await tmp();
    await writeFile(join(dir, 'bad.yaml'), 'data: [unclosed\n');
    await writeFile(join(dir, 'checkpoint.safetensors'), 'not a checkpoint at all');
    await mkdir(join(dir, 'cases'));
    const [config, checkpoint, conformance, debug] = await Promise.all([
      runCli(['train', '--config', join(dir, 'bad.yaml')]),
      runCli(['export', '--checkpoint', dir, '--onnx', join(dir, 'm.onnx')]),
      runCli(['conformance', join(dir, 'cases')]),
      runCli(['export', '--checkpoint', dir, '--onnx', join(dir, 'm.onnx')], { env: { FR_DEBUG: '1' } }),
    ]);
    expect(config.code).toBe(1);
    expect(config.stderr).toMatch(/^error: config .*bad\.yaml is not valid YAML/m);
    expect(checkpoint.code).toBe(1);
    expect(checkpoint.stderr).toMatch(/^error: .*checkpoint\.safetensors: header length \d+ runs past the end of the file/m);
    // fr conformance on a folder without cases fails instead of reporting "0 passed".
    expect(conformance.code).toBe(1);
    expect(conformance.stderr).toMatch(/^error: fr conformance: no reference cases \(\.json files\) in .*cases/m);
    for (const r of [config, checkpoint, conformance]) expect(r.stderr).not.toMatch(STACK);
    expect(debug.stderr).toMatch(STACK);
  });
});
