/**
 * The prologue binds the application id (and optionally a pre-shared admission secret) into the
 * handshake hash: peers that disagree fail authentication at message 2 or 3. A tunnel's prologue
 * (docs/tunnel.md) binds its context bytes instead, under a prefix of its own.
 */

import {
  MAX_APP_ID_LENGTH,
  MAX_TUNNEL_BINDING_LENGTH,
  PROLOGUE_PREFIX,
  PSK_BINDING_LABEL,
  TUNNEL_PROLOGUE_PREFIX,
} from '../constants.js';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';

const PREFIX = Buffer.from(PROLOGUE_PREFIX, 'ascii');
const LABEL = Buffer.from(PSK_BINDING_LABEL, 'ascii');
const TUNNEL_PREFIX = Buffer.from(TUNNEL_PROLOGUE_PREFIX, 'ascii');
const PSK_BINDING_LENGTH = 32;

/**
 * 'secure-ipc/1' 0x00 utf8(appId), then, with a psk, 0x00 BLAKE2b-256(key = psk, msg = 'secure-ipc/psk/1').
 * The app id may not contain NUL, so the encoding is unambiguous.
 */
export function buildPrologue(appId = '', psk?: Uint8Array): Buffer {
  if (typeof appId !== 'string' || appId.includes('\0'))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'appId must be a string without NUL characters');
  const id = Buffer.from(appId, 'utf8');
  if (id.length > MAX_APP_ID_LENGTH)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `appId is longer than ${MAX_APP_ID_LENGTH} UTF-8 bytes`);
  const parts = [PREFIX, Buffer.from([0]), id];
  if (psk !== undefined) {
    if (
      !(psk instanceof Uint8Array) ||
      psk.byteLength < sodium.crypto_generichash_KEYBYTES_MIN ||
      psk.byteLength > sodium.crypto_generichash_KEYBYTES_MAX
    )
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `psk must be ${sodium.crypto_generichash_KEYBYTES_MIN} to ${sodium.crypto_generichash_KEYBYTES_MAX} bytes`,
      );
    const binding = Buffer.alloc(PSK_BINDING_LENGTH);
    sodium.crypto_generichash(binding, LABEL, psk);
    parts.push(Buffer.from([0]), binding);
  }
  return Buffer.concat(parts);
}

/**
 * 'secure-ipc/tunnel/1' 0x00 binding: the context two tunnel ends agree on and a relay cannot
 * change. The binding is the last field, so any bytes (NUL included) are unambiguous.
 */
export function buildTunnelPrologue(binding: Uint8Array): Buffer {
  if (!(binding instanceof Uint8Array) || binding.byteLength > MAX_TUNNEL_BINDING_LENGTH)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `binding must be a Uint8Array of at most ${MAX_TUNNEL_BINDING_LENGTH} bytes`,
    );
  return Buffer.concat([TUNNEL_PREFIX, Buffer.from([0]), binding]);
}
