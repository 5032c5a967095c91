/**
 * The conformance vectors (docs/vectors/README.md), built from this implementation: encoders make
 * the bytes, decoders are run on them, and each vector's stated outcome is checked against what
 * the decoder did (`expect` throws on any disagreement), so the files only ever say what the
 * implementation does. scripts/generate-vectors.ts writes them; test/vectors.test.ts replays them
 * and checks that this module still builds exactly the committed files.
 */
import { encode } from '@msgpack/msgpack';
import { FrameWriter } from '../src/channel/frame-writer.js';
import type { RekeyOptions } from '../src/channel/options.js';
import { CONTROL_FRAME, Reassembly } from '../src/channel/reassembly.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import type { Envelope } from '../src/envelope/types.js';
import { createError, isSecureIpcError } from '../src/errors.js';
import { KeyArena, NoiseCipherState } from '../src/handshake/cipher-state.js';
import {
  chosenVersion,
  decodePayload,
  encodePayload,
  offeredVersions,
  selectVersion,
} from '../src/handshake/payloads.js';
import { buildPrologue } from '../src/handshake/prologue.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { authorityFromSeed } from '../src/identity/authority.js';
import { certificateRefusal, issueCertificate, verifyCertificate } from '../src/identity/certificate.js';
import { parseRevocationList, RevocationList } from '../src/identity/revocation.js';
import { keyPairFromSecretKey } from '../src/keys/key-pair.js';
import { decodeValue, RawMsgpack } from '../src/msgpack/value-codec.js';
import type { Connection } from '../src/transport/contract.js';
import { outboxVectors } from './outbox-vectors.js';

export const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');
const unhex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');

function expect(condition: boolean, what: string): void {
  if (!condition) throw new Error(`vector generation: ${what}`);
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
    return undefined;
  } catch (err) {
    if (!isSecureIpcError(err)) throw err;
    return err.code;
  }
}

// --- handshake payloads (docs/protocol.md 3.3, 3.4) -------------------------------------------

interface PayloadVector {
  name: string;
  message: 1 | 2 | 3;
  payload: string;
  /** message 2: what the initiator offered. */
  offered?: number[];
  /** message 1: what the responder speaks. */
  responderVersions?: number[];
  outcome: 'accept' | 'reject';
  /** accept: message 1's offered list; message 2's chosen version; the decoded map otherwise. */
  versions?: number[];
  selected?: number;
  version?: number;
  /** reject: the local error code (wrapped in SIPC_ERR_HANDSHAKE_FAILED on a live handshake). */
  error?: string;
}

function payloadOutcome(
  v: Omit<PayloadVector, 'outcome'>,
): Pick<PayloadVector, 'outcome' | 'versions' | 'selected' | 'version' | 'error'> {
  const bytes = unhex(v.payload);
  let result: Pick<PayloadVector, 'versions' | 'selected' | 'version'> = {};
  const error = codeOf(() => {
    const map = decodePayload(bytes);
    if (v.message === 1) {
      const versions = offeredVersions(map);
      const selected = selectVersion(versions, v.responderVersions ?? [1]);
      if (selected === undefined) throw createError('SIPC_ERR_VERSION_MISMATCH');
      result = { versions, selected };
    } else if (v.message === 2) result = { version: chosenVersion(map, v.offered ?? [1]) };
  });
  return error === undefined ? { outcome: 'accept', ...result } : { outcome: 'reject', error };
}

/** A payload vector to build: the outcome wanted, and (accepted) the version negotiated. */
type PayloadCase = Omit<PayloadVector, 'outcome'> & { want: 'accept' | 'reject'; wantVersion?: number };

/** Message 1 offering `offered` to a responder of `responder`: the version it selects, if any. */
type Message1Case = [offered: number[], responder: number[], selected?: number];
/** Message 2 choosing `version` for an initiator that offered `offered`: accepted or not. */
type Message2Case = [offered: number[], version: number, accepted: boolean];

/** The payload vectors of a version negotiation: message 1 and message 2 cases. */
function negotiationPayloads(
  add: (c: PayloadCase) => void,
  message1: Message1Case[],
  message2: Message2Case[],
): void {
  const list = (versions: number[]) => `[${versions.join(', ')}]`;
  for (const [offered, responderVersions, selected] of message1)
    add({
      name: `message 1, versions ${list(offered)} to a responder of ${list(responderVersions)}: ${selected === undefined ? 'no common version' : `version ${selected}`}`,
      message: 1,
      payload: hex(encodePayload({ versions: offered })),
      responderVersions,
      want: selected === undefined ? 'reject' : 'accept',
      wantVersion: selected,
    });
  for (const [offered, version, accepted] of message2)
    add({
      name: `message 2, version ${version} to an initiator that offered ${list(offered)}${accepted ? '' : ' (not offered)'}`,
      message: 2,
      payload: hex(encodePayload({ version })),
      offered,
      want: accepted ? 'accept' : 'reject',
      wantVersion: accepted ? version : undefined,
    });
}

/**
 * Protocol version 3 (3.4): a version-3 peer offers [3, 2, 1], the highest common version wins
 * in either role, and an initiator refuses a version it did not offer.
 */
function v3Payloads(add: (c: PayloadCase) => void): void {
  negotiationPayloads(
    add,
    [
      [[3, 2, 1], [3, 2, 1], 3],
      [[3, 2, 1], [2, 1], 2],
      [[3, 2, 1], [1], 1],
      [[2, 1], [3, 2, 1], 2],
      [[1], [3, 2, 1], 1],
      [[3], [2, 1]],
    ],
    [
      [[3, 2, 1], 3, true],
      [[3, 2, 1], 2, true],
      [[3, 2, 1], 1, true],
      [[2, 1], 3, false],
    ],
  );
}

/**
 * Protocol version 4 (3.4): the reference offers [4, 3, 2, 1]; with a version-3 peer, in either
 * role, the channel is version 3.
 */
function v4Payloads(add: (c: PayloadCase) => void): void {
  negotiationPayloads(
    add,
    [
      [[4, 3, 2, 1], [4, 3, 2, 1], 4],
      [[4, 3, 2, 1], [3, 2, 1], 3],
      [[3, 2, 1], [4, 3, 2, 1], 3],
      [[4], [3, 2, 1]],
    ],
    [
      [[4, 3, 2, 1], 4, true],
      [[4, 3, 2, 1], 3, true],
      [[3, 2, 1], 4, false],
    ],
  );
}

function handshakePayloads(): unknown {
  const cases: PayloadCase[] = [];
  const add = (c: PayloadCase) => cases.push(c);
  add({
    name: 'message 1, versions [1]',
    message: 1,
    payload: hex(encodePayload({ versions: [1] })),
    want: 'accept',
  });
  add({
    name: 'message 1, versions [2, 1] to a v1 responder',
    message: 1,
    payload: hex(encodePayload({ versions: [2, 1] })),
    responderVersions: [1],
    want: 'accept',
  });
  add({
    name: 'message 1, versions [1, 2] to a responder of 1 and 2: the highest is picked',
    message: 1,
    payload: hex(encodePayload({ versions: [1, 2] })),
    responderVersions: [1, 2],
    want: 'accept',
  });
  add({
    name: 'message 1, an unknown key is ignored',
    message: 1,
    payload: hex(encode({ versions: [1], future: 'x' })),
    want: 'accept',
  });
  add({
    name: 'message 1, version as uint 16',
    message: 1,
    payload: '81 a8 76657273696f6e73 91 cd0001',
    want: 'accept',
  });
  add({
    name: 'message 1, versions [65535, 1] (65535 is the highest version number)',
    message: 1,
    payload: hex(encode({ versions: [65535, 1] })),
    want: 'accept',
  });
  add({
    name: 'message 1, no common version',
    message: 1,
    payload: hex(encode({ versions: [7] })),
    want: 'reject',
  });
  add({
    name: 'message 1, a non-string key (integer 1)',
    message: 1,
    payload: '82 a8 76657273696f6e73 91 01 01 a1 78',
    want: 'reject',
  });
  add({
    name: 'message 1, a binary key',
    message: 1,
    payload: '82 a8 76657273696f6e73 91 01 c4 01 78 01',
    want: 'reject',
  });
  add({
    name: 'message 1, the key "versions" twice',
    message: 1,
    payload: '82 a8 76657273696f6e73 91 07 a8 76657273696f6e73 91 01',
    want: 'reject',
  });
  add({
    name: 'message 1, a version offered twice',
    message: 1,
    payload: hex(encode({ versions: [1, 1] })),
    want: 'reject',
  });
  add({
    name: 'message 1, a version as float 64 1.0',
    message: 1,
    payload: '81 a8 76657273696f6e73 91 cb 3ff0000000000000',
    want: 'reject',
  });
  add({
    name: 'message 1, a version as float 32 1.0',
    message: 1,
    payload: '81 a8 76657273696f6e73 91 ca 3f800000',
    want: 'reject',
  });
  add({
    name: 'message 1, version 0',
    message: 1,
    payload: hex(encode({ versions: [0, 1] })),
    want: 'reject',
  });
  add({
    name: 'message 1, version 65536',
    message: 1,
    payload: hex(encode({ versions: [65536, 1] })),
    want: 'reject',
  });
  add({
    name: 'message 1, an empty list',
    message: 1,
    payload: hex(encode({ versions: [] })),
    want: 'reject',
  });
  add({
    name: 'message 1, 17 versions',
    message: 1,
    payload: hex(encode({ versions: Array.from({ length: 17 }, (_, i) => i + 1) })),
    want: 'reject',
  });
  add({
    name: 'message 1, versions not a list',
    message: 1,
    payload: hex(encode({ versions: 1 })),
    want: 'reject',
  });
  add({ name: 'message 1, no versions', message: 1, payload: '80', want: 'reject' });
  add({ name: 'message 1, not a map', message: 1, payload: hex(encode([1])), want: 'reject' });
  add({
    name: 'message 1, trailing bytes',
    message: 1,
    payload: `${hex(encode({ versions: [1] }))}00`,
    want: 'reject',
  });
  add({
    name: 'message 1, the key __proto__',
    message: 1,
    payload: hex(encode({ versions: [1], ['__proto__']: 1 })),
    want: 'reject',
  });
  v3Payloads(add);
  v4Payloads(add);
  add({
    name: 'message 2, version 1',
    message: 2,
    payload: hex(encodePayload({ version: 1 })),
    offered: [1],
    want: 'accept',
  });
  add({
    name: 'message 2, version 1 with a credential',
    message: 2,
    payload: hex(encodePayload({ version: 1 }, { cert: new Uint8Array([1, 2, 3]) })),
    offered: [1],
    want: 'accept',
  });
  add({
    name: 'message 2, a version that was not offered',
    message: 2,
    payload: hex(encode({ version: 2 })),
    offered: [1],
    want: 'reject',
  });
  add({
    name: 'message 2, version as float 64 1.0',
    message: 2,
    payload: '81 a7 76657273696f6e cb 3ff0000000000000',
    offered: [1],
    want: 'reject',
  });
  add({ name: 'message 2, no version', message: 2, payload: '80', offered: [1], want: 'reject' });
  add({
    name: 'message 2, a non-string key',
    message: 2,
    payload: '82 a7 76657273696f6e 01 02 a1 78',
    offered: [1],
    want: 'reject',
  });
  add({ name: 'message 3, the empty map', message: 3, payload: '80', want: 'accept' });
  add({
    name: 'message 3, a credential',
    message: 3,
    payload: hex(encode({ cert: new Uint8Array([1]) })),
    want: 'accept',
  });
  add({ name: 'message 3, a non-string key', message: 3, payload: '81 01 a1 78', want: 'reject' });
  add({ name: 'message 3, a key twice', message: 3, payload: '82 a1 61 01 a1 61 02', want: 'reject' });
  add({ name: 'message 3, not a map', message: 3, payload: 'c0', want: 'reject' });
  const vectors = cases.map(({ want, wantVersion, ...c }) => {
    const v: PayloadVector = {
      ...c,
      payload: hex(unhex(c.payload)),
      ...payloadOutcome({ ...c, payload: hex(unhex(c.payload)) }),
    };
    expect(v.outcome === want, `${c.name}: ${v.outcome}, wanted ${want}`);
    const got = v.selected ?? v.version;
    expect(
      wantVersion === undefined || got === wantVersion,
      `${c.name}: version ${got}, wanted ${wantVersion}`,
    );
    return v;
  });
  return {
    description:
      'Handshake payloads (docs/protocol.md 3.3, 3.4). message 1 payloads travel in plaintext after the 32-byte ephemeral key; 2 and 3 encrypted. accept: the payload is taken (message 1: `versions` offered and the `selected` one for `responderVersions`, default [1]; message 2: the chosen `version` among `offered`). reject: the receiver closes the connection without sending anything more (message 1: no message 2; message 2: no message 3); `error` is its local code.',
    vectors,
  };
}

// --- envelopes ---------------------------------------------------------------------------------

/**
 * A decoded envelope as JSON: a Uint8Array as { "$bin": hex }; a `$ping`'s `p`, which the decoder
 * keeps as the bytes it arrived as (for the echo), as the value those bytes hold.
 */
export function envelopeJson(value: unknown): unknown {
  if (value instanceof RawMsgpack) return envelopeJson(decodeValue(value.bytes));
  if (value instanceof Uint8Array) return { $bin: hex(value) };
  if (Array.isArray(value)) return value.map(envelopeJson);
  if (typeof value === 'object' && value !== null)
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, envelopeJson(v)]));
  return value;
}

const TRACE = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

type Outcome = 'answer' | 'close' | 'fail-request';

/**
 * What a receiver does with an invalid envelope whose id and kind it could read (docs/protocol.md,
 * "Validation"): no id, an event, or a going away (kind 13, version 3) closes; a reply kind fails
 * its own request; else answered (kind 13 below version 3 is an unknown kind).
 */
export function envelopeOutcome(
  id: number | undefined,
  kind: number | undefined,
  protocolVersion: number,
): Outcome {
  if (id === undefined || kind === 4 || (protocolVersion >= 3 && kind === 13)) return 'close';
  const reply =
    kind === 2 ||
    kind === 3 ||
    kind === 6 ||
    kind === 7 ||
    (protocolVersion >= 2 && (kind === 11 || kind === 12));
  return reply ? 'fail-request' : 'answer';
}

function envelopes(): unknown {
  // `protocolVersion` (omitted: 1) is the channel's: kinds 9-12 and `h.stream` exist from version 2,
  // kind 13 and `h.attempt` on version 3.
  const valid: Array<{
    name: string;
    hex: string;
    envelope: unknown;
    canonical: boolean;
    protocolVersion?: number;
  }> = [];
  const addValid = (name: string, env: Envelope | string, protocolVersion = 1) => {
    const bytes = typeof env === 'string' ? unhex(env) : encodeEnvelope(env);
    const r = decodeEnvelope(bytes, undefined, protocolVersion);
    expect(r.ok, `${name}: not valid`);
    if (!r.ok) return;
    const canonical = Buffer.from(encodeEnvelope(r.envelope)).equals(Buffer.from(bytes));
    valid.push({
      name,
      hex: hex(bytes),
      envelope: envelopeJson(r.envelope),
      canonical,
      ...(protocolVersion === 1 ? {} : { protocolVersion }),
    });
  };
  addValid('request', { k: 1, id: 1, m: '$ping', p: 'hello' });
  addValid('request without p (no value)', { k: 1, id: 2, m: '$ping' });
  addValid('request with headers', {
    k: 1,
    id: 3,
    m: 'files.read',
    p: { path: '/tmp/x' },
    h: { timeout: 5000, idem: 'key-1', trace: TRACE },
  });
  addValid('request with a binary payload', { k: 1, id: 4, m: '$ping', p: new Uint8Array([1, 2, 3]) });
  addValid('request whose method is 256 UTF-8 bytes (128 characters)', { k: 1, id: 5, m: 'é'.repeat(128) });
  addValid('request with an id of 2^53 - 1', { k: 1, id: Number.MAX_SAFE_INTEGER, m: 'a' });
  addValid('response', { k: 2, id: 1, p: 'hello' });
  addValid('response without p', { k: 2, id: 2 });
  addValid('response with nil', { k: 2, id: 2, p: null });
  addValid('error', { k: 3, id: 4, e: { code: 'SIPC_ERR_NO_SUCH_METHOD', message: 'No such method' } });
  addValid('error with data', {
    k: 3,
    id: 5,
    e: { code: 'SHOP_EMPTY', message: 'The shop is empty', data: { items: 0 } },
  });
  addValid('error whose message is 1024 UTF-8 bytes', {
    k: 3,
    id: 6,
    e: { code: 'X', message: `${'€'.repeat(341)}a` },
  });
  addValid('event', { k: 4, m: 'files.changed', p: ['a', 'b'] });
  addValid('event without p', { k: 4, m: 'tick' });
  addValid('cancel', { k: 5, id: 7 });
  addValid('stream item', { k: 6, id: 8, p: 1 });
  addValid('stream item without p', { k: 6, id: 8 });
  addValid('stream end', { k: 7, id: 8 });
  addValid('credit', { k: 8, id: 8, p: 8 });
  addValid('credit of 65536', { k: 8, id: 8, p: 65536 });
  // Not as the encoder writes them: any key order and integer width is valid.
  addValid('request, keys in another order', hex(encode({ p: 1, m: '$ping', id: 9, k: 1, v: 1 })));
  addValid('request, id as uint 64', '84 a1 76 01 a1 6b 01 a2 6964 cf 0000000000000009 a1 6d a1 61');
  addValid('request, v as uint 8', '84 a1 76 cc 01 a1 6b 01 a2 6964 09 a1 6d a1 61');

  const invalid: Array<{
    name: string;
    hex: string;
    outcome: Outcome;
    id?: number;
    code: string;
    protocolVersion?: number;
  }> = [];
  const addInvalid = (
    name: string,
    bytes: string | Uint8Array,
    outcome: Outcome,
    id?: number,
    protocolVersion = 1,
  ) => {
    const b = typeof bytes === 'string' ? unhex(bytes) : Buffer.from(bytes);
    const r = decodeEnvelope(b, undefined, protocolVersion);
    expect(!r.ok, `${name}: valid`);
    if (r.ok) return;
    const got = envelopeOutcome(r.id, r.kind, protocolVersion);
    expect(got === outcome, `${name}: ${got}, wanted ${outcome}`);
    if (outcome !== 'close') expect(r.id === id, `${name}: id ${r.id}, wanted ${id}`);
    invalid.push({
      name,
      hex: hex(b),
      outcome,
      ...(id === undefined ? {} : { id }),
      code: r.error.code,
      ...(protocolVersion === 1 ? {} : { protocolVersion }),
    });
  };
  const request = (extra: Record<string, unknown>) => encode({ v: 1, k: 1, id: 1, m: '$ping', ...extra });
  addInvalid('v is 2', request({ v: 2 }), 'answer', 1);
  addInvalid(
    'v as float 64 1.0',
    '84 a1 76 cb 3ff0000000000000 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67',
    'answer',
    1,
  );
  addInvalid(
    'k as float 64 1.0 (kind unreadable, not a reply)',
    '84 a1 76 01 a1 6b cb 3ff0000000000000 a2 6964 01 a1 6d a5 2470696e67',
    'answer',
    1,
  );
  addInvalid(
    'id as float 64 1.0 (id unreadable)',
    '84 a1 76 01 a1 6b 01 a2 6964 cb 3ff0000000000000 a1 6d a5 2470696e67',
    'close',
  );
  addInvalid('an unknown field', request({ x: 1 }), 'answer', 1);
  addInvalid(
    'an integer key (the id is not readable: closed)',
    '85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67 01 01',
    'close',
  );
  addInvalid('the key id twice', '85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67 a2 6964 02', 'close');
  addInvalid('kind 9', request({ k: 9 }), 'answer', 1);
  addInvalid('kind 0', request({ k: 0 }), 'answer', 1);
  addInvalid('request without m', encode({ v: 1, k: 1, id: 1 }), 'answer', 1);
  addInvalid('request with an empty m', request({ m: '' }), 'answer', 1);
  addInvalid('m of 257 UTF-8 bytes (129 characters)', request({ m: `${'é'.repeat(128)}a` }), 'answer', 1);
  addInvalid('request without id', encode({ v: 1, k: 1, m: '$ping' }), 'close');
  addInvalid('negative id', request({ id: -1 }), 'close');
  addInvalid('id of 2^53', request({ id: 2 ** 53 }), 'close');
  addInvalid('not a map', encode([1, 1, 1]), 'close');
  addInvalid('not msgpack (type byte 0xc1)', 'c1', 'close');
  addInvalid(
    'a canonical request followed by trailing bytes',
    `${hex(encodeEnvelope({ k: 1, id: 3, m: '$ping' }))}00`,
    'answer',
    3,
  );
  addInvalid('h.timeout 0', request({ h: { timeout: 0 } }), 'answer', 1);
  addInvalid(
    'h.timeout as float 64 5000.0',
    `85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67 a1 68 81 a7 74696d656f7574 cb ${hex(Buffer.from(new Float64Array([5000]).buffer).reverse())}`,
    'answer',
    1,
  );
  addInvalid('an unknown header', request({ h: { x: 1 } }), 'answer', 1);
  // Found by the fuzzer: a header key that is not a str (here the negative fixint -12).
  addInvalid(
    'a header key that is not a string',
    '85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67 a1 68 82 a7 74696d656f7574 cd 01f4 f4 31',
    'answer',
    1,
  );
  addInvalid('h.idem of 129 UTF-8 bytes', request({ h: { idem: `${'é'.repeat(64)}a` } }), 'answer', 1);
  addInvalid('h.idem empty', request({ h: { idem: '' } }), 'answer', 1);
  addInvalid('h.trace in upper case', request({ h: { trace: TRACE.toUpperCase() } }), 'answer', 1);
  addInvalid('h.trace of version 01', request({ h: { trace: `01${TRACE.slice(2)}` } }), 'answer', 1);
  addInvalid(
    'h.trace with an all-zero trace id',
    request({ h: { trace: `00-${'0'.repeat(32)}-00f067aa0ba902b7-01` } }),
    'answer',
    1,
  );
  addInvalid(
    'h.trace with an all-zero parent id',
    request({ h: { trace: `00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01` } }),
    'answer',
    1,
  );
  addInvalid('h.trace with trailing data', request({ h: { trace: `${TRACE}-x` } }), 'answer', 1);
  addInvalid('p on a cancel', encode({ v: 1, k: 5, id: 1, p: 1 }), 'answer', 1);
  addInvalid('m on a cancel', encode({ v: 1, k: 5, id: 1, m: 'x' }), 'answer', 1);
  addInvalid('credit without p', encode({ v: 1, k: 8, id: 1 }), 'answer', 1);
  addInvalid('credit of 0', encode({ v: 1, k: 8, id: 1, p: 0 }), 'answer', 1);
  addInvalid('credit of 65537', encode({ v: 1, k: 8, id: 1, p: 65537 }), 'answer', 1);
  addInvalid(
    'credit as float 64 1.0',
    '84 a1 76 01 a1 6b 08 a2 6964 01 a1 70 cb 3ff0000000000000',
    'answer',
    1,
  );
  addInvalid('an event carrying an id', encode({ v: 1, k: 4, id: 1, m: 'tick' }), 'close');
  addInvalid('an event without m', encode({ v: 1, k: 4 }), 'close');
  addInvalid('an event with headers', encode({ v: 1, k: 4, m: 'tick', h: { timeout: 1 } }), 'close');
  addInvalid('a response with a method', encode({ v: 1, k: 2, id: 1, m: 'x' }), 'fail-request', 1);
  addInvalid('a response with headers', encode({ v: 1, k: 2, id: 1, h: { timeout: 1 } }), 'fail-request', 1);
  addInvalid('an error without e', encode({ v: 1, k: 3, id: 1 }), 'fail-request', 1);
  addInvalid(
    'an error code with a space',
    encode({ v: 1, k: 3, id: 1, e: { code: 'A B', message: '' } }),
    'fail-request',
    1,
  );
  addInvalid(
    'an error code of 65 bytes',
    encode({ v: 1, k: 3, id: 1, e: { code: 'A'.repeat(65), message: '' } }),
    'fail-request',
    1,
  );
  addInvalid(
    'an error message of 1025 UTF-8 bytes',
    encode({ v: 1, k: 3, id: 1, e: { code: 'X', message: `${'€'.repeat(341)}ab` } }),
    'fail-request',
    1,
  );
  addInvalid(
    'an unknown field in e',
    encode({ v: 1, k: 3, id: 1, e: { code: 'X', message: '', stack: 's' } }),
    'fail-request',
    1,
  );
  addInvalid(
    'a key twice in e',
    '84 a1 76 01 a1 6b 03 a2 6964 01 a1 65 83 a4 636f6465 a1 58 a7 6d657373616765 a0 a4 636f6465 a1 59',
    'fail-request',
    1,
  );
  addInvalid('p on a stream end', encode({ v: 1, k: 7, id: 1, p: 1 }), 'fail-request', 1);

  // Protocol version 2 (docs/protocol.md, "Streamed input"): kinds 9-12 and h.stream.
  addValid(
    'v2: request announcing a streamed input (h.stream, no p)',
    { k: 1, id: 20, m: 'upload', h: { stream: true } },
    2,
  );
  addValid('v2: input item', { k: 9, id: 20, p: { chunk: new Uint8Array([1, 2]) } }, 2);
  addValid('v2: input item without p (no value)', { k: 9, id: 20 }, 2);
  addValid('v2: input end', { k: 10, id: 20 }, 2);
  addValid('v2: input credit', { k: 11, id: 20, p: 8 }, 2);
  addValid('v2: input stop', { k: 12, id: 20 }, 2);
  addInvalid(
    'v1: h.stream on a version-1 channel',
    encode({ v: 1, k: 1, id: 1, m: 'upload', h: { stream: true } }),
    'answer',
    1,
  );
  addInvalid(
    'v1: input credit (kind 11) on a version-1 channel',
    encode({ v: 1, k: 11, id: 1, p: 8 }),
    'answer',
    1,
  );
  addInvalid(
    'v2: h.stream with a p',
    encode({ v: 1, k: 1, id: 1, m: 'upload', p: 1, h: { stream: true } }),
    'answer',
    1,
    2,
  );
  addInvalid(
    'v2: h.stream that is not true',
    encode({ v: 1, k: 1, id: 1, m: 'upload', h: { stream: 1 } }),
    'answer',
    1,
    2,
  );
  addInvalid('v2: kind 13', encode({ v: 1, k: 13, id: 1 }), 'answer', 1, 2);
  addInvalid('v2: input credit of 0', encode({ v: 1, k: 11, id: 1, p: 0 }), 'fail-request', 1, 2);
  addInvalid(
    'v2: input credit as float 64 8.0',
    '84 a1 76 01 a1 6b 0b a2 6964 01 a1 70 cb 4020000000000000',
    'fail-request',
    1,
    2,
  );
  addInvalid('v2: input stop with a p', encode({ v: 1, k: 12, id: 1, p: 1 }), 'fail-request', 1, 2);

  v3Envelopes(addValid, addInvalid);
  v4Envelopes(addValid, addInvalid);

  // Valid envelopes whose id names nothing the receiver has in flight: ignored, nothing sent.
  const ignored = [
    { name: 'a response to an unknown id', envelope: { k: 2, id: 424242, p: 1 } },
    { name: 'an error to an unknown id', envelope: { k: 3, id: 424242, e: { code: 'X', message: '' } } },
    { name: 'a stream item for an unknown id', envelope: { k: 6, id: 424242, p: 1 } },
    { name: 'a stream end for an unknown id', envelope: { k: 7, id: 424242 } },
    { name: 'a cancel for an unknown id', envelope: { k: 5, id: 424242 } },
    { name: 'a credit for an unknown id', envelope: { k: 8, id: 424242, p: 4 } },
    {
      name: 'v3: an error SIPC_ERR_UNAVAILABLE to an unknown id',
      envelope: { k: 3, id: 424242, e: { code: 'SIPC_ERR_UNAVAILABLE', message: '' } },
      protocolVersion: 3,
    },
  ].map(({ name, envelope, protocolVersion = 1 }) => {
    const bytes = encodeEnvelope(envelope as Envelope);
    expect(decodeEnvelope(bytes, undefined, protocolVersion).ok, `${name}: not valid`);
    return { name, hex: hex(bytes), ...(protocolVersion === 1 ? {} : { protocolVersion }) };
  });
  return {
    description:
      'Envelopes (docs/protocol.md, "Envelope v1 and RPC"). valid: the hex decodes to `envelope` (a binary as {"$bin": hex}; `v` kept); canonical: the reference encoder writes exactly these bytes for it. invalid: outcome "answer" = the receiver answers kind 3 with e.code `code` to `id` and the channel stays open; "close" = the channel closes with `code` locally, nothing is answered; "fail-request" = an invalid reply: the receiver fails its own request `id` locally with `code` and sends a cancel for it (nothing if no such request). ignored: valid envelopes for an id with nothing in flight: nothing happens, nothing is sent.',
    valid,
    invalid,
    ignored,
  };
}

type AddValid = (name: string, env: Envelope | string, protocolVersion?: number) => void;
type AddInvalid = (
  name: string,
  bytes: string | Uint8Array,
  outcome: Outcome,
  id?: number,
  protocolVersion?: number,
) => void;

/**
 * Protocol version 3 (docs/protocol.md, "Retries, pushback and graceful drain"): kind 13 and
 * `h.attempt` (valid on version 3 only), SIPC_ERR_UNAVAILABLE, and version 2's additions kept.
 */
function v3Envelopes(addValid: AddValid, addInvalid: AddInvalid): void {
  const v3 = 3;
  addValid('v3: going away (kind 13) with id 0 (no request dispatched)', { k: 13, id: 0 }, v3);
  addValid('v3: going away with an id of 2^53 - 1', { k: 13, id: Number.MAX_SAFE_INTEGER }, v3);
  addValid('v3: request with h.attempt 2 (the first retry)', { k: 1, id: 30, m: 'a', h: { attempt: 2 } }, v3);
  addValid('v3: request with h.attempt 255 (the highest)', { k: 1, id: 31, m: 'a', h: { attempt: 255 } }, v3);
  addValid(
    'v3: request with h.attempt, h.idem and h.timeout',
    {
      k: 1,
      id: 32,
      m: 'files.write',
      p: { path: '/tmp/x' },
      h: { timeout: 5000, idem: 'key-1', attempt: 3 },
    },
    v3,
  );
  addValid(
    'v3: request, h.attempt 2 as uint 16',
    '85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a1 61 a1 68 81 a7 617474656d7074 cd 0002',
    v3,
  );
  addValid(
    'v3: error SIPC_ERR_UNAVAILABLE (not executed) as the reference sends it: the default message, no data',
    {
      k: 3,
      id: 33,
      e: { code: 'SIPC_ERR_UNAVAILABLE', message: createError('SIPC_ERR_UNAVAILABLE').message },
    },
    v3,
  );
  addValid(
    'v3: error SIPC_ERR_UNAVAILABLE with pushback (data.retryAfterMs)',
    {
      k: 3,
      id: 34,
      e: { code: 'SIPC_ERR_UNAVAILABLE', message: 'Try later', data: { retryAfterMs: 250 } },
    },
    v3,
  );
  addValid(
    'v3: request announcing a streamed input (h.stream), as on version 2',
    {
      k: 1,
      id: 35,
      m: 'upload',
      h: { stream: true },
    },
    v3,
  );
  addValid('v3: input credit (kind 11), as on version 2', { k: 11, id: 35, p: 8 }, v3);

  const attempt = (value: unknown) => encode({ v: 1, k: 1, id: 1, m: '$ping', h: { attempt: value } });
  addInvalid('v1: going away (kind 13) on a version-1 channel', encode({ v: 1, k: 13, id: 1 }), 'answer', 1);
  addInvalid('v1: h.attempt on a version-1 channel', attempt(2), 'answer', 1);
  addInvalid('v2: h.attempt on a version-2 channel', attempt(2), 'answer', 1, 2);
  addInvalid('v2: h.attempt 0 on a version-2 channel', attempt(0), 'answer', 1, 2);
  addInvalid('v3: h.attempt 0', attempt(0), 'answer', 1, v3);
  addInvalid('v3: h.attempt 1 (a caller never sends 1)', attempt(1), 'answer', 1, v3);
  addInvalid('v3: h.attempt 256', attempt(256), 'answer', 1, v3);
  addInvalid('v3: h.attempt -1', attempt(-1), 'answer', 1, v3);
  addInvalid(
    'v3: h.attempt as float 64 2.0',
    '85 a1 76 01 a1 6b 01 a2 6964 01 a1 6d a5 2470696e67 a1 68 81 a7 617474656d7074 cb 4000000000000000',
    'answer',
    1,
    v3,
  );
  addInvalid('v3: h.attempt as a string', attempt('2'), 'answer', 1, v3);
  addInvalid('v3: h.attempt nil', attempt(null), 'answer', 1, v3);
  addInvalid('v3: kind 14', encode({ v: 1, k: 14, id: 1 }), 'answer', 1, v3);
  // An invalid kind 13 closes the channel, whatever its id (docs/protocol.md, "Validation").
  addInvalid('v3: going away with a p', encode({ v: 1, k: 13, id: 1, p: 1 }), 'close', undefined, v3);
  addInvalid('v3: going away with an m', encode({ v: 1, k: 13, id: 1, m: 'x' }), 'close', undefined, v3);
  addInvalid(
    'v3: going away with headers',
    encode({ v: 1, k: 13, id: 1, h: { attempt: 2 } }),
    'close',
    undefined,
    v3,
  );
  addInvalid(
    'v3: going away with an e',
    encode({ v: 1, k: 13, id: 1, e: { code: 'X', message: '' } }),
    'close',
    undefined,
    v3,
  );
  addInvalid(
    'v3: going away with an unknown field',
    encode({ v: 1, k: 13, id: 1, x: 1 }),
    'close',
    undefined,
    v3,
  );
  addInvalid('v3: going away without id', encode({ v: 1, k: 13 }), 'close', undefined, v3);
  addInvalid('v3: going away with a negative id', encode({ v: 1, k: 13, id: -1 }), 'close', undefined, v3);
  addInvalid(
    'v3: going away with id as float 64 0.0',
    '83 a1 76 01 a1 6b 0d a2 6964 cb 0000000000000000',
    'close',
    undefined,
    v3,
  );
}

/**
 * Protocol version 4 (docs/protocol.md, "Fields", `h.tracestate`): the W3C tracestate on requests
 * that carry `h.trace`, valid from version 4, with its grammar and limits (512 characters, 32
 * non-empty members).
 */
function v4Envelopes(addValid: AddValid, addInvalid: AddInvalid): void {
  const v4 = 4;
  const members = (count: number) => Array.from({ length: count }, (_, i) => `k${i}=v`).join(',');
  const traced = (id: number, tracestate: string) =>
    ({ k: 1, id, m: 'files.read', p: { path: '/tmp/x' }, h: { trace: TRACE, tracestate } }) as Envelope;
  addValid(
    'v4: request with h.trace and h.tracestate',
    traced(40, 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE'),
    v4,
  );
  addValid('v4: h.tracestate of 32 members (the most)', traced(41, members(32)), v4);
  addValid(
    'v4: h.tracestate of 512 characters (the longest)',
    traced(42, `a=${'x'.repeat(254)},b=${'y'.repeat(253)}`),
    v4,
  );
  addValid(
    'v4: h.tracestate with a multi-tenant key, empty members and optional whitespace',
    traced(43, ' fw529a3039@dt=abc ,, \tk= v\t'),
    v4,
  );
  addValid(
    'v4: h.tracestate with every other header (timeout, idem, attempt)',
    {
      k: 1,
      id: 44,
      m: 'a',
      h: { timeout: 5000, idem: 'key-1', trace: TRACE, tracestate: 'k=v', attempt: 2 },
    },
    v4,
  );
  addValid('v4: going away (kind 13), as on version 3', { k: 13, id: 0 }, v4);

  const tracestate = (value: unknown, withTrace = true) =>
    encode({
      v: 1,
      k: 1,
      id: 1,
      m: '$ping',
      h: withTrace ? { trace: TRACE, tracestate: value } : { tracestate: value },
    });
  addInvalid('v4: h.tracestate of 33 members', tracestate(members(33)), 'answer', 1, v4);
  addInvalid(
    'v4: h.tracestate of 513 characters',
    tracestate(`a=${'x'.repeat(254)},b=${'y'.repeat(253)} `),
    'answer',
    1,
    v4,
  );
  addInvalid('v4: h.tracestate with an upper-case key', tracestate('Rojo=1'), 'answer', 1, v4);
  addInvalid(
    'v4: h.tracestate with a key of 257 characters',
    tracestate(`${'k'.repeat(257)}=1`),
    'answer',
    1,
    v4,
  );
  addInvalid(
    'v4: h.tracestate with a system-id of 15 characters',
    tracestate(`t@${'s'.repeat(15)}=1`),
    'answer',
    1,
    v4,
  );
  addInvalid('v4: h.tracestate with "=" in a value', tracestate('k=a=b'), 'answer', 1, v4);
  addInvalid(
    'v4: h.tracestate with a control character in a value',
    tracestate('k=a\u0001b'),
    'answer',
    1,
    v4,
  );
  addInvalid('v4: h.tracestate with an empty value', tracestate('k='), 'answer', 1, v4);
  addInvalid('v4: h.tracestate with a key twice', tracestate('k=1,l=2,k=3'), 'answer', 1, v4);
  addInvalid('v4: h.tracestate not a string', tracestate(1), 'answer', 1, v4);
  addInvalid('v4: h.tracestate without h.trace', tracestate('k=v', false), 'answer', 1, v4);
  addInvalid('v3: h.tracestate on a version-3 channel', tracestate('k=v'), 'answer', 1, 3);
  addInvalid('v1: h.tracestate on a version-1 channel', tracestate('k=v'), 'answer', 1);
}

// --- frames ------------------------------------------------------------------------------------

/** A Connection that keeps what is written: the frame writer's output, byte for byte. */
class CaptureConnection {
  readonly written: Buffer[] = [];
  write(bytes: Uint8Array): boolean {
    this.written.push(Buffer.from(bytes));
    return true;
  }
  cork(): void {}
  uncork(): void {}
}

const NEVER: Required<RekeyOptions> = { messages: 2 ** 40, bytes: 2 ** 52, intervalMs: 2 ** 40 };

/** A cipher state for `key` at counter `nonce` (both directions share the key: vectors only). */
export function cipherFor(key: Uint8Array, nonce = 0): NoiseCipherState {
  const state = new NoiseCipherState(new KeyArena(Buffer.from(key), Buffer.from(key)), 0);
  if (nonce !== 0) state.setNonce(BigInt(nonce));
  return state;
}

/** The frames FrameWriter writes for `messages` (each split into frames, as the writer does). */
export function writeFrames(
  key: Uint8Array,
  nonce: number,
  messages: Uint8Array[],
  rekey: Required<RekeyOptions> = NEVER,
  chunkSize?: number,
): Buffer[] {
  const connection = new CaptureConnection();
  const writer = new FrameWriter(connection as unknown as Connection, cipherFor(key, nonce), rekey, () =>
    Promise.resolve(),
  );
  for (const m of messages) writer.write(m, chunkSize);
  writer.uncork();
  writer.tx.destroy();
  // One write may carry several frames: split on the length prefixes.
  const all = Buffer.concat(connection.written);
  const frames: Buffer[] = [];
  for (let at = 0; at < all.length; ) {
    const n = all.readUInt16BE(at);
    frames.push(all.subarray(at, at + 2 + n));
    at += 2 + n;
  }
  return frames;
}

/** One frame with exactly these flags and chunk: 2-byte length ‖ ENCRYPT(flags ‖ chunk). */
export function rawFrame(state: NoiseCipherState, flags: number, chunk: Uint8Array): Buffer {
  const plain = Buffer.concat([Buffer.from([flags]), chunk]);
  const out = Buffer.alloc(2 + plain.length + 16);
  out.writeUInt16BE(plain.length + 16, 0);
  state.encrypt(out.subarray(2), plain);
  return out;
}

/**
 * Open frames in order on a channel of protocol `version`; the messages completed (and the chunks
 * of control frames, version 2), or the error code of the first failing frame.
 */
export function openFrames(
  key: Uint8Array,
  nonce: number,
  frames: Uint8Array[],
  maxMessageSize = 16 * 1024 * 1024,
  version = 1,
): { messages: string[]; control?: string[]; error?: string; failedFrame?: number } {
  const reassembly = new Reassembly(cipherFor(key, nonce), maxMessageSize, version);
  const messages: string[] = [];
  const control: string[] = [];
  const out = () => (control.length > 0 ? { messages, control } : { messages });
  try {
    for (const [i, f] of frames.entries()) {
      const body = Buffer.from(f.subarray(2));
      if (f.length < 2 || Buffer.from(f).readUInt16BE(0) !== body.length)
        throw new Error(`frame ${i}: the length prefix does not match`);
      let m: Uint8Array | typeof CONTROL_FRAME | undefined;
      try {
        m = reassembly.open(body);
      } catch (err) {
        if (!isSecureIpcError(err)) throw err;
        return { ...out(), error: err.code, failedFrame: i };
      }
      if (m === CONTROL_FRAME) control.push(hex(reassembly.control!));
      else if (m !== undefined) messages.push(hex(m));
    }
    return out();
  } finally {
    reassembly.rx.destroy();
  }
}

const FRAME_KEY = unhex('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f');

function frames(): unknown {
  const hello = Buffer.from('hello');
  const sent: Array<{
    name: string;
    key: string;
    nonce: number;
    messages: string[];
    chunkSize?: number;
    rekeyEveryFrames?: number;
    frames: string[];
  }> = [];
  const addSent = (
    name: string,
    nonce: number,
    messages: Uint8Array[],
    extra: { chunkSize?: number; rekeyEveryFrames?: number } = {},
  ) => {
    const rekey =
      extra.rekeyEveryFrames === undefined ? NEVER : { ...NEVER, messages: extra.rekeyEveryFrames };
    const out = writeFrames(FRAME_KEY, nonce, messages, rekey, extra.chunkSize);
    const back = openFrames(FRAME_KEY, nonce, out);
    expect(
      back.error === undefined && back.messages.join() === messages.map(hex).join(),
      `${name}: does not open`,
    );
    sent.push({
      name,
      key: hex(FRAME_KEY),
      nonce,
      messages: messages.map(hex),
      ...extra,
      frames: out.map(hex),
    });
  };
  addSent('one message "hello" at nonce 0', 0, [hello]);
  addSent('the empty message', 0, [new Uint8Array(0)]);
  addSent('two messages', 0, [hello, Buffer.from('world')]);
  addSent('"hello" at nonce 2^32 (the counter is 64-bit little-endian)', 2 ** 32, [hello]);
  addSent('one message in three frames of at most 4 bytes', 0, [Buffer.from('0123456789')], { chunkSize: 4 });
  addSent('rekey: the second frame carries REKEY, the third is under the new key', 0, [hello, hello, hello], {
    rekeyEveryFrames: 2,
  });

  const received: Array<{
    name: string;
    version: number;
    key: string;
    nonce: number;
    maxMessageSize?: number;
    frames: string[];
    messages: string[];
    error?: string;
    failedFrame?: number;
  }> = [];
  const addReceived = (
    name: string,
    build: (s: NoiseCipherState) => Buffer[],
    want: { error?: string; messages?: string[]; control?: string[] },
    maxMessageSize?: number,
    version = 1,
  ) => {
    const state = cipherFor(FRAME_KEY);
    const out = build(state);
    state.destroy();
    const got = openFrames(FRAME_KEY, 0, out, maxMessageSize, version);
    expect(got.error === want.error, `${name}: ${got.error}, wanted ${want.error}`);
    if (want.messages !== undefined)
      expect(got.messages.join() === want.messages.join(), `${name}: messages`);
    expect((got.control ?? []).join() === (want.control ?? []).join(), `${name}: control frames`);
    received.push({
      name,
      version,
      key: hex(FRAME_KEY),
      nonce: 0,
      ...(maxMessageSize === undefined ? {} : { maxMessageSize }),
      frames: out.map(hex),
      ...got,
    });
  };
  addReceived(
    'chunks of 2 and 3 bytes make one message',
    (s) => [rawFrame(s, 0, Buffer.from('he')), rawFrame(s, 1, Buffer.from('llo'))],
    { messages: [hex(hello)] },
  );
  addReceived(
    'flag bit 0x04 (CONTROL on version 2) on a version-1 channel',
    (s) => [rawFrame(s, 0x05, hello)],
    { error: 'SIPC_ERR_PROTOCOL' },
  );
  addReceived('reserved flag bit 0x80', (s) => [rawFrame(s, 0x81, hello)], { error: 'SIPC_ERR_PROTOCOL' });
  addReceived('an empty non-last chunk', (s) => [rawFrame(s, 0, Buffer.alloc(0)), rawFrame(s, 1, hello)], {
    error: 'SIPC_ERR_PROTOCOL',
  });
  addReceived(
    'an empty last chunk ends a message',
    (s) => [rawFrame(s, 0, hello), rawFrame(s, 1, Buffer.alloc(0))],
    { messages: [hex(hello)] },
  );
  addReceived('a body shorter than 17 bytes', () => [unhex('0010 00112233445566778899aabbccddeeff')], {
    error: 'SIPC_ERR_PROTOCOL',
  });
  addReceived(
    'a flipped tag bit',
    (s) => {
      const f = rawFrame(s, 1, hello);
      f[f.length - 1] = f[f.length - 1]! ^ 1;
      return [f];
    },
    { error: 'SIPC_ERR_DECRYPT_FAILED' },
  );
  addReceived(
    'a replayed frame',
    (s) => {
      const f = rawFrame(s, 1, hello);
      return [f, f];
    },
    { error: 'SIPC_ERR_DECRYPT_FAILED', messages: [hex(hello)] },
  );
  addReceived(
    'two frames in the wrong order',
    (s) => {
      const a = rawFrame(s, 1, hello);
      const b = rawFrame(s, 1, hello);
      return [b, a];
    },
    { error: 'SIPC_ERR_DECRYPT_FAILED' },
  );
  addReceived(
    'a message over maxMessageSize (8) is refused before its chunk is kept',
    (s) => [rawFrame(s, 0, hello), rawFrame(s, 1, hello)],
    { error: 'SIPC_ERR_MESSAGE_TOO_LARGE' },
    8,
  );
  addReceived(
    'REKEY on receive: the next frame is under Rekey(k)',
    (s) => {
      const a = rawFrame(s, 0x03, hello);
      s.rekey();
      return [a, rawFrame(s, 1, hello)];
    },
    { messages: [hex(hello), hex(hello)] },
  );
  const v2 = 2;
  addReceived(
    'version 2: an ACCEPTED control frame (CONTROL | LAST, chunk 01)',
    (s) => [rawFrame(s, 0x05, Buffer.from([1])), rawFrame(s, 1, hello)],
    { messages: [hex(hello)], control: ['01'] },
    undefined,
    v2,
  );
  addReceived(
    'version 2: a control frame without LAST',
    (s) => [rawFrame(s, 0x04, Buffer.from([1]))],
    { error: 'SIPC_ERR_PROTOCOL' },
    undefined,
    v2,
  );
  addReceived(
    'version 2: a control frame inside a message',
    (s) => [rawFrame(s, 0, Buffer.from('he')), rawFrame(s, 0x05, Buffer.from([1]))],
    { error: 'SIPC_ERR_PROTOCOL' },
    undefined,
    v2,
  );
  addReceived(
    'version 2: reserved flag bit 0x08',
    (s) => [rawFrame(s, 0x09, hello)],
    { error: 'SIPC_ERR_PROTOCOL' },
    undefined,
    v2,
  );
  addReceived(
    'version 3: an ACCEPTED control frame, as on version 2',
    (s) => [rawFrame(s, 0x05, Buffer.from([1])), rawFrame(s, 1, hello)],
    { messages: [hex(hello)], control: ['01'] },
    undefined,
    3,
  );
  addReceived(
    'version 3: reserved flag bit 0x08, as on version 2',
    (s) => [rawFrame(s, 0x09, hello)],
    { error: 'SIPC_ERR_PROTOCOL' },
    undefined,
    3,
  );
  return {
    description:
      'Transport frames (docs/protocol.md 5, 6): frame = 2-byte big-endian length ‖ ChaCha20-Poly1305(key, nonce = 4 zero bytes ‖ 8-byte little-endian counter, ad empty, flags ‖ chunk). sent: what a sender writes for `messages` starting at counter `nonce` (chunkSize: its chunk size if not 65518; rekeyEveryFrames: its frame threshold for REKEY). received: frames a receiver of protocol `version` opens in order starting at counter `nonce`: the `messages` it delivers (and the chunks of the `control` frames it reads, version 2, section 3.8), then `error` (closing the connection) at frame index `failedFrame`.',
    sent,
    received,
  };
}

// --- a full handshake transcript -------------------------------------------------------------

function seq(start: number): Buffer {
  return Buffer.from(Array.from({ length: 32 }, (_, i) => (start + i) & 0xff));
}

/** The raw key of a cipher state (vectors only: the field is private to the implementation). */
function keyOf(state: NoiseCipherState): string {
  return hex((state as unknown as { key: Buffer }).key);
}

function transcript(): unknown {
  const appId = 'com.example.app';
  const prologue = buildPrologue(appId);
  const keys = {
    initiatorStatic: seq(0x01),
    responderStatic: seq(0x21),
    initiatorEphemeral: seq(0x41),
    responderEphemeral: seq(0x61),
  };
  const fixed = (secret: Buffer) => {
    const kp = keyPairFromSecretKey(secret);
    return (pk: Uint8Array, sk: Uint8Array) => {
      pk.set(kp.publicKey);
      sk.set(kp.secretKey);
    };
  };
  const initiator = new NoiseHandshake({
    initiator: true,
    prologue,
    staticKeyPair: keyPairFromSecretKey(keys.initiatorStatic),
    generateEphemeral: fixed(keys.initiatorEphemeral),
  });
  const responder = new NoiseHandshake({
    initiator: false,
    prologue,
    staticKeyPair: keyPairFromSecretKey(keys.responderStatic),
    generateEphemeral: fixed(keys.responderEphemeral),
  });
  const payloads = [encodePayload({ versions: [1] }), encodePayload({ version: 1 }), encodePayload({})];
  const messages = payloads.map((payload, i) => {
    const [writer, reader] = i === 1 ? [responder, initiator] : [initiator, responder];
    const message = writer.writeMessage(payload);
    expect(Buffer.from(reader.readMessage(message)).equals(Buffer.from(payload)), `message ${i + 1}`);
    const frame = Buffer.concat([Buffer.from([message.length >> 8, message.length & 0xff]), message]);
    return {
      sender: i === 1 ? 'responder' : 'initiator',
      payload: hex(payload),
      message: hex(message),
      frame: hex(frame),
      length: message.length,
    };
  });
  const iSplit = initiator.split!;
  const rSplit = responder.split!;
  const c1 = keyOf(iSplit.tx);
  const c2 = keyOf(iSplit.rx);
  expect(c1 === keyOf(rSplit.rx) && c2 === keyOf(rSplit.tx), 'split keys agree');
  expect(hex(initiator.handshakeHash!) === hex(responder.handshakeHash!), 'handshake hashes agree');
  const request = encodeEnvelope({ k: 1, id: 1, m: '$ping', p: 'hi' });
  const response = encodeEnvelope({ k: 2, id: 1, p: 'hi' });
  // The initiator's sending key rekeys after its second frame (threshold 2 frames): its third
  // frame is under Rekey(c1).
  const initiatorFrames = writeFrames(unhex(c1), 0, [request, request, request], { ...NEVER, messages: 2 });
  const responderFrames = writeFrames(unhex(c2), 0, [response]);
  const rekeyed = cipherFor(unhex(c1));
  rekeyed.rekey();
  const c1AfterRekey = keyOf(rekeyed);
  rekeyed.destroy();
  const transport = [
    ...initiatorFrames.map((f, i) => ({
      sender: 'initiator',
      nonce: i,
      message: hex(request),
      frame: hex(f),
      ...(i === 1 ? { rekey: true } : {}),
    })),
    ...responderFrames.map((f, i) => ({
      sender: 'responder',
      nonce: i,
      message: hex(response),
      frame: hex(f),
    })),
  ];
  for (const s of [iSplit.tx, iSplit.rx, rSplit.tx, rSplit.rx]) s.destroy();
  const result = {
    description:
      "A full handshake and transport session (docs/protocol.md 3, 5, 6) with fixed keys. The ephemeral keys are fixed for the vector only (a real side generates them fresh). message 1 is 32 + payload bytes, message 2 32 + 48 + payload + 16, message 3 48 + payload + 16 (frame bodies). c1: the initiator sends with it (Split(): first key), c2: the responder. The initiator's frames use a REKEY threshold of 2 frames: frame 1 (nonce 1) carries REKEY, frame 2 is under c1AfterRekey with the nonce counter continuing at 2.",
    appId,
    prologue: hex(prologue),
    initiatorStaticSecret: hex(keys.initiatorStatic),
    initiatorStaticPublic: hex(keyPairFromSecretKey(keys.initiatorStatic).publicKey),
    responderStaticSecret: hex(keys.responderStatic),
    responderStaticPublic: hex(keyPairFromSecretKey(keys.responderStatic).publicKey),
    initiatorEphemeralSecret: hex(keys.initiatorEphemeral),
    responderEphemeralSecret: hex(keys.responderEphemeral),
    messages,
    handshakeHash: hex(initiator.handshakeHash!),
    c1,
    c2,
    c1AfterRekey,
    transport,
  };
  initiator.dispose();
  responder.dispose();
  return result;
}

// --- certificates and revocation ----------------------------------------------------------------

const NBF = 1767225600_000;

function certificates(): unknown {
  const authority = authorityFromSeed(Buffer.alloc(32, 0x01));
  const other = authorityFromSeed(Buffer.alloc(32, 0x03));
  const subject = Buffer.alloc(32, 0x02);
  const cert = issueCertificate(authority, {
    subjectKey: subject,
    name: 'helper',
    roles: ['reader'],
    serial: 1,
    notBefore: NBF,
    ttlMs: 24 * 3600 * 1000,
  });
  const at = (s: number) => (NBF / 1000 + s) * 1000;
  const known = {
    authoritySeed: hex(Buffer.alloc(32, 0x01)),
    authorityPublic: hex(authority.publicKey),
    subject: hex(subject),
    name: 'helper',
    roles: ['reader'],
    serial: 1,
    nbf: NBF / 1000,
    naf: NBF / 1000 + 86400,
    tbs: hex(cert.tbs),
    tbsLength: cert.tbs.length,
    sig: hex(cert.signature),
    certificate: hex(cert.bytes),
    certificateLength: cert.bytes.length,
  };
  type Check = {
    authorities: string[];
    now: number;
    subjectKey?: string;
    revokedSerials?: number[];
    revokedKeys?: string[];
  };
  const checks: Array<{
    name: string;
    certificate: string;
    check: Check;
    outcome: 'accept' | 'reject';
    error?: string;
    reason?: string;
  }> = [];
  const base: Check = { authorities: [hex(authority.publicKey)], now: at(3600), subjectKey: hex(subject) };
  const addCheck = (
    name: string,
    bytes: Uint8Array,
    check: Check,
    want: { error?: string; reason?: string },
  ) => {
    let error: string | undefined;
    let reason: string | undefined;
    try {
      verifyCertificate(Uint8Array.from(bytes), {
        authorities: check.authorities.map(unhex),
        now: check.now,
        subjectKey: check.subjectKey === undefined ? undefined : unhex(check.subjectKey),
        revocations: new RevocationList({
          serials: check.revokedSerials ?? [],
          keys: (check.revokedKeys ?? []).map(unhex),
        }),
      });
    } catch (err) {
      if (!isSecureIpcError(err)) throw err;
      error = err.code;
      reason = certificateRefusal(err);
    }
    expect(
      error === want.error && reason === want.reason,
      `${name}: ${error}/${reason}, wanted ${want.error}/${want.reason}`,
    );
    checks.push({
      name,
      certificate: hex(bytes),
      check,
      outcome: error === undefined ? 'accept' : 'reject',
      ...(error === undefined ? {} : { error, reason }),
    });
  };
  const outer = (tbs: Uint8Array, sig = cert.signature, extra: Record<string, unknown> = {}) =>
    encode({ v: 1, tbs, sig, ...extra });
  const tbsWith = (change: Record<string, unknown>) =>
    encode({
      v: 1,
      serial: 1,
      subject,
      name: 'helper',
      roles: ['reader'],
      nbf: NBF / 1000,
      naf: NBF / 1000 + 86400,
      issuer: authority.publicKey,
      ...change,
    });
  const flipped = Buffer.from(cert.signature);
  flipped[0] = flipped[0]! ^ 1;
  addCheck('the known-answer certificate, an hour into its validity', cert.bytes, base, {});
  addCheck('29 s before nbf (within the 30 s skew)', cert.bytes, { ...base, now: at(-29) }, {});
  addCheck(
    '31 s before nbf',
    cert.bytes,
    { ...base, now: at(-31) },
    { error: 'SIPC_ERR_CERT_EXPIRED', reason: 'not-yet-valid' },
  );
  addCheck(
    'at naf + 30 s',
    cert.bytes,
    { ...base, now: at(86400 + 30) },
    { error: 'SIPC_ERR_CERT_EXPIRED', reason: 'expired' },
  );
  addCheck(
    'another authority trusted',
    cert.bytes,
    { ...base, authorities: [hex(other.publicKey)] },
    { error: 'SIPC_ERR_BAD_CERTIFICATE', reason: 'untrusted-authority' },
  );
  addCheck('a flipped signature bit', outer(cert.tbs, flipped), base, {
    error: 'SIPC_ERR_BAD_CERTIFICATE',
    reason: 'bad-signature',
  });
  addCheck(
    'another subject key proved in the handshake',
    cert.bytes,
    { ...base, subjectKey: hex(Buffer.alloc(32, 0x04)) },
    { error: 'SIPC_ERR_BAD_CERTIFICATE', reason: 'subject-mismatch' },
  );
  addCheck(
    'serial 1 revoked',
    cert.bytes,
    { ...base, revokedSerials: [1] },
    { error: 'SIPC_ERR_REVOKED', reason: 'revoked-serial' },
  );
  addCheck(
    'the subject key revoked',
    cert.bytes,
    { ...base, revokedKeys: [hex(subject)] },
    { error: 'SIPC_ERR_REVOKED', reason: 'revoked-key' },
  );
  const malformed = { error: 'SIPC_ERR_BAD_CERTIFICATE', reason: 'malformed' };
  addCheck('an unknown outer key', outer(cert.tbs, cert.signature, { x: 1 }), base, malformed);
  addCheck('outer version 2', encode({ v: 2, tbs: cert.tbs, sig: cert.signature }), base, malformed);
  addCheck('an unknown key in tbs', outer(tbsWith({ x: 1 })), base, malformed);
  addCheck('tbs version 2', outer(tbsWith({ v: 2 })), base, malformed);
  addCheck('serial 0', outer(tbsWith({ serial: 0 })), base, malformed);
  addCheck('naf equal to nbf', outer(tbsWith({ naf: NBF / 1000 })), base, malformed);
  addCheck('a subject of 31 bytes', outer(tbsWith({ subject: Buffer.alloc(31, 2) })), base, malformed);
  addCheck('a name with a control character', outer(tbsWith({ name: 'a\u0001' })), base, malformed);
  addCheck('a role twice', outer(tbsWith({ roles: ['reader', 'reader'] })), base, malformed);
  addCheck('a signature of 63 bytes', outer(cert.tbs, cert.signature.subarray(0, 63)), base, malformed);
  addCheck('trailing bytes', Buffer.concat([cert.bytes, Buffer.from([0])]), base, malformed);
  addCheck('over 4096 bytes', outer(cert.tbs, cert.signature, { pad: Buffer.alloc(4096) }), base, malformed);
  return {
    description:
      'Certificates (docs/protocol.md, "Certificates"). known: the known-answer vector. checks: a certificate verified with `check` (trusted authority keys, `now` in ms since the epoch, clock skew 30 s, the subject key proved in the handshake, revoked serials and keys): accepted, or rejected with `error` and `details.reason`.',
    known,
    checks,
  };
}

function revocation(): unknown {
  const key = b64(Buffer.alloc(32, 0x02));
  const files: Array<{
    name: string;
    text: string;
    outcome: 'accept' | 'reject';
    serials?: number[];
    keys?: string[];
    error?: string;
  }> = [];
  const add = (name: string, text: string, want: 'accept' | 'reject') => {
    let parsed: { serials: number[]; keys: Uint8Array[] } | undefined;
    const error = codeOf(() => {
      parsed = parseRevocationList(text);
    });
    expect((error === undefined) === (want === 'accept'), `${name}: ${error ?? 'accepted'}, wanted ${want}`);
    files.push({
      name,
      text,
      outcome: want,
      ...(parsed === undefined ? { error } : { serials: parsed.serials, keys: parsed.keys.map(b64) }),
    });
  };
  add('a serial and a key', JSON.stringify({ version: 1, serials: [7], keys: [key] }), 'accept');
  add('empty lists', '{"version":1,"serials":[],"keys":[]}', 'accept');
  add('lists left out', '{"version":1}', 'accept');
  add('white space and another key order', `{ "keys": [ "${key}" ],\n  "version": 1 }\n`, 'accept');
  add('version 2', '{"version":2,"serials":[],"keys":[]}', 'reject');
  add('no version', '{"serials":[1]}', 'reject');
  add('an unknown field', '{"version":1,"serial":[1]}', 'reject');
  add('serial 0', '{"version":1,"serials":[0]}', 'reject');
  add('a serial as a string', '{"version":1,"serials":["1"]}', 'reject');
  add('a fractional serial', '{"version":1,"serials":[1.5]}', 'reject');
  add('serial 2^53', '{"version":1,"serials":[9007199254740992]}', 'reject');
  add('a key of 31 bytes', JSON.stringify({ version: 1, keys: [b64(Buffer.alloc(31, 2))] }), 'reject');
  add('a key not in base64', '{"version":1,"keys":["not a key"]}', 'reject');
  add('not JSON', '{"version":1,', 'reject');
  add('not an object', '[1]', 'reject');
  add('nested deeper than the format', '{"version":1,"serials":[[1]]}', 'reject');
  return {
    description:
      'Revocation list files (docs/protocol.md, "Revocation list file"): accept with the `serials` and `keys` (base64) they hold, or reject (`error`; a reader keeps its last valid list).',
    files,
  };
}

/** Every vector file, by name (docs/vectors/NAME.json). */
export function buildVectors(): Record<string, unknown> {
  return {
    'handshake-payloads': handshakePayloads(),
    envelopes: envelopes(),
    frames: frames(),
    'handshake-transcript': transcript(),
    certificates: certificates(),
    revocation: revocation(),
    outbox: outboxVectors(),
  };
}
