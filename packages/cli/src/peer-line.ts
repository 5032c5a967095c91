/** An authenticated peer for a person (one line) or for `--json`: key fingerprint and what the OS says about it. */
import { encodeKey, keyFingerprint, type PeerInfo } from '@secure-ipc/core';

/** `BLAKE2b:… (pid 123, uid 1000, gid 1000)` — only the OS facts that are known. */
export function describePeer(remoteStaticKey: Uint8Array, peer: PeerInfo): string {
  const os: string[] = [];
  if (peer.pid !== undefined) os.push(`pid ${peer.pid}`);
  if (peer.uid !== undefined) os.push(`uid ${peer.uid}`);
  if (peer.gid !== undefined) os.push(`gid ${peer.gid}`);
  if (peer.sid !== undefined) os.push(`sid ${peer.sid}`);
  if (peer.address !== undefined) os.push(`${peer.address}:${peer.port ?? '?'}`);
  return `${keyFingerprint(remoteStaticKey)} (${os.length ? os.join(', ') : 'no OS identity'} via ${peer.transport})`;
}

/** The OS facts about a peer that are known, as JSON (`transport`, and `pid`, `uid`, ... when known). */
export function osFactsJSON(peer: PeerInfo): Record<string, unknown> {
  const facts: Record<string, unknown> = { transport: peer.transport };
  for (const k of ['pid', 'uid', 'gid', 'sid', 'address', 'port'] as const)
    if (peer[k] !== undefined) facts[k] = peer[k];
  return facts;
}

/**
 * The `--json` form of an authenticated peer: its public key (44 characters of base64) and
 * fingerprint, the roles its channel holds (when given), and the OS facts.
 */
export function peerJSON(
  remoteStaticKey: Uint8Array,
  peer: PeerInfo,
  roles?: readonly string[],
): Record<string, unknown> {
  return {
    publicKey: encodeKey(remoteStaticKey),
    fingerprint: keyFingerprint(remoteStaticKey),
    ...(roles === undefined ? {} : { roles: [...roles] }),
    ...osFactsJSON(peer),
  };
}
