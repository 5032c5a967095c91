/**
 * The `logger` option of `serve()` and `connect()` (docs/observability.md, "Logging"): the lines
 * of diagnostics/log.ts for this server's or this client's channels only (by channel id), plus
 * the server's own events that no channel message carries (a handler's failure, a refused
 * handshake, a dropped event). Per-request lines are subscribed only when the logger writes debug.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import type { HandshakeFailure } from '../channel/secure-listener.js';
import {
  type ChannelCloseMessage,
  DIAGNOSTICS_CHANNELS,
  type PolicyDecisionMessage,
} from '../diagnostics/channels.js';
import {
  closeLine,
  decisionLine,
  type Logger,
  madeLine,
  openLine,
  RateLimitedLog,
  servedLine,
  timed,
} from '../diagnostics/log.js';
import {
  type ClientRequestMessage,
  type ServerRequestMessage,
  TRACING_CHANNELS,
} from '../diagnostics/tracing.js';
import { isSecureIpcError } from '../errors.js';
import { keyFingerprint } from '../keys/key-pair.js';
import type { HandlerFailure } from './dispatcher.js';
import type { RpcPeer } from './peer.js';
import type { EventDrop } from './server.js';
import type { RpcChannel } from './session.js';

/** What a logged server offers: its events (RpcServer's). */
interface LoggedServer {
  on(event: 'peer', listener: (peer: RpcPeer) => void): unknown;
  on(event: 'handlerError', listener: (failure: HandlerFailure) => void): unknown;
  on(event: 'handshakeFailed', listener: (failure: HandshakeFailure) => void): unknown;
  on(event: 'eventDropped', listener: (drop: EventDrop) => void): unknown;
}

/** An error as a log line may name it: its class and code, never its message (it may hold data). */
function errorKind(error: unknown): string {
  if (isSecureIpcError(error)) return error.code;
  if (error instanceof Error) return error.name;
  return typeof error;
}

/** Subscribe the lines of channels in `ids`; returns the function that unsubscribes. */
function channelLines(log: RateLimitedLog, ids: Set<number>, side: 'server' | 'client'): () => void {
  const onClose = (raw: unknown) => {
    const m = raw as ChannelCloseMessage;
    if (!ids.has(m.channelId)) return;
    ids.delete(m.channelId);
    log.write(closeLine(m));
  };
  const onDecision = (raw: unknown) => {
    const m = raw as PolicyDecisionMessage;
    if (m.channelId !== undefined && ids.has(m.channelId)) log.write(decisionLine(m));
  };
  subscribe(DIAGNOSTICS_CHANNELS.channelClose, onClose);
  if (side === 'server') subscribe(DIAGNOSTICS_CHANNELS.policyDecision, onDecision);
  const stops: (() => void)[] = [];
  if (log.debug && side === 'server')
    stops.push(
      timed(TRACING_CHANNELS.serverRequest, (m: ServerRequestMessage, ms) => {
        if (m.channelId !== undefined && ids.has(m.channelId)) log.write(servedLine(m, ms));
      }),
    );
  if (log.debug && side === 'client')
    stops.push(
      timed(TRACING_CHANNELS.clientRequest, (m: ClientRequestMessage, ms) => {
        if (m.channelId !== undefined && ids.has(m.channelId)) log.write(madeLine(m, ms));
      }),
    );
  return () => {
    unsubscribe(DIAGNOSTICS_CHANNELS.channelClose, onClose);
    if (side === 'server') unsubscribe(DIAGNOSTICS_CHANNELS.policyDecision, onDecision);
    for (const stop of stops) stop();
  };
}

/** @internal Log a server's channels and events to `logger` until `closed` fires. */
export function logServer(server: LoggedServer, logger: Logger, onClosed: (stop: () => void) => void): void {
  const log = new RateLimitedLog(logger);
  const ids = new Set<number>();
  const stop = channelLines(log, ids, 'server');
  server.on('peer', (peer) => {
    const { channel } = peer;
    if (channel.id === undefined) return;
    ids.add(channel.id);
    log.write(
      openLine({
        v: 1,
        channelId: channel.id,
        role: 'responder',
        peer: peer.peerId,
        roles: peer.roles,
        protocolVersion: channel.version ?? 1,
        at: Date.now(),
      }),
    );
  });
  server.on('handlerError', (f) =>
    log.write([
      'error',
      {
        event: 'handler.failed',
        ...(f.channelId === undefined ? {} : { channelId: f.channelId }),
        peer: f.peerId,
        method: f.method,
        correlationId: f.correlationId,
        error: errorKind(f.error),
      },
      'handler failed (the caller got SIPC_ERR_HANDLER with this correlationId)',
    ]),
  );
  server.on('handshakeFailed', (f) =>
    log.write([
      'warn',
      {
        event: `handshake.${f.kind}`,
        code: f.code,
        ...(f.fingerprint === undefined ? {} : { peer: f.fingerprint }),
        transport: f.peer?.transport,
        pid: f.peer?.pid,
        osIdentity: f.peer?.osIdentity,
        address: f.peer?.address,
      },
      f.kind === 'refused' ? 'handshake refused' : 'handshake failed',
    ]),
  );
  server.on('eventDropped', (d) =>
    log.write([
      'warn',
      {
        event: 'event.dropped',
        peer: d.peerId,
        method: d.topic,
        bytes: d.bytes,
        queuedBytes: d.queuedBytes,
        action: d.action,
      },
      'event dropped for a subscriber over its budget',
    ]),
  );
  onClosed(stop);
}

/** @internal Log a client's channel to `logger` until it closes. */
export function logClient(channel: RpcChannel, logger: Logger): void {
  if (channel.id === undefined) return;
  const log = new RateLimitedLog(logger);
  const ids = new Set([channel.id]);
  const stop = channelLines(log, ids, 'client');
  log.write(
    openLine({
      v: 1,
      channelId: channel.id,
      role: 'initiator',
      peer: channel.fingerprint ?? keyFingerprint(channel.remoteStaticKey),
      roles: channel.roles,
      protocolVersion: channel.version ?? 1,
      at: Date.now(),
    }),
  );
  // After the close line (the close message is published before the channel's close event).
  channel.once('close', stop);
}
