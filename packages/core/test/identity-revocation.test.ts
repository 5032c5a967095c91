import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  addToRevocationFile,
  parseRevocationList,
  RevocationList,
  readRevocationFile,
  watchRevocationList,
} from '../src/index.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { codeOf, tempDir } from './identity-helpers.js';

const key = generateKeyPair().publicKey;

test('RevocationList: serials and keys, change events, strict entries', (t) => {
  const list = new RevocationList({ serials: [5] });
  let changes = 0;
  list.on('change', () => changes++);
  t.is(list.check({ serial: 5, subjectKey: key }), 'revoked-serial');
  t.is(list.check({ serial: 6, subjectKey: key }), undefined);
  t.is(list.check({ subjectKey: key }), undefined);
  list.revokeKey(encodeKey(key));
  t.is(list.check({ subjectKey: key }), 'revoked-key');
  list.revokeSerial(6);
  t.is(changes, 2);
  t.is(codeOf(t.throws(() => list.revokeSerial(0))), 'SIPC_ERR_INVALID_ARGUMENT');
  t.is(codeOf(t.throws(() => list.revokeKey('short'))), 'SIPC_ERR_INVALID_ARGUMENT');
  t.is(codeOf(t.throws(() => list.replace({ serials: [1, -1] }))), 'SIPC_ERR_INVALID_ARGUMENT');
  t.deepEqual(
    list.toJSON(),
    { version: 1, serials: [5, 6], keys: [encodeKey(key)] },
    'a failed replace changes nothing',
  );
});

test('parseRevocationList refuses nesting deeper than its format before parsing (issue 12, row 1)', (t) => {
  t.deepEqual(parseRevocationList('{"version":1,"serials":[3],"keys":[]}').serials, [3]);
  // Brackets inside strings (an escaped quote too) do not count: this fails later, on the key.
  const inString = t.throws(() => parseRevocationList('{"version":1,"keys":["[[[{{\\"[["]}'));
  t.is(codeOf(inString), 'SIPC_ERR_INVALID_ARGUMENT');
  t.notRegex(inString!.message, /nests deeper/);
  for (const deep of ['{"version":1,"serials":[[3]]}', `${'['.repeat(8 * 1024 * 1024)}`]) {
    const err = t.throws(() => parseRevocationList(deep));
    t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT');
    t.regex(err!.message, /nests deeper/);
  }
});

test('parseRevocationList is strict: a typo never silently un-revokes', (t) => {
  t.deepEqual(parseRevocationList('{"version":1,"serials":[3]}').serials, [3]);
  for (const bad of [
    '',
    '[]',
    '{"serials":[1]}',
    '{"version":2}',
    '{"version":1,"serial":[1]}',
    '{"version":1,"serials":["1"]}',
    '{"version":1,"keys":["nope"]}',
    '{"version":1,"keys":"abc"}',
  ])
    t.is(codeOf(t.throws(() => parseRevocationList(bad))), 'SIPC_ERR_INVALID_ARGUMENT', bad);
});

test('addToRevocationFile creates the file, adds entries, rewrites it whole', async (t) => {
  const path = join(tempDir(t), 'revoked.json');
  await addToRevocationFile(path, { serials: [9] });
  await addToRevocationFile(path, { keys: [key] });
  await addToRevocationFile(path, { serials: [9, 2] });
  t.deepEqual(JSON.parse(readFileSync(path, 'utf8')), {
    version: 1,
    serials: [2, 9],
    keys: [encodeKey(key)],
  });
  const list = await readRevocationFile(path);
  t.is(list.check({ serial: 2, subjectKey: generateKeyPair().publicKey }), 'revoked-serial');
  writeFileSync(path, '{broken');
  t.is(codeOf(await t.throwsAsync(addToRevocationFile(path, { serials: [1] }))), 'SIPC_ERR_INVALID_ARGUMENT');
});

for (const fsWatch of [true, false]) {
  test(`watched file (${fsWatch ? 'fs.watch + poll' : 'poll only'}): reloads on change, a bad file keeps the last good list`, async (t) => {
    const path = join(tempDir(t), 'revoked.json');
    await addToRevocationFile(path, { serials: [1] });
    const list = await watchRevocationList(path, { fsWatch, pollIntervalMs: 50 });
    // The watcher's timer is unref'd on purpose (it must not keep a server alive); with nothing
    // else pending, keep this test process alive while it waits for the poll.
    const keepAlive = setInterval(() => {}, 1_000);
    t.teardown(() => {
      clearInterval(keepAlive);
      list.close();
    });
    t.is(list.check({ serial: 1, subjectKey: key }), 'revoked-serial');

    const changed = once(list, 'change');
    await addToRevocationFile(path, { keys: [key] });
    await changed;
    t.is(list.check({ subjectKey: key }), 'revoked-key');

    const failed = once(list, 'reloadError');
    writeFileSync(path, '{"version":1,"serials":[1');
    const [err] = await failed;
    t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT');
    t.is(list.check({ subjectKey: key }), 'revoked-key', 'the last good list stays in force');

    const healed = once(list, 'change');
    writeFileSync(path, '{"version":1,"serials":[3]}');
    await healed;
    t.is(list.check({ subjectKey: key }), undefined);
    t.is(list.check({ serial: 3, subjectKey: key }), 'revoked-serial');
  });
}

test('watchRevocationList fails closed when the file cannot be read at start', async (t) => {
  const dir = tempDir(t);
  t.is(
    codeOf(await t.throwsAsync(watchRevocationList(join(dir, 'absent.json')))),
    'SIPC_ERR_INVALID_ARGUMENT',
  );
  writeFileSync(join(dir, 'bad.json'), 'nope');
  t.is(codeOf(await t.throwsAsync(watchRevocationList(join(dir, 'bad.json')))), 'SIPC_ERR_INVALID_ARGUMENT');
});
