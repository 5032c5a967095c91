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
      'envelope encode/decode: not measured, core keeps its envelope codec internal (no public export since issue 11)',
    );
  }
  // memoryPair lives in core's `./transport` entry point since the layout of issue 11.
  const { memoryPair } = await import('@secure-ipc/core/transport');
  cases.push(coreHandshakeCase({ ...(core as any), memoryPair }));
  cases.push(...(await streamCases()));
  return { cases, notes };
}

/** Items and item size of one upload in the client-stream case. */
const UPLOAD_ITEMS = 256;
const UPLOAD_ITEM_BYTES = 1024;

/**
 * Stream throughput through core's public API: one upload of 256 items of 1 KiB per operation
 * (a client stream: kinds 9 and 10 on input credit, then the response), and for comparison the
 * same items downloaded (a server stream: kinds 6 and 7 on credit); RPC server and client in
 * this process over the in-memory transport, a protocol-version-2 channel with Noise
 * underneath. The ends only count bytes, so the rows measure the streaming machinery.
 */
async function streamCases(): Promise<MicroCase[]> {
  const core = await import('@secure-ipc/core');
  const { memoryPair } = await import('@secure-ipc/core/transport');
  const a = core.generateKeyPair();
  const b = core.generateKeyPair();
  let client: { request(m: string, p: unknown): Promise<unknown> } | undefined;
  const setup = async () => {
    const server = core.createServer({
      policy: core.createPolicy({ roles: { any: { call: ['upload', 'download'] } }, defaultRoles: ['any'] }),
    });
    server.handle('download', () => items());
    server.handle('upload', async (items: AsyncIterable<Uint8Array>) => {
      let n = 0;
      for await (const item of items) n += item.byteLength;
      return n;
    });
    const [x, y] = memoryPair();
    const [ca, cb] = await Promise.all([
      core.secureConnect(x, { keyPair: a, trust: { keys: [b.publicKey] } }),
      core.secureAccept(y, { keyPair: b, trust: { keys: [a.publicKey] } }),
    ]);
    server.attach(cb);
    return core.createClient(ca);
  };
  const item = new Uint8Array(UPLOAD_ITEM_BYTES).fill(0xa5);
  async function* items() {
    for (let i = 0; i < UPLOAD_ITEMS; i++) yield item;
  }
  const total = UPLOAD_ITEMS * UPLOAD_ITEM_BYTES;
  const what = `${UPLOAD_ITEMS} items of ${kib(UPLOAD_ITEM_BYTES)} (memoryPair, protocol version 2)`;
  return [
    {
      name: `client stream via core RPC: upload of ${what}`,
      bytes: total,
      async: true,
      run: async () => {
        client ??= await setup();
        const n = await client.request('upload', items());
        if (n !== total) throw new Error(`upload counted ${String(n)} bytes`);
      },
    },
    {
      name: `server stream via core RPC: download of ${what}`,
      bytes: total,
      async: true,
      run: async () => {
        client ??= await setup();
        let n = 0;
        for await (const item of (await client.request('download', undefined)) as AsyncIterable<Uint8Array>)
          n += item.byteLength;
        if (n !== total) throw new Error(`download counted ${n} bytes`);
      },
    },
  ];
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
