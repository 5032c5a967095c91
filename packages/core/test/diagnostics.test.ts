import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import test from 'ava';
import {
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  connect,
  createPolicy,
  DIAGNOSTICS_CHANNELS,
  DIAGNOSTICS_VERSION,
  generateKeyPair,
  keyFingerprint,
  type PolicyDecisionMessage,
  serve,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

// The channels are process-wide: tests in this file run one at a time so each sees its own traffic.

function record<T>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const fn = (m: unknown) => messages.push(m as T);
  subscribe(name, fn);
  return { messages, stop: () => unsubscribe(name, fn) };
}

const SENTINEL = 'sentinel-7f3a9c-never-in-diagnostics';

async function pair(address: string) {
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const server = await serve<{ 'echo.say'(p: { text: string }): string; 'admin.wipe'(): void }>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({
      roles: { user: { call: ['echo.*'] } },
      peers: [{ key: clientKeys.publicKey, roles: ['user'] }],
    }),
  });
  server.handle('echo.say', ({ text }) => text).handle('admin.wipe', () => undefined);
  const client = await connect<{ 'echo.say'(p: { text: string }): string; 'admin.wipe'(): void }>({
    transport,
    address,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  return { server, client, serverKeys, clientKeys };
}

test.serial(
  'channel.open and channel.close: both sides, with ids, fingerprints, reason and duration',
  async (t) => {
    const opens = record<ChannelOpenMessage>(DIAGNOSTICS_CHANNELS.channelOpen);
    const closes = record<ChannelCloseMessage>(DIAGNOSTICS_CHANNELS.channelClose);
    try {
      const { server, client, serverKeys, clientKeys } = await pair('memory://diag-open-close');
      await client.request('echo.say', { text: 'hi' });
      await client.close();
      await server.close();
      await new Promise((r) => setImmediate(r));
      t.is(opens.messages.length, 2);
      const byRole = new Map(opens.messages.map((m) => [m.role, m]));
      const initiator = byRole.get('initiator')!;
      const responder = byRole.get('responder')!;
      t.is(initiator.v, DIAGNOSTICS_VERSION);
      t.is(initiator.peer, keyFingerprint(serverKeys.publicKey));
      t.is(responder.peer, keyFingerprint(clientKeys.publicKey));
      t.deepEqual(responder.roles, []);
      t.true(initiator.protocolVersion >= 1);
      t.not(initiator.channelId, responder.channelId);
      t.true(Number.isInteger(initiator.channelId) && initiator.channelId > 0);
      t.is(closes.messages.length, 2);
      const ids = closes.messages.map((m) => m.channelId).sort((a, b) => a - b);
      t.deepEqual(
        ids,
        [initiator.channelId, responder.channelId].sort((a, b) => a - b),
      );
      for (const m of closes.messages) {
        t.is(m.v, DIAGNOSTICS_VERSION);
        t.true(m.durationMs >= 0);
        t.true(['clean', 'peer-vanished', 'local'].includes(m.reason), m.reason);
      }
      const initiatorClose = closes.messages.find((m) => m.channelId === initiator.channelId)!;
      t.is(initiatorClose.reason, 'clean');
      t.is(initiatorClose.code, undefined);
    } finally {
      opens.stop();
      closes.stop();
    }
  },
);

test.serial('policy.decision: every authorization, allowed and denied, with the channel id', async (t) => {
  const opens = record<ChannelOpenMessage>(DIAGNOSTICS_CHANNELS.channelOpen);
  const decisions = record<PolicyDecisionMessage>(DIAGNOSTICS_CHANNELS.policyDecision);
  try {
    const { server, client, clientKeys } = await pair('memory://diag-decisions');
    await client.request('echo.say', { text: SENTINEL });
    await t.throwsAsync(client.request('admin.wipe'), { code: 'SIPC_ERR_FORBIDDEN' });
    await client.close();
    await server.close();
    const responder = opens.messages.find((m) => m.role === 'responder')!;
    t.deepEqual(
      decisions.messages.map((d) => [d.action, d.what, d.allowed]),
      [
        ['call', 'echo.say', true],
        ['call', 'admin.wipe', false],
      ],
    );
    for (const d of decisions.messages) {
      t.is(d.v, DIAGNOSTICS_VERSION);
      t.is(d.channelId, responder.channelId);
      t.is(d.peer, keyFingerprint(clientKeys.publicKey));
      t.deepEqual(d.roles, ['user']);
    }
    // Names, counts and codes only: the payload never reaches a diagnostics message.
    const seen = JSON.stringify([opens.messages, decisions.messages]);
    t.false(seen.includes(SENTINEL));
  } finally {
    opens.stop();
    decisions.stop();
  }
});

test.serial(
  'no subscriber: the server still reports every decision to its own decision listeners',
  async (t) => {
    const { server, client } = await pair('memory://diag-none');
    const events: string[] = [];
    server.on('decision', (d) => events.push(d.what));
    await client.request('echo.say', { text: 'x' });
    await client.close();
    await server.close();
    t.deepEqual(events, ['echo.say']);
  },
);
