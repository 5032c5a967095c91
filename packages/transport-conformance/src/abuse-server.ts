/**
 * The server of the abuse sub-suite: an RPC server with secure-ipc's DEFAULT limits (only the
 * policy is set), trusting three keys: `app` (may call `echo` and subscribe to `events.*`),
 * `listener` (may only subscribe to `events.*`) and `nobody` (no role at all). It runs in a child
 * process where the transport crosses processes (the fixture's `abuse-server` role), else in the
 * test's own process, and answers control lines: `rss` (its RSS after a full GC when `--expose-gc`
 * is on) and `publish TOPIC` (how long one publish took and how many peers got it).
 */
import {
  createPolicy,
  createServer,
  decodeKey,
  keyPairFromSecretKey,
  type Listener,
  secureListen,
} from '@secure-ipc/core';

/** The keys an abuse server trusts, base64, and its own secret key. */
export interface AbuseServerArgs {
  /** The server's secret key (the fixture passes it in its environment instead). */
  serverSecret?: string;
  app: string;
  listener: string;
  nobody: string;
}

/** Control of a running abuse server. */
export interface AbuseControl {
  /** Answer one control line. */
  command(line: string): Promise<string>;
  /** Read control lines from stdin, answer on stdout (the child-process form). */
  attachToStdio(): void;
  /** Stop serving. */
  close(): Promise<void>;
}

/** Serve `listener` as the abuse server. */
export function serveAbuse(listener: Listener, args: AbuseServerArgs): AbuseControl {
  const secret = args.serverSecret ?? process.env.SIPC_FIXTURE_SECRET_KEY;
  if (secret === undefined) throw new Error('the abuse server needs its secret key');
  const secure = secureListen(listener, {
    keyPair: keyPairFromSecretKey(decodeKey(secret)),
    trust: { keys: [args.app, args.listener, args.nobody] },
  });
  const server = createServer({
    policy: createPolicy({
      roles: { app: { call: ['echo'], subscribe: ['events.*'] }, listener: { subscribe: ['events.*'] } },
      peers: [
        { key: args.app, roles: ['app'] },
        { key: args.listener, roles: ['listener'] },
      ],
    }),
  });
  server.handle('echo', (params: unknown) => params);
  server.on('error', () => {}); // misbehaving peers are expected here
  server.listen(secure);
  const gc = (globalThis as { gc?: () => void }).gc;
  const command = async (line: string): Promise<string> => {
    if (line === 'rss') {
      gc?.();
      return `rss ${process.memoryUsage().rss}`;
    }
    if (line.startsWith('publish ')) {
      const start = performance.now();
      const count = await server.publish(line.slice('publish '.length), 1);
      return `published ${(performance.now() - start).toFixed(3)} ${JSON.stringify(count)}`;
    }
    return `unknown ${line}`;
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
    close: () => server.close(),
  };
}
