/**
 * An outbox whose master key is in the OS keystore (docs/outbox.md, "Keys", "Rollback: the
 * anchor", "Protection per OS"), against a REAL Secret Service: gnome-keyring in a private D-Bus
 * session started by the test (fixtures/secret-service.ts, as identity-keystore.test.ts does).
 * The key and the `.anchor` entry are created on first use, survive a reopen, and a restored
 * older copy of the directory is refused by the keystore's anchor. Its own test file: the
 * keystore binding keeps per-process D-Bus state.
 */
import { chmodSync, cpSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { sodium } from '../src/crypto/sodium.js';
import { deleteSecretKey, loadSecretKey } from '../src/keys/keystore.js';
import { type OutboxOptions, openOutbox } from '../src/outbox/outbox.js';
import { outboxPlace } from './fixtures/outbox-world.js';
import { secretServiceSkipReason, startSecretService, useSecretService } from './fixtures/secret-service.js';
import { codeOf } from './identity-helpers.js';

function randomHex(bytes: number): string {
  const b = Buffer.alloc(bytes);
  sodium.randombytes_buf(b);
  return b.toString('hex');
}

if (secretServiceSkipReason !== undefined) {
  test.skip(`outbox with its key in a real Secret Service: SKIPPED because ${secretServiceSkipReason}`, () => {});
} else {
  test.serial(
    "outbox keyed by the Secret Service: key and .anchor created, survives a reopen, level 'secure'; a restored older copy is ROLLBACK 'rollback'",
    async (t) => {
      const service = await startSecretService();
      t.teardown(() => service.stop());
      const notReady = await useSecretService(service, `test-outbox-probe-${randomHex(4)}`);
      if (notReady !== undefined) {
        t.fail(notReady);
        return;
      }
      const account = `test-outbox-${randomHex(8)}`;
      // Teardowns run last-registered first: the entries go before the service stops.
      t.teardown(async () => {
        await deleteSecretKey(account).catch(() => {});
        await deleteSecretKey(`${account}.anchor`).catch(() => {});
      });
      const place = outboxPlace(t);
      const options: OutboxOptions = { dir: place.dir, key: { keystore: account } };
      t.is(await loadSecretKey(account), undefined, 'no key before the first open');

      const first = await openOutbox(options);
      const id = first.id;
      const { notes, ...protection } = first.protection();
      t.deepEqual(protection, {
        level: 'secure',
        key: 'keystore',
        store: 'secret-service',
        files: 'posix-mode',
        againstOtherUsers: true,
        againstSameUser: false,
      });
      t.true(notes.length > 0);
      const master = await loadSecretKey(account);
      t.is(master?.byteLength, 32, 'a 32-byte master key was stored');
      t.is((await loadSecretKey(`${account}.anchor`))?.byteLength, 32, 'the anchor entry exists');
      const a = await first.add('record', { n: 1 });
      await first.close();
      t.deepEqual(readdirSync(place.dir), ['outbox.log'], 'no key material beside the journal');
      const older = join(place.root, 'older-copy');
      cpSync(place.dir, older, { recursive: true });
      chmodSync(older, 0o700); // Node 22's cpSync creates the copy's directory 0755

      const again = await openOutbox({ ...options, minimumProtection: 'secure' });
      t.is(again.id, id, 'the same outbox');
      t.deepEqual(
        again.entries().map((e) => e.id),
        [a.id],
        'its entry survived the reopen (the key was loaded, not made anew)',
      );
      t.deepEqual(Buffer.from((await loadSecretKey(account))!), Buffer.from(master!), 'the key is unchanged');
      await again.add('record', { n: 2 });
      await again.add('record', { n: 3 });
      await again.close();

      rmSync(place.dir, { recursive: true });
      cpSync(older, place.dir, { recursive: true });
      chmodSync(place.dir, 0o700); // Node 22's cpSync creates the copy's directory 0755
      const err = await t.throwsAsync(openOutbox(options));
      t.is(codeOf(err), 'SIPC_ERR_OUTBOX_ROLLBACK');
      const details = (err as { details?: Record<string, unknown> }).details ?? {};
      t.like(details, { reason: 'rollback', anchor: `keystore account ${account}.anchor` });
      t.true((details.journalSeq as number) < (details.anchorSeq as number), JSON.stringify(details));
      t.deepEqual(readdirSync(place.dir), ['outbox.log'], 'refused: no lock left, nothing rewritten');

      t.true(await deleteSecretKey(`${account}.anchor`), 'the anchor entry was there to delete');
      const unanchored = await t.throwsAsync(openOutbox(options));
      t.like((unanchored as { details?: object }).details, { reason: 'no-anchor' });
      t.true(await deleteSecretKey(account), 'the key entry was there to delete');
    },
  );
}
