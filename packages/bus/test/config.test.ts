/**
 * The bus configuration file (docs/bus.md section 12): the example in the spec parses to the
 * broker options it shows; every kind of mistake is SIPC_ERR_INVALID_ARGUMENT naming the source
 * and the JSON pointer of the setting; a parsed file starts a broker.
 */
import { readFileSync } from 'node:fs';
import { generateKeyPair, isSecureIpcError } from '@secure-ipc/core';
import { memoryTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import { MAX_BUS_CONFIG_BYTES, parseBusConfig, serveBus } from '../src/index.js';

const spec = readFileSync(new URL('../../../../docs/bus.md', import.meta.url), 'utf8');
const example = /## 12\.[\s\S]*?```json\n([\s\S]*?)```/.exec(spec)![1]!;

test('the example of docs/bus.md section 12 parses to the options it shows, and starts a broker', async (t) => {
  const c = parseBusConfig(example, 'bus.json');
  t.deepEqual(Object.keys(c.policy.roles), ['sync', 'app', 'admin']);
  t.is(c.policy.peers?.length, 2);
  t.deepEqual(c.quotas, { peer: { names: 16 } });
  t.deepEqual(c.activation, { 'org.example.Sync': { command: ['/usr/libexec/example-sync'] } });
  const broker = await serveBus({
    transport: memoryTransport(),
    address: 'memory://bus-config',
    keyPair: generateKeyPair(),
    trust: { keys: [generateKeyPair().publicKey] },
    ...c,
  });
  t.deepEqual(broker.stats().peers, 0);
  await broker.close();
});

test('mistakes are SIPC_ERR_INVALID_ARGUMENT with the source and the pointer of the setting', (t) => {
  const cases: [string, string][] = [
    ['{', 'f.json: /: is not JSON'],
    ['null', 'f.json: /: must be an object'],
    ['{}', 'f.json: /policy: is required'],
    ['{"policy":{"roles":{}},"x":1}', 'f.json: /x: unknown setting'],
    ['{"policy":{"roles":{"r":{"own":"a"}}}}', 'f.json: /policy/roles/r/own: must be a list of strings'],
    ['{"policy":{"roles":{"a/b":{"cal":[]}}}}', 'f.json: /policy/roles/a~1b/cal: unknown setting'],
    ['{"policy":{"roles":{},"peers":{}}}', 'f.json: /policy/peers: must be a list'],
    [
      '{"policy":{"roles":{},"peers":[{"key":1,"roles":[]}]}}',
      'f.json: /policy/peers/0/key: must be a string',
    ],
    ['{"policy":{"roles":{},"peers":[{"key":"AAAA","roles":["r"]}]}}', 'f.json: /policy: '],
    [
      '{"policy":{"roles":{}},"quotas":{"peer":{"names":1.5}}}',
      'f.json: /quotas/peer/names: must be an integer',
    ],
    ['{"policy":{"roles":{}},"quotas":{"user":{}}}', 'f.json: /quotas/user: unknown setting'],
    ['{"policy":{"roles":{}},"activation":{"bus.Self":{"command":["x"]}}}', 'f.json: /activation: '],
    [
      '{"policy":{"roles":{}},"activation":{"org.a.B":{"command":["x"],"env":{"A":1}}}}',
      'f.json: /activation/org.a.B/env/A: must be a string',
    ],
    [
      '{"policy":{"roles":{}},"activationTimeoutMs":0}',
      'f.json: /activationTimeoutMs: must be an integer from 1 to 600000',
    ],
    ['{"policy":{"roles":{}},"maxDroppedSignals":-1}', 'f.json: /maxDroppedSignals: must be an integer'],
  ];
  for (const [text, start] of cases) {
    const err = t.throws(() => parseBusConfig(text, 'f.json'));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), text);
    t.true(err?.message.startsWith(start), `${text}: ${err?.message}`);
  }
  const big = `{"policy":{"roles":{}}}${' '.repeat(MAX_BUS_CONFIG_BYTES)}`;
  t.regex(t.throws(() => parseBusConfig(big, 'f.json'))!.message, /^f\.json: \/: is over 1048576 bytes/);
});

test('serveBus refuses a non-positive activationTimeoutMs or maxDroppedSignals', async (t) => {
  for (const bad of [{ activationTimeoutMs: 0 }, { maxDroppedSignals: 1.5 }]) {
    const err = await t.throwsAsync(
      serveBus({
        transport: memoryTransport(),
        address: 'memory://bus-config-bad',
        keyPair: generateKeyPair(),
        trust: { keys: [generateKeyPair().publicKey] },
        policy: { roles: {} },
        ...bad,
      }),
    );
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(bad));
  }
});
