/**
 * The server of the abuse sub-suite: an RPC server with secure-ipc's DEFAULT limits (only the
 * policy is set), trusting four client keys:
 *
 * | key        | roles                                          | plays                              |
 * |------------|------------------------------------------------|------------------------------------|
 * | `app`      | call `echo`, `charge`; subscribe `events.*`    | the legitimate client              |
 * | `worker`   | call `charge`, `hold`, `fail`; subscribe `events.*` | an abuser with a role          |
 * | `listener` | subscribe `events.*`                           | a subscriber that abuses it        |
 * | `nobody`   | (none: it may only `$ping`)                    | an abuser granted nothing          |
 * | `slow`     | (none)                                         | a peer whose trust decision takes `SLOW_TRUST_MS` |
 *
 * Every key but `slow` is trusted at once; `slow` is trusted after `SLOW_TRUST_MS` (an
 * asynchronous trust function, as a service asking a directory would have), for the case that
 * floods while the decision runs.
 *
 * Handlers: `echo` (its params), `charge` (counts its runs per idempotency key), `hold` (runs
 * until released or aborted), `fail` (throws a Node-style ENOENT naming a path, with `data`).
 *
 * It runs in a child process where the transport crosses processes (the fixture's
 * `abuse-server` role), else in the test's own process, and answers one control line at a time
 * with one line (see `command` below: `rss`, `publish`, `publish-many`, `peers`, `closes`,
 * `close-peer`, `runs`, `holds`, `release`, `handler-errors`, `handshakes`).
 */
import { timingSafeEqual } from 'node:crypto';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import {
  createPolicy,
  createServer,
  decodeKey,
  type HandlerContext,
  type Listener,
  type RpcPeer,
  type SecureIpcError,
  type TrustContext,
} from '@secure-ipc/core';
import { fixtureListener } from './fixture-channel.js';

/** The keys an abuse server trusts, base64, and its own secret key. */
export interface AbuseServerArgs {
  /** The server's secret key (the fixture passes it in its environment instead). */
  serverSecret?: string;
  app: string;
  worker: string;
  listener: string;
  nobody: string;
  /** Trusted (with no role) only after `SLOW_TRUST_MS`. */
  slow: string;
}

/** How long the trust decision for the `slow` key takes (ms). */
export const SLOW_TRUST_MS = 2500;

/** Control of a running abuse server. */
export interface AbuseControl {
  /** Answer one control line. */
  command(line: string): Promise<string>;
  /** Read control lines from stdin, answer on stdout (the child-process form). */
  attachToStdio(): void;
  /** Stop serving. */
  close(): Promise<void>;
}

/** What `peers` reports for each live peer session. */
export interface AbusePeerReport {
  readonly peerId: string;
  readonly queuedReplies: number;
  readonly queuedReplyBytes: number;
  readonly queuedEventBytes: number;
  readonly droppedEvents: number;
}

/** What `publish-many` reports. */
export interface AbusePublishReport {
  /** Slowest single `publish()`, ms. */
  readonly slowestMs: number;
  /** Sums of `PublishResult` over the publishes. */
  readonly queued: number;
  readonly dropped: number;
  /** `eventDropped` events seen meanwhile. */
  readonly dropEvents: number;
}

/** What `handshakes` reports: the secure listener's `handshakeError` codes and `limit` decisions, counted. */
export interface AbuseHandshakeReport {
  /** `handshakeError` events by code. */
  readonly errors: Readonly<Record<string, number>>;
  /** `limit` decision events by `ACTION LIMIT` (e.g. `dropped maxPendingHandshakesPerIdentity`). */
  readonly limits: Readonly<Record<string, number>>;
}

/** What `holds` reports about the `hold` handler. */
export interface AbuseHoldReport {
  readonly started: number;
  readonly running: number;
  /** Codes of the abort reasons of the executions that were aborted. */
  readonly aborted: string[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Serve `listener` as the abuse server. */
export function serveAbuse(listener: Listener, args: AbuseServerArgs): AbuseControl {
  const same = (a: Uint8Array, b: Uint8Array) => a.byteLength === b.byteLength && timingSafeEqual(a, b);
  const prompt = [args.app, args.worker, args.listener, args.nobody].map((k) => decodeKey(k));
  const slow = decodeKey(args.slow);
  const trust = async ({ remoteStaticKey }: TrustContext): Promise<boolean> => {
    if (same(remoteStaticKey, slow)) {
      await sleep(SLOW_TRUST_MS);
      return true;
    }
    return prompt.some((k) => same(k, remoteStaticKey));
  };
  const secure = fixtureListener(listener, trust, args.serverSecret);
  const handshakes = { errors: {} as Record<string, number>, limits: {} as Record<string, number> };
  const count = (into: Record<string, number>, key: string) => {
    into[key] = (into[key] ?? 0) + 1;
  };
  secure.on('handshakeError', (error: SecureIpcError) => count(handshakes.errors, error.code));
  secure.on('limit', (d) => count(handshakes.limits, `${d.action} ${d.limit}`));
  const server = createServer({
    policy: createPolicy({
      roles: {
        app: { call: ['echo', 'charge'], subscribe: ['events.*'] },
        worker: { call: ['charge', 'hold', 'fail'], subscribe: ['events.*'] },
        listener: { subscribe: ['events.*'] },
      },
      peers: [
        { key: args.app, roles: ['app'] },
        { key: args.worker, roles: ['worker'] },
        { key: args.listener, roles: ['listener'] },
      ],
    }),
  });
  server.on('error', () => {}); // misbehaving peers are expected here

  server.handle('echo', (params: unknown) => params);
  const runs = new Map<string, number>();
  server.handle('charge', (p: unknown, ctx: HandlerContext) => {
    const key = ctx.headers.idempotencyKey ?? '';
    const run = (runs.get(key) ?? 0) + 1;
    runs.set(key, run);
    return { run, params: p };
  });
  const holds = { started: 0, running: 0, aborted: [] as string[], releases: new Set<() => void>() };
  server.handle(
    'hold',
    (_p: unknown, ctx: HandlerContext) =>
      new Promise((resolve, reject) => {
        holds.started++;
        holds.running++;
        const release = () => {
          holds.releases.delete(release);
          holds.running--;
          resolve('released');
        };
        holds.releases.add(release);
        ctx.signal.addEventListener('abort', () => {
          if (!holds.releases.delete(release)) return;
          holds.running--;
          holds.aborted.push((ctx.signal.reason as { code?: string }).code ?? 'unknown');
          reject(ctx.signal.reason);
        });
      }),
  );
  server.handle('fail', () => {
    throw Object.assign(new Error('ENOENT: no such file or directory, open /etc/secret-abuse'), {
      code: 'ENOENT',
      path: '/etc/secret-abuse',
      data: { path: '/etc/secret-abuse' },
    });
  });
  const handlerErrors: { correlationId: string; method: string; code: unknown }[] = [];
  server.on('handlerError', (f) =>
    handlerErrors.push({
      correlationId: f.correlationId,
      method: f.method,
      code: (f.error as { code?: unknown }).code,
    }),
  );
  let dropEvents = 0;
  server.on('eventDropped', () => dropEvents++);
  const closes: { peerId: string; code: string | undefined }[] = [];
  server.on('peer', (peer: RpcPeer) =>
    peer.channel.once('close', (error?: SecureIpcError) =>
      closes.push({ peerId: peer.peerId, code: error?.code }),
    ),
  );
  server.listen(secure);

  const gc = (globalThis as { gc?: () => void }).gc;
  // How long the server's event loop was blocked at most (what every peer waits for).
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const report = (peer: RpcPeer): AbusePeerReport => ({
    peerId: peer.peerId,
    queuedReplies: peer.queuedReplies,
    queuedReplyBytes: peer.queuedReplyBytes,
    queuedEventBytes: peer.queuedEventBytes,
    droppedEvents: peer.droppedEvents,
  });
  // One control line → one answer line: a word, then numbers or JSON.
  const commands: Record<string, (words: string[]) => Promise<string> | string> = {
    /** `rss`: RSS and memory held (JS heap used + ArrayBuffers) after a full GC (with `--expose-gc`), bytes. */
    rss: () => {
      gc?.();
      const m = process.memoryUsage();
      return `rss ${m.rss} ${m.heapUsed + m.arrayBuffers}`;
    },
    /** `publish TOPIC`: one publish; how long it took and to how many. */
    publish: async ([topic]) => {
      const start = performance.now();
      const count = await server.publish(topic!, 1);
      return `published ${(performance.now() - start).toFixed(3)} ${JSON.stringify(count)}`;
    },
    /** `publish-many COUNT SIZE GAP_MS`: COUNT events of SIZE bytes on `events.feed`, GAP_MS apart. */
    'publish-many': async ([count, size, gapMs]) => {
      const dropsBefore = dropEvents;
      let slowestMs = 0;
      let queued = 0;
      let dropped = 0;
      for (let i = 0; i < Number(count); i++) {
        const payload = new Uint8Array(Number(size));
        new DataView(payload.buffer).setUint32(0, i);
        const start = performance.now();
        const result = await server.publish('events.feed', payload);
        slowestMs = Math.max(slowestMs, performance.now() - start);
        queued += result.queued;
        dropped += result.dropped;
        await sleep(Number(gapMs));
      }
      const out: AbusePublishReport = { slowestMs, queued, dropped, dropEvents: dropEvents - dropsBefore };
      return `published ${JSON.stringify(out)}`;
    },
    /** `lag`: the longest event-loop delay since the last `lag`, ms. */
    lag: () => {
      const ms = delay.max / 1e6;
      delay.reset();
      return `lag ${ms.toFixed(1)}`;
    },
    /** `peers`: the live sessions and what is queued for each. */
    peers: () => `peers ${JSON.stringify([...server.peers].map(report))}`,
    /** `closes`: every session closed so far, with the code its channel closed with. */
    closes: () => `closes ${JSON.stringify(closes)}`,
    /** `close-peer PEER_ID`: graceful close of that peer's sessions; ms until settled, and codes. */
    'close-peer': async ([peerId]) => {
      const peers = [...server.peers].filter((p) => p.peerId === peerId);
      const codes: (string | undefined)[] = [];
      const start = performance.now();
      await Promise.all(
        peers.map(
          (p) =>
            new Promise<void>((resolve) => {
              p.channel.once('close', (error?: SecureIpcError) => {
                codes.push(error?.code);
                resolve();
              });
              void p.close();
            }),
        ),
      );
      return `closed ${(performance.now() - start).toFixed(0)} ${JSON.stringify(codes)}`;
    },
    /** `runs KEY`: how many times `charge` ran for idempotency key KEY (any peer). */
    runs: ([key]) => `runs ${runs.get(key!) ?? 0}`,
    /** `holds`: the `hold` executions started, running, and the abort codes of the others. */
    holds: () => {
      const out: AbuseHoldReport = { started: holds.started, running: holds.running, aborted: holds.aborted };
      return `holds ${JSON.stringify(out)}`;
    },
    /** `release`: let every running `hold` execution finish. */
    release: () => {
      const n = holds.releases.size;
      for (const release of [...holds.releases]) release();
      return `released ${n}`;
    },
    /** `handler-errors`: what 'handlerError' reported (correlation id, method, the real code). */
    'handler-errors': () => `handler-errors ${JSON.stringify(handlerErrors)}`,
    /** `handshakes`: the listener's handshake errors and limit decisions so far, counted. */
    handshakes: () => `handshakes ${JSON.stringify(handshakes satisfies AbuseHandshakeReport)}`,
  };
  const command = async (line: string): Promise<string> => {
    const [word, ...rest] = line.split(' ');
    const run = Object.hasOwn(commands, word!) ? commands[word!] : undefined;
    return run === undefined ? `unknown ${line}` : run(rest);
  };
  return {
    command,
    attachToStdio() {
      let input = '';
      process.stdin.setEncoding('utf8');
      process.stdin.on('data', (chunk: string) => {
        input += chunk;
        for (let nl = input.indexOf('\n'); nl >= 0; nl = input.indexOf('\n')) {
          const line = input.slice(0, nl).trim();
          input = input.slice(nl + 1);
          void command(line).then((answer) => process.stdout.write(`${answer}\n`));
        }
      });
    },
    close: () => {
      delay.disable();
      return server.close();
    },
  };
}
