// Interoperability with an independent Noise implementation (holepunch noise-handshake) speaking
// wire protocol v1 and v2 as docs/protocol.md writes them: framing, prologue, msgpack payloads,
// flag byte, chunking, Rekey(), and in v2 the ACCEPTED and CLOSE control frames (3.8, 7). The
// reference peer below uses none of core's protocol code.
import type { Socket } from 'node:net';
import { decode, encode } from '@msgpack/msgpack';
import test from 'ava';
import NoiseState from 'noise-handshake';
import Cipher from 'noise-handshake/cipher.js';
import { establish } from '../src/channel/secure-channel.js';
import { sodium } from '../src/crypto/sodium.js';
import { generateKeyPair, type KeyPair } from '../src/keys/key-pair.js';
import { connectionPair, messages, pattern } from './helpers.js';

const LAST = 1;
const REKEY = 2;
const CONTROL = 4;
const MAX_CHUNK = 65_535 - 17;

const aead = sodium as unknown as {
  crypto_aead_chacha20poly1305_ietf_encrypt(
    out: Uint8Array,
    message: Uint8Array,
    ad: Uint8Array,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
};

// Noise Rekey(): k = first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes).
function rekey(cipher: Cipher): void {
  const nonce = Buffer.concat([Buffer.alloc(4), Buffer.alloc(8, 0xff)]);
  const out = Buffer.alloc(48);
  aead.crypto_aead_chacha20poly1305_ietf_encrypt(
    out,
    Buffer.alloc(32),
    Buffer.alloc(0),
    null,
    nonce,
    cipher.key,
  );
  cipher.key = out.subarray(0, 32);
}

class ReferencePeer {
  private buffered = Buffer.alloc(0);
  private waiters: Array<(frame: Buffer) => void> = [];
  private frames: Buffer[] = [];
  private tx!: Cipher;
  private rx!: Cipher;
  private parts: Buffer[] = [];
  readonly received: Buffer[] = [];
  /** Control messages received (v2), in order. */
  readonly controls: Buffer[] = [];
  noise!: NoiseState;
  version = 1;

  constructor(
    private readonly socket: Socket,
    private readonly keyPair: KeyPair,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.buffered = Buffer.concat([this.buffered, chunk]);
      while (this.buffered.length >= 2) {
        const len = this.buffered.readUInt16BE(0);
        if (this.buffered.length < 2 + len) break;
        const frame = this.buffered.subarray(2, 2 + len);
        this.buffered = this.buffered.subarray(2 + len);
        const waiter = this.waiters.shift();
        if (waiter) waiter(frame);
        else if (this.rx) this.onTransport(frame);
        else this.frames.push(frame);
      }
    });
  }

  private write(body: Buffer): void {
    const header = Buffer.alloc(2);
    header.writeUInt16BE(body.length);
    this.socket.write(Buffer.concat([header, body]));
  }

  private next(): Promise<Buffer> {
    const f = this.frames.shift();
    return f ? Promise.resolve(f) : new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Run the handshake speaking `speaks` (versions, highest wins); a v2 responder then sends ACCEPTED. */
  async handshake(initiator: boolean, appId: string, payload: Record<string, unknown>, speaks = [1]) {
    const noise = new NoiseState('XX', initiator, {
      publicKey: Buffer.from(this.keyPair.publicKey),
      secretKey: Buffer.from(this.keyPair.secretKey),
    });
    this.noise = noise;
    noise.initialise(
      Buffer.concat([Buffer.from('secure-ipc/1', 'ascii'), Buffer.from([0]), Buffer.from(appId)]),
    );
    let remote: Record<string, unknown>;
    if (initiator) {
      this.write(noise.send(Buffer.from(encode({ versions: speaks }))));
      remote = decode(noise.recv(await this.next())) as Record<string, unknown>;
      if (!speaks.includes(remote.version as number)) throw new Error('a version not offered');
      this.version = remote.version as number;
      this.write(noise.send(Buffer.from(encode(payload))));
    } else {
      const hello = decode(noise.recv(await this.next())) as { versions: number[] };
      const common = hello.versions.filter((v) => speaks.includes(v));
      if (common.length === 0) throw new Error('no common version');
      this.version = Math.max(...common);
      this.write(noise.send(Buffer.from(encode({ version: this.version, ...payload }))));
      remote = decode(noise.recv(await this.next())) as Record<string, unknown>;
    }
    this.tx = new Cipher(noise.tx);
    this.rx = new Cipher(noise.rx);
    if (!initiator && this.version === 2) this.sendControl(Buffer.from([0x01]));
    for (const f of this.frames.splice(0)) this.onTransport(f);
    return remote;
  }

  /** One control frame (v2): flags LAST | CONTROL, the control message as its chunk. */
  sendControl(message: Buffer): void {
    this.write(this.tx.encrypt(Buffer.concat([Buffer.from([LAST | CONTROL]), message])));
  }

  send(message: Buffer, rekeyEachFrame = false): void {
    let offset = 0;
    do {
      const chunk = message.subarray(offset, offset + MAX_CHUNK);
      offset += chunk.length;
      const flags = (offset >= message.length ? LAST : 0) | (rekeyEachFrame ? REKEY : 0);
      this.write(this.tx.encrypt(Buffer.concat([Buffer.from([flags]), chunk])));
      if (rekeyEachFrame) rekey(this.tx);
    } while (offset < message.length);
  }

  private onTransport(frame: Buffer): void {
    const plain = this.rx.decrypt(frame);
    const flags = plain[0]!;
    if (flags & REKEY) rekey(this.rx);
    if (flags & CONTROL) {
      this.controls.push(Buffer.from(plain.subarray(1)));
      return;
    }
    this.parts.push(Buffer.from(plain.subarray(1)));
    if (flags & LAST) {
      this.received.push(Buffer.concat(this.parts));
      this.parts = [];
    }
  }
}

async function waitFor(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setTimeout(r, 2));
}

for (const [role, speaks] of [
  ['initiator', [1]],
  ['responder', [1]],
  ['initiator', [2, 1]],
  ['responder', [2, 1]],
] as const) {
  const version = Math.max(...speaks);
  test(`interop over a TCP socket, protocol v${version}: core as ${role}, noise-handshake as the other side`, async (t) => {
    const [a, b] = await connectionPair(t, 'tcp');
    const [mine, theirs] = role === 'initiator' ? [a, b] : [b, a];
    const core = generateKeyPair();
    const ref = generateKeyPair();
    const peer = new ReferencePeer(theirs as unknown as Socket, ref);
    const [channel, refPayload] = await Promise.all([
      establish(mine, {
        keyPair: core,
        trust: { keys: [ref.publicKey] },
        initiator: role === 'initiator',
        appId: 'interop',
        payload: { who: 'core' },
        // Rekey after every 3 frames: the reference peer must follow each REKEY flag.
        rekey: { messages: 3 },
      }),
      peer.handshake(role !== 'initiator', 'interop', { who: 'reference' }, [...speaks]),
    ]);
    t.teardown(() => channel.close(new Error('test over')));
    t.is(channel.version, version);
    t.is(peer.version, version);
    // v2: core as responder sent ACCEPTED (01) as its first transport frame.
    if (version === 2 && role === 'responder') await waitFor(() => peer.controls.length === 1);
    t.deepEqual(
      peer.controls.map((c) => c.toString('hex')),
      version === 2 && role === 'responder' ? ['01'] : [],
    );
    t.is(channel.remotePayload.who, 'reference');
    t.is(refPayload.who, 'core');
    t.deepEqual(Buffer.from(channel.handshakeHash), Buffer.from(peer.noise.hash), 'same handshake hash');
    t.deepEqual(Buffer.from(channel.remoteStaticKey), Buffer.from(ref.publicKey));

    const outgoing = [Buffer.from('hello'), pattern(200_000, 3), Buffer.alloc(0), pattern(70_000, 4)];
    for (const m of outgoing) await channel.send(m);
    await waitFor(() => peer.received.length === outgoing.length);
    for (const [i, m] of peer.received.entries()) t.true(m.equals(outgoing[i]!), `core → reference #${i}`);

    const incoming = [Buffer.from('hi'), pattern(150_000, 5), Buffer.from('after rekeys')];
    const got = messages(channel, incoming.length);
    peer.send(incoming[0]!);
    peer.send(incoming[1]!, true);
    peer.send(incoming[2]!);
    for (const [i, m] of (await got).entries())
      t.true(Buffer.from(m).equals(incoming[i]!), `reference → core #${i}`);

    // A graceful close from core: v2 announces it with CLOSE (03 00) before the end.
    const before = peer.controls.length;
    const ended = new Promise((resolve) => (theirs as unknown as Socket).once('end', resolve));
    (theirs as unknown as Socket).on('end', () => (theirs as unknown as Socket).end());
    await channel.close();
    await ended;
    t.deepEqual(
      peer.controls.slice(before).map((c) => c.toString('hex')),
      version === 2 ? ['0300'] : [],
    );
  });
}

test('interop, protocol v2: a CLOSE from noise-handshake makes core close cleanly; an end without it is a peer that vanished', async (t) => {
  for (const withClose of [true, false]) {
    const [mine, theirs] = await connectionPair(t, 'tcp');
    const core = generateKeyPair();
    const ref = generateKeyPair();
    const peer = new ReferencePeer(theirs as unknown as Socket, ref);
    const [channel] = await Promise.all([
      establish(mine, { keyPair: core, trust: { keys: [ref.publicKey] }, initiator: true }),
      peer.handshake(false, '', {}, [2, 1]),
    ]);
    const closed = new Promise<[unknown, { reason: string }]>((resolve) =>
      channel.once('close', (error, info) => resolve([error, info])),
    );
    if (withClose) peer.sendControl(Buffer.from([0x03, 0x00]));
    (theirs as unknown as Socket).end();
    const [, info] = await closed;
    t.is(info.reason, withClose ? 'clean' : 'peer-vanished');
  }
});
