/**
 * The app side as an Electron utility process: the one process of the app that holds the app's
 * secret key and the secure-ipc channel to the daemon. The main process starts it
 * (`utilityProcess.fork(this file, [APP.json])`) and sends it calls; the renderer never sees the key
 * or the channel (docs/electron.md).
 *
 * It talks to its parent through Electron's `process.parentPort` when there is one, and through
 * Node's `child_process.fork` channel (`process.on('message')`, `process.send`) otherwise: the same
 * file runs under Electron and under the plain Node stand-in (electron-main.ts) the tests use,
 * because Electron's binary cannot be downloaded in this repository's CI.
 */
import { isCallMessage, isQuitMessage, type UtilityMessage } from './bridge.js';
import { readAppConfig } from './config.js';
import { callHelper, connectHelper, failure, type HelperClient } from './helper-client.js';

/** Electron's `process.parentPort` in a utility process (a MessagePortMain): only what is used here. */
interface ParentPort {
  on(event: 'message', listener: (event: { data: unknown }) => void): void;
  postMessage(message: unknown): void;
}

/** The parent, as one small interface over Electron's port or Node's IPC channel. */
function parentChannel(): { onMessage(fn: (m: unknown) => void): void; post(m: UtilityMessage): void } {
  const port = (process as { parentPort?: ParentPort }).parentPort;
  if (port !== undefined)
    return { onMessage: (fn) => port.on('message', (e) => fn(e.data)), post: (m) => port.postMessage(m) };
  if (process.send === undefined) throw new Error('electron-utility.js must be started by a parent process');
  return { onMessage: (fn) => process.on('message', fn), post: (m) => process.send!(m) };
}

const parent = parentChannel();
const configPath = process.argv[2];
let client: HelperClient;
try {
  if (configPath === undefined) throw new Error('usage: electron-utility.js APP.json');
  client = await connectHelper(await readAppConfig(configPath));
} catch (err) {
  parent.post({ ready: false, ...failure(err) });
  process.exit(1);
}

let quitting = false;
client.once('close', (error) => {
  if (quitting) return;
  parent.post({ closed: true, ...(error ? failure(error) : {}) });
  process.exit(1);
});
parent.onMessage(async (m) => {
  if (isQuitMessage(m)) {
    quitting = true;
    await client.close();
    process.exit(0);
  }
  // Anything else must be a well-formed call; a malformed one is ignored (the main process is the
  // only sender, and a reply to an unknown id would only confuse it).
  if (isCallMessage(m)) parent.post({ id: m.id, ...(await callHelper(client, m.method)) });
});
parent.post({ ready: true, pid: process.pid });
