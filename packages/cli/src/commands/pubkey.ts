/** `secure-ipc pubkey [--key FILE]`: the public key of a secret key read from FILE or stdin. */
import { decodeKey, encodeKey, keyPairFromSecretKey, readSecretKeyFile, zeroKeyPair } from '@secure-ipc/core';
import { parse } from '../args.js';
import { CliError, type CliIo, ExitCode, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc pubkey [--key FILE]';

// A key on stdin is 44 base64 characters plus a line ending; refuse anything much larger before buffering it.
const MAX_STDIN = 256;

async function readStdinKey(stdin: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
    size += b.length;
    if (size > MAX_STDIN) throw new CliError('stdin holds more than one key', ExitCode.KeyOrFile);
    chunks.push(b);
  }
  const raw = Buffer.concat(chunks);
  try {
    return decodeKey(raw.toString('latin1').trim());
  } catch {
    throw new CliError('stdin is not a secret key (44 characters of standard base64)', ExitCode.KeyOrFile);
  } finally {
    // Plain fill is enough here: JavaScript engines do not elide stores to a live buffer.
    raw.fill(0);
    for (const c of chunks) c.fill(0);
  }
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { key: { type: 'string' } });
  let kp: ReturnType<typeof keyPairFromSecretKey>;
  if (values.key !== undefined) {
    kp = await readSecretKeyFile(values.key);
  } else {
    const secret = await readStdinKey(io.stdin);
    try {
      kp = keyPairFromSecretKey(secret);
    } finally {
      secret.fill(0);
    }
  }
  try {
    println(io.stdout, encodeKey(kp.publicKey));
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(kp);
  }
}
