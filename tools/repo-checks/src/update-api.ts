/**
 * `npm run api:update`: write the API snapshot of every public package (after `npm run build`).
 * Run it only for an intended API change, and add a changeset for it (`npm run changeset`).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  type ApiSnapshot,
  apiDifferences,
  apiSnapshot,
  publicPackages,
  snapshotPath,
} from './api-surface.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url)); // from tools/repo-checks/dist/src
for (const { dir, manifest } of publicPackages(root)) {
  const current = await apiSnapshot(dir, manifest);
  const path = snapshotPath(root, manifest.name);
  const before: ApiSnapshot = existsSync(path)
    ? (JSON.parse(readFileSync(path, 'utf8')) as ApiSnapshot)
    : { package: manifest.name, entries: {} };
  const changes = apiDifferences(before, current);
  writeFileSync(path, `${JSON.stringify(current, null, 2)}\n`);
  console.log(`${manifest.name}: ${changes.length === 0 ? 'unchanged' : `${changes.length} change(s)`}`);
  for (const line of changes) console.log(`  ${line}`);
}
