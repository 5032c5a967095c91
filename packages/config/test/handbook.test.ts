/**
 * docs/handbook.md: its settings tables are the schema's (regenerate with
 * `npm run handbook -w packages/config`), and its recipes validate once their placeholders are
 * real keys.
 */
import { readFileSync } from 'node:fs';
import { encodeKey, generateKeyPair } from '@secure-ipc/core';
import test from 'ava';
import { formatProblem, validateConfigText, withHandbookSettings } from '../src/index.js';

const handbook = readFileSync(new URL('../../../../docs/handbook.md', import.meta.url), 'utf8');

test('the handbook’s settings and profile rules are generated from the schema and up to date', (t) => {
  t.is(handbook, withHandbookSettings(handbook));
  t.regex(handbook, /\| `endpoints\[\]\.socketMode` \|/);
  t.regex(handbook, /\| `strict\.audit-required` \| strict \|/);
});

test('every recipe of the handbook validates (placeholders replaced by keys)', (t) => {
  const blocks = [...handbook.matchAll(/```(toml|jsonc)\n([\s\S]*?)```/g)];
  t.true(blocks.length >= 2);
  for (const [, lang, body] of blocks) {
    const text = body!.replace(/<[^>]*public key[^>]*>/g, () => encodeKey(generateKeyPair().publicKey));
    const v = validateConfigText(text, `recipe.${lang}`);
    t.deepEqual(v.problems.map(formatProblem), [], text);
  }
});
