/**
 * `secure-ipc audit witness-key --out FILE [--name NAME]` and `secure-ipc audit witness ADDRESS
 * ... --witness-key FILE --name NAME --state FILE` (package README, "Witnessing a server's audit
 * log"): a witness's key, and one witness round against a live `serve --audit`. A round reads the
 * state file, asks the server for an update over the channel `call` opens, verifies it (core's
 * witness: a log that went back or shows another tree is a fork), cosigns and saves the state. A
 * fork exits 7 with the state untouched and the checkpoint presented written beside it.
 */
import { promises as fs } from 'node:fs';
import {
  cosignatureKeyId,
  createAuditWitness,
  decodeKey,
  generateWitnessKey,
  isSecureIpcError,
  parseCheckpoint,
  parseVerifierKey,
  readAuditWitnessState,
  readWitnessKeyFile,
  type SecureIpcError,
  type WitnessRoundResult,
  writeAuditWitnessState,
  writeWitnessKeyFile,
} from '@secure-ipc/core';
import { jsonOption, parse, required } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { CliError, type CliIo, createSecretFile, ExitCode, printable, println, reporter } from '../io.js';

// The C2SP signed-note signature type of a cosignature/v1 key (tlog-cosignature).
const COSIGNATURE_TYPE = 0x04;

/** A key name or origin as C2SP notes allow it: non-empty, no white space, no `+`. */
function nameArg(text: string | undefined, option: string): string {
  const name = required(text, option);
  if (/[\s+]/u.test(name)) throw new CliError(`--${option} must not contain white space or +`);
  return name;
}

/** `audit witness-key --out FILE [--name NAME]`: a new witness key file; prints its public key. */
export async function witnessKey(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { out: { type: 'string' }, name: { type: 'string' }, ...jsonOption },
    true,
  );
  if (positionals.length > 0)
    throw new CliError('audit witness-key takes no DIR or ADDRESS, only --out FILE');
  const out = required(values.out, 'out');
  const name = values.name === undefined ? undefined : nameArg(values.name, 'name');
  const secretKey = generateWitnessKey();
  const publicKey = new Uint8Array(secretKey.subarray(32));
  try {
    // Never over an existing file: it may be a witness key already given to servers.
    await createSecretFile(out, () => writeWitnessKeyFile(out, secretKey));
  } finally {
    secretKey.fill(0);
  }
  const b64 = Buffer.from(publicKey).toString('base64');
  let verifierKey: string | undefined;
  if (name !== undefined) {
    const id = cosignatureKeyId(name, publicKey).toString(16).padStart(8, '0');
    verifierKey = `${name}+${id}+${Buffer.from([COSIGNATURE_TYPE, ...publicKey]).toString('base64')}`;
  }
  if (values.json !== true) {
    println(
      io.stderr,
      `wrote witness key to ${out} (mode 0600); grant it with serve --grant-witness <the key below>`,
    );
    if (verifierKey !== undefined)
      println(io.stderr, `its cosignature verifier key as ${name}: ${verifierKey}`);
  }
  reporter(io, values.json)(
    { witnessKeyFile: out, publicKey: b64, ...(verifierKey === undefined ? {} : { verifierKey }) },
    b64,
  );
  return ExitCode.Ok;
}

/** `--anchor`: 32 bytes of base64, or the C2SP verifier key `serve --audit` printed (of `origin`). */
function anchorArg(text: string, origin: string): Uint8Array {
  try {
    return decodeKey(text.trim());
  } catch {
    // Not bare base64: a verifier key, below.
  }
  let vk: ReturnType<typeof parseVerifierKey>;
  try {
    vk = parseVerifierKey(text.trim());
  } catch (err) {
    throw new CliError('--anchor must be 32 bytes of base64 or a C2SP verifier key', ExitCode.KeyOrFile, {
      cause: err,
    });
  }
  if (vk.name !== origin)
    throw new CliError(
      `--anchor is the key of ${printable(vk.name)}, not of ${printable(origin)}`,
      ExitCode.KeyOrFile,
    );
  return vk.publicKey;
}

/** `STATE.fork-TIME.note` beside the state file (TIME in UTC, to the millisecond). */
function evidencePath(statePath: string): string {
  return `${statePath}.fork-${new Date().toISOString().replace(/[-:]/g, '')}.note`;
}

function sizeOf(note: unknown): string {
  try {
    return String(parseCheckpoint(note as string).size);
  } catch {
    return '?';
  }
}

/**
 * A fork: the checkpoint presented written beside the state as evidence (the held one is in the
 * state, unchanged), and the error that exits 7 naming both sizes.
 */
async function forkError(err: SecureIpcError, statePath: string, origin: string): Promise<CliError> {
  const held = err.details?.held;
  const presented = err.details?.presented;
  const file = evidencePath(statePath);
  let where = `evidence in ${file}`;
  try {
    await fs.writeFile(file, String(presented), { flag: 'wx', mode: 0o600 });
  } catch (writeErr) {
    where = `the evidence could not be written to ${file}: ${(writeErr as Error).message}`;
  }
  return new CliError(
    `the audit log ${printable(origin)} forked: the state holds a checkpoint of ${sizeOf(held)} records, ` +
      `the server presented ${sizeOf(presented)}; ${where}`,
    ExitCode.Fork,
    { cause: err },
  );
}

/** `audit witness ADDRESS ...`: one witness round; resolves with the exit code. */
export async function witness(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...clientOptions,
      'witness-key': { type: 'string' },
      name: { type: 'string' },
      state: { type: 'string' },
      origin: { type: 'string' },
      anchor: { type: 'string' },
      ...jsonOption,
    },
    true,
  );
  if (positionals.length !== 1)
    throw new CliError(`audit witness takes one ADDRESS (got ${positionals.length})`);
  const address = positionals[0]!;
  const keyFile = required(values['witness-key'], 'witness-key');
  const name = nameArg(values.name, 'name');
  const statePath = required(values.state, 'state');
  const wanted = values.origin === undefined ? undefined : nameArg(values.origin, 'origin');
  const state = await readAuditWitnessState(statePath);
  if (state === undefined && wanted === undefined)
    throw new CliError(`the first round needs --origin ORIGIN (${statePath} holds no state yet)`);
  if (state !== undefined && wanted !== undefined && wanted !== state.origin)
    throw new CliError(
      `--origin ${printable(wanted)} is not the origin of ${statePath} (${printable(state.origin)})`,
    );
  const origin = state?.origin ?? wanted!;
  const anchorKey = values.anchor === undefined ? undefined : anchorArg(values.anchor, origin);
  const secretKey = await readWitnessKeyFile(keyFile);
  let w: ReturnType<typeof createAuditWitness>;
  try {
    w = createAuditWitness({
      origin,
      name,
      secretKey,
      ...(anchorKey ? { anchorKey } : {}),
      ...(state ? { state } : {}),
    });
  } finally {
    secretKey.fill(0);
  }
  let round: WitnessRoundResult;
  try {
    round = await withClient(address, values, io, (client) => client.witnessAudit(w));
  } catch (err) {
    if (isSecureIpcError(err, 'SIPC_ERR_AUDIT_FORK')) throw await forkError(err, statePath, origin);
    throw err;
  } finally {
    w.close();
  }
  await writeAuditWitnessState(statePath, w.state!);
  reporter(io, values.json)(
    { origin, size: round.size, advanced: round.advanced, recorded: round.recorded, state: statePath },
    `witnessed ${printable(origin)} ${round.size} records (${round.advanced ? 'advanced' : 'unchanged'}), ` +
      `cosignature ${round.recorded ? 'recorded' : 'already recorded'}`,
  );
  return ExitCode.Ok;
}
