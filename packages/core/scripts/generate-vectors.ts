/**
 * Writes the conformance vectors of docs/vectors/*.json (format: docs/vectors/README.md) from
 * this implementation: every byte string is what its encoders produce (or, for invalid inputs,
 * a hand-made variation of it), and every expected outcome is checked against what its decoders
 * do before anything is written, so a vector never states an outcome the implementation does not
 * meet. test/vectors.test.ts replays the files.
 *
 * Run after a build: `npm run vectors -w packages/core` (node dist/scripts/generate-vectors.js).
 */
import { writeFileSync } from 'node:fs';
import { checkOutboxVectors } from './outbox-vectors.js';
import { buildVectors } from './vectors.js';

const dir = new URL('../../../../docs/vectors/', import.meta.url);
const vectors = buildVectors();
// The outbox reader is asynchronous: its outcomes are checked here, before anything is written.
await checkOutboxVectors(vectors.outbox);
for (const [name, doc] of Object.entries(vectors))
  writeFileSync(new URL(`${name}.json`, dir), `${JSON.stringify(doc, null, 2)}\n`);
