// `secure-ipc top` in a real terminal: tmux runs it in a 120x30 pane against a real `secure-ipc
// serve` process; the pane shows the refreshing table on the alternate screen, and `q` or Ctrl-C
// end it with exit 0, the alternate screen left, the cursor shown and the line discipline back in
// canonical mode (`stty` run in the same pane afterwards). Without a terminal on stdout top
// refuses (exit 2).
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type ExecutionContext } from 'ava';
import { cli, cliMain, statsServer, tempDir } from './helpers.js';

const TMUX = ['/usr/bin/tmux', '/usr/local/bin/tmux', '/opt/homebrew/bin/tmux'].find((p) => existsSync(p));

function tmux(socket: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(TMUX!, ['-S', socket, ...args], (err, stdout, stderr) =>
      err ? reject(new Error(`tmux ${args[0]}: ${stderr || err.message}`)) : resolve(stdout),
    ),
  );
}

/** Poll `read` until `ok` holds for what it returned; fails the test after 30 s (never a timing assertion). */
async function until(read: () => Promise<string>, ok: (s: string) => boolean, what: string): Promise<string> {
  const end = Date.now() + 30_000;
  let last = '';
  while (Date.now() < end) {
    last = await read();
    if (ok(last)) return last;
    await sleep(100);
  }
  throw new Error(`timed out waiting for ${what}; the pane shows:\n${last}`);
}

/** The shell's single-quoted form of `s`. */
const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

async function setup(t: ExecutionContext) {
  const { address, server, clients } = await statsServer(t, ['ops.key']);
  return { args: ['top', address, '--key', clients[0]!.path, '--server-key', server.pub] };
}

/** Run top in a fresh tmux server (its own socket) and return helpers on its pane. */
async function inTmux(t: ExecutionContext, args: string[]) {
  // Its own server on a socket in a temporary directory: removed with it, never another's tmux.
  const socket = join(await tempDir(t, 'sipc-tmux-'), 'tmux.sock');
  const command = [process.execPath, cliMain, ...args].map(quote).join(' ');
  // After top: its exit code, then the terminal's line mode as stty sees it in the same pane.
  const script = `${command}; echo "EXITED $?"; stty -a | tr ' ;' '\\n\\n' | grep -x -- '-\\{0,1\\}icanon'; exec sleep 600`;
  await tmux(socket, ['new-session', '-d', '-s', 'top', '-x', '120', '-y', '30', script]);
  t.teardown(() => tmux(socket, ['kill-server']).catch(() => {}));
  const pane = () => tmux(socket, ['capture-pane', '-p', '-t', 'top']);
  const flags = () => tmux(socket, ['display-message', '-p', '-t', 'top', '#{alternate_on} #{cursor_flag}']);
  const keys = (key: string) => tmux(socket, ['send-keys', '-t', 'top', key]);
  return { pane, flags, keys };
}

// A real terminal is the point of these tests: without tmux they are skipped, and say why.
const maybe = TMUX === undefined ? test.skip : test.serial;
const noTmux = TMUX === undefined ? ' (skipped: tmux is not installed; install the tmux package)' : '';

for (const [name, key] of [
  ['q', 'q'],
  ['Ctrl-C', 'C-c'],
] as const) {
  maybe(
    `top in tmux: a refreshing table with calls/s; ${name} exits 0 and restores the terminal${noTmux}`,
    async (t) => {
      const { args } = await setup(t);
      const { pane, flags, keys } = await inTmux(t, args);
      // The second frame has a rate (its own $stats calls, about one per second).
      const screen = await until(pane, (s) => /\s\d+\.\d\s/.test(s), 'a frame with a calls/s rate');
      t.regex(
        screen,
        /^secure-ipc top unix:\/\/\S+: 1 channel at \d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ, every 1s; q to quit$/m,
      );
      t.regex(
        screen,
        /^ID +PEER +ROLES +TRANSPORT +AGE +OK +FAILED +CALLS\/S +IN-FLIGHT +QUEUED +LAST-CALL$/m,
      );
      t.regex(screen, /^ *\d+ +BLAKE2b:\S{12} +stats +unix +\S+ +\d+ +0 +\d+\.\d +0 +\d+ +\S+ ago$/m);
      t.is((await flags()).trim(), '1 0', 'alternate screen on, cursor hidden');
      await keys(key);
      const after = await until(pane, (s) => /^EXITED \d+$/m.test(s) && /icanon$/m.test(s), 'top to exit');
      t.regex(after, /^EXITED 0$/m);
      t.regex(after, /^icanon$/m, 'canonical mode restored (stty shows icanon, not -icanon)');
      t.false(after.includes('PEER'), 'the table was on the alternate screen, gone with it');
      t.is((await flags()).trim(), '0 1', 'alternate screen left, cursor shown');
    },
  );
}

test('top without a terminal on stdout refuses: exit 2, a line saying what to use instead', async (t) => {
  const { args } = await setup(t);
  const r = await cli(args);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^secure-ipc top: top needs a terminal on stdout .*inspect ADDRESS --json/);
});

test('top --interval takes a duration as cert --ttl does; a bad one is a usage error', async (t) => {
  const { args } = await setup(t);
  const r = await cli([...args, '--interval', '500ms']);
  t.is(r.code, 2);
  t.regex(r.stderr, /--interval must be a duration like 90s/);
});
