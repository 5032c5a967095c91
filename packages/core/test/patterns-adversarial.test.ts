// Issue 12, row 3: a `$subscribe` pattern of many `*` used to compile to a backtracking RegExp that
// froze the event loop for seconds per publish. Matching is linear now, and a pattern holds at
// most MAX_PATTERN_WILDCARDS wildcards.
import test from 'ava';
import { connect, createPolicy, generateKeyPair, isSecureIpcError, serve } from '../src/index.js';
import { compilePatterns, MAX_PATTERN_WILDCARDS } from '../src/rpc/patterns.js';
import { memoryTransport } from '../src/transport/index.js';

test('adversarial patterns and topics: a publish to 8 peers x 256 patterns stays fast', async (t) => {
  const transport = memoryTransport();
  const address = `memory://patterns-${process.pid}`;
  const serverKeys = generateKeyPair();
  const peerKeys = Array.from({ length: 8 }, () => generateKeyPair());
  const policy = createPolicy({
    roles: { listener: { subscribe: ['events.*'] } },
    peers: peerKeys.map((k) => ({ key: k.publicKey, roles: ['listener'] })),
  });
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: peerKeys.map((k) => k.publicKey) },
    policy,
  });
  t.teardown(() => server.close());
  const clients = await Promise.all(
    peerKeys.map((keyPair) =>
      connect({ transport, address, keyPair, trust: { keys: [serverKeys.publicKey] } }),
    ),
  );
  t.teardown(() => Promise.all(clients.map((c) => c.close())));
  // Each pattern: 8 wildcards between single letters, and a final letter the topic lacks, the
  // shape that makes a backtracking matcher try every way of placing the wildcards.
  const star = 'a*'.repeat(MAX_PATTERN_WILDCARDS);
  await Promise.all(
    clients.map((client, c) =>
      Promise.all(
        Array.from({ length: 256 }, (_, i) => client.subscribe(`events.${star}b${c}-${i}`, () => {})),
      ),
    ),
  );
  const topic = `events.${'a'.repeat(240)}`;
  const times: number[] = [];
  for (let i = 0; i < 20; i++) {
    const start = process.hrtime.bigint();
    t.deepEqual(await server.publish(topic, i), { queued: 0, dropped: 0 }, 'no pattern matches');
    times.push(Number(process.hrtime.bigint() - start) / 1e6);
  }
  times.sort((a, b) => a - b);
  t.log(
    `publish over 2,048 adversarial patterns: median ${times[10]!.toFixed(2)} ms, max ${times[19]!.toFixed(2)} ms`,
  );
  // Linear matching takes a few milliseconds here; a backtracking one never finishes. The bound is
  // generous on purpose (a loaded CI machine), and far below a frozen event loop.
  t.true(times[19]! < 500, `slowest publish ${times[19]} ms`);
});

test('a pattern with more wildcards than allowed is refused: by the client, by the server at $subscribe (typed), in a policy', async (t) => {
  const transport = memoryTransport();
  const address = `memory://patterns-cap-${process.pid}`;
  const serverKeys = generateKeyPair();
  const peer = generateKeyPair();
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [peer.publicKey] },
    policy: createPolicy({ roles: { l: { subscribe: ['*'] } }, defaultRoles: ['l'] }),
  });
  t.teardown(() => server.close());
  const client = await connect({
    transport,
    address,
    keyPair: peer,
    trust: { keys: [serverKeys.publicKey] },
  });
  t.teardown(() => client.close());
  const tooMany = `x${'*y'.repeat(MAX_PATTERN_WILDCARDS + 1)}`;
  // This client refuses it before sending; a peer that sends the raw `$subscribe` anyway is
  // answered with a typed refusal and nothing is compiled.
  const local = await t.throwsAsync(client.subscribe(tooMany, () => {}));
  t.true(isSecureIpcError(local, 'SIPC_ERR_INVALID_ARGUMENT'), String(local));
  const raw = client as unknown as { request(method: string, params: unknown): Promise<unknown> };
  const remote = await t.throwsAsync(raw.request('$subscribe', tooMany));
  t.true(isSecureIpcError(remote, 'SIPC_ERR_BAD_ENVELOPE'), String(remote));
  await t.notThrowsAsync(client.subscribe(`x${'*y'.repeat(MAX_PATTERN_WILDCARDS)}`, () => {}));
  t.throws(() => createPolicy({ roles: { r: { call: [tooMany] } } }), {
    message: /at most 8 wildcards/,
  });
});

test('the linear matcher agrees with the meaning of `*` on every split of a name', (t) => {
  // Exhaustive over short names and patterns from a small alphabet: compare with a reference
  // that tries every way of placing the wildcards (fine at this size).
  const reference = (p: string, n: string): boolean => {
    if (p.length === 0) return n.length === 0;
    if (p[0] === '*') {
      for (let i = 0; i <= n.length; i++) if (reference(p.slice(1), n.slice(i))) return true;
      return false;
    }
    return n.length > 0 && p[0] === n[0] && reference(p.slice(1), n.slice(1));
  };
  const words = (alphabet: string, max: number): string[] => {
    const out = [''];
    for (let len = 1; len <= max; len++)
      for (const w of out.filter((x) => x.length === len - 1)) for (const c of alphabet) out.push(w + c);
    return out;
  };
  const names = words('ab.', 4);
  let checked = 0;
  for (const p of words('a.*', 4).filter((w) => w.length > 0))
    for (const n of names) {
      t.is(compilePatterns([p])(n), reference(p, n), `${JSON.stringify(p)} vs ${JSON.stringify(n)}`);
      checked++;
    }
  t.log(`${checked} pattern/name pairs agree`);
});
