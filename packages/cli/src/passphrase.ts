/**
 * The passphrase of an encrypted key file, for the commands that read or write one (`keygen
 * --encrypt`, `outbox inspect|verify --key-file`): `--passphrase-file FILE` (core's
 * `readPassphraseFile`: the file's bytes without one trailing newline, a regular file group and
 * others cannot access, exit 3 otherwise), else the `SECURE_IPC_PASSPHRASE` environment variable;
 * neither is a usage error (exit 2). There is no prompt. The caller wipes the bytes once used.
 */
import { readPassphraseFile } from '@secure-ipc/core';
import { CliError } from './io.js';

/** The environment variable read for a key file's passphrase when `--passphrase-file` is absent. */
export const PASSPHRASE_ENV = 'SECURE_IPC_PASSPHRASE';

/** The passphrase `--passphrase-file` names, else `SECURE_IPC_PASSPHRASE`; `option` names who needs it. */
export async function readPassphrase(file: string | undefined, option: string): Promise<Buffer> {
  if (file !== undefined) return readPassphraseFile(file);
  const env = process.env[PASSPHRASE_ENV];
  if (env === undefined || env === '')
    throw new CliError(
      `${option} needs its passphrase: --passphrase-file FILE or the ${PASSPHRASE_ENV} variable`,
    );
  return Buffer.from(env, 'utf8');
}
