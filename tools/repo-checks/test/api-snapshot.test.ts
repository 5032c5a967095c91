import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  type ApiSnapshot,
  apiDifferences,
  apiSnapshot,
  publicPackages,
  snapshotPath,
} from '../src/api-surface.js';

const root = fileURLToPath(new URL('../../../../', import.meta.url));
const packages = publicPackages(root);

test('every public package has a committed API snapshot', (t) => {
  t.true(packages.length >= 6, packages.map((p) => p.manifest.name).join(', '));
  for (const { manifest } of packages) t.true(existsSync(snapshotPath(root, manifest.name)), manifest.name);
});

for (const { dir, manifest } of packages) {
  test(`${manifest.name}: the exported API is the committed one (an intended change: npm run api:update + a changeset)`, async (t) => {
    const path = snapshotPath(root, manifest.name);
    if (!existsSync(path)) return t.fail(`no snapshot at ${path}: run npm run api:update`);
    const committed = JSON.parse(readFileSync(path, 'utf8')) as ApiSnapshot;
    const current = await apiSnapshot(dir, manifest);
    t.deepEqual(apiDifferences(committed, current), []);
  });
}

test('core exports no wire codec or engine internals from its root', async (t) => {
  const core = packages.find((p) => p.manifest.name === '@secure-ipc/core')!;
  const api = await apiSnapshot(core.dir, core.manifest);
  const root = Object.keys(api.entries['.'] ?? {});
  t.true(root.includes('serve') && root.includes('connect'));
  for (const internal of [
    'FrameDecoder',
    'FrameReader',
    'encodeFrame',
    'RpcPeerOptions',
    'CreditGate',
    'EventRouter',
    'IdempotencyCache',
    'encodeEnvelope',
    'decodeEnvelope',
    'validateEnvelope',
    'toWireError',
    'compilePatterns',
    'ERROR_TABLE',
    'MAX_FRAME_SIZE',
    'FLAG_LAST',
  ])
    t.false(root.includes(internal), internal);
  const transport = Object.keys(api.entries['./transport'] ?? {});
  for (const name of [
    'Transport',
    'Connection',
    'TRANSPORT_BRAND',
    'isTransport',
    'socketConnection',
    'memoryTransport',
  ])
    t.true(transport.includes(name), name);
});

test('the snapshot diff names what changed', (t) => {
  const a: ApiSnapshot = {
    package: 'p',
    entries: { '.': { x: { kind: 'value', digest: '1' }, y: { kind: 'type', digest: '2' } } },
  };
  const b: ApiSnapshot = {
    package: 'p',
    entries: { '.': { x: { kind: 'value', digest: '9' }, z: { kind: 'type', digest: '3' } }, './sub': {} },
  };
  t.deepEqual(apiDifferences(a, b), [
    'p: x changed its declaration',
    'p: y removed',
    'p: z added (type)',
    'p/sub: new entry point',
  ]);
});
