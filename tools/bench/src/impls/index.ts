/**
 * The contestants, in report order. Workers rebuild an Impl from its id, so every factory is
 * listed here by id; `defaultRowIds` picks the rows of a normal run.
 */
import type { Impl } from '../impl.js';
import { grpcUnix, hasOpenssl } from './grpc.js';
import { nodeIpc } from './node-ipc.js';
import { rawNet, sealedNet } from './raw-net.js';
import { secretStream } from './secret-stream.js';
import { secureIpc } from './secure-ipc.js';
import { zeromqCurve } from './zeromq-curve.js';

const FACTORIES: Record<string, () => Impl> = {
  'raw-unix': () => rawNet('unix'),
  'raw-tcp': () => rawNet('tcp'),
  'raw-v1-unix': () => rawNet('unix', 'v1'),
  'raw-v1-tcp': () => rawNet('tcp', 'v1'),
  'sealed-unix': () => sealedNet('unix'),
  'sipc-unix': () => secureIpc('unix', 'rpc'),
  'sipc-tcp': () => secureIpc('tcp', 'rpc'),
  'sipc-local': () => secureIpc('local', 'rpc'),
  'chan-unix': () => secureIpc('unix', 'channel'),
  'sipc-unix-v1': () => secureIpc('unix', 'rpc', true),
  'sipc-unix-audit': () => secureIpc('unix', 'rpc', false, true),
  'sipc-tcp-v1': () => secureIpc('tcp', 'rpc', true),
  'chan-unix-v1': () => secureIpc('unix', 'channel', true),
  'secret-stream-unix': secretStream,
  'zeromq-curve-ipc': zeromqCurve,
  'node-ipc-unix': nodeIpc,
  'grpc-mtls-unix': () => grpcUnix(true),
  'grpc-insecure-unix': () => grpcUnix(false),
};

/** The Impl with this id; throws for an unknown id. */
export function implById(id: string): Impl {
  const f = FACTORIES[id];
  if (f === undefined) throw new Error(`unknown benchmark row: ${id}`);
  return f();
}

/** Every known row id. */
export function knownRowIds(): string[] {
  return Object.keys(FACTORIES);
}

/** The rows of a normal run, raw baselines first. */
export function defaultRowIds(): string[] {
  return [
    'raw-unix',
    'raw-tcp',
    'raw-v1-unix',
    'sipc-unix',
    'sipc-tcp',
    'sipc-local',
    'chan-unix',
    'secret-stream-unix',
    'zeromq-curve-ipc',
    'node-ipc-unix',
    hasOpenssl() ? 'grpc-mtls-unix' : 'grpc-insecure-unix',
  ];
}
