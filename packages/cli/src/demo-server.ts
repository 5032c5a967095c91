/**
 * The demo's server process: serves the typed notes service over `local://` with a policy that
 * gives the one pinned client the `app` role (notes.*) and nothing else. Prints one line per event
 * on stdout for the demo to relay. Arguments: ADDRESS KEY-FILE CLIENT-PUBKEY.
 */
import {
  createPolicy,
  createServer,
  PublicError,
  readSecretKeyFile,
  secureListen,
  zeroKeyPair,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import { pipeTransport } from '@secure-ipc/transport-win';
import type { NotesService } from './demo-service.js';
import { describeError } from './io.js';
import { describePeer } from './peer-line.js';

const [address, keyFile, clientKey] = process.argv.slice(2);
if (!address || !keyFile || !clientKey) {
  console.error('usage: demo-server ADDRESS KEY-FILE CLIENT-PUBKEY');
  process.exit(2);
}
const say = (line: string) => process.stdout.write(`${line}\n`);

const keyPair = await readSecretKeyFile(keyFile);
const transport = process.platform === 'win32' ? pipeTransport() : unixTransport();
const listener = await transport.listen(address);
const secure = secureListen(listener, { keyPair, trust: { keys: [clientKey] }, appId: 'secure-ipc-demo' });
const policy = createPolicy({
  roles: { app: { call: ['notes.*'] }, admin: { call: ['admin.*', 'notes.*'] } },
  peers: [{ key: clientKey, roles: ['app'] }],
});
const server = createServer<NotesService>({ policy });
const notes: string[] = [];
server.handle('notes.add', ({ text }) => {
  if (typeof text !== 'string' || text.length > 1000)
    // Meant for the caller: any other error would reach it as SIPC_ERR_HANDLER with an id only.
    throw new PublicError('SIPC_ERR_INVALID_ARGUMENT', 'text must be a string of at most 1000 characters');
  notes.push(text);
  return { id: notes.length };
});
server.handle('notes.list', () => [...notes]);
server.handle('admin.wipe', () => ({ wiped: notes.splice(0).length }));
server.on('decision', (d) => {
  if (!d.allowed) say(`policy denied ${d.what} to ${d.who} (roles: ${d.roles.join(', ') || 'none'})`);
});
// The real error of a failed handler, under the correlation id its caller got (never the params).
server.on('handlerError', (f) =>
  say(`handler ${f.method} failed (correlation id ${f.correlationId}): ${describeError(f.error)}`),
);
server.listen(secure);
secure.on('channel', (ch) => {
  say(`accepted client ${describePeer(ch.remoteStaticKey, ch.peer)}`);
  ch.once('close', (err) => say(err ? `closed the channel: ${describeError(err)}` : 'client disconnected'));
});
secure.on('handshakeError', (err) => say(`rejected a handshake: ${describeError(err)}`));
say(`listening ${listener.address}`);

const stop = async () => {
  await server.close();
  await listener.close();
  zeroKeyPair(keyPair);
  say('stopped');
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
process.stdin.on('end', stop).resume();
