/**
 * `secure-ipc keygen [--out FILE] [--import FILE|-] [--encrypt [--passphrase-file FILE]]`: a new
 * X25519 secret key — or, with `--import`, the key of an existing file or of stdin, unmarked (old
 * secure-ipc, `wg genkey`) or not — as a marked secret key file (docs/protocol.md "Files"), on
 * stdout or in FILE (0600); with `--encrypt` (which needs `--out`) as a passphrase-encrypted key
 * file (docs/identity.md "Encrypted key files": Argon2id at libsodium's MODERATE limits), the
 * passphrase from `--passphrase-file` or SECURE_IPC_PASSPHRASE. With `--json` (which needs
 * `--out`): one line with the file and the public key, never the secret.
 */
import {
  encodeKey,
  generateKeyPair,
  type KeyPair,
  secretKeyToText,
  writeEncryptedKeyFile,
  writeSecretKeyFile,
  zeroKeyPair,
} from '@secure-ipc/core';
import { jsonOption, parse } from '../args.js';
import { CliError, type CliIo, createSecretFile, ExitCode, printJSON, println } from '../io.js';
import { readPassphrase } from '../passphrase.js';
import { loadSecretKey } from '../secret-key-input.js';

/** Usage line. */
export const usage =
  'secure-ipc keygen [--out FILE] [--import FILE|-] [--encrypt [--passphrase-file FILE]] [--json]';

/** The key to write: a new one, or the one `--import` names, and where it came from. */
interface KeyToWrite {
  keyPair: KeyPair;
  /** `--import`'s FILE (or `-`), and whether that key was unmarked. */
  imported?: { from: string; unmarked: boolean };
}

async function keyToWrite(from: string | undefined, io: CliIo): Promise<KeyToWrite> {
  if (from === undefined) return { keyPair: generateKeyPair() };
  // Converting an unmarked key is the point of --import: it is accepted without the opt-in flag.
  const { keyPair, unmarked } = await loadSecretKey(from === '-' ? undefined : from, io, true);
  return { keyPair, imported: { from, unmarked } };
}

function importedLine(key: KeyToWrite): string | undefined {
  if (key.imported === undefined) return undefined;
  const { from, unmarked } = key.imported;
  return (
    `imported ${unmarked ? 'the unmarked' : 'the'} secret key of ${from === '-' ? 'stdin' : from}; public key: ${encodeKey(key.keyPair.publicKey)} ` +
    '(check it is the one your peers pin)'
  );
}

// An existing file is never overwritten; any other failure is core's (a file problem, exit 3).
function writeKeyFile(out: string, key: KeyPair, passphrase: Buffer | undefined): Promise<void> {
  return createSecretFile(out, () =>
    passphrase === undefined
      ? writeSecretKeyFile(out, key.secretKey)
      : writeEncryptedKeyFile(out, key.secretKey, passphrase),
  );
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    out: { type: 'string' },
    import: { type: 'string' },
    encrypt: { type: 'boolean' },
    'passphrase-file': { type: 'string' },
    ...jsonOption,
  });
  const json = values.json === true;
  const encrypt = values.encrypt === true;
  // JSON output is for logs and scripts: a secret key never goes into it (README, "JSON output").
  if (json && values.out === undefined)
    throw new CliError('--json needs --out FILE: the secret key is written to FILE, never printed as JSON');
  if (encrypt && values.out === undefined)
    throw new CliError('--encrypt needs --out FILE: an encrypted key file is written to FILE');
  if (!encrypt && values['passphrase-file'] !== undefined)
    throw new CliError('--passphrase-file goes with --encrypt');
  // The passphrase before the key: a missing or insecure passphrase file costs no key.
  const passphrase = encrypt ? await readPassphrase(values['passphrase-file'], '--encrypt') : undefined;
  try {
    return await writeKey(values.out, values.import, passphrase, json, io);
  } finally {
    passphrase?.fill(0);
  }
}

/** Make or import the key and write it (`passphrase`: encrypted); the key is zeroed after. */
async function writeKey(
  out: string | undefined,
  from: string | undefined,
  passphrase: Buffer | undefined,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const key = await keyToWrite(from, io);
  try {
    const line = importedLine(key);
    if (line !== undefined && !json) println(io.stderr, line);
    if (out === undefined) {
      io.stdout.write(secretKeyToText(key.keyPair.secretKey));
      return ExitCode.Ok;
    }
    await writeKeyFile(out, key.keyPair, passphrase);
    const publicKey = encodeKey(key.keyPair.publicKey);
    if (json)
      printJSON(io.stdout, {
        [passphrase === undefined ? 'secretKeyFile' : 'encryptedKeyFile']: out,
        publicKey,
        ...(key.imported ? { importedFrom: key.imported.from, unmarked: key.imported.unmarked } : {}),
      });
    else
      println(
        io.stderr,
        passphrase === undefined
          ? `wrote secret key to ${out} (mode 0600); public key: ${publicKey}`
          : `wrote the passphrase-encrypted secret key to ${out} (mode 0600; Argon2id, libsodium's MODERATE limits); public key: ${publicKey}`,
      );
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(key.keyPair);
  }
}
