// --allow-sid outside Windows (through the real binary) and the mapping of its values onto
// transport-win's allowedSids (the function, which validates on every OS). The Windows runs of
// serve / ping / call with --allow-sid are in test/win/, run by the Windows node under Wine.
import { join } from 'node:path';
import test from 'ava';
import { CliError } from '../src/io.js';
import { winOptionsFrom } from '../src/win-options.js';
import { cli, keyFile, tempDir } from './helpers.js';

const notWindows = process.platform !== 'win32';
(notWindows ? test : test.skip)(
  `--allow-sid on ${process.platform} is a usage error (exit 2) on serve, ping and call, before any key is read${notWindows ? '' : ' (skipped: this is the non-Windows refusal)'}`,
  async (t) => {
    const dir = await tempDir(t);
    const key = await keyFile(dir, 'a.key');
    const address = `unix://${join(dir, 's.sock')}`;
    const missingKey = join(dir, 'no-such.key');
    for (const args of [
      ['serve', '--listen', address, '--key', missingKey, '--allow', key.pub, '--allow-sid', 'interactive'],
      ['ping', address, '--key', missingKey, '--server-key', key.pub, '--allow-sid', 'S-1-5-18'],
      ['call', address, '$ping', '--key', missingKey, '--server-key', key.pub, '--allow-sid', 'system'],
    ]) {
      const r = await cli(args);
      t.is(r.code, 2, `${args[0]}: ${r.stderr}`);
      t.true(
        r.stderr.startsWith(
          `secure-ipc ${args[0]}: --allow-sid is for Windows named pipes; Unix sockets take --allow-uid and --allow-gid`,
        ),
        r.stderr,
      );
      t.notRegex(r.stderr, /no-such\.key/, 'the usage error comes before the key file is opened');
    }
  },
);

test('winOptionsFrom: SIDs and well-known names pass through as transport-win validates them', (t) => {
  t.deepEqual(winOptionsFrom({}, 'win32'), {});
  t.deepEqual(winOptionsFrom({ 'allow-sid': [] }, 'win32'), {});
  const entries = ['interactive', 'S-1-5-21-1004336348-1177238915-682003330-1001', 'local-service'];
  t.deepEqual(winOptionsFrom({ 'allow-sid': entries }, 'win32'), { allowedSids: entries });
});

test('winOptionsFrom: an invalid entry is a usage error naming it and the accepted names', (t) => {
  for (const [entries, bad] of [
    [['interactive', 'Interactive'], 'Interactive'],
    [['S-1-5'], 'S-1-5'],
    [['S-1-5-18', 'S-1-5-+18'], 'S-1-5-+18'],
    [['everyone'], 'everyone'],
    [[''], ''],
  ] as const) {
    const err = t.throws(() => winOptionsFrom({ 'allow-sid': [...entries] }, 'win32'), {
      instanceOf: CliError,
    });
    t.is(
      err?.message,
      `--allow-sid ${JSON.stringify(bad)} is not a SID (S-1-...) or one of interactive, authenticated-users, system, administrators, local-service, network-service`,
    );
    t.is(err?.exitCode, 2);
  }
});

test('winOptionsFrom: outside Windows any --allow-sid is a usage error, valid or not', (t) => {
  for (const platform of ['linux', 'darwin'] as const) {
    t.throws(() => winOptionsFrom({ 'allow-sid': ['interactive'] }, platform), {
      instanceOf: CliError,
      message: /^--allow-sid is for Windows named pipes/,
    });
  }
  t.deepEqual(winOptionsFrom({}, 'linux'), {});
});
