// The keystore fails closed and typed when no Secret Service answers (its own process: the
// native binding keeps per-process D-Bus state, see identity-keystore.test.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { loadSecretKey, storeSecretKey } from '../src/index.js';
import { codeOf } from './identity-helpers.js';

test('no Secret Service on the bus: SIPC_ERR_KEYSTORE with the reason in cause, never "no key"', async (t) => {
  if (process.platform !== 'linux')
    return t.pass(
      `skipped: pointing the keystore at a dead D-Bus address only applies on Linux (${process.platform})`,
    );
  const dir = mkdtempSync(join(tmpdir(), 'sipc-nobus-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  process.env.DBUS_SESSION_BUS_ADDRESS = `unix:path=${join(dir, 'no-bus-here')}`;
  for (const op of [() => loadSecretKey('anything'), () => storeSecretKey('anything', new Uint8Array(32))]) {
    const err = await t.throwsAsync(op());
    t.is(codeOf(err), 'SIPC_ERR_KEYSTORE');
    t.truthy((err as Error).cause, 'the OS reason is kept in cause');
  }
});
