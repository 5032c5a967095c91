/**
 * The pipe DACL rule of `doctorAddress` (docs/configuration.md, "Doctor", "A live endpoint") on
 * SDDL strings, on every OS: transport-win's own DACL passes, each opening is named. Reading a
 * live pipe's DACL needs Windows (packages/cli/test/win); the live unix and tcp checks run against
 * real servers in packages/cli/test/doctor-address.test.ts.
 */
import { pipeSddl } from '@secure-ipc/transport-win';
import test from 'ava';
import { judgePipeSddl } from '../src/doctor-address.js';

const OWNER = 'S-1-5-21-1004336348-1177238915-682003330-1001';

function judge(sddl: string): { id: string; message: string }[] {
  const found: { id: string; message: string }[] = [];
  judgePipeSddl({ add: (id, _at, message) => found.push({ id, message }) }, sddl);
  return found;
}

test('transport-win’s DACL, as GetSecurityInfo returns it with owner and group, has no finding', (t) => {
  t.deepEqual(judge(`O:${OWNER}G:${OWNER}${pipeSddl(OWNER)}`), []);
  t.deepEqual(judge(pipeSddl(OWNER, { extraClientSids: ['S-1-5-32-545'] })), []);
});

test('write access for Everyone, Authenticated Users or Anonymous is pipe-dacl-open; no NETWORK deny first is pipe-remote-allowed', (t) => {
  const au = judge(pipeSddl(OWNER, { anyAuthenticatedUser: true }));
  t.deepEqual(
    au.map((f) => f.id),
    ['pipe-dacl-open'],
  );
  t.regex(au[0]!.message, /lets Authenticated Users write \(0x12018b\)/);
  // libuv's default pipe DACL grants Everyone and Anonymous read only: no write, but no NETWORK deny.
  t.deepEqual(
    judge(`D:(A;;GA;;;${OWNER})(A;;GA;;;SY)(A;;0x12019b;;;WD)(A;;FR;;;AN)`).map((f) => f.id),
    ['pipe-dacl-open', 'pipe-remote-allowed'],
  );
  t.deepEqual(
    judge(`D:(A;;GR;;;WD)(A;;GR;;;S-1-5-7)(A;;GA;;;${OWNER})`).map((f) => f.id),
    ['pipe-remote-allowed'],
  );
  t.deepEqual(
    judge(`D:(A;;GW;;;S-1-1-0)(D;;GA;;;NU)`).map((f) => f.id),
    ['pipe-dacl-open', 'pipe-remote-allowed'],
  );
  t.deepEqual(
    judge('D:NO_ACCESS_CONTROL').map((f) => f.id),
    ['pipe-dacl-open'],
  );
  t.deepEqual(
    judge(`O:${OWNER}`).map((f) => f.id),
    ['pipe-dacl-open'],
  );
});
