#!/usr/bin/env node
// The `secure-ipc` command. This file is committed, not built, so that npm links it into
// node_modules/.bin at install time, before `npm run build` has produced dist/ in a checkout; it
// only loads the built CLI (dist/src/main.js), and says what to do when that is missing.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/src/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write(
    `secure-ipc: the CLI is not built (${fileURLToPath(main)} is missing): run \`npm run build\` at the repository root first\n`,
  );
  process.exit(1);
}
await import(main.href);
