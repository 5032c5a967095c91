import test from 'ava';
import {
  addressScheme,
  isTransport,
  selectTransport,
  TRANSPORT_BRAND,
  type Transport,
} from '../src/transport/contract.js';

const fake = (name: string, schemes: string[]): Transport => ({
  [TRANSPORT_BRAND]: true,
  name,
  schemes,
  listen: () => Promise.reject(new Error('not used')),
  connect: () => Promise.reject(new Error('not used')),
});

test('isTransport checks the Symbol.for brand', (t) => {
  t.true(isTransport(fake('x', [])));
  t.true(isTransport({ [Symbol.for('@secure-ipc/transport')]: true }));
  t.false(isTransport({ name: 'x', listen() {}, connect() {} }));
  t.false(isTransport(undefined));
});

test('addressScheme and selectTransport', (t) => {
  t.is(addressScheme('unix:///tmp/a.sock'), 'unix:');
  t.is(addressScheme('TCP://127.0.0.1:1'), 'tcp:');
  t.is(addressScheme('/no/scheme'), undefined);
  const unix = fake('unix', ['unix:', 'local:']);
  const tcp = fake('tcp', ['tcp:']);
  t.is(selectTransport('local://app', [tcp, unix]), unix);
  t.is(selectTransport('tcp://[::1]:9', [tcp, unix]), tcp);
  t.is(selectTransport('pipe://x', [tcp, unix]), undefined);
});
