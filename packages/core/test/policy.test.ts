import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { createPolicy, DENY_ALL } from '../src/rpc/policy.js';

test('deny by default: no role, nothing but $ping', (t) => {
  const key = generateKeyPair().publicKey;
  const roles = DENY_ALL.rolesOf({ remoteStaticKey: key });
  t.deepEqual(roles, []);
  t.true(DENY_ALL.allows(roles, 'call', '$ping'));
  t.false(DENY_ALL.allows(roles, 'call', 'files.read'));
  t.false(DENY_ALL.allows(roles, 'publish', 'x'));
  t.false(DENY_ALL.allows(roles, 'subscribe', 'x'));
});

test('roles by static key (bytes or base64) and from the channel, per action', (t) => {
  const reader = generateKeyPair().publicKey;
  const admin = generateKeyPair().publicKey;
  const stranger = generateKeyPair().publicKey;
  const policy = createPolicy({
    roles: {
      reader: { call: ['files.read', 'files.list'], subscribe: ['files.*'] },
      admin: { call: ['*'], publish: ['admin.*'], subscribe: ['*'] },
      certified: { call: ['status'] },
    },
    peers: [
      { key: reader, roles: ['reader'] },
      { key: encodeKey(admin), roles: ['admin'] },
    ],
  });
  const r = policy.rolesOf({ remoteStaticKey: reader });
  t.deepEqual(r, ['reader']);
  t.true(policy.allows(r, 'call', 'files.read'));
  t.false(policy.allows(r, 'call', 'files.delete'));
  t.false(policy.allows(r, 'publish', 'files.changed'), 'call and publish are separate grants');
  t.true(policy.allows(r, 'subscribe', 'files.changed'));
  t.true(policy.allows(r, 'subscribe', 'files.*'), 'a pattern inside the grant');
  t.false(policy.allows(r, 'subscribe', '*'), 'a pattern wider than the grant');
  t.false(policy.allows(r, 'subscribe', 'files*'), 'a pattern that escapes the dot');
  const a = policy.rolesOf({ remoteStaticKey: admin });
  t.true(policy.allows(a, 'call', 'anything'));
  t.true(policy.allows(a, 'publish', 'admin.reboot'));
  const s = policy.rolesOf({ remoteStaticKey: stranger, channelRoles: ['certified'] });
  t.deepEqual(s, ['certified']);
  t.true(policy.allows(s, 'call', 'status'));
  t.false(policy.allows(policy.rolesOf({ remoteStaticKey: stranger }), 'call', 'status'));
});

test('a malformed key in the policy is a typed error', (t) => {
  const err = t.throws(() => createPolicy({ roles: {}, peers: [{ key: 'not base64', roles: [] }] }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_BAD_KEY'));
});

test('defaultRoles apply to every authenticated peer', (t) => {
  const policy = createPolicy({ roles: { everyone: { call: ['health'] } }, defaultRoles: ['everyone'] });
  const roles = policy.rolesOf({ remoteStaticKey: generateKeyPair().publicKey });
  t.true(policy.allows(roles, 'call', 'health'));
  t.false(policy.allows(roles, 'call', 'other'));
});
