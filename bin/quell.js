#!/usr/bin/env node
// The `quell` CLI: runs the compiled build when present, else the TypeScript sources (Node >= 22.18
// strips types natively).
import { existsSync } from 'node:fs';

const built = new URL('../dist/cli/run-cli.js', import.meta.url);
const { runCli } = await import(
  existsSync(built) ? built.href : new URL('../src/cli/run-cli.ts', import.meta.url).href
);
const code = await runCli(process.argv.slice(2));
if (process.argv[2] !== 'start') process.exit(code);
