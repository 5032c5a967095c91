/**
 * Micro cases that use secure-ipc's own code (envelope codec, the handshake module). They are
 * built from core's public exports when those exist, so the benchmark keeps compiling and running
 * while core is still landing; a missing piece becomes a note in the report, never a fake row.
 */
import type { MicroCase } from './measure.js';

export async function secureIpcMicroCases(): Promise<{ cases: MicroCase[]; notes: string[] }> {
  const cases: MicroCase[] = [];
  const notes: string[] = [];
  const core: Record<string, unknown> = await import('@secure-ipc/core');
  if (typeof core.encodeEnvelope === 'function' && typeof core.decodeEnvelope === 'function') {
    cases.push(...envelopeCases(core.encodeEnvelope as any, core.decodeEnvelope as any));
  } else {
    notes.push(
      'envelope encode/decode: not measured, core does not export encodeEnvelope/decodeEnvelope yet',
    );
  }
  if (
    typeof core.memoryPair === 'function' &&
    typeof core.secureConnect === 'function' &&
    typeof core.secureAccept === 'function' &&
    typeof core.generateKeyPair === 'function'
  ) {
    cases.push(coreHandshakeCase(core as any));
  } else {
    notes.push(
      'core handshake: not measured, core does not export memoryPair/secureConnect/secureAccept yet',
    );
  }
  return { cases, notes };
}

/**
 * A full handshake through core's public API over its in-memory transport: both roles in this
 * process, wire framing, msgpack handshake payloads, version negotiation and key pinning
 * included; both channels closed after. This is core's handshake module as a user reaches it.
 */
function coreHandshakeCase(core: {
  memoryPair(): [any, any];
  secureConnect(c: any, o: any): Promise<{ close(): Promise<void> }>;
  secureAccept(c: any, o: any): Promise<{ close(): Promise<void> }>;
  generateKeyPair(): { publicKey: Uint8Array; secretKey: Uint8Array };
}): MicroCase {
  const a = core.generateKeyPair();
  const b = core.generateKeyPair();
  return {
    name: 'XX handshake via core (secureConnect + secureAccept over memoryPair)',
    bytes: 0,
    async: true,
    run: async () => {
      const [x, y] = core.memoryPair();
      const [ca, cb] = await Promise.all([
        core.secureConnect(x, { keyPair: a, trust: { keys: [b.publicKey] } }),
        core.secureAccept(y, { keyPair: b, trust: { keys: [a.publicKey] } }),
      ]);
      await Promise.all([ca.close(), cb.close()]);
    },
  };
}

function envelopeCases(encode: (e: unknown) => Uint8Array, decode: (b: Uint8Array) => unknown): MicroCase[] {
  const out: MicroCase[] = [];
  for (const size of [64, 1024, 64 * 1024]) {
    const envelope = { k: 1, id: 12345, m: '$ping', p: new Uint8Array(size).fill(0xa5) };
    const bytes = encode(envelope);
    out.push(
      {
        name: `envelope encode, request with ${kib(size)} binary payload`,
        bytes: size,
        run: () => {
          encode(envelope);
        },
      },
      {
        name: `envelope decode+validate, request with ${kib(size)} binary payload`,
        bytes: size,
        run: () => {
          if ((decode(bytes) as { ok?: boolean }).ok !== true) throw new Error('envelope did not decode');
        },
      },
    );
  }
  // Structured values (the value codec, docs/protocol.md "Values"): a small params object and
  // a response of 100 records.
  const records = Array.from({ length: 100 }, (_, i) => ({
    id: i,
    name: `item-${i}`,
    ok: i % 2 === 0,
    score: i + 0.5,
  }));
  const shapes: [string, unknown][] = [
    [
      'request with small object params',
      {
        k: 1,
        id: 12345,
        m: 'files.read',
        p: { path: '/var/log/app.log', offset: 1024, length: 4096, follow: false },
      },
    ],
    ['response with 100 records', { k: 2, id: 12345, p: records }],
  ];
  for (const [what, envelope] of shapes) {
    const bytes = encode(envelope);
    out.push(
      {
        name: `envelope encode, ${what}`,
        bytes: bytes.length,
        run: () => {
          encode(envelope);
        },
      },
      {
        name: `envelope decode+validate, ${what}`,
        bytes: bytes.length,
        run: () => {
          if ((decode(bytes) as { ok?: boolean }).ok !== true) throw new Error('envelope did not decode');
        },
      },
    );
  }
  return out;
}

const kib = (n: number) => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
