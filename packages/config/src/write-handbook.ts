/** Rewrites the generated settings of docs/handbook.md (`npm run handbook -w packages/config`). */
import { readFileSync, writeFileSync } from 'node:fs';
import { withHandbookSettings } from './handbook.js';

const file = process.argv[2];
if (file === undefined) throw new Error('usage: write-handbook DOCS/handbook.md');
writeFileSync(file, withHandbookSettings(readFileSync(file, 'utf8')));
