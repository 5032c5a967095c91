/** One readable line about an authenticated peer: key fingerprint and what the OS says about it. */
import { keyFingerprint, type PeerInfo } from '@secure-ipc/core';

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
