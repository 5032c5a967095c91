/**
 * Writes the published JSON Schema (`npm run schema -w packages/config`): the schema of
 * ./schema.ts as JSON, with `$id` and `$schema`. A test checks the committed file is up to date.
 */
import { writeFileSync } from 'node:fs';
import { jsonSchemaText } from './json-schema.js';

const out = process.argv[2];
if (out === undefined) throw new Error('usage: write-schema OUT');
writeFileSync(out, jsonSchemaText());
