/**
 * The short soak (issue 16, item 10): 4 clients in 2 processes × 300 requests each through the
 * fault proxy (delays, partial writes, resets) while the server process is SIGKILLed and restarted
 * 3 times (at a quarter, half and three quarters of the calls settled: driven by progress, not by
 * a clock). Every invariant is asserted; nothing about time is.
 */
import test from 'ava';
import { runSoak } from '../src/soak/supervisor.js';

test('soak with chaos: every call settled and typed, no key run twice (within or across server lifetimes), no client gave up, no fault in any process', async (t) => {
  const clients = 4;
  const requests = 300;
  const r = await runSoak({
    clients,
    requests,
    processes: 2,
    window: 2,
    restarts: 3,
    restartEveryMs: 0,
    callTimeoutMs: 20_000,
    rssEveryMs: 200,
    faults: { seed: 16, delayRate: 0.1, maxDelayMs: 5, splitRate: 0.2, resetRate: 0.03, graceBytes: 1024 },
  });
  const { restarts, injected, ok, errors, shutdown, ledger } = r;
  t.log(
    JSON.stringify({ restarts, injected, ok, errors, shutdown, ledger, reconnects: r.reconnectMs.length }),
  );
  t.is(r.missingReports, 0, 'every client process reported');
  t.deepEqual(r.faults, [], 'no unhandled rejection, uncaught exception or bad exit in any process');
  t.true(r.restarts >= 2, `restarts: ${r.restarts}`);
  t.true(
    r.injected.resets > 0 && r.injected.partialWrites > 0 && r.injected.delays > 0,
    JSON.stringify(r.injected),
  );
  const failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
  t.is(r.ok + failed + r.wrong + r.lost, clients * requests, 'every call accounted for');
  t.is(r.lost, 0, 'no call left unsettled');
  t.is(r.wrong, 0, 'no call answered with another call’s result');
  t.is(r.errors.untyped, undefined, 'every rejection is a SecureIpcError');
  // A server SIGKILLed after the client's last handshake message and before its acceptance looks
  // to the client like a refusal (SIPC_ERR_REFUSED, reason closed): retried closedRetries (3)
  // times in a row (docs/resilience.md), so no client gives up.
  t.deepEqual(r.shutdown, {}, 'no reconnecting client gave up');
  t.true(r.ok > 0);
  t.is(r.ledger.malformed, 0);
  t.is(r.ledger.okWithoutEffect, 0, 'every success left its ledger line');
  t.is(r.ledger.duplicatesWithinLifetime, 0, 'no key executed twice by one server process');
  t.is(
    r.ledger.duplicatesAcrossRestarts,
    0,
    'no key executed by two server processes (the ledger is the store)',
  );
  t.true(r.reconnectMs.length > 0, 'reconnects after restarts were measured');
});
