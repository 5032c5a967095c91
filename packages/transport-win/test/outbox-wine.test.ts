/**
 * The encrypted outbox end to end on Windows (under Wine here) with `windowsOwnerOnly`: open
 * (directory, lock and journal created and guarded), enqueue, reopen (the entries read back and
 * decrypted), compact (the rename over a closed journal), reopen again; and the
 * default on Windows: no guard means level 'insecure', refused below `minimumProtection`.
 * What Wine does not enforce about DACLs: see outbox-guard.test.ts and the README.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openOutbox } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import { windowsOwnerOnly } from '../src/index.js';

const winTest = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;
const limits = { opslimit: 2, memlimit: 64 * 1024 * 1024 };

winTest(
  'an outbox guarded by windowsOwnerOnly: enqueue, reopen, compact, reopen (Windows only)',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'sipc-obx-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const options = {
      dir: join(root, 'outbox'),
      key: { file: join(root, 'outbox.key'), passphrase: 'wine', limits },
      guard: windowsOwnerOnly,
    };
    const first = await openOutbox(options);
    t.like(first.protection(), { level: 'weak', files: 'windows-dacl', key: 'key-file' });
    const ids = [];
    for (let n = 1; n <= 3; n++) ids.push((await first.add('record', { n }, { lane: 'a' })).id);
    await first.close();
    const second = await openOutbox(options);
    t.deepEqual(
      second.entries().map((e) => e.id),
      ids,
    );
    await second.compact();
    await second.close();
    const third = await openOutbox(options);
    t.is(third.size, 3);
    t.deepEqual(third.quarantined, []);
    await third.close();
  },
);

winTest(
  'on Windows without a guard the outbox is insecure: refused by default, opens when asked for (Windows only)',
  async (t) => {
    const root = mkdtempSync(join(tmpdir(), 'sipc-obx-'));
    t.teardown(() => rmSync(root, { recursive: true, force: true }));
    const base = {
      dir: join(root, 'outbox'),
      key: { file: join(root, 'outbox.key'), passphrase: 'wine', limits },
    };
    await t.throwsAsync(openOutbox(base), { code: 'SIPC_ERR_INSUFFICIENT_PROTECTION' });
    const o = await openOutbox({ ...base, minimumProtection: 'insecure' });
    t.like(o.protection(), { level: 'insecure', files: 'unchecked' });
    await o.close();
  },
);
