/**
 * Replays every conformance vector of docs/vectors/ (format: docs/vectors/README.md) against this
 * implementation: a vector whose expectation it does not meet fails here. Handshake message 1
 * payloads and invalid envelopes are also replayed live, over a real channel to a real responder.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { encode } from '@msgpack/msgpack';
import test from 'ava';
import { buildVectors, cipherFor, envelopeOutcome, openFrames, writeFrames } from '../scripts/vectors.js';
import type { SecureChannel } from '../src/channel/options.js';
import { establish, secureConnect } from '../src/channel/secure-channel.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import type { NoiseCipherState } from '../src/handshake/cipher-state.js';
import { chosenVersion, decodePayload, offeredVersions, selectVersion } from '../src/handshake/payloads.js';
import { buildPrologue } from '../src/handshake/prologue.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { authorityFromSeed } from '../src/identity/authority.js';
import { decodeCertificate, issueCertificate, verifyCertificate } from '../src/identity/certificate.js';
import { parseRevocationList, RevocationList } from '../src/identity/revocation.js';
import { generateKeyPair, keyPairFromSecretKey } from '../src/keys/key-pair.js';
import { decodeValue, RawMsgpack } from '../src/msgpack/value-codec.js';
import { serve } from '../src/rpc/serve.js';
import type { Connection } from '../src/transport/contract.js';
import { memoryPair, memoryTransport } from '../src/transport/memory-transport.js';
import { collect } from './helpers.js';

// dist/test/vectors.test.js: the repository root is four levels up.
const dir = new URL('../../../../docs/vectors/', import.meta.url);
const load = (name: string): any => JSON.parse(readFileSync(new URL(`${name}.json`, dir), 'utf8'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Buffer.from(s, 'hex');

test('the committed vectors are exactly what scripts/vectors.ts builds from this implementation', (t) => {
  const built = JSON.parse(JSON.stringify(buildVectors())) as Record<string, unknown>;
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => f.slice(0, -5))
    .sort();
  t.deepEqual(files, Object.keys(built).sort(), 'one file per vector set, no stale file');
  for (const name of files)
    t.deepEqual(load(name), built[name], `docs/vectors/${name}.json is stale: run npm run vectors`);
});

// --- handshake payloads

function payloadOutcome(v: {
  message: number;
  payload: string;
  offered?: number[];
  responderVersions?: number[];
}): Record<string, unknown> {
  try {
    const map = decodePayload(unhex(v.payload));
    if (v.message === 1) {
      const versions = offeredVersions(map);
      const selected = selectVersion(versions, v.responderVersions ?? [1]);
      if (selected === undefined) return { outcome: 'reject', error: 'SIPC_ERR_VERSION_MISMATCH' };
      return { outcome: 'accept', versions, selected };
    }
    if (v.message === 2) return { outcome: 'accept', version: chosenVersion(map, v.offered ?? [1]) };
    return { outcome: 'accept' };
  } catch (err) {
    return { outcome: 'reject', error: (err as SecureIpcError).code };
  }
}

test('handshake payload vectors: each is accepted or rejected as stated', (t) => {
  const { vectors } = load('handshake-payloads');
  t.true(vectors.length > 20);
  for (const v of vectors) {
    const want: Record<string, unknown> = { outcome: v.outcome };
    for (const key of ['versions', 'selected', 'version', 'error'])
      if (v[key] !== undefined) want[key] = v[key];
    t.deepEqual(payloadOutcome(v), want, v.name);
  }
});

test('handshake message 1 vectors, live: a rejected payload gets no message 2, an accepted one gets the selected version', async (t) => {
  const { vectors } = load('handshake-payloads');
  const keys = { server: generateKeyPair(), client: generateKeyPair() };
  const prologue = buildPrologue();
  for (const v of vectors.filter((x: { message: number }) => x.message === 1)) {
    const [raw, server] = memoryPair();
    const received = collect(raw);
    const next = frameReader(raw);
    const pending = establish(server, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      versions: v.responderVersions ?? [1],
      handshakeTimeoutMs: 2000,
    });
    // A raw initiator: message 1 is its 32-byte ephemeral key, then the vector's payload in plaintext.
    const noise = new NoiseHandshake({ initiator: true, prologue, staticKeyPair: keys.client });
    t.teardown(() => noise.dispose());
    raw.write(framed(noise.writeMessage(unhex(v.payload))));
    if (v.outcome === 'reject') {
      const err = await t.throwsAsync(pending);
      t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED') || isSecureIpcError(err, v.error), v.name);
      const cause =
        (err as SecureIpcError).code === v.error
          ? v.error
          : ((err as SecureIpcError).cause as SecureIpcError)?.code;
      t.is(cause, v.error, v.name);
      t.is((await received).length, 0, `${v.name}: nothing sent back`);
    } else {
      // Message 2 comes back, carrying the version the real responder picked.
      const message2 = await next();
      t.truthy(message2, `${v.name}: message 2 follows`);
      t.is(
        decodePayload(noise.readMessage(message2!)).version,
        v.selected,
        `${v.name}: the selected version`,
      );
      raw.destroy();
      await pending.catch(() => {});
    }
    raw.destroy();
  }
});

// The frames one raw end receives, one at a time (2-byte big-endian length, then the body).
function frameReader(conn: Connection): () => Promise<Buffer | undefined> {
  let buffered = Buffer.alloc(0);
  let ended = false;
  let wake: (() => void) | undefined;
  conn.on('data', (c: Buffer) => {
    buffered = Buffer.concat([buffered, c]);
    wake?.();
  });
  const end = () => {
    ended = true;
    wake?.();
  };
  conn.on('end', end);
  conn.on('close', end);
  conn.on('error', () => {});
  return async () => {
    for (;;) {
      if (buffered.length >= 2 && buffered.length >= 2 + buffered.readUInt16BE(0)) {
        const n = buffered.readUInt16BE(0);
        const body = buffered.subarray(2, 2 + n);
        buffered = buffered.subarray(2 + n);
        return Buffer.from(body);
      }
      if (ended) return undefined;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  };
}

const framed = (body: Uint8Array) =>
  Buffer.concat([Buffer.from([body.length >> 8, body.length & 0xff]), body]);

test('handshake message 2 and 3 vectors, live: a rejected payload ends the handshake before the next message', async (t) => {
  const { vectors } = load('handshake-payloads');
  const keys = { server: generateKeyPair(), client: generateKeyPair() };
  const prologue = buildPrologue();
  for (const v of vectors.filter((x: { message: number }) => x.message !== 1)) {
    const [raw, real] = memoryPair();
    const next = frameReader(raw);
    if (v.message === 2) {
      // A raw responder answers a real initiator's message 1 with the vector's message 2 payload.
      const pending = establish(real, {
        keyPair: keys.client,
        trust: { keys: [keys.server.publicKey] },
        initiator: true,
        versions: v.offered ?? [1],
        handshakeTimeoutMs: 2000,
      });
      pending.catch(() => {});
      const noise = new NoiseHandshake({ initiator: false, prologue, staticKeyPair: keys.server });
      t.teardown(() => noise.dispose());
      noise.readMessage((await next())!);
      raw.write(framed(noise.writeMessage(unhex(v.payload))));
      const message3 = await next();
      if (v.outcome === 'accept') t.truthy(message3, `${v.name}: message 3 follows`);
      else {
        t.is(message3, undefined, `${v.name}: no message 3`);
        const err = (await t.throwsAsync(pending)) as SecureIpcError;
        const code = err.code === v.error ? err.code : (err.cause as SecureIpcError | undefined)?.code;
        t.is(code, v.error, v.name);
      }
    } else {
      // A raw initiator sends the vector's payload in message 3 to a real responder.
      const pending = establish(real, {
        keyPair: keys.server,
        trust: { keys: [keys.client.publicKey] },
        initiator: false,
        handshakeTimeoutMs: 2000,
      });
      pending.catch(() => {});
      const noise = new NoiseHandshake({ initiator: true, prologue, staticKeyPair: keys.client });
      t.teardown(() => noise.dispose());
      raw.write(framed(noise.writeMessage(encode({ versions: [1] }))));
      noise.readMessage((await next())!);
      raw.write(framed(noise.writeMessage(unhex(v.payload))));
      if (v.outcome === 'accept') {
        const channel = await pending;
        t.truthy(channel, v.name);
        // Torn down (the raw end never ends its side, so a graceful close would wait its deadline).
        await channel.close(new Error('vector done')).catch(() => {});
      } else {
        const err = (await t.throwsAsync(pending)) as SecureIpcError;
        const code = err.code === v.error ? err.code : (err.cause as SecureIpcError | undefined)?.code;
        t.is(code, v.error, v.name);
        t.is(await next(), undefined, `${v.name}: nothing sent, the connection closes`);
      }
    }
    raw.destroy();
  }
});

// --- envelopes

function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === 'object' && value !== null) {
    const entries = Object.entries(value);
    if (entries.length === 1 && entries[0]![0] === '$bin')
      return new Uint8Array(unhex(entries[0]![1] as string));
    return Object.fromEntries(entries.map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

test('valid envelope vectors decode to the stated value; canonical ones are what the encoder writes', (t) => {
  const { valid } = load('envelopes');
  t.true(valid.length > 15);
  for (const v of valid) {
    const r = decodeEnvelope(unhex(v.hex), undefined, v.protocolVersion ?? 1);
    t.true(r.ok, v.name);
    if (!r.ok) continue;
    const got = { ...r.envelope } as Record<string, unknown>;
    // A `$ping`'s p is kept as the bytes it arrived as (for the echo): compare the value they hold.
    if (got.p instanceof RawMsgpack) got.p = decodeValue(got.p.bytes);
    if (got.p instanceof Uint8Array) got.p = new Uint8Array(got.p);
    t.deepEqual(got, fromJson(v.envelope), v.name);
    t.is(hex(encodeEnvelope(r.envelope)) === v.hex, v.canonical, `${v.name}: canonical`);
  }
});

test('invalid envelope vectors are refused with the stated code, and the id to answer when there is one', (t) => {
  const { invalid } = load('envelopes');
  t.true(invalid.length > 30);
  for (const v of invalid) {
    const r = decodeEnvelope(unhex(v.hex), undefined, v.protocolVersion ?? 1);
    t.false(r.ok, v.name);
    if (r.ok) continue;
    t.is(r.error.code, v.code, v.name);
    t.is(envelopeOutcome(r.id, r.kind, v.protocolVersion ?? 1), v.outcome, v.name);
    if (v.outcome !== 'close') t.is(r.id, v.id, v.name);
  }
});

const PING_ID = 1_000_000;

// What a served responder does with one message: the envelopes it sends back until it answers the
// $ping that follows it, or 'closed' if the channel closed first.
async function replayLive(
  send: (bytes: Uint8Array) => Promise<unknown>,
  channel: SecureChannel,
  bytes: Uint8Array,
) {
  const got: Record<string, unknown>[] = [];
  const done = new Promise<'answered' | 'closed'>((resolve) => {
    channel.on('message', (m: Uint8Array) => {
      const r = decodeEnvelope(m, undefined, channel.version);
      if (!r.ok) throw new Error('the server sent an invalid envelope');
      if (r.envelope.id === PING_ID) resolve('answered');
      else got.push(r.envelope as unknown as Record<string, unknown>);
    });
    channel.once('close', () => resolve('closed'));
  });
  await send(bytes).catch(() => {});
  await send(encodeEnvelope({ k: 1, id: PING_ID, m: '$ping' })).catch(() => {});
  return { end: await done, got };
}

test('invalid and ignored envelope vectors, live: answered, channel closed, or nothing, as stated', async (t) => {
  const { invalid, ignored } = load('envelopes');
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const address = `memory://vectors-${randomUUID()}`;
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
  });
  t.teardown(() => server.close());
  const cases = [
    ...invalid.map((v: { outcome: string }) => ({ ...v, live: v.outcome })),
    ...ignored.map((v: object) => ({ ...v, live: 'nothing' })),
  ];
  for (const v of cases) {
    // The channel speaks the vector's protocol version (the server speaks both).
    const channel = await secureConnect(await transport.connect(address), {
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
      versions: [v.protocolVersion ?? 1],
    });
    t.is(channel.version, v.protocolVersion ?? 1, v.name);
    const { end, got } = await replayLive((b) => channel.send(b), channel, unhex(v.hex));
    if (v.live === 'close') {
      t.is(end, 'closed', v.name);
      t.deepEqual(got, [], `${v.name}: nothing answered`);
    } else if (v.live === 'answer') {
      t.is(end, 'answered', v.name);
      t.is(got.length, 1, v.name);
      t.like(got[0], { k: 3, id: v.id, e: { code: v.code } }, v.name);
    } else {
      // fail-request (the server has no request of its own in flight) and ignored: nothing.
      t.is(end, 'answered', v.name);
      t.deepEqual(got, [], `${v.name}: nothing sent`);
    }
    await channel.close().catch(() => {});
  }
});

// --- frames

test('frame vectors: a sender writes exactly the stated frames, a receiver delivers or fails as stated', (t) => {
  const { sent, received } = load('frames');
  for (const v of sent) {
    const rekey = { messages: v.rekeyEveryFrames ?? 2 ** 40, bytes: 2 ** 52, intervalMs: 2 ** 40 };
    const frames = writeFrames(unhex(v.key), v.nonce, v.messages.map(unhex), rekey, v.chunkSize);
    t.deepEqual(frames.map(hex), v.frames, v.name);
    t.deepEqual(
      openFrames(unhex(v.key), v.nonce, v.frames.map(unhex)),
      { messages: v.messages },
      `${v.name}: opened`,
    );
  }
  for (const v of received) {
    const want: Record<string, unknown> = { messages: v.messages };
    if (v.control !== undefined) want.control = v.control;
    if (v.error !== undefined) Object.assign(want, { error: v.error, failedFrame: v.failedFrame });
    t.deepEqual(
      openFrames(unhex(v.key), v.nonce, v.frames.map(unhex), v.maxMessageSize, v.version),
      want,
      v.name,
    );
  }
});

// --- the handshake transcript

const keyOf = (state: NoiseCipherState) => hex((state as unknown as { key: Buffer }).key);

test('the handshake transcript replays byte for byte: messages, hash, Split() keys, transport frames and a rekey', (t) => {
  const v = load('handshake-transcript');
  const fixed = (secret: string) => {
    const kp = keyPairFromSecretKey(unhex(secret));
    return (pk: Uint8Array, sk: Uint8Array) => {
      pk.set(kp.publicKey);
      sk.set(kp.secretKey);
    };
  };
  const initiator = new NoiseHandshake({
    initiator: true,
    prologue: unhex(v.prologue),
    staticKeyPair: keyPairFromSecretKey(unhex(v.initiatorStaticSecret)),
    generateEphemeral: fixed(v.initiatorEphemeralSecret),
  });
  const responder = new NoiseHandshake({
    initiator: false,
    prologue: unhex(v.prologue),
    staticKeyPair: keyPairFromSecretKey(unhex(v.responderStaticSecret)),
    generateEphemeral: fixed(v.responderEphemeralSecret),
  });
  t.teardown(() => {
    initiator.dispose();
    responder.dispose();
  });
  for (const [i, m] of v.messages.entries()) {
    const [writer, reader] = m.sender === 'initiator' ? [initiator, responder] : [responder, initiator];
    const wire = writer.writeMessage(unhex(m.payload));
    t.is(hex(wire), m.message, `message ${i + 1}`);
    t.is(m.frame, `${wire.length.toString(16).padStart(4, '0')}${m.message}`, `message ${i + 1} frame`);
    t.is(hex(reader.readMessage(wire)), m.payload, `message ${i + 1} payload`);
    t.deepEqual(payloadOutcome({ message: i + 1, payload: m.payload }).outcome, 'accept');
  }
  t.is(hex(initiator.handshakeHash!), v.handshakeHash);
  t.is(hex(initiator.remoteStaticKey!), v.responderStaticPublic);
  t.is(hex(responder.remoteStaticKey!), v.initiatorStaticPublic);
  t.is(keyOf(initiator.split!.tx), v.c1);
  t.is(keyOf(initiator.split!.rx), v.c2);
  t.is(keyOf(responder.split!.tx), v.c2);
  t.is(keyOf(responder.split!.rx), v.c1);
  const rekeyed = cipherFor(unhex(v.c1));
  rekeyed.rekey();
  t.is(keyOf(rekeyed), v.c1AfterRekey);
  rekeyed.destroy();
  for (const sender of ['initiator', 'responder']) {
    const frames = v.transport.filter((f: { sender: string }) => f.sender === sender);
    const key = unhex(sender === 'initiator' ? v.c1 : v.c2);
    const rekey = { messages: sender === 'initiator' ? 2 : 2 ** 40, bytes: 2 ** 52, intervalMs: 2 ** 40 };
    const written = writeFrames(
      key,
      0,
      frames.map((f: { message: string }) => unhex(f.message)),
      rekey,
    );
    t.deepEqual(
      written.map(hex),
      frames.map((f: { frame: string }) => f.frame),
      `${sender} frames`,
    );
    // The receiving side of the real handshake opens them (its rx is the sender's tx).
    const opened = openFrames(
      key,
      0,
      frames.map((f: { frame: string }) => unhex(f.frame)),
    );
    t.deepEqual(
      opened,
      { messages: frames.map((f: { message: string }) => f.message) },
      `${sender} frames opened`,
    );
    // Frame 2 of the initiator only opens under Rekey(c1), so frame 1 carried REKEY.
    if (sender === 'initiator')
      t.deepEqual(
        frames.map((f: { rekey?: boolean }) => f.rekey === true),
        [false, true, false],
      );
  }
});

// --- certificates and revocation

test('the certificate known-answer vector is what issueCertificate writes, and decodes to its fields', (t) => {
  const { known } = load('certificates');
  const authority = authorityFromSeed(unhex(known.authoritySeed));
  t.is(hex(authority.publicKey), known.authorityPublic);
  const cert = issueCertificate(authority, {
    subjectKey: unhex(known.subject),
    name: known.name,
    roles: known.roles,
    serial: known.serial,
    notBefore: known.nbf * 1000,
    ttlMs: (known.naf - known.nbf) * 1000,
  });
  t.is(hex(cert.tbs), known.tbs);
  t.is(cert.tbs.length, known.tbsLength);
  t.is(hex(cert.signature), known.sig);
  t.is(hex(cert.bytes), known.certificate);
  const decoded = decodeCertificate(unhex(known.certificate));
  t.like(decoded, {
    serial: known.serial,
    name: known.name,
    roles: known.roles,
    notBefore: known.nbf * 1000,
  });
});

test('certificate vectors: each is accepted or refused with the stated code and reason', (t) => {
  const { checks } = load('certificates');
  for (const v of checks) {
    let got: Record<string, unknown> = { outcome: 'accept' };
    try {
      verifyCertificate(unhex(v.certificate), {
        authorities: v.check.authorities.map(unhex),
        now: v.check.now,
        subjectKey: v.check.subjectKey === undefined ? undefined : unhex(v.check.subjectKey),
        revocations: new RevocationList({
          serials: v.check.revokedSerials ?? [],
          keys: (v.check.revokedKeys ?? []).map(unhex),
        }),
      });
    } catch (err) {
      const e = err as SecureIpcError;
      got = {
        outcome: 'reject',
        error: e.code,
        reason: (e.details as { reason?: string } | undefined)?.reason,
      };
    }
    const want: Record<string, unknown> = { outcome: v.outcome };
    if (v.outcome === 'reject') Object.assign(want, { error: v.error, reason: v.reason });
    t.deepEqual(got, want, v.name);
  }
});

test('revocation file vectors: each is read with the stated entries or refused', (t) => {
  const { files } = load('revocation');
  for (const v of files) {
    let got: Record<string, unknown>;
    try {
      const list = parseRevocationList(v.text);
      got = {
        outcome: 'accept',
        serials: list.serials,
        keys: list.keys.map((k) => Buffer.from(k).toString('base64')),
      };
    } catch (err) {
      got = { outcome: 'reject', error: (err as SecureIpcError).code };
    }
    const want: Record<string, unknown> = { outcome: v.outcome };
    if (v.outcome === 'accept') Object.assign(want, { serials: v.serials, keys: v.keys });
    else want.error = v.error;
    t.deepEqual(got, want, v.name);
  }
});
