import { once } from 'node:events';
import { encode } from '@msgpack/msgpack';
import test from 'ava';
import { establish } from '../src/channel/secure-channel.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import type { Connection } from '../src/transport/contract.js';
import { memoryPair } from '../src/transport/memory-transport.js';
import { closed, collect, connectionPair, handshake, messages, mitm, trustedKeys } from './helpers.js';

function responder(conn: Connection, extra: Record<string, unknown> = {}) {
  const keys = trustedKeys();
  return establish(conn, {
    keyPair: keys.server,
    trust: { keys: [keys.client.publicKey] },
    initiator: false,
    handshakeTimeoutMs: 2000,
    ...extra,
  });
}

function frame(body: Buffer): Buffer {
  const out = Buffer.alloc(2 + body.length);
  out.writeUInt16BE(body.length, 0);
  body.copy(out, 2);
  return out;
}

function causeCode(err: unknown): string | undefined {
  return ((err as SecureIpcError).cause as SecureIpcError | undefined)?.code;
}

test('garbage instead of message 1: the responder fails with a typed error and sends nothing back', async (t) => {
  const cases: Array<[string, Buffer, string]> = [
    ['HTTP request', Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), 'SIPC_ERR_FRAME_TOO_LARGE'],
    ['framed random bytes', frame(Buffer.from(`${'00'.repeat(32)}c1c1c1c1`, 'hex')), 'SIPC_ERR_PROTOCOL'],
    ['framed short message 1', frame(Buffer.alloc(10, 1)), 'SIPC_ERR_HANDSHAKE_FAILED'],
    [
      'message 1 without versions',
      frame(Buffer.concat([Buffer.alloc(32, 9), Buffer.from(encode({ v: 1 }))])),
      'SIPC_ERR_PROTOCOL',
    ],
    [
      'message 1 payload not a map',
      frame(Buffer.concat([Buffer.alloc(32, 9), Buffer.from(encode([1]))])),
      'SIPC_ERR_PROTOCOL',
    ],
  ];
  for (const [name, bytes, cause] of cases) {
    const [raw, server] = memoryPair();
    const received = collect(raw);
    const pending = responder(server);
    raw.write(bytes);
    const err = await t.throwsAsync(pending);
    t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'), name);
    const got = causeCode(err) ?? (err as SecureIpcError).code;
    t.is(got, cause, name);
    t.is((await received).length, 0, `${name}: nothing sent back`);
    raw.destroy();
  }
});

test('zero-length, oversized and truncated message 1 frames are refused with the framing error in cause', async (t) => {
  const cases: Array<[string, (raw: Connection) => void, string]> = [
    ['zero-length', (raw) => raw.write(Buffer.from([0, 0])), 'SIPC_ERR_FRAME_EMPTY'],
    // Only the header is sent: the limit is enforced before any body byte is buffered.
    ['oversized (header only)', (raw) => raw.write(Buffer.from([0x04, 0x01])), 'SIPC_ERR_FRAME_TOO_LARGE'],
    ['truncated', (raw) => raw.end(Buffer.from([0, 100, 1, 2, 3])), 'SIPC_ERR_TRUNCATED'],
  ];
  for (const [name, act, cause] of cases) {
    const [raw, server] = memoryPair();
    raw.on('error', () => {});
    const pending = responder(server);
    act(raw);
    const err = await t.throwsAsync(pending);
    t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'), name);
    t.is(causeCode(err), cause, name);
    raw.destroy();
  }
});

test('a silent peer times out on both roles with SIPC_ERR_HANDSHAKE_TIMEOUT', async (t) => {
  const [a, b] = await connectionPair(t, 'tcp');
  const keys = trustedKeys();
  const err = await t.throwsAsync(
    establish(b, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      handshakeTimeoutMs: 150,
    }),
  );
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_TIMEOUT'));
  await once(a, 'close');

  const [c, d] = memoryPair();
  t.teardown(() => d.destroy());
  d.on('data', () => {}); // reads message 1, never answers
  const err2 = await t.throwsAsync(
    establish(c, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      handshakeTimeoutMs: 150,
    }),
  );
  t.true(isSecureIpcError(err2, 'SIPC_ERR_HANDSHAKE_TIMEOUT'));
});

test('another application id fails the handshake on both sides', async (t) => {
  const [c, d] = await connectionPair(t, 'memory');
  const keys = trustedKeys();
  const results = await Promise.allSettled([
    establish(c, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      appId: 'one',
    }),
    establish(d, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      appId: 'two',
    }),
  ]);
  for (const r of results) {
    t.is(r.status, 'rejected');
    t.true(isSecureIpcError((r as PromiseRejectedResult).reason, 'SIPC_ERR_HANDSHAKE_FAILED'));
  }
  // The initiator is the one that detects it: message 2 does not authenticate under its prologue.
  t.regex((results[0] as PromiseRejectedResult).reason.message, /authentication/);
  t.is(causeCode((results[1] as PromiseRejectedResult).reason), 'SIPC_ERR_CONNECTION_CLOSED');
});

test('a different psk fails the handshake; the same psk succeeds', async (t) => {
  const psk = Buffer.alloc(32, 7);
  const [a, b] = await connectionPair(t, 'memory');
  const ok = await handshake(a, b, trustedKeys(), { psk }, { psk: Buffer.from(psk) });
  t.deepEqual(Buffer.from(ok[0].handshakeHash), Buffer.from(ok[1].handshakeHash));
  for (const [mine, theirs] of [
    [psk, Buffer.alloc(32, 8)],
    [psk, undefined],
  ] as const) {
    const [c, d] = await connectionPair(t, 'memory');
    const keys = trustedKeys();
    const results = await Promise.allSettled([
      establish(c, {
        keyPair: keys.client,
        trust: { keys: [keys.server.publicKey] },
        initiator: true,
        psk: mine,
      }),
      establish(d, {
        keyPair: keys.server,
        trust: { keys: [keys.client.publicKey] },
        initiator: false,
        ...(theirs ? { psk: theirs } : {}),
      }),
    ]);
    t.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
  }
});

test('the initiator refuses an untrusted responder before message 3: the impostor never learns the client', async (t) => {
  let serverTrustCalls = 0;
  const { client, server, wire } = mitm(t);
  const keys = trustedKeys();
  const impostor = generateKeyPair();
  const results = await Promise.allSettled([
    establish(client, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(server, {
      keyPair: impostor,
      trust: () => {
        serverTrustCalls++;
        return true;
      },
      initiator: false,
    }),
  ]);
  t.true(isSecureIpcError((results[0] as PromiseRejectedResult).reason, 'SIPC_ERR_UNTRUSTED_PEER'));
  t.true(isSecureIpcError((results[1] as PromiseRejectedResult).reason, 'SIPC_ERR_HANDSHAKE_FAILED'));
  t.is(wire.length, 2, 'only messages 1 and 2 crossed the wire');
  t.is(serverTrustCalls, 0, 'the impostor never saw a client static key');
  const clientKey = Buffer.from(keys.client.publicKey);
  t.false(Buffer.concat(wire).includes(clientKey), 'the client key never crossed, even encrypted-looking');
});

test('the responder refuses an unknown client: UNTRUSTED_PEER there, the client channel just closes', async (t) => {
  const [a, b] = await connectionPair(t, 'tcp');
  const keys = trustedKeys();
  const stranger = generateKeyPair();
  const results = await Promise.allSettled([
    establish(a, { keyPair: stranger, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(b, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.true(isSecureIpcError((results[1] as PromiseRejectedResult).reason, 'SIPC_ERR_UNTRUSTED_PEER'));
  // XX completes for the initiator at message 3; the responder's refusal is just a closed connection.
  if (results[0].status === 'fulfilled') {
    const channel = results[0].value;
    const got: Uint8Array[] = [];
    channel.on('message', (m) => got.push(m));
    const sent = channel.send(Buffer.from('hello?')).catch(() => {});
    await closed(channel);
    await sent;
    t.is(got.length, 0);
  } else t.true(isSecureIpcError(results[0].reason));
});

test('a man in the middle rewriting message 1 (version downgrade) is caught by the handshake hash', async (t) => {
  // Both ends speak versions 1 and 2 (listed lowest first: the order does not matter); the
  // attacker strips 2 from the initiator's offer.
  const both = [1, 2];
  const [c0, s0] = await connectionPair(t, 'memory');
  const honest = await handshake(c0, s0, trustedKeys(), { versions: both }, { versions: both });
  t.is(honest[0].version, 2, 'without the attacker the highest common version wins');

  let rewritten = false;
  const { client, server } = mitm(t, {
    toServer: (f, i) => {
      if (i !== 0) return f;
      rewritten = true;
      return Buffer.concat([f.subarray(0, 32), Buffer.from(encode({ versions: [1] }))]);
    },
  });
  const keys = trustedKeys();
  const results = await Promise.allSettled([
    establish(client, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      versions: both,
    }),
    establish(server, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      versions: both,
    }),
  ]);
  t.true(rewritten);
  const clientErr = (results[0] as PromiseRejectedResult).reason;
  t.true(isSecureIpcError(clientErr, 'SIPC_ERR_HANDSHAKE_FAILED'));
  t.regex(clientErr.message, /authentication/, 'message 2 failed authentication');
  t.is(results[1].status, 'rejected');
});

test('no common version: the responder closes without sending message 2', async (t) => {
  const { client, server, wire } = mitm(t);
  const keys = trustedKeys();
  const results = await Promise.allSettled([
    establish(client, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      versions: [2],
    }),
    establish(server, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      versions: [1],
    }),
  ]);
  t.true(isSecureIpcError((results[1] as PromiseRejectedResult).reason, 'SIPC_ERR_VERSION_MISMATCH'));
  t.true(isSecureIpcError((results[0] as PromiseRejectedResult).reason, 'SIPC_ERR_HANDSHAKE_FAILED'));
  t.is(wire.length, 1, 'only message 1 crossed');
});

test('a handshake and messages survive a byte-at-a-time stream', async (t) => {
  const [client, relayA] = memoryPair();
  const [relayB, server] = memoryPair();
  const trickle = (from: Connection, to: Connection) =>
    from.on('data', (chunk: Buffer) => {
      for (const byte of chunk) to.write(Buffer.from([byte]));
    });
  trickle(relayA, relayB);
  trickle(relayB, relayA);
  t.teardown(() => {
    for (const c of [client, relayA, relayB, server]) c.destroy();
  });
  const [c, s] = await handshake(client, server);
  const got = messages(s, 2);
  await c.send(Buffer.from('one'));
  await c.send(Buffer.alloc(70_000, 5));
  const [one, big] = await got;
  t.is(Buffer.from(one!).toString(), 'one');
  t.true(Buffer.from(big!).equals(Buffer.alloc(70_000, 5)));
});

test('an aborted signal stops the handshake with SIPC_ERR_ABORTED and closes the connection', async (t) => {
  const [a, b] = memoryPair();
  t.teardown(() => b.destroy());
  b.on('data', () => {});
  const keys = trustedKeys();
  const controller = new AbortController();
  const pending = establish(a, {
    keyPair: keys.client,
    trust: { keys: [keys.server.publicKey] },
    initiator: true,
    signal: controller.signal,
  });
  setTimeout(() => controller.abort(new Error('user gave up')), 20);
  t.true(isSecureIpcError(await t.throwsAsync(pending), 'SIPC_ERR_ABORTED'));
  t.true(a.destroyed);
});

test('trust is required, refusals carry the reason, a throwing trust function denies', async (t) => {
  const [a] = memoryPair();
  const kp = generateKeyPair();
  const missing = await t.throwsAsync(establish(a, { keyPair: kp, initiator: true } as never));
  t.true(isSecureIpcError(missing, 'SIPC_ERR_INVALID_ARGUMENT'));
  const reserved = await t.throwsAsync(
    establish(a, { keyPair: kp, trust: { keys: [] }, initiator: true, payload: { version: 9 } }),
  );
  t.true(isSecureIpcError(reserved, 'SIPC_ERR_INVALID_ARGUMENT'));
  a.destroy();

  for (const [trust, expect] of [
    [() => ({ allow: false, reason: 'revoked by admin' }), /revoked by admin/],
    [
      () => {
        throw new Error('db down');
      },
      /threw/,
    ],
    [() => 'yes' as never, /not trusted/],
  ] as const) {
    const [c, d] = await connectionPair(t, 'memory');
    const keys = trustedKeys();
    let seenPeer: unknown;
    const results = await Promise.allSettled([
      establish(c, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
      establish(d, {
        keyPair: keys.server,
        trust: (ctx) => {
          seenPeer = ctx.peer;
          t.deepEqual(Buffer.from(ctx.remoteStaticKey), Buffer.from(keys.client.publicKey));
          return (trust as () => never)();
        },
        initiator: false,
      }),
    ]);
    const err = (results[1] as PromiseRejectedResult).reason;
    t.true(isSecureIpcError(err, 'SIPC_ERR_UNTRUSTED_PEER'));
    t.regex((err as Error).message, expect);
    t.deepEqual(seenPeer, { transport: 'memory' });
  }
});

test('bytes injected after message 2 make the initiator fail before it sends message 3', async (t) => {
  const { client, server, wire } = mitm(t, {
    toClient: (f, i) => (i === 0 ? [f, Buffer.alloc(40, 0xab)] : f),
  });
  const keys = trustedKeys();
  const results = await Promise.allSettled([
    establish(client, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(server, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  const err = (results[0] as PromiseRejectedResult).reason;
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'));
  t.is(causeCode(err), 'SIPC_ERR_PROTOCOL');
  t.is(results[1].status, 'rejected');
  t.is(wire.length, 3, 'message 1, message 2 and the injected frame; no message 3');
});

test('channel options are validated before anything is sent', async (t) => {
  const keys = trustedKeys();
  const bad: Array<Record<string, unknown>> = [
    { rekey: { messages: 0 } },
    { rekey: { intervalMs: -1 } },
    { maxMessageSize: Number.NaN },
    { handshakeTimeoutMs: 0 },
    { appId: 'a\0b' },
    { appId: 'x'.repeat(256) },
    { psk: Buffer.alloc(8) },
    { keyPair: { publicKey: Buffer.alloc(31), secretKey: Buffer.alloc(32) } },
    { trust: { keys: ['not a key'] } },
  ];
  for (const extra of bad) {
    const [a, b] = memoryPair();
    const written: Buffer[] = [];
    b.on('data', (c: Buffer) => written.push(c));
    const err = await t.throwsAsync(
      establish(a, {
        keyPair: keys.client,
        trust: { keys: [keys.server.publicKey] },
        initiator: true,
        ...extra,
      }),
    );
    t.true(
      isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT') || isSecureIpcError(err, 'SIPC_ERR_BAD_KEY'),
      JSON.stringify(extra),
    );
    t.is(written.length, 0);
    a.destroy();
  }
});
