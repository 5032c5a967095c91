/**
 * Entry point of a worker process: `node worker.js server|client`, driven by the parent over the
 * IPC channel (control.ts). The server side runs one Impl's server; the client side holds one
 * connection for the throughput scenarios and opens extra ones for connect and RSS tests.
 * Nothing here prints payloads or keys; errors go back to the parent as messages.
 */
import type { ControlRequest } from './control.js';
import type { BenchClient, BenchServer, Impl, SideSecrets } from './impl.js';
import { implById } from './impls/index.js';
import { bulk, connectionLoad, connectLatency, openIdle, pipelined, roundTrip } from './scenarios.js';

let impl: Impl | undefined;
let server: BenchServer | undefined;
let client: BenchClient | undefined;
let address = '';
let secrets: SideSecrets = {};
let idle: BenchClient[] = [];

const gc = (globalThis as { gc?: () => void }).gc;

async function rss(): Promise<number> {
  // Collections with pauses between: weak callbacks, finalizers and closed handles are released
  // after the first, and sockets closed just before need a few event-loop turns to go away.
  for (let i = 0; i < 3; i++) {
    gc?.();
    await new Promise((r) => setTimeout(r, 100));
  }
  gc?.();
  return process.memoryUsage().rss;
}

async function handle(req: ControlRequest): Promise<unknown> {
  switch (req.op) {
    case 'serve':
      impl = implById(req.row);
      server = await impl.serve({ dir: req.dir, secrets: req.secrets });
      return server.address;
    case 'connect':
      impl = implById(req.row);
      secrets = req.secrets;
      address = req.address;
      client = await impl.connect(address, secrets);
      return null;
    case 'run': {
      const p = req.params as any;
      if (req.scenario === 'connect') return connectLatency(impl!, address, secrets, p);
      if (client === undefined) throw new Error('not connected');
      if (req.scenario === 'roundTrip') return roundTrip(client, p);
      if (req.scenario === 'pipelined') return pipelined(client, p);
      return bulk(client, p);
    }
    case 'open-idle':
      idle = await openIdle(impl!, address, secrets, req.n);
      return idle.length;
    case 'grow-idle':
      idle.push(...(await openIdle(impl!, address, secrets, req.n - idle.length)));
      return idle.length;
    case 'conn-load':
      return connectionLoad(idle, req);
    case 'close-idle':
      await Promise.all(idle.map((c) => c.close()));
      idle = [];
      return null;
    case 'rss':
      return rss();
    case 'close':
      await client?.close().catch(() => {});
      await Promise.all(idle.map((c) => c.close().catch(() => {})));
      await server?.close().catch(() => {});
      setTimeout(() => process.exit(0), 20);
      return null;
  }
}

process.on('message', (msg: ControlRequest & { id: number }) => {
  handle(msg).then(
    (value) => process.send!({ id: msg.id, ok: true, value }),
    (err: unknown) =>
      process.send!({ id: msg.id, ok: false, error: err instanceof Error ? err.message : String(err) }),
  );
});
// Without the parent there is nothing to do; do not linger as an orphan holding sockets.
process.on('disconnect', () => process.exit(0));
