/**
 * `secure-ipc audit verify|tail|proof|hash` (docs/audit.md): read a tamper-evident audit log
 * directory without changing a byte. `verify` runs core's `verifyAuditLog` from the epoch-0 key
 * and prints one line per problem with its record index; `tail` prints the last records as JSON
 * lines (what they say, not whether to trust it: that is `verify`); `proof` prints the inclusion
 * proof of one record, or the consistency proof between two tree sizes, for a witness to check
 * against checkpoints it holds; `hash` the keyed hash of a call. `witness-key` and `witness`
 * (./audit-witness.ts) make a witness's key and run a witness round against a live server.
 */
import { promises as fs } from 'node:fs';
import {
  type AuditLogState,
  type AuditProblem,
  type AuditReport,
  auditMessageHash,
  isSecureIpcError,
  MerkleTree,
  readAuditHashKey,
  readAuditLog,
  readAuditWitnessState,
  verifyAuditLog,
} from '@secure-ipc/core';
import { jsonOption, nonNegativeInt, parse, positiveInt, required } from '../args.js';
import { CliError, type CliIo, ExitCode, printable, printJSON, println } from '../io.js';
import { parseJSONParams, toJSONValue } from '../json-values.js';
import { witness, witnessKey } from './audit-witness.js';

/** Usage lines. */
export const usage =
  'secure-ipc audit verify DIR --anchor KEY [--witness FILE]... [--json]\n' +
  '  secure-ipc audit tail DIR [--count N]\n' +
  '  secure-ipc audit proof DIR (INDEX | --from SIZE) [--size N] [--json]\n' +
  '  secure-ipc audit hash --key FILE METHOD [PARAMS_JSON] [--json]\n' +
  '  secure-ipc audit witness-key --out FILE [--name NAME] [--json]\n' +
  '  secure-ipc audit witness ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) --witness-key FILE --name NAME --state FILE [--origin ORIGIN] [--anchor KEY] [--app-id ID] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

/** The subcommands (error lines name them: `secure-ipc audit verify: ...`). */
export const subcommands = ['verify', 'tail', 'proof', 'hash', 'witness-key', 'witness'] as const;

// A witness file holds one checkpoint note; C2SP notes are small.
const MAX_WITNESS_FILE = 65_536;

const options = {
  anchor: { type: 'string' },
  witness: { type: 'string', multiple: true },
  count: { type: 'string' },
  size: { type: 'string' },
  from: { type: 'string' },
  key: { type: 'string' },
  ...jsonOption,
} as const;

type Values = ReturnType<typeof parse<typeof options>>['values'];

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  // Their own options (witness connects as `call` does).
  if (sub === 'witness-key') return witnessKey(rest, io);
  if (sub === 'witness') return witness(rest, io);
  if (sub !== 'verify' && sub !== 'tail' && sub !== 'proof' && sub !== 'hash')
    throw new CliError(
      `unknown audit subcommand ${JSON.stringify(sub ?? '')} (expected verify, tail, proof, hash, witness-key or witness)`,
    );
  const { values, positionals } = parse(rest, options, true);
  const only = (allowed: readonly (keyof Values)[]) => {
    for (const k of Object.keys(values) as (keyof Values)[])
      if (!allowed.includes(k)) throw new CliError(`--${k} does not go with audit ${sub}`);
  };
  if (sub === 'verify') {
    only(['anchor', 'witness', 'json']);
    if (positionals.length !== 1)
      throw new CliError(`audit verify takes one DIR (got ${positionals.length})`);
    return verify(positionals[0]!, values, io);
  }
  if (sub === 'tail') {
    only(['count', 'json']);
    if (positionals.length !== 1) throw new CliError(`audit tail takes one DIR (got ${positionals.length})`);
    return tail(positionals[0]!, positiveInt(values.count, 'count', 10), io);
  }
  if (sub === 'hash') {
    only(['key', 'json']);
    if (positionals.length < 1 || positionals.length > 2)
      throw new CliError(`audit hash takes METHOD and optionally PARAMS_JSON (got ${positionals.length})`);
    return hash(required(values.key, 'key'), positionals[0]!, positionals[1], values.json === true, io);
  }
  only(['size', 'from', 'json']);
  const wanted = values.from === undefined ? 2 : 1;
  if (positionals.length !== wanted)
    throw new CliError('audit proof takes DIR and INDEX, or DIR and --from SIZE (a consistency proof)');
  return proof(positionals[0]!, positionals[1], values, io);
}

/**
 * The keyed hash a server's `rpc.call` record holds (field `h`) for METHOD called with PARAMS
 * (JSON, in the CLI's value forms; absent: no params), printed as base64 as `audit tail` prints it.
 */
async function hash(
  keyFile: string,
  method: string,
  paramsText: string | undefined,
  json: boolean,
  io: CliIo,
) {
  const params = paramsText === undefined ? undefined : parseJSONParams(paramsText);
  const key = await loadAuditHashKey(keyFile);
  try {
    const h = Buffer.from(auditMessageHash(key, method, params)).toString('base64');
    if (json) printJSON(io.stdout, { method, hash: h });
    else println(io.stdout, h);
  } finally {
    key.fill(0);
  }
  return ExitCode.Ok;
}

/** An audit hash key file (`audit hash --key`, `serve --audit-hash-key`); unreadable or malformed: exit 3. */
export async function loadAuditHashKey(keyFile: string): Promise<Uint8Array> {
  try {
    return await readAuditHashKey(keyFile);
  } catch (err) {
    throw new CliError(`cannot read the audit hash key ${printable(keyFile)}`, ExitCode.KeyOrFile, {
      cause: err,
    });
  }
}

/**
 * Run `op` on the audit log directory `dir`: core's errors about the directory are file problems
 * here (exit 3), as in `outbox` (`serve --audit` opens its log through it too).
 */
export async function guarded<T>(dir: string, op: () => Promise<T>): Promise<T> {
  try {
    return await op();
  } catch (err) {
    if (
      isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY') ||
      isSecureIpcError(err, 'SIPC_ERR_AUDIT_CORRUPT')
    )
      throw new CliError(`cannot read the audit log ${printable(dir)}`, ExitCode.KeyOrFile, { cause: err });
    throw err;
  }
}

async function readWitness(file: string): Promise<string> {
  try {
    const st = await fs.lstat(file);
    if (!st.isFile()) throw new CliError(`--witness ${file} is not a regular file`, ExitCode.KeyOrFile);
    if (st.size > MAX_WITNESS_FILE)
      throw new CliError(`--witness ${file} holds more than ${MAX_WITNESS_FILE} bytes`, ExitCode.KeyOrFile);
    const text = await fs.readFile(file, 'utf8');
    // A witness state file (`audit witness --state`): its checkpoint, read with the state's checks.
    if (text.trimStart().startsWith('{')) return (await readAuditWitnessState(file))?.checkpoint ?? text;
    return text;
  } catch (err) {
    if (err instanceof CliError || isSecureIpcError(err)) throw err;
    throw new CliError(`cannot read --witness ${file}`, ExitCode.KeyOrFile, { cause: err });
  }
}

function problemLine(p: AuditProblem): string {
  const range =
    p.toIndex !== undefined && p.toIndex !== p.index ? `${p.index}-${p.toIndex}` : String(p.index);
  return `${range} ${p.kind}: ${printable(p.message)}`;
}

function reportJSON(r: AuditReport): Record<string, unknown> {
  return {
    ok: r.ok,
    origin: r.origin ?? null,
    size: r.size,
    root: Buffer.from(r.root).toString('base64'),
    signedSize: r.signedSize,
    verifiedCheckpoints: r.verifiedCheckpoints,
    epochs: r.epochs.map((e) => ({
      epoch: e.epoch,
      startIndex: e.startIndex,
      publicKey: Buffer.from(e.publicKey).toString('base64'),
    })),
    problems: r.problems.map((p) => ({
      kind: p.kind,
      index: p.index,
      toIndex: p.toIndex ?? null,
      checkpoint: p.checkpoint ?? null,
      message: p.message,
    })),
  };
}

async function verify(dir: string, values: Values, io: CliIo): Promise<number> {
  const anchorKey = required(values.anchor, 'anchor');
  const witnessCheckpoints = await Promise.all((values.witness ?? []).map(readWitness));
  const report = await guarded(dir, () => verifyAuditLog(dir, { anchorKey, witnessCheckpoints }));
  if (values.json === true) printJSON(io.stdout, reportJSON(report));
  else {
    for (const p of report.problems) println(io.stdout, problemLine(p));
    const origin = printable(report.origin ?? '(unknown origin)');
    println(
      io.stdout,
      report.ok
        ? `ok: ${origin}, ${report.size} records, ${report.epochs.length} epochs, ${report.verifiedCheckpoints} checkpoints verified`
        : `FAILED: ${origin}, ${report.problems.length} problems`,
    );
  }
  return report.ok ? ExitCode.Ok : ExitCode.Failed;
}

async function tail(dir: string, count: number, io: CliIo): Promise<number> {
  const state = await guarded(dir, () => readAuditLog(dir));
  for (let i = Math.max(0, state.records.length - count); i < state.records.length; i++) {
    const r = state.records[i];
    const leafHash = Buffer.from(state.leafHashes[i]!).toString('base64');
    printJSON(
      io.stdout,
      r === undefined
        ? { index: i, leafHash, error: 'the record does not decode' }
        : { index: r.index, type: r.type, at: r.at, fields: toJSONValue(r.fields), leafHash },
    );
  }
  return ExitCode.Ok;
}

async function proof(dir: string, indexText: string | undefined, values: Values, io: CliIo): Promise<number> {
  const state: AuditLogState = await guarded(dir, () => readAuditLog(dir));
  const size = nonNegativeInt(values.size, 'size', state.leafHashes.length);
  if (size > state.leafHashes.length || size === 0)
    throw new CliError(`--size must be from 1 to the ${state.leafHashes.length} records present`);
  const b64 = (h: Uint8Array) => Buffer.from(h).toString('base64');
  // One pass over the leaves; every root and proof after it is O(log n).
  const tree = MerkleTree.from(state.leafHashes);
  const root = tree.rootAt(size);
  if (values.from !== undefined) {
    const from = positiveInt(values.from, 'from', 1);
    if (from > size) throw new CliError('--from must not exceed --size');
    const path = tree.consistencyProof(from, size).map(b64);
    const fromRoot = b64(tree.rootAt(from));
    if (values.json === true) printJSON(io.stdout, { from, size, fromRoot, root: b64(root), proof: path });
    else {
      println(io.stdout, `consistency from ${from} (root ${fromRoot}) to ${size} (root ${b64(root)})`);
      for (const p of path) println(io.stdout, p);
    }
    return ExitCode.Ok;
  }
  if (!/^\d+$/.test(indexText!) || Number(indexText) >= size)
    throw new CliError(`INDEX must be a record index below ${size}`);
  const index = Number(indexText);
  const path = tree.inclusionProof(index, size).map(b64);
  const leafHash = b64(state.leafHashes[index]!);
  if (values.json === true) printJSON(io.stdout, { index, size, leafHash, root: b64(root), proof: path });
  else {
    println(io.stdout, `record ${index} (leaf ${leafHash}) in the tree of ${size} (root ${b64(root)})`);
    for (const p of path) println(io.stdout, p);
  }
  return ExitCode.Ok;
}
