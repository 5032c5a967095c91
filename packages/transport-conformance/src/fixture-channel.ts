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
  secureListen,
} from '@secure-ipc/core';

/** Settings a secure fixture takes from the spec's `extra`. */
export interface SecureFixtureArgs {
  /** Trusted client public keys, base64. */
  trust: string[];
  /** Application id. */
  appId?: string;
}

/** Serve `listener` as the given secure role; resolves once serving. */
export function serveSecure(
  listener: Listener,
  role: 'channel-echo-server' | 'rpc-server',
  args: SecureFixtureArgs,
): void {
  const secret = process.env.SIPC_FIXTURE_SECRET_KEY;
  if (secret === undefined) throw new Error('SIPC_FIXTURE_SECRET_KEY is not set');
  const options = {
    keyPair: keyPairFromSecretKey(decodeKey(secret)),
    trust: { keys: args.trust },
    ...(args.appId === undefined ? {} : { appId: args.appId }),
  };
  const secure = secureListen(listener, options);
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
