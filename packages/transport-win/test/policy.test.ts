/**
 * The SID policy without Windows (every OS): well-known names and SID strings accepted, anything
 * else SIPC_ERR_INVALID_ARGUMENT at pipeTransport(); the DACL built from them (pipeSddl); and the
 * decision rule of checkCredentials (user SID, group memberships, fail closed when memberships are
 * unknown). The Windows calls behind them are tested under Wine (groups.test.ts, hardening.test.ts).
 */
import { isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { CLIENT_ACCESS } from '../src/hardening.js';
import { pipeSddl, pipeTransport, WELL_KNOWN_SIDS } from '../src/index.js';
import { checkCredentials, membershipQuery, normalizePolicy } from '../src/peer-credentials.js';
import { isSidString, resolveSid, resolveSids } from '../src/sids.js';

const ME = 'S-1-5-21-1111111111-2222222222-3333333333-1001';
const own = () => ME;

test('the well-known names are the documented SIDs', (t) => {
  t.deepEqual(
    { ...WELL_KNOWN_SIDS },
    {
      interactive: 'S-1-5-4',
      'authenticated-users': 'S-1-5-11',
      system: 'S-1-5-18',
      administrators: 'S-1-5-32-544',
      'local-service': 'S-1-5-19',
      'network-service': 'S-1-5-20',
    },
  );
  t.deepEqual(resolveSids(['interactive', 'local-service', ME]), ['S-1-5-4', 'S-1-5-19', ME]);
});

const badEntries: [unknown, string][] = [
  ['Interactive', 'names are case-sensitive'],
  ['everyone', 'not one of the names'],
  ['root', 'a Unix name'],
  ['S-1', 'no authority'],
  ['S-1-5', 'no sub-authority'],
  ['S-2-5-18', 'revision 2'],
  ['s-1-5-18', 'lower-case s'],
  ['S-1-5-18 ', 'trailing space'],
  ['S-1-5--18', 'empty sub-authority'],
  ['S-1-5-+18', 'a sign'],
  ['S-1-5-4294967296', 'a sub-authority over 32 bits'],
  ['S-1-281474976710656-1', 'an authority over 48 bits'],
  [`S-1-5${'-1'.repeat(16)}`, '16 sub-authorities'],
  ['S-1-5-4)(A;;GA;;;WD', 'an SDDL fragment'],
  [18, 'a number'],
  [null, 'null'],
  ['toString', 'an Object.prototype key'],
];
for (const [entry, why] of badEntries) {
  test(`allowedSids entry refused with SIPC_ERR_INVALID_ARGUMENT: ${why}`, (t) => {
    t.is(resolveSid(entry), undefined);
    const err = t.throws(() => pipeTransport({ allowedSids: [ME, entry as string] }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
    t.regex(err!.message, /allowedSids\[1\]/);
  });
}

test('SID strings at the limits are accepted', (t) => {
  t.true(isSidString('S-1-5-18'));
  t.true(isSidString('S-1-0-0'));
  t.true(isSidString(`S-1-281474976710655${'-4294967295'.repeat(15)}`));
  t.notThrows(() => pipeTransport({ allowedSids: ['S-1-5-32-546', 'network-service'] }));
});

test('allowedSids must be an array', (t) => {
  const err = t.throws(() => pipeTransport({ allowedSids: 'interactive' as never }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'));
});

test('pipeSddl grants each listed SID or name client-only rights; owner and SYSTEM keep full access; NETWORK denied; protected', (t) => {
  const sddl = pipeSddl(ME, {
    extraClientSids: ['interactive', 'administrators', 'S-1-5-21-1-2-3-1002', 'system', ME, 'S-1-5-4'],
  });
  const c = `0x${CLIENT_ACCESS.toString(16)}`;
  t.is(c, '0x12018b');
  // system and the owner already have GA; duplicates are listed once.
  t.is(
    sddl,
    `D:P(D;;GA;;;NU)(A;;GA;;;${ME})(A;;GA;;;SY)(A;;${c};;;S-1-5-4)(A;;${c};;;S-1-5-32-544)(A;;${c};;;S-1-5-21-1-2-3-1002)`,
  );
  // Client rights never include WRITE_DAC, WRITE_OWNER or FILE_CREATE_PIPE_INSTANCE (= FILE_APPEND_DATA).
  t.is(CLIENT_ACCESS & (0x40000 | 0x80000 | 0x4), 0);
});

test('pipeSddl refuses anything that is not a SID, so no string adds an ACE of its own', (t) => {
  for (const bad of [
    () => pipeSddl('S-1-5-4)(A;;GA;;;WD'),
    () => pipeSddl(ME, { extraClientSids: ['WD'] }),
  ]) {
    const err = t.throws(bad);
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  }
});

test('checkCredentials: a user SID matches directly, a group through the token membership read for it', (t) => {
  const policy = normalizePolicy({ allowedSids: ['interactive', 'S-1-5-21-1-2-3-1002'] });
  t.deepEqual(membershipQuery(policy), ['S-1-5-4', 'S-1-5-21-1-2-3-1002']);
  t.is(
    checkCredentials(policy, { pid: 1, sid: 'S-1-5-21-1-2-3-1002', memberOf: [] }, own, 'client'),
    undefined,
  );
  t.is(checkCredentials(policy, { pid: 1, sid: ME, memberOf: ['S-1-5-4'] }, own, 'client'), undefined);
  const refused = checkCredentials(policy, { pid: 1, sid: ME, memberOf: [] }, own, 'client');
  t.true(isSecureIpcError(refused, 'SIPC_ERR_PEER_CREDENTIALS'));
  t.deepEqual((refused as { details?: unknown }).details, {
    sid: ME,
    pid: 1,
    allowed: ['S-1-5-4', 'S-1-5-21-1-2-3-1002'],
  });
});

test('checkCredentials fails closed: unknown memberships match no group, with the reason as the cause', (t) => {
  const policy = normalizePolicy({ allowedSids: ['interactive'] });
  const failure = new Error('CheckTokenMembership failed');
  const refused = checkCredentials(policy, { pid: 7, sid: ME, membershipFailure: failure }, own, 'server');
  t.true(isSecureIpcError(refused, 'SIPC_ERR_PIPE_SECURITY'));
  t.is(refused!.cause, failure);
  t.regex(refused!.message, /group memberships could not be read/);
  // An unreadable SID is refused too, unless allowAnyUser.
  t.truthy(checkCredentials(policy, { pid: 7, failure }, own, 'client'));
  t.is(checkCredentials({ allowAnyUser: true }, { pid: 7, failure }, own, 'client'), undefined);
  t.deepEqual(membershipQuery({ allowAnyUser: true, allowedSids: ['S-1-5-4'] }), []);
});

test('the default policy is the own user only, and reads no membership', (t) => {
  const policy = normalizePolicy({});
  t.deepEqual(membershipQuery(policy), []);
  t.is(checkCredentials(policy, { pid: 1, sid: ME }, own, 'client'), undefined);
  t.truthy(checkCredentials(policy, { pid: 1, sid: 'S-1-5-18' }, own, 'client'));
});
