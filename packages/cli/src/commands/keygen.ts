/**
 * `secure-ipc keygen [--out FILE] [--import FILE|-]`: a new X25519 secret key — or, with
 * `--import`, the key of an existing file or of stdin, unmarked (old secure-ipc, `wg genkey`) or
 * not — as a marked secret key file (docs/protocol.md "Files"), on stdout or in FILE (0600).
 */
import {
  encodeKey,
  generateKeyPair,
  type KeyPair,
  secretKeyToText,
  writeSecretKeyFile,
  zeroKeyPair,
} from '@secure-ipc/core';
import { parse } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';
import { loadSecretKey } from '../secret-key-input.js';

/** Usage line. */
export const usage = 'secure-ipc keygen [--out FILE] [--import FILE|-]';

async function keyToConvert(from: string, io: CliIo): Promise<KeyPair> {
  // Converting an unmarked key is the point of --import: it is accepted without the opt-in flag.
  const { keyPair, unmarked } = await loadSecretKey(from === '-' ? undefined : from, io, true);
  println(
    io.stderr,
    `imported ${unmarked ? 'the unmarked' : 'the'} secret key of ${from === '-' ? 'stdin' : from}; public key: ${encodeKey(keyPair.publicKey)} ` +
      '(check it is the one your peers pin)',
  );
  return keyPair;
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' }, import: { type: 'string' } });
  const kp = values.import !== undefined ? await keyToConvert(values.import, io) : generateKeyPair();
  try {
    if (values.out !== undefined) {
      await writeSecretKeyFile(values.out, kp.secretKey).catch((err: unknown) => {
        const os = (err as { cause?: { code?: string } }).cause?.code;
        throw new CliError(
          `cannot create ${values.out}: ${os === 'EEXIST' ? 'the file exists (never overwritten)' : (os ?? describeError(err))}`,
          ExitCode.KeyOrFile,
        );
      });
      println(
        io.stderr,
        `wrote secret key to ${values.out} (mode 0600); public key: ${encodeKey(kp.publicKey)}`,
      );
    } else {
      io.stdout.write(secretKeyToText(kp.secretKey));
    }
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(kp);
  }
}
