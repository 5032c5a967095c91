/**
 * The name-ownership matrix of the D-Bus specification (RequestName / ReleaseName, queueing,
 * replacement, owner disconnect), row by row on the registry, then as a property: whatever
 * sequence of requests, releases and disconnects, the registry's invariants hold.
 */
import test from 'ava';
import fc from 'fast-check';
import {
  isUniqueName,
  isWellKnownName,
  NameFlag,
  NameRegistry,
  ReleaseNameReply,
  RequestNameReply,
} from '../src/index.js';

const { ALLOW_REPLACEMENT: ALLOW, REPLACE_EXISTING: REPLACE, DO_NOT_QUEUE: NOQ } = NameFlag;
const N = 'org.example.Sync';

test('no owner: the caller becomes primary owner; the change is "" → caller', (t) => {
  const r = new NameRegistry();
  const out = r.request(':1.1', N, 0);
  t.is(out.reply, RequestNameReply.PRIMARY_OWNER);
  t.deepEqual(out.change, { name: N, oldOwner: '', newOwner: ':1.1' });
  t.is(r.ownerOf(N), ':1.1');
});

test('the primary owner asking again: ALREADY_OWNER, flags replaced (its new ALLOW_REPLACEMENT counts)', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, 0);
  t.is(r.request(':1.2', N, REPLACE).reply, RequestNameReply.IN_QUEUE, 'no ALLOW_REPLACEMENT yet');
  const again = r.request(':1.1', N, ALLOW);
  t.is(again.reply, RequestNameReply.ALREADY_OWNER);
  t.is(again.change, undefined);
  t.is(
    r.request(':1.3', N, REPLACE).reply,
    RequestNameReply.PRIMARY_OWNER,
    'the updated flag allows replacement',
  );
});

test('owned, no replacement: queued (IN_QUEUE), or EXISTS with DO_NOT_QUEUE and the queue unchanged', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, 0);
  t.is(r.request(':1.2', N, 0).reply, RequestNameReply.IN_QUEUE);
  t.is(r.request(':1.3', N, NOQ).reply, RequestNameReply.EXISTS);
  t.deepEqual(r.queueOf(N), [':1.1', ':1.2']);
  t.is(r.heldCount(':1.3'), 0);
});

test('a queued caller asking again with DO_NOT_QUEUE leaves the queue: EXISTS', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, 0);
  r.request(':1.2', N, 0);
  const out = r.request(':1.2', N, NOQ);
  t.is(out.reply, RequestNameReply.EXISTS);
  t.is(out.held, -1);
  t.deepEqual(r.queueOf(N), [':1.1']);
});

test('replacement: the owner allowed it and the caller asks: caller first, old owner second (it may queue)', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, ALLOW);
  r.request(':1.2', N, 0);
  const out = r.request(':1.3', N, REPLACE);
  t.is(out.reply, RequestNameReply.PRIMARY_OWNER);
  t.deepEqual(out.change, { name: N, oldOwner: ':1.1', newOwner: ':1.3' });
  t.deepEqual(r.queueOf(N), [':1.3', ':1.1', ':1.2']);
});

test('replacement of an owner that asked DO_NOT_QUEUE removes it from the queue', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, ALLOW | NOQ);
  r.request(':1.2', N, REPLACE);
  t.deepEqual(r.queueOf(N), [':1.2']);
  t.is(r.heldCount(':1.1'), 0);
});

test('a queued caller that replaces jumps the queue, keeping one place', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, ALLOW);
  r.request(':1.2', N, 0);
  r.request(':1.3', N, 0);
  t.is(r.request(':1.3', N, REPLACE).reply, RequestNameReply.PRIMARY_OWNER);
  t.deepEqual(r.queueOf(N), [':1.3', ':1.1', ':1.2']);
});

test('REPLACE_EXISTING is not kept: a queued replacer does not take over from a later owner that allows it', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, 0); // does not allow replacement
  t.is(r.request(':1.2', N, ALLOW).reply, RequestNameReply.IN_QUEUE);
  t.is(r.request(':1.3', N, REPLACE).reply, RequestNameReply.IN_QUEUE);
  const gone = r.release(':1.1', N);
  t.deepEqual(gone.change, { name: N, oldOwner: ':1.1', newOwner: ':1.2' });
  t.is(r.ownerOf(N), ':1.2', 'the next in the queue, not the one that once asked to replace');
});

test('a request without REPLACE_EXISTING never replaces, even when allowed', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', N, ALLOW);
  t.is(r.request(':1.2', N, NOQ).reply, RequestNameReply.EXISTS);
  t.is(r.ownerOf(N), ':1.1');
});

test('ReleaseName: RELEASED (owner: the next one gets it; queued: silently), NON_EXISTENT, NOT_OWNER', (t) => {
  const r = new NameRegistry();
  t.is(r.release(':1.1', N).reply, ReleaseNameReply.NON_EXISTENT);
  r.request(':1.1', N, 0);
  r.request(':1.2', N, 0);
  r.request(':1.3', N, 0);
  t.is(r.release(':1.9', N).reply, ReleaseNameReply.NOT_OWNER);
  const queued = r.release(':1.2', N);
  t.is(queued.reply, ReleaseNameReply.RELEASED);
  t.is(queued.change, undefined);
  const owner = r.release(':1.1', N);
  t.deepEqual(owner.change, { name: N, oldOwner: ':1.1', newOwner: ':1.3' });
  const last = r.release(':1.3', N);
  t.deepEqual(last.change, { name: N, oldOwner: ':1.3', newOwner: '' });
  t.is(r.ownerOf(N), undefined);
  t.deepEqual(r.names(), []);
});

test('owner disconnect: every name and queue place goes, in the order they were got; the queue moves up', (t) => {
  const r = new NameRegistry();
  r.request(':1.1', 'a.one', 0);
  r.request(':1.1', 'a.two', 0);
  r.request(':1.2', 'a.two', 0);
  r.request(':1.2', 'a.three', 0);
  r.request(':1.1', 'a.three', 0);
  const changes = r.dropOwner(':1.1');
  t.deepEqual(changes, [
    { name: 'a.one', oldOwner: ':1.1', newOwner: '' },
    { name: 'a.two', oldOwner: ':1.1', newOwner: ':1.2' },
  ]);
  t.deepEqual(r.queueOf('a.three'), [':1.2']);
  t.is(r.heldCount(':1.1'), 0);
});

test('name syntax: D-Bus well-known names (two elements, no leading digit, 255 bytes) and unique names', (t) => {
  for (const ok of ['a.b', 'org.example.Sync', 'a_b.c-d', `a.${'x'.repeat(253)}`])
    t.true(isWellKnownName(ok), ok);
  for (const bad of [
    '',
    'a',
    '.a.b',
    'a..b',
    'a.b.',
    'a.1b',
    '1a.b',
    'a.b c',
    'a.b/c',
    'ä.b',
    `a.${'x'.repeat(254)}`,
    ':1.2',
  ])
    t.false(isWellKnownName(bad), JSON.stringify(bad));
  t.true(isUniqueName(':1.7'));
  for (const bad of [':1.', ':1.07', ':2.1', ':1.x', '1.1']) t.false(isUniqueName(bad), bad);
});

test('property: any sequence of requests, releases and disconnects keeps the queue invariants', (t) => {
  const owners = [':1.1', ':1.2', ':1.3', ':1.4'];
  const names = ['a.x', 'a.y'];
  const op = fc.oneof(
    fc.record({
      kind: fc.constant('request' as const),
      owner: fc.constantFrom(...owners),
      name: fc.constantFrom(...names),
      flags: fc.integer({ min: 0, max: 7 }),
    }),
    fc.record({
      kind: fc.constant('release' as const),
      owner: fc.constantFrom(...owners),
      name: fc.constantFrom(...names),
    }),
    fc.record({ kind: fc.constant('drop' as const), owner: fc.constantFrom(...owners) }),
  );
  fc.assert(
    fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
      const r = new NameRegistry();
      const flagsOf = new Map<string, number>(); // owner|name → flags of its latest request
      for (const o of ops) {
        const before = o.kind === 'drop' ? undefined : r.ownerOf(o.name);
        if (o.kind === 'request') {
          const out = r.request(o.owner, o.name, o.flags);
          flagsOf.set(`${o.owner}|${o.name}`, o.flags);
          if (out.reply === RequestNameReply.PRIMARY_OWNER) t.is(r.ownerOf(o.name), o.owner);
          if (out.change !== undefined) {
            t.is(out.change.oldOwner, before ?? '');
            t.is(out.change.newOwner, r.ownerOf(o.name) ?? '');
          } else t.is(r.ownerOf(o.name), before);
        } else if (o.kind === 'release') r.release(o.owner, o.name);
        else r.dropOwner(o.owner);
        for (const n of names) {
          const q = r.queueOf(n);
          if (new Set(q).size !== q.length) return false; // one place per owner
          // Nobody but the head waits with DO_NOT_QUEUE.
          for (const owner of q.slice(1)) if ((flagsOf.get(`${owner}|${n}`)! & NOQ) !== 0) return false;
        }
        for (const owner of owners) {
          const held = names.filter((n) => r.queueOf(n).includes(owner)).length;
          if (r.heldCount(owner) !== held) return false;
        }
      }
      return true;
    }),
    { numRuns: 300 },
  );
  t.pass();
});
