/** `secure-ipc pubkey [--key FILE] [--allow-unmarked-key]`: the public key of a secret key read from FILE or stdin. */
import { encodeKey, keyFingerprint, zeroKeyPair } from '@secure-ipc/core';
import { jsonOption, parse } from '../args.js';
import { type CliIo, ExitCode, reporter } from '../io.js';
import { allowUnmarkedOption, loadKeyOption } from '../secret-key-input.js';

/** Usage line. */
export const usage = 'secure-ipc pubkey [--key FILE] [--allow-unmarked-key] [--json]';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { key: { type: 'string' }, ...allowUnmarkedOption, ...jsonOption });
  const kp = await loadKeyOption(values.key, io, values['allow-unmarked-key'] === true);
  try {
    // The 44-character form: what --allow, --server-key, --pubkey and wg take.
    const publicKey = encodeKey(kp.publicKey);
    reporter(io, values.json)({ publicKey, fingerprint: keyFingerprint(kp.publicKey) }, publicKey);
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(kp);
  }
}
