import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { generateKeyPair } from '../src/keys/key-pair.js';

const prologue = Buffer.from('test');
const make = (initiator: boolean) =>
  new NoiseHandshake({ initiator, prologue, staticKeyPair: generateKeyPair() });

test('each side may only act on its turn', (t) => {
  const i = make(true);
  const r = make(false);
  t.true(
    isSecureIpcError(
      t.throws(() => r.writeMessage(Buffer.alloc(0))),
      'SIPC_ERR_HANDSHAKE_FAILED',
    ),
  );
  t.true(
    isSecureIpcError(
      t.throws(() => i.readMessage(Buffer.alloc(32))),
      'SIPC_ERR_HANDSHAKE_FAILED',
    ),
  );
  const m1 = i.writeMessage(Buffer.from('hello'));
  t.is(m1.byteLength, 32 + 5, 'message 1 = e + plaintext payload');
  t.true(
    isSecureIpcError(
      t.throws(() => i.writeMessage(Buffer.alloc(0))),
      'SIPC_ERR_HANDSHAKE_FAILED',
    ),
  );
  t.is(Buffer.from(r.readMessage(m1)).toString(), 'hello');
  const m2 = r.writeMessage(Buffer.alloc(0));
  t.is(m2.byteLength, 32 + 48 + 16);
  i.readMessage(m2);
  const m3 = i.writeMessage(Buffer.alloc(0));
  t.is(m3.byteLength, 48 + 16);
  r.readMessage(m3);
  t.true(i.complete && r.complete);
  t.is(i.ephemeralSecretKey, null, 'the handshake state is freed once complete');
  t.true(
    isSecureIpcError(
      t.throws(() => i.writeMessage(Buffer.alloc(0))),
      'SIPC_ERR_HANDSHAKE_FAILED',
    ),
  );
  i.dispose();
  r.dispose();
  t.true(i.split!.tx.destroyed && r.split!.rx.destroyed);
});

test('short or altered messages fail and leave the state unusable', (t) => {
  for (const cut of [0, 31, 32 + 47, 32 + 48 + 15]) {
    const i = make(true);
    const r = make(false);
    r.readMessage(i.writeMessage(Buffer.alloc(0)));
    const m2 = r.writeMessage(Buffer.alloc(0));
    t.true(
      isSecureIpcError(
        t.throws(() => i.readMessage(m2.subarray(0, cut))),
        'SIPC_ERR_HANDSHAKE_FAILED',
      ),
      `cut ${cut}`,
    );
    t.is(i.ephemeralSecretKey, null, 'wiped after the failure');
    t.true(
      isSecureIpcError(
        t.throws(() => i.readMessage(m2)),
        'SIPC_ERR_HANDSHAKE_FAILED',
      ),
      'no retry',
    );
    r.dispose();
  }
  const i = make(true);
  const r = make(false);
  const m1 = Buffer.from(i.writeMessage(Buffer.alloc(0)));
  m1[3]! ^= 1; // a different ephemeral key: message 2 cannot authenticate at the initiator
  r.readMessage(m1);
  t.true(
    isSecureIpcError(
      t.throws(() => i.readMessage(r.writeMessage(Buffer.alloc(0)))),
      'SIPC_ERR_HANDSHAKE_FAILED',
    ),
  );
  r.dispose();
});

test('messages over 65535 bytes are refused both ways (the Noise limit, enforced here)', (t) => {
  const i = make(true);
  t.true(
    isSecureIpcError(
      t.throws(() => i.writeMessage(Buffer.alloc(65_535 - 32))),
      'SIPC_ERR_FRAME_TOO_LARGE',
    ),
  );
  t.notThrows(() => i.writeMessage(Buffer.alloc(0)), 'the refusal changed nothing');
  t.true(
    isSecureIpcError(
      t.throws(() => i.readMessage(Buffer.alloc(65_536))),
      'SIPC_ERR_FRAME_TOO_LARGE',
    ),
  );
  i.dispose();
});
