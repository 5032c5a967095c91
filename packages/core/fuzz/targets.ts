/**
 * The fuzz targets: every decoder of peer or file input. Each target accepts any bytes; the only
 * acceptable failure is a typed secure-ipc error with the decoder's documented code. Anything
 * else thrown (a TypeError, a RangeError, a stack overflow) or a slow input is a finding.
 */

import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import { type ErrorCode, isSecureIpcError } from '../src/errors.js';
import { FrameDecoder } from '../src/framing.js';
import { chosenVersion, decodePayload, encodePayload, offeredVersions } from '../src/handshake/payloads.js';
import { generateAuthority } from '../src/identity/authority.js';
import {
  certificateFromText,
  certificateToText,
  decodeCertificate,
  encodeCertificate,
  issueCertificate,
} from '../src/identity/certificate.js';
import { parseRevocationList } from '../src/identity/revocation.js';
import { armor, dearmor } from '../src/keys/armor.js';
import { secretKeyFromText, secretKeyToText } from '../src/keys/key-file.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { decodeKey, encodeKey } from '../src/keys/key-text.js';
import type { FuzzTarget } from './engine.js';

/** A named target with its seed inputs. */
export interface TargetSpec {
  /** What it decodes. */
  description: string;
  /** The target. */
  fuzz: FuzzTarget;
  /** Valid (or nearly valid) inputs to start from. */
  seeds: () => Uint8Array[];
}

/** Rethrow anything that is not a typed error with one of `codes`. */
function only(codes: readonly ErrorCode[], fn: () => void): void {
  try {
    fn();
  } catch (err) {
    if (isSecureIpcError(err) && codes.includes(err.code)) return;
    throw err;
  }
}

const text = (data: Buffer) => data.toString('utf8');

export const TARGETS: Record<string, TargetSpec> = {
  frame: {
    description: 'the frame decoder, fed the input in pieces whose sizes the input chooses',
    fuzz: (data) =>
      only(['SIPC_ERR_FRAME_EMPTY', 'SIPC_ERR_FRAME_TOO_LARGE', 'SIPC_ERR_TRUNCATED'], () => {
        const decoder = new FrameDecoder(data.length > 0 ? 1 + (data[0]! << 8) : 1024);
        const step = 1 + (data[1] ?? 0);
        for (let at = 2; at < data.length; at += step) {
          decoder.push(data.subarray(at, at + step));
          while (decoder.next() !== undefined);
        }
        decoder.end();
      }),
    seeds: () => [Buffer.from([0x04, 0x07, 0x00, 0x03, 0x61, 0x62, 0x63, 0x00, 0x01, 0x7a])],
  },
  'handshake-payload': {
    description: 'handshake payload maps and the version fields of messages 1 and 2',
    fuzz: (data) =>
      only(['SIPC_ERR_PROTOCOL', 'SIPC_ERR_VERSION_MISMATCH'], () => {
        const payload = decodePayload(data);
        only(['SIPC_ERR_PROTOCOL'], () => void offeredVersions(payload));
        chosenVersion(payload, [1]);
      }),
    seeds: () => [
      encodePayload({ versions: [1] }),
      encodePayload({ version: 1 }, { cert: new Uint8Array(8) }),
    ],
  },
  envelope: {
    description: 'envelope v1 decoding and validation (never throws), and re-encoding what it accepts',
    fuzz: (data) => {
      const result = decodeEnvelope(data);
      if (!result.ok) {
        if (!isSecureIpcError(result.error, 'SIPC_ERR_BAD_ENVELOPE')) throw result.error;
        return;
      }
      // What validation accepts must be encodable again (a peer's envelope echoed, or replied to).
      only(['SIPC_ERR_INVALID_ARGUMENT'], () => void encodeEnvelope(result.envelope));
    },
    seeds: () => [
      encodeEnvelope({ k: EnvelopeKind.Request, id: 1, m: 'notes.add', p: { text: 'hello' } }),
      encodeEnvelope({
        k: EnvelopeKind.Request,
        id: 2,
        m: '$ping',
        p: new Uint8Array(16),
        h: { timeout: 500, idem: 'k1' },
      }),
      encodeEnvelope({ k: EnvelopeKind.Error, id: 3, e: { code: 'SIPC_ERR_FORBIDDEN', message: 'no' } }),
      encodeEnvelope({ k: EnvelopeKind.Event, m: 'files.changed', p: [1, 'a', { b: null }] }),
      encodeEnvelope({ k: EnvelopeKind.Credit, id: 4, p: 16 }),
    ],
  },
  certificate: {
    description: 'certificates, as bytes and as armored text',
    fuzz: (data) =>
      only(['SIPC_ERR_BAD_CERTIFICATE'], () => {
        if ((data[0] ?? 0) & 1) certificateFromText(text(data.subarray(1)));
        else decodeCertificate(data.subarray(1));
      }),
    seeds: () => {
      const authority = generateAuthority();
      const cert = issueCertificate(authority, {
        subjectKey: generateKeyPair().publicKey,
        name: 'app',
        roles: ['a', 'b'],
      });
      return [
        Buffer.concat([Buffer.from([0]), encodeCertificate(cert)]),
        Buffer.from(`\x01${certificateToText(cert)}`),
      ];
    },
  },
  'revocation-list': {
    description: 'the revocation list file (JSON)',
    fuzz: (data) => only(['SIPC_ERR_INVALID_ARGUMENT'], () => void parseRevocationList(text(data))),
    seeds: () => [
      Buffer.from(
        JSON.stringify({
          version: 1,
          serials: [1, 2, 4294967295],
          keys: [encodeKey(generateKeyPair().publicKey)],
        }),
      ),
    ],
  },
  'key-text': {
    description:
      'key text (44-character base64), secret key files and the armor of key and certificate files',
    fuzz: (data) =>
      only(['SIPC_ERR_BAD_KEY'], () => {
        const mode = (data[0] ?? 0) % 3;
        const body = text(data.subarray(1));
        if (mode === 1) dearmor(body, 'AUTHORITY KEY', 32, 'SIPC_ERR_BAD_KEY');
        else if (mode === 2) secretKeyFromText(body);
        else decodeKey(body);
      }),
    seeds: () => [
      Buffer.from(`\x00${encodeKey(generateKeyPair().publicKey)}`),
      Buffer.from(`\x01${armor('AUTHORITY KEY', new Uint8Array(32).fill(7))}`),
      Buffer.from(`\x02${secretKeyToText(generateKeyPair().secretKey)}`),
    ],
  },
};
