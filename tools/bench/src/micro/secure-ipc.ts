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
  return { cases, notes };
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
        run: () => encode(envelope),
      },
      {
        name: `envelope decode+validate, request with ${kib(size)} binary payload`,
        bytes: size,
        run: () => decode(bytes),
      },
    );
  }
  return out;
}

const kib = (n: number) => (n >= 1024 ? `${n / 1024} KiB` : `${n} B`);
