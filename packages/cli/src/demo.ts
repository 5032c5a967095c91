/**
 * The README's main job: two separate processes on this OS establish a mutually authenticated
 * channel over `local://` (a per-user Unix socket, or a per-user named pipe on Windows), then the
 * client makes typed requests, is denied a method by the server's policy, and finally tampers with
 * one encrypted frame on the wire, which the server detects and rejects. Nothing here is simulated:
 * real keys on disk, a real child process, real sockets, real Noise and ChaChaPoly.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  createClient,
  encodeKey,
  generateKeyPair,
  isSecureIpcError,
  secureConnect,
  writeSecretKeyFile,
  zeroKeyPair,
} from '@secure-ipc/core';
import { resolveLocalPath, unixTransport } from '@secure-ipc/transport-unix';
import { pipeTransport } from '@secure-ipc/transport-win';
import type { NotesService } from './demo-service.js';
import { describeError } from './io.js';
import { describePeer } from './peer-line.js';
import { TamperTap } from './tamper-tap.js';

const say = (who: 'client' | 'server' | 'demo', line: string) =>
  process.stdout.write(`${who.padEnd(6)} │ ${line}\n`);

/** Lines the server prints, consumed in order by `expect`. */
class ServerLines {
  readonly #queue: string[] = [];
  readonly #waiters: Array<{ re: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  #ended = false;
  constructor(child: ChildProcess) {
    const rl = createInterface({ input: child.stdout! });
    rl.on('line', (line) => {
      say('server', line);
      this.#queue.push(line);
      this.#drain();
    });
    rl.on('close', () => {
      this.#ended = true;
      this.#drain();
    });
  }
  #drain() {
    for (const w of [...this.#waiters]) {
      const i = this.#queue.findIndex((l) => w.re.test(l));
      if (i >= 0) {
        const [line] = this.#queue.splice(0, i + 1);
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(line ?? '');
      } else if (this.#ended) {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.reject(new Error(`the server exited before printing ${w.re}`));
      }
    }
  }
  /** Wait (at most 15 s) for the next server line matching `re`. */
  expect(re: RegExp): Promise<string> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`timed out waiting for the server to print ${re}`)),
        15_000,
      );
      this.#waiters.push({
        re,
        resolve: (l) => {
          clearTimeout(timer);
          resolve(l);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#drain();
    });
  }
}

async function main(): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'secure-ipc-demo-'));
  const appId = `secure-ipc-demo-${randomBytes(4).toString('hex')}`;
  const address = `local://${appId}`;
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const serverKeyFile = join(dir, 'server.key');
  await writeSecretKeyFile(serverKeyFile, serverKeys.secretKey);
  const serverPub = encodeKey(serverKeys.publicKey);
  zeroKeyPair(serverKeys);
  const where = process.platform === 'win32' ? 'a per-user named pipe' : resolveLocalPath(address);
  say(
    'demo',
    `keys: server ${serverPub.slice(0, 12)}…, client ${encodeKey(clientKeys.publicKey).slice(0, 12)}… (each side pins the other's)`,
  );

  const child = spawn(
    process.execPath,
    [
      fileURLToPath(new URL('./demo-server.js', import.meta.url)),
      address,
      serverKeyFile,
      encodeKey(clientKeys.publicKey),
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const server = new ServerLines(child);
  try {
    await server.expect(/^listening /);
    say('demo', `server process pid ${child.pid} listens on ${address} → ${where}`);

    const transport = process.platform === 'win32' ? pipeTransport() : unixTransport();
    const tap = new TamperTap(await transport.connect(address));
    const channel = await secureConnect(tap, {
      keyPair: clientKeys,
      trust: { keys: [serverPub] },
      appId: 'secure-ipc-demo',
    });
    const client = createClient<NotesService>(channel);
    say(
      'client',
      `channel up (Noise_XX, v${channel.version}): server ${describePeer(channel.remoteStaticKey, channel.peer)}, handshake hash ${Buffer.from(channel.handshakeHash).toString('hex').slice(0, 16)}…`,
    );
    await server.expect(/^accepted client /);

    const a = await client.request('notes.add', { text: 'ship the secure channel' });
    say('client', `notes.add("ship the secure channel") → id ${a.id}`);
    const b = await client.request('notes.add', { text: 'write the threat model' });
    say('client', `notes.add("write the threat model") → id ${b.id}`);
    const list = await client.request('notes.list', null);
    say('client', `notes.list() → ${JSON.stringify(list)}`);
    const t0 = process.hrtime.bigint();
    const echo = await client.ping(new Uint8Array(randomBytes(32)));
    say(
      'client',
      `$ping with 32 random bytes → ${echo.length} bytes echoed in ${(Number(process.hrtime.bigint() - t0) / 1e6).toFixed(2)} ms`,
    );

    try {
      await client.request('admin.wipe', null);
      say('client', 'admin.wipe() was ALLOWED: this is a bug');
      return 1;
    } catch (err) {
      if (!isSecureIpcError(err, 'SIPC_ERR_FORBIDDEN')) throw err;
      say(
        'client',
        `admin.wipe() → denied: ${err.code} (the client has role "app", which only grants notes.*)`,
      );
    }
    await server.expect(/^policy denied admin\.wipe/);

    say('client', 'tampering: flipping one bit of the next encrypted frame on the wire…');
    tap.armTamper();
    const closed = new Promise<unknown>((resolve) => channel.once('close', resolve));
    const outcome = await client
      .request('notes.add', { text: 'this must never arrive' }, { timeoutMs: 10_000 })
      .then(
        () => 'ANSWERED',
        (err: unknown) => err,
      );
    await server.expect(/^closed the channel: .*SIPC_ERR_DECRYPT_FAILED/);
    await closed;
    if (outcome === 'ANSWERED') {
      say('client', 'the tampered request was answered: this is a bug');
      return 1;
    }
    say(
      'client',
      `the tampered request was not delivered; the server closed the channel (${describeError(outcome)})`,
    );
    const fresh = await transport.connect(address);
    const ch2 = await secureConnect(fresh, {
      keyPair: clientKeys,
      trust: { keys: [serverPub] },
      appId: 'secure-ipc-demo',
    });
    const c2 = createClient<NotesService>(ch2);
    const after = await c2.request('notes.list', null);
    say('client', `new channel: notes.list() → ${JSON.stringify(after)} (the tampered note is not there)`);
    await c2.close();
    return 0;
  } finally {
    zeroKeyPair(clientKeys);
    child.stdin?.end();
    await new Promise((resolve) => (child.exitCode !== null ? resolve(null) : child.once('exit', resolve)));
    await rm(dir, { recursive: true, force: true });
    say('demo', `server stopped (exit ${child.exitCode}); key files removed`);
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    say('demo', `failed: ${describeError(err)}`);
    process.exitCode = 1;
  },
);
