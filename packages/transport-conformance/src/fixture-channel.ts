/**
 * Secure roles of the fixture process: a channel echo server and an RPC server (`echo`, and
 * `hang`, which never answers: for pending-request cases). The server key comes from the
 * environment (SIPC_FIXTURE_SECRET_KEY), the trusted client keys from the spec.
 */
import {
  createPolicy,
  createServer,
  decodeKey,
  keyPairFromSecretKey,
  type Listener,
  type SecureListener,
  type SecureListenerOptions,
  secureListen,
  type Trust,
} from '@secure-ipc/core';

/** Settings a secure fixture takes from the spec's `extra`. */
export interface SecureFixtureArgs {
  /** Trusted client public keys, base64. */
  trust: string[];
  /** Application id. */
  appId?: string;
  /** Caps of the listener (default: core's). */
  limits?: Pick<
    SecureListenerOptions,
    'maxPendingHandshakes' | 'maxPendingHandshakesPerIdentity' | 'maxConnectionsPerKey'
  >;
}

/**
 * A secure listener on `listener` with the fixture's key (`secret`, else the environment's
 * SIPC_FIXTURE_SECRET_KEY) trusting `trust` (keys, base64, or a trust function), with the default
 * limits unless `options` say more.
 */
export function fixtureListener(
  listener: Listener,
  trust: string[] | Trust,
  secret = process.env.SIPC_FIXTURE_SECRET_KEY,
  options: Partial<SecureListenerOptions> = {},
): SecureListener {
  if (secret === undefined) throw new Error('SIPC_FIXTURE_SECRET_KEY is not set');
  return secureListen(listener, {
    ...options,
    keyPair: keyPairFromSecretKey(decodeKey(secret)),
    trust: Array.isArray(trust) ? { keys: trust } : trust,
  });
}

/** Serve `listener` as the given secure role; resolves once serving. */
export function serveSecure(
  listener: Listener,
  role: 'channel-echo-server' | 'rpc-server',
  args: SecureFixtureArgs,
): void {
  const secure = fixtureListener(listener, args.trust, undefined, {
    ...args.limits,
    ...(args.appId === undefined ? {} : { appId: args.appId }),
  });
  if (role === 'channel-echo-server') {
    secure.on('channel', (channel) => {
      channel.on('message', (m) => void channel.send(m).catch(() => {}));
    });
    return;
  }
  const server = createServer({
    policy: createPolicy({ roles: { any: { call: ['*'] } }, defaultRoles: ['any'] }),
  });
  server.handle('echo', (params: unknown) => params);
  server.handle('hang', () => new Promise(() => {}));
  server.listen(secure);
}
