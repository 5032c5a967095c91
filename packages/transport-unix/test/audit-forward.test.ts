// forwardAuditRecords over real Unix datagram sockets: a socket bound in a temp directory plays
// journald or syslog, a real audit log writes the records, and the datagrams are parsed here by
// code written from the protocols (the journal native protocol, RFC 5424 §6), not from the encoder.
// The diagnostics channel is process-wide, so the tests run one at a time.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type AuditFields,
  type AuditLog,
  isSecureIpcError,
  openAuditLog,
  type SecureIpcError,
  verifyCheckpoint,
  verifyInclusion,
} from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { forwardAuditRecords } from '../src/index.js';
import { bindDatagramReceiver, type DatagramReceiver } from '../src/unix-datagram.js';
import { tempDir } from './helpers.js';

const HOSTILE_VALUE = 'x"] [secure-ipc@32473 index="999"]\nMESSAGE=forged\\';
const ODD_NAME = 'we!rd name]=';

async function setup(t: ExecutionContext) {
  const dir = tempDir(t);
  const socketPath = join(dir, 'receiver.sock');
  const receiver = bindDatagramReceiver(socketPath);
  t.teardown(() => receiver.close());
  const open = async (options: { maxRecordBytes?: number } = {}) => {
    const log = await openAuditLog({ dir: join(dir, 'audit'), origin: 'test.example/audit', ...options });
    t.teardown(() => log.close());
    return log;
  };
  return { dir, socketPath, receiver, open };
}

function drain(receiver: DatagramReceiver): Buffer[] {
  const out: Buffer[] = [];
  for (let d = receiver.receive(); d !== undefined; d = receiver.receive()) out.push(d);
  return out;
}

/** The journal native protocol, read back: NAME=value\n, or NAME\n + u64le length + value + \n. */
function parseJournal(d: Buffer): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  let i = 0;
  while (i < d.length) {
    const nl = d.indexOf(0x0a, i);
    if (nl < 0) throw new Error('a field without its newline');
    const eq = d.indexOf(0x3d, i);
    let name: string;
    let value: Buffer;
    if (eq >= 0 && eq < nl) {
      name = d.toString('latin1', i, eq);
      value = d.subarray(eq + 1, nl);
      i = nl + 1;
    } else {
      name = d.toString('latin1', i, nl);
      const length = Number(d.readBigUInt64LE(nl + 1));
      value = d.subarray(nl + 9, nl + 9 + length);
      if (d[nl + 9 + length] !== 0x0a) throw new Error('a binary field without its final newline');
      i = nl + 10 + length;
    }
    if (!/^[A-Z0-9][A-Z0-9_]*$/.test(name) || name.startsWith('_') || name.length > 64)
      throw new Error(`invalid journal field name ${JSON.stringify(name)}`);
    fields.set(name, [...(fields.get(name) ?? []), value.toString('utf8')]);
  }
  return fields;
}

type StructuredData = Map<string, Map<string, string>>;

/**
 * RFC 5424 STRUCTURED-DATA from `s[start]`: SD-ELEMENTs until a space or the end. In a PARAM-VALUE,
 * `\"`, `\\` and `\]` are the escaped characters and `\uXXXX` is this forwarder's control character.
 */
function parseStructuredData(s: string, start: number): { sd: StructuredData; end: number } {
  const sd: StructuredData = new Map();
  let i = start;
  const expect = (c: string) => {
    if (s[i] !== c) throw new Error(`expected ${c} at ${i}: ${s.slice(i, i + 20)}`);
    i++;
  };
  const sdName = () => {
    const from = i;
    while (i < s.length && !' =]"'.includes(s[i]!)) i++;
    if (i === from || i - from > 32) throw new Error(`bad SD-NAME at ${from}`);
    return s.slice(from, i);
  };
  while (s[i] === '[') {
    i++;
    const id = sdName();
    if (sd.has(id)) throw new Error(`SD-ID ${id} twice`);
    const params = new Map<string, string>();
    while (s[i] === ' ') {
      i++;
      const name = sdName();
      expect('=');
      expect('"');
      let value = '';
      while (s[i] !== '"') {
        if (i >= s.length) throw new Error('unterminated PARAM-VALUE');
        if (s[i] === ']') throw new Error(`an unescaped ] in a PARAM-VALUE at ${i}`);
        if (s[i] === '\\' && '"\\]'.includes(s[i + 1]!)) {
          value += s[i + 1];
          i += 2;
        } else if (s[i] === '\\' && s[i + 1] === 'u') {
          value += String.fromCharCode(Number.parseInt(s.slice(i + 2, i + 6), 16));
          i += 6;
        } else value += s[i++];
      }
      i++;
      params.set(name, value);
    }
    expect(']');
    sd.set(id, params);
  }
  return { sd, end: i };
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID SD MSG`. */
function parse5424(d: Buffer) {
  const s = d.toString('utf8');
  const m = /^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) /.exec(s);
  if (m === null) throw new Error(`not RFC 5424: ${s.slice(0, 80)}`);
  const { sd, end } = parseStructuredData(s, m[0].length);
  if (s[end] !== ' ') throw new Error('no space after the structured data');
  const group = (n: number) => m[n] ?? '';
  return {
    pri: Number(group(1)),
    timestamp: group(2),
    hostname: group(3),
    appName: group(4),
    procId: group(5),
    msgId: group(6),
    sd,
    msg: s.slice(end + 1),
  };
}

/** `<PRI>Mmm dd hh:mm:ss TAG[PID]: audit TYPE SD`. */
function parse3164(d: Buffer) {
  const s = d.toString('utf8');
  const m = /^<(\d{1,3})>([A-Z][a-z]{2} [ 1-3]\d \d\d:\d\d:\d\d) ([^[\]: ]+)\[(\d+)\]: (audit \S+) /.exec(s);
  if (m === null) throw new Error(`not the BSD form: ${s.slice(0, 80)}`);
  const { sd, end } = parseStructuredData(s, m[0].length);
  if (end !== s.length) throw new Error('text after the structured data');
  const [pri, timestamp, tag, pid, msg] = m.slice(1) as [string, string, string, string, string];
  return { pri: Number(pri), timestamp, tag, pid, msg, sd };
}

/** What the tests append: a denial with hostile values, an allowed call, and the log's own epoch record. */
const RECORDS: { type: string; fields: AuditFields }[] = [
  {
    type: 'rpc.call',
    fields: {
      channel: 7,
      method: HOSTILE_VALUE,
      allowed: false,
      h: new Uint8Array([0xfb, 0xff, 0x00]),
      [ODD_NAME]: 'v',
    },
  },
  {
    type: 'channel.open',
    fields: { channel: 7, roles: ['admin', 'x]"'], durationMs: 12, nested: { k: null } },
  },
];

async function appendAll(log: AuditLog) {
  const results = [];
  for (const r of RECORDS) results.push(await log.append(r));
  return results;
}

/** A leaf hash the receiver got (base64) proves its index against the log's checkpoint. */
async function provable(log: AuditLog, index: number, leafHashBase64: string): Promise<boolean> {
  const head = verifyCheckpoint(await log.checkpoint(), log.publicKey, log.origin);
  if (head === undefined) return false;
  const proof = log.inclusionProof(index, head.size);
  return verifyInclusion(Buffer.from(leafHashBase64, 'base64'), index, head.size, proof, head.root);
}

const supported = process.platform === 'linux' || process.platform === 'darwin';
// Explicit platform gate: Unix datagram sockets are implemented on Linux and macOS only.
const unixOnly = supported ? test.serial : test.skip;
const otherOnly = supported ? test.skip : test.serial;

unixOnly(
  'journald: one native-protocol datagram per record, values in fields, WARN for a denial, provable leaf hash',
  async (t) => {
    const { socketPath, receiver, open } = await setup(t);
    const forwarder = forwardAuditRecords({ to: 'journald', socketPath, identifier: 'sipc-test' });
    t.teardown(() => forwarder.close());
    const log = await open(); // its genesis epoch record is the first datagram
    const results = await appendAll(log);
    const datagrams = drain(receiver);
    t.is(datagrams.length, 3);
    t.deepEqual([forwarder.sent, forwarder.dropped, forwarder.errors], [3, 0, 0]);
    const [epoch, denied, opened] = datagrams.map(parseJournal) as [
      Map<string, string[]>,
      Map<string, string[]>,
      Map<string, string[]>,
    ];
    const one = (f: Map<string, string[]>, name: string) => {
      const v = f.get(name);
      t.is(v?.length, 1, `${name} once`);
      return v![0]!;
    };

    t.is(one(epoch, 'SECURE_IPC_AUDIT_TYPE'), 'epoch');
    t.is(one(epoch, 'SECURE_IPC_AUDIT_INDEX'), '0');

    t.is(one(denied, 'MESSAGE'), 'audit rpc.call');
    t.is(one(denied, 'PRIORITY'), '4');
    t.is(one(denied, 'SYSLOG_FACILITY'), '10');
    t.is(one(denied, 'SYSLOG_IDENTIFIER'), 'sipc-test');
    t.is(one(denied, 'SECURE_IPC_AUDIT_ORIGIN'), 'test.example/audit');
    t.is(one(denied, 'SECURE_IPC_AUDIT_INDEX'), String(results[0]!.index));
    t.is(one(denied, 'SECURE_IPC_AUDIT_TYPE'), 'rpc.call');
    t.regex(one(denied, 'SECURE_IPC_AUDIT_AT'), /^\d{13}$/);
    t.is(one(denied, 'SECURE_IPC_AUDIT_LEAF_HASH'), Buffer.from(results[0]!.leafHash).toString('base64'));
    // The hostile value arrives whole in its own field; it forged no MESSAGE or other field.
    t.is(one(denied, 'SECURE_IPC_AUDIT_F_METHOD'), HOSTILE_VALUE);
    t.false(denied.has('MESSAGE') && denied.get('MESSAGE')!.length > 1);
    t.is(one(denied, 'SECURE_IPC_AUDIT_F_ALLOWED'), 'false');
    t.is(one(denied, 'SECURE_IPC_AUDIT_F_CHANNEL'), '7');
    t.is(one(denied, 'SECURE_IPC_AUDIT_F_H'), '+/8A');
    const odd = [...denied.keys()].filter((k) => k.startsWith('SECURE_IPC_AUDIT_F_WE_RD_NAME__'));
    t.is(odd.length, 1, 'the odd field name, sanitized');
    t.is(one(denied, odd[0]!), 'v');

    t.is(one(opened, 'PRIORITY'), '6');
    t.is(one(opened, 'SECURE_IPC_AUDIT_F_ROLES'), '["admin","x]\\""]');
    t.is(one(opened, 'SECURE_IPC_AUDIT_F_DURATION_MS'), '12');
    t.is(one(opened, 'SECURE_IPC_AUDIT_F_NESTED'), '{"k":null}');

    for (const [i, f] of [denied, opened].entries())
      t.true(await provable(log, results[i]!.index, one(f, 'SECURE_IPC_AUDIT_LEAF_HASH')), 'inclusion proof');
  },
);

unixOnly(
  'syslog 5424: header, MSGID, escaped structured data that parses back, severity in PRI',
  async (t) => {
    const { socketPath, receiver, open } = await setup(t);
    const forwarder = forwardAuditRecords({ to: 'syslog', format: '5424', socketPath, facility: 'auth' });
    t.teardown(() => forwarder.close());
    const log = await open();
    const results = await appendAll(log);
    const datagrams = drain(receiver);
    t.is(datagrams.length, 3);
    for (const d of datagrams) t.false(d.includes(0x0a), 'no newline in a syslog datagram');
    const [, denied, opened] = datagrams.map(parse5424);

    t.is(denied!.pri, 4 * 8 + 4); // auth.warning
    t.is(opened!.pri, 4 * 8 + 6); // auth.info
    t.is(new Date(denied!.timestamp).toISOString(), denied!.timestamp);
    t.is(denied!.appName, 'secure-ipc');
    t.is(denied!.procId, String(process.pid));
    t.is(denied!.msgId, 'rpc.call');
    t.is(denied!.msg, 'audit rpc.call');
    t.deepEqual([...denied!.sd.keys()], ['secure-ipc@32473', 'secure-ipc-fields@32473']);
    const own = denied!.sd.get('secure-ipc@32473')!;
    t.is(own.get('origin'), 'test.example/audit');
    t.is(own.get('index'), String(results[0]!.index));
    t.is(own.get('type'), 'rpc.call');
    const fields = denied!.sd.get('secure-ipc-fields@32473')!;
    t.is(fields.get('method'), HOSTILE_VALUE, 'the hostile value parses back whole');
    t.is(fields.get('allowed'), 'false');
    const odd = [...fields.keys()].filter((k) => k.startsWith('we!rd_name__'));
    t.is(odd.length, 1);
    t.is(opened!.sd.get('secure-ipc-fields@32473')!.get('roles'), '["admin","x]\\""]');

    for (const [i, p] of [denied!, opened!].entries())
      t.true(await provable(log, results[i]!.index, p.sd.get('secure-ipc@32473')!.get('leafHash')!));
    t.deepEqual([forwarder.sent, forwarder.dropped, forwarder.errors], [3, 0, 0]);
  },
);

unixOnly(
  'syslog default: the BSD form of local sockets, authpriv, the structured data in the message',
  async (t) => {
    const { socketPath, receiver, open } = await setup(t);
    const forwarder = forwardAuditRecords({ to: 'syslog', socketPath });
    t.teardown(() => forwarder.close());
    const log = await open();
    const results = await appendAll(log);
    const [, denied, opened] = drain(receiver).map(parse3164);
    t.is(denied!.pri, 10 * 8 + 4);
    t.is(opened!.pri, 10 * 8 + 6);
    t.is(denied!.tag, 'secure-ipc');
    t.is(denied!.pid, String(process.pid));
    t.is(denied!.msg, 'audit rpc.call');
    t.is(denied!.sd.get('secure-ipc-fields@32473')!.get('method'), HOSTILE_VALUE);
    t.true(await provable(log, results[0]!.index, denied!.sd.get('secure-ipc@32473')!.get('leafHash')!));
  },
);

unixOnly('close() unsubscribes and closes the socket: later records are not sent', async (t) => {
  const { socketPath, receiver, open } = await setup(t);
  const forwarder = forwardAuditRecords({ to: 'journald', socketPath });
  const log = await open();
  t.is(drain(receiver).length, 1);
  forwarder.close();
  forwarder.close(); // idempotent
  await appendAll(log);
  t.is(drain(receiver).length, 0);
  t.deepEqual([forwarder.sent, forwarder.dropped, forwarder.errors], [1, 0, 0]);
});

unixOnly(
  'no receiver: each record is counted as an error and told to onError, the log is unaffected',
  async (t) => {
    const { dir, open } = await setup(t);
    const told: SecureIpcError[] = [];
    const missing = forwardAuditRecords({
      to: 'journald',
      socketPath: join(dir, 'nobody.sock'),
      onError: (e) => told.push(e),
    });
    t.teardown(() => missing.close());
    // A socket file whose owner has gone: ECONNREFUSED.
    const stalePath = join(dir, 'stale.sock');
    bindDatagramReceiver(stalePath).close();
    const stale = forwardAuditRecords({ to: 'syslog', socketPath: stalePath, onError: (e) => told.push(e) });
    t.teardown(() => stale.close());
    const log = await open();
    await appendAll(log);
    await Promise.resolve(); // onError runs on a microtask after each publish
    t.deepEqual([missing.sent, missing.dropped, missing.errors], [0, 0, 3]);
    t.deepEqual([stale.sent, stale.dropped, stale.errors], [0, 0, 3]);
    t.is(told.length, 6);
    for (const e of told) t.true(isSecureIpcError(e, 'SIPC_ERR_CONNECT_FAILED'), e.message);
    t.deepEqual(new Set(told.map((e) => e.details?.errno)), new Set(['ENOENT', 'ECONNREFUSED']));
    t.false(
      told.some((e) => e.message.includes(HOSTILE_VALUE)),
      'no field value in the error',
    );
    t.is(log.size, 3);
  },
);

unixOnly(
  'a receiver that does not read: records past its queue are dropped (EAGAIN), never thrown',
  async (t) => {
    const { socketPath, receiver, open } = await setup(t);
    const told: SecureIpcError[] = [];
    const forwarder = forwardAuditRecords({ to: 'journald', socketPath, onError: (e) => told.push(e) });
    t.teardown(() => forwarder.close());
    const log = await open();
    // Linux queues net.unix.max_dgram_qlen datagrams (10 by default), macOS a receive buffer's worth;
    // the loop stops at the first drop, and its bound is far past either.
    let appended = 1;
    while (forwarder.dropped === 0 && appended < 5000) {
      await log.append({ type: 'rpc.call', fields: { method: 'm', pad: 'p'.repeat(1000) } });
      appended++;
    }
    t.is(forwarder.dropped, 1);
    t.is(forwarder.sent + forwarder.dropped, appended);
    t.is(forwarder.errors, 0);
    await Promise.resolve();
    t.is(told.length, 0, 'a full receiver is not an error');
    t.is(drain(receiver).length, forwarder.sent, 'what was counted as sent is in the queue');
  },
);

const wmemDefault = (() => {
  try {
    return Number(readFileSync('/proc/sys/net/core/wmem_default', 'utf8'));
  } catch {
    return undefined;
  }
})();
// An audit record may be up to 1 MiB (maxRecordBytes); a datagram over the socket's send buffer is
// refused with EMSGSIZE. The buffer's size is read from Linux's sysctl, so the test is Linux's.
const emsgsize = process.platform === 'linux' && wmemDefault !== undefined && wmemDefault < 1_000_000;
(emsgsize ? test.serial : test.skip)(
  `a datagram over the socket's limit is dropped and reported (EMSGSIZE)${emsgsize ? '' : ' (skipped: needs Linux with net.core.wmem_default under 1 MB)'}`,
  async (t) => {
    const { socketPath, receiver, open } = await setup(t);
    const told: SecureIpcError[] = [];
    const forwarder = forwardAuditRecords({ to: 'journald', socketPath, onError: (e) => told.push(e) });
    t.teardown(() => forwarder.close());
    const log = await open({ maxRecordBytes: 1_048_576 });
    await log.append({ type: 'big', fields: { pad: 'p'.repeat(wmemDefault! + 1024) } });
    await log.append({ type: 'small', fields: {} });
    await Promise.resolve();
    t.deepEqual([forwarder.sent, forwarder.dropped, forwarder.errors], [2, 1, 0]);
    t.is(told.length, 1);
    t.true(isSecureIpcError(told[0], 'SIPC_ERR_MESSAGE_TOO_LARGE'));
    t.is(told[0]!.details?.errno, 'EMSGSIZE');
    t.deepEqual(
      drain(receiver).map((d) => parseJournal(d).get('SECURE_IPC_AUDIT_TYPE')?.[0]),
      ['epoch', 'small'],
    );
  },
);

unixOnly('bad options are SIPC_ERR_INVALID_ARGUMENT at the call; a long path SIPC_ERR_PATH_TOO_LONG', (t) => {
  const bad: unknown[] = [
    { to: 'kafka' },
    { to: 'journald', format: '5424' },
    { to: 'syslog', format: '3339' },
    { to: 'syslog', identifier: 'a[b' },
    { to: 'syslog', identifier: '' },
    { to: 'syslog', facility: 'local9' },
    { to: 'syslog', facility: 'toString' },
    { to: 'syslog', socketPath: 'relative.sock' },
    { to: 'syslog', onError: 'no' },
  ];
  for (const options of bad) {
    const err = t.throws(() => forwardAuditRecords(options as never), undefined, JSON.stringify(options));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(options));
  }
  const long = t.throws(() => forwardAuditRecords({ to: 'syslog', socketPath: `/${'x'.repeat(200)}` }));
  t.true(isSecureIpcError(long, 'SIPC_ERR_PATH_TOO_LONG'));
});

otherOnly(
  `forwardAuditRecords is SIPC_ERR_UNSUPPORTED_PLATFORM on ${process.platform} (runs only where there are no Unix datagram sockets)`,
  (t) => {
    const err = t.throws(() => forwardAuditRecords({ to: 'syslog', socketPath: '/dev/log' }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_UNSUPPORTED_PLATFORM'));
  },
);
