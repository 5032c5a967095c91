/**
 * Text armor for identity files (certificates, authority keys, encrypted key files): a
 * `-----BEGIN SECURE-IPC <LABEL>-----` line, standard base64 wrapped at 64 columns, an END line.
 * Text so that files survive copy and paste and `cat`; the label names the content so that one
 * kind of file is never mistaken for another (an authority key passed where a certificate is
 * expected fails with a clear error instead of being misread).
 */
import { createError, type ErrorCode } from '../errors.js';

/** Wrap bytes in an armor block with the given label (e.g. `CERTIFICATE`). */
export function armor(label: string, bytes: Uint8Array): string {
  const b64 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
  const lines = b64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN SECURE-IPC ${label}-----\n${lines.join('\n')}\n-----END SECURE-IPC ${label}-----\n`;
}

/**
 * Parse one armor block with `label`; `maxBytes` caps the decoded size and is checked on the
 * text length before decoding. Throws `code` on anything else.
 */
export function dearmor(text: string, label: string, maxBytes: number, code: ErrorCode): Uint8Array {
  // base64 expands 3 bytes to 4 characters, plus line breaks and the two marker lines.
  if (text.length > Math.ceil(maxBytes / 3) * 4 * 1.05 + 200)
    throw createError(code, `The ${label.toLowerCase()} file is larger than ${maxBytes} bytes`);
  const begin = `-----BEGIN SECURE-IPC ${label}-----`;
  const end = `-----END SECURE-IPC ${label}-----`;
  const lines = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim());
  if (lines.length < 3 || lines[0] !== begin || lines[lines.length - 1] !== end)
    throw createError(code, `Not a secure-ipc ${label.toLowerCase()} file (expected "${begin}")`);
  const body = lines.slice(1, -1).join('');
  if (body.length === 0 || body.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(body))
    throw createError(code, `The ${label.toLowerCase()} file is not valid base64`);
  const bytes = Buffer.from(body, 'base64');
  if (bytes.byteLength > maxBytes)
    throw createError(code, `The ${label.toLowerCase()} is larger than ${maxBytes} bytes`);
  return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
