// docs/runbooks.md, run for real: every runbook's blocks (after the shared setup) in a fresh
// temporary directory, each command line through `sh -c` with the built CLI as `secure-ipc` on
// PATH; every line must exit 0. The `service` block of a runbook restarts the service (SIGTERM to
// the running `secure-ipc serve`, then this one, up to its `listening` line). Then the end state
// is checked with real handshakes, independently of the page's own verification lines: a stolen
// key or revoked certificate is refused (exit 5), the new ones are accepted, and a channel the
// thief held open across the steps was cut.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { cliMain } from './helpers.js';

const page = fileURLToPath(new URL('../../../../docs/runbooks.md', import.meta.url));

/** One marked ```sh block of the page. */
interface Block {
  readonly runbook: string;
  /** The block (re)starts the long-running service. */
  readonly service: boolean;
  /** 1-based line of the fence. */
  readonly line: number;
  /** Its command lines (`\` continuations joined, comments and blank lines left out). */
  readonly commands: string[];
}

const MARKER = /^\s*<!--\s*runbook:\s*([a-z0-9-]+)(\s+service)?\s*-->\s*$/;
const FENCE = /^(\s*)```sh\s*$/;

/** Every block of `markdown` marked `<!-- runbook: NAME [service] -->` on the line above its fence. */
function runbookBlocks(markdown: string): Block[] {
  const lines = markdown.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const marker = MARKER.exec(lines[i] ?? '');
    if (marker === null) continue;
    const fence = FENCE.exec(lines[i + 1] ?? '');
    if (fence === null)
      throw new Error(`docs/runbooks.md:${i + 1}: a runbook marker not followed by a \`\`\`sh fence`);
    const indent = fence[1] ?? '';
    const body: string[] = [];
    let j = i + 2;
    for (; j < lines.length && (lines[j] ?? '').trimEnd() !== `${indent}\`\`\``; j++)
      body.push(lines[j] ?? '');
    if (j === lines.length) throw new Error(`docs/runbooks.md:${i + 2}: an unclosed fence`);
    const commands: string[] = [];
    let pending = '';
    for (const raw of body) {
      const text = raw.trim();
      if (pending === '' && (text === '' || text.startsWith('#'))) continue;
      if (text.endsWith('\\')) pending += `${text.slice(0, -1).trimEnd()} `;
      else {
        commands.push(pending + text);
        pending = '';
      }
    }
    blocks.push({ runbook: marker[1] ?? '', service: marker[2] !== undefined, line: i + 2, commands });
    i = j;
  }
  return blocks;
}

const blocks = runbookBlocks(await readFile(page, 'utf8'));
const runbooks = [...new Set(blocks.map((b) => b.runbook))].filter((r) => r !== 'setup');
const posix = process.platform !== 'win32';

test('docs/runbooks.md: runbooks after a shared setup; each service block is one secure-ipc serve', (t) => {
  t.true(runbooks.length >= 5, `${runbooks.length} runbooks`);
  t.true(blocks.some((b) => b.runbook === 'setup' && b.service));
  for (const b of blocks) {
    t.true(b.commands.length > 0, `docs/runbooks.md:${b.line}: an empty block`);
    if (b.service)
      t.true(
        b.commands.length === 1 && b.commands[0]!.startsWith('secure-ipc serve '),
        `docs/runbooks.md:${b.line}: a service block is exactly one secure-ipc serve`,
      );
  }
  // The parser reads what the page means: an indented fence, a continuation, a comment.
  const parsed = runbookBlocks(
    [
      '   <!-- runbook: x -->',
      '   ```sh',
      '   # a comment',
      '   secure-ipc a \\',
      '     --b c',
      '',
      '   secure-ipc d; test $? -eq 5',
      '   ```',
    ].join('\n'),
  );
  t.deepEqual(parsed, [
    {
      runbook: 'x',
      service: false,
      line: 2,
      commands: ['secure-ipc a --b c', 'secure-ipc d; test $? -eq 5'],
    },
  ]);
});

/** A directory with a `secure-ipc` that runs the built CLI, as `npm install -g` would link it. */
async function cliOnPath(t: ExecutionContext): Promise<NodeJS.ProcessEnv> {
  const bin = await mkdtemp(join(tmpdir(), 'sipc-runbook-bin-'));
  t.teardown(() => rm(bin, { recursive: true, force: true }));
  const shim = join(bin, 'secure-ipc');
  await writeFile(shim, `#!/bin/sh\nexec '${process.execPath}' '${cliMain}' "$@"\n`);
  await chmod(shim, 0o755);
  return { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
}

interface Shell {
  code: number;
  stdout: string;
  stderr: string;
}

function sh(command: string, cwd: string, env: NodeJS.ProcessEnv): Promise<Shell> {
  return new Promise((resolve) =>
    execFile('sh', ['-c', command], { cwd, env, timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (err as { code?: unknown }).code : 0;
      resolve({ code: typeof code === 'number' ? code : -1, stdout, stderr });
    }),
  );
}

/** A long-running process started through `sh -c 'exec …'`, and what it printed. */
interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  stop: () => Promise<number | null>;
}

/** Start `command`; resolves once a stdout line matches `ready` (rejects if it exits first). */
function start(
  t: ExecutionContext,
  command: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  ready: RegExp,
): Promise<Running> {
  const child = spawn('sh', ['-c', `exec ${command}`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    return exited;
  };
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += String(d);
      if (ready.test(out)) {
        child.stdout.off('data', onData);
        child.stdout.on('data', (more) => (out += String(more)));
        resolve({ child, output: () => out, exited, stop });
      }
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', (d) => (out += String(d)));
    void exited.then((code) => reject(new Error(`${command} exited with ${code} before ${ready}: ${out}`)));
  });
}

const ADDRESS = (dir: string) => `unix://${dir}/run/files.sock`;

/** `secure-ipc ping` once over the runbooks' address: its exit code. */
async function ping(dir: string, env: NodeJS.ProcessEnv, args: string): Promise<number> {
  const r = await sh(`secure-ipc ping "${ADDRESS(dir)}" ${args} --count 1`, dir, env);
  return r.code;
}

const CA = '--trust-ca "$(cat ca.pub)"';
const CA2 = '--trust-ca "$(cat ca-2.pub)"';

/** Handshakes that show a runbook's end state: `ping` arguments, the exit code expected, why. */
const endHandshakes: Record<string, ReadonlyArray<readonly [string, number, string]>> = {
  'peer-key-compromise': [
    [`--key helper.key --cert helper.cert ${CA}`, 5, 'the stolen key is refused'],
    [`--key helper-2.key --cert helper-2.cert ${CA}`, 0, 'its successor is served'],
  ],
  'server-key-compromise': [
    [
      '--key helper.key --cert helper.cert --server-key "$(cat server.pub)"',
      5,
      'the stolen key is no longer served',
    ],
    ['--key helper.key --cert helper.cert --server-key "$(cat server-2.pub)"', 0, 'the new key is'],
  ],
  'certificate-expiry': [
    [`--key helper.key --cert helper-renewed.cert ${CA}`, 0, 'a renewed client certificate'],
  ],
  revocation: [
    [`--key helper.key --cert helper.cert ${CA}`, 5, 'the revoked certificate is refused'],
    [`--key helper.key --cert helper-2.cert ${CA}`, 0, 'the one reissued for the same key is served'],
  ],
  'authority-rotation': [
    [`--key helper.key --cert helper.cert ${CA} ${CA2}`, 5, 'a certificate of the old authority is refused'],
    [`--key helper.key --cert helper-ca2.cert ${CA2}`, 0, 'one of the new authority is served'],
    [
      `--key helper.key --cert helper-ca2.cert ${CA}`,
      5,
      'a client trusting only the old authority refuses the service',
    ],
  ],
};

/** `cert inspect --json` of a file in the runbook's directory. */
async function inspect(dir: string, env: NodeJS.ProcessEnv, file: string) {
  const r = await sh(`secure-ipc cert inspect ${file} --json`, dir, env);
  return JSON.parse(r.stdout) as { serial: number; subject: string; validNow: boolean };
}

/** What the files must say at the end of a runbook, besides the handshakes. */
const endFiles: Record<string, (dir: string, env: NodeJS.ProcessEnv, t: ExecutionContext) => Promise<void>> =
  {
    'certificate-expiry': async (dir, env, t) => {
      const [old, renewed] = [
        await inspect(dir, env, 'server.cert'),
        await inspect(dir, env, 'server-renewed.cert'),
      ];
      t.not(renewed.serial, old.serial);
      t.is(renewed.subject, old.subject, 'renewed for the same key');
      t.true(renewed.validNow);
    },
    revocation: async (dir, env, t) => {
      const { serial } = await inspect(dir, env, 'helper.cert');
      const list = JSON.parse(await readFile(join(dir, 'revoked.json'), 'utf8')) as {
        serials: number[];
        keys: string[];
      };
      t.deepEqual(list, { version: 1, serials: [serial], keys: [] }, 'the serial, not the key, is revoked');
    },
  };

/** Runbooks in which the thief (or the withdrawn certificate) holds a channel open that must be cut. */
const cutsLiveChannel = new Set(['peer-key-compromise', 'revocation']);

/**
 * Register the test of one runbook: its command lines (after the setup's) in order, each exit 0,
 * then its end state.
 */
function runbookTest(title: string, runbook: string): void {
  registered.push(runbook);
  const fn = async (t: ExecutionContext) => {
    t.timeout(180_000);
    const steps = blocks.filter((b) => b.runbook === 'setup' || b.runbook === runbook);
    const lines = steps.reduce((n, b) => n + b.commands.length, 0);
    t.true(
      steps.some((b) => b.runbook === runbook),
      `docs/runbooks.md has no block of ${runbook}`,
    );
    const dir = await mkdtemp(join(tmpdir(), 'sipc-runbook-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const env = await cliOnPath(t);
    let service: Running | undefined;
    let thief: Running | undefined;
    let stepsDone = 0;
    for (const block of steps) {
      if (block.runbook !== 'setup' && cutsLiveChannel.has(runbook) && thief === undefined) {
        // Before the runbook's first step: a channel of the credential about to be withdrawn.
        thief = await start(
          t,
          `secure-ipc ping "${ADDRESS(dir)}" --key helper.key --cert helper.cert --trust-ca "$(cat ca.pub)" --count 600 --interval 100 --json`,
          dir,
          env,
          /"event":"ping"/,
        );
      }
      for (const command of block.commands) {
        if (block.service) {
          if (service !== undefined) t.is(await service.stop(), 0, 'the service stops cleanly on SIGTERM');
          service = await start(t, command, dir, env, /^listening /m);
        } else {
          const r = await sh(command, dir, env);
          t.is(
            r.code,
            0,
            `docs/runbooks.md:${block.line} (${block.runbook}): ${command}\n${r.stdout}${r.stderr}`,
          );
          if (r.code !== 0) return;
        }
        stepsDone++;
      }
    }
    t.is(stepsDone, lines);
    t.true((endHandshakes[runbook] ?? []).length > 0, `no end state for ${runbook}`);
    for (const [args, code, why] of endHandshakes[runbook] ?? []) t.is(await ping(dir, env, args), code, why);
    await endFiles[runbook]?.(dir, env, t);
    if (thief !== undefined) {
      // 600 pings 100 ms apart take a minute: it ended long before, its channel closed by the service.
      const code = await Promise.race([
        thief.exited,
        new Promise((r) => setTimeout(() => r('running'), 5_000)),
      ]);
      t.not(code, 'running', 'the withdrawn credential still holds a channel');
      t.not(code, 0);
      t.regex(service!.output(), /policy: closed the channel of BLAKE2b:\S+ \(revoked-(key|serial)\)/);
    }
    t.log(`${runbook}: ${stepsDone} command lines ran, each exit 0`);
  };
  if (posix) test.serial(title, fn);
  else test.skip(`${title} (skipped on Windows: the runbooks use sh and Unix sockets)`, fn);
}

const registered: string[] = [];

runbookTest(
  "docs/runbooks.md peer-key-compromise: a stolen client key is revoked and replaced; the thief's live channel is cut and its handshakes refused",
  'peer-key-compromise',
);
runbookTest(
  'docs/runbooks.md server-key-compromise: the service moves to a new key and certificate; clients reach the new key, one pinning the stolen key is refused',
  'server-key-compromise',
);
runbookTest(
  'docs/runbooks.md certificate-expiry: a renewed certificate for the same key is served after the restart',
  'certificate-expiry',
);
runbookTest(
  'docs/runbooks.md revocation: a revoked serial cuts its live channel and is refused; a reissued certificate for the same key is served',
  'revocation',
);
runbookTest(
  'docs/runbooks.md authority-rotation: both authorities during the overlap, then certificates of the old one are refused',
  'authority-rotation',
);

test('every runbook of docs/runbooks.md has its test here', (t) => {
  t.deepEqual(runbooks, registered);
});
