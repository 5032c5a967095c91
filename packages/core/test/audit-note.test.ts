/**
 * C2SP signed notes and checkpoints against the published vectors (test/vectors/signed-note.json:
 * golang.org/x/mod sumdb/note's TestSign / TestOpen key, note and signature, and the C2SP
 * signed-note example): the key ID, the verifier key text, the exact signature line (Ed25519 is
 * deterministic), other keys' lines ignored, malformed notes refused.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { emptyRoot } from '../src/audit/merkle.js';
import {
  checkpointText,
  noteKeyId,
  noteSignatureBy,
  parseCheckpoint,
  parseNote,
  parseVerifierKey,
  signCheckpoint,
  signNote,
  verifierKey,
  verifyCheckpoint,
} from '../src/audit/note.js';
import { sodium } from '../src/crypto/sodium.js';

const doc = JSON.parse(readFileSync(new URL('../../test/vectors/signed-note.json', import.meta.url), 'utf8'));

/** The Go signer key `PRIVATE+KEY+name+id+base64(0x01 || seed)` as libsodium's 64-byte secret key. */
function goSigner(skey: string): { name: string; secretKey: Uint8Array; publicKey: Uint8Array } {
  const parts = skey.split('+');
  const name = parts[2]!;
  const raw = Buffer.from(parts.slice(4).join('+'), 'base64'); // base64 may itself hold a +
  const publicKey = new Uint8Array(32);
  const secretKey = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, raw.subarray(1));
  return { name, secretKey, publicKey };
}

test("Go's note vectors: key ID, verifier key and the exact signed note", (t) => {
  const signer = goSigner(doc.go.signerKey);
  const vkey = parseVerifierKey(doc.go.verifierKey);
  t.deepEqual(Buffer.from(vkey.publicKey), Buffer.from(signer.publicKey));
  t.is(noteKeyId(signer.name, signer.publicKey), 0xc74f20a3);
  t.is(verifierKey(signer.name, signer.publicKey), doc.go.verifierKey);
  t.is(signNote(doc.go.text, signer.name, signer.secretKey), doc.go.signed);
  const note = parseNote(doc.go.signed);
  t.is(note.text, doc.go.text);
  t.is(noteSignatureBy(note, signer.name, signer.publicKey), 'valid');
});

test("a known key's line verifies among unknown keys' lines; a wrong one is invalid", (t) => {
  const peter = parseVerifierKey(doc.go.verifierKey);
  const enoch = parseVerifierKey(doc.go.otherVerifierKey);
  const both = parseNote(doc.go.signed + doc.go.otherSignatureLine);
  t.is(noteSignatureBy(both, 'PeterNeumann', peter.publicKey), 'valid');
  t.is(noteSignatureBy(both, 'EnochRoot', enoch.publicKey), 'valid');
  const tampered = parseNote(doc.go.signed.replace('problem,', 'problem;'));
  t.is(noteSignatureBy(tampered, 'PeterNeumann', peter.publicKey), 'invalid');
  t.is(noteSignatureBy(parseNote(doc.go.signed), 'EnochRoot', enoch.publicKey), 'absent');
});

test('the C2SP signed-note example verifies with its verifier key', (t) => {
  const key = parseVerifierKey(doc.c2sp.verifierKey);
  t.is(key.name, 'example.com/foo');
  t.is(noteSignatureBy(parseNote(doc.c2sp.signed), key.name, key.publicKey), 'valid');
});

test('a verifier key whose base64 holds a + parses (the name and ID end at the first two)', (t) => {
  for (let i = 0; i < 64; i++) {
    const pk = new Uint8Array(32);
    sodium.crypto_sign_seed_keypair(pk, new Uint8Array(64), new Uint8Array(32).fill(i));
    const vkey = verifierKey('example.com/log', pk);
    t.deepEqual(Buffer.from(parseVerifierKey(vkey).publicKey), Buffer.from(pk), vkey);
  }
});

test('malformed verifier keys and notes are typed errors', (t) => {
  const vkey: string = doc.go.verifierKey;
  for (const bad of [
    vkey.slice(1),
    vkey.replace('c74f20a3', 'c74f20a4'),
    vkey.replace('+A', '+Z'),
    `${vkey}=`,
  ])
    t.throws(() => parseVerifierKey(bad), { code: 'SIPC_ERR_BAD_KEY' }, bad);
  const signed: string = doc.go.signed;
  for (const bad of [
    signed.replace('\n\n', '\n'),
    signed.replace('\u2014', '-'),
    `${signed}\u0001`,
    signed.slice(0, -1),
    signed.replace('x08go', '!x08go'),
  ])
    t.throws(() => parseNote(bad), { code: 'SIPC_ERR_AUDIT_CORRUPT' });
  t.throws(() => parseNote('a'.repeat(70_000)), { code: 'SIPC_ERR_AUDIT_CORRUPT' });
});

test('a checkpoint is signed and verified under its origin; others and bad bodies are refused', (t) => {
  const seed = new Uint8Array(32).fill(7);
  const pk = new Uint8Array(32);
  const sk = new Uint8Array(64);
  sodium.crypto_sign_seed_keypair(pk, sk, seed);
  const cp = { origin: 'example.com/audit', size: 5, root: emptyRoot() };
  t.is(checkpointText(cp), `example.com/audit\n5\n${Buffer.from(emptyRoot()).toString('base64')}\n`);
  const note = signCheckpoint(cp, sk);
  const parsed = parseCheckpoint(note);
  t.is(parsed.size, 5);
  t.deepEqual(verifyCheckpoint(note, pk, 'example.com/audit'), cp);
  t.is(verifyCheckpoint(note, pk, 'example.com/other'), undefined);
  const other = new Uint8Array(32);
  sodium.crypto_sign_seed_keypair(other, new Uint8Array(64), new Uint8Array(32).fill(8));
  t.is(verifyCheckpoint(note, other, 'example.com/audit'), undefined);
  for (const body of ['o\n05\nAAAA\n', 'o\n5\nAAAA\n', 'o\n\n5\n', 'o\n-1\nAAAA\n'])
    t.throws(() => parseCheckpoint(signNote(body, 'o', sk)), { code: 'SIPC_ERR_AUDIT_CORRUPT' }, body);
});
