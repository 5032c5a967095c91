/** `secure-ipc keygen [--out FILE]`: a new X25519 secret key, base64, to stdout or to FILE (0600). */
import { encodeKey, generateKeyPair, writeSecretKeyFile, zeroKeyPair } from '@secure-ipc/core';
import { parse } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc keygen [--out FILE]';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { out: { type: 'string' } });
  const kp = generateKeyPair();
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
      println(io.stdout, encodeKey(kp.secretKey));
    }
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(kp);
  }
}
