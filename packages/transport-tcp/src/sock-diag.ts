/**
 * The owner uid of one TCP socket, asked of the Linux kernel by its exact four-tuple over
 * NETLINK_SOCK_DIAG (what `ss` uses): one `inet_diag_req_v2` without NLM_F_DUMP makes the kernel
 * look the socket up in its hash table (inet_diag_find_one_icsk) and answer one `inet_diag_msg`
 * with `idiag_uid`, in the sendto() call itself. So it is a few microseconds whatever the number
 * of sockets, where /proc/net/tcp* lists them all (tens of thousands of rows, TIME_WAIT included,
 * after a connection flood: 100+ ms per read, measured). koffi (the FFI transport-unix and
 * transport-win use too) is loaded on first use, never at import.
 *
 *   request:  nlmsghdr (16) | family u8, protocol u8, ext u8, pad u8, states u32 | sockid (48)
 *   sockid:   sport be16, dport be16, src be32[4], dst be32[4], if u32, cookie u32[2]
 *   answer:   nlmsghdr (16) | family u8, state u8, timer u8, retrans u8 | sockid (48) |
 *             expires u32, rqueue u32, wqueue u32, uid u32, inode u32
 * An NLMSG_ERROR answer (ENOENT: no such socket) means "not found".
 */
import { createRequire } from 'node:module';
import { isIP } from 'node:net';

/** `found`: the uid; `missing`: the kernel has no such socket; `unavailable`: this way of asking does not work here. */
export type DiagAnswer =
  | { readonly kind: 'found'; readonly uid: number }
  | { readonly kind: 'missing' }
  | { readonly kind: 'unavailable'; readonly reason: Error };

const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_DGRAM = 2;
const SOCK_CLOEXEC = 0o2000000;
const NETLINK_SOCK_DIAG = 4;
const SOCK_DIAG_BY_FAMILY = 20;
const NLM_F_REQUEST = 1;
const NLMSG_ERROR = 2;
const IPPROTO_TCP = 6;
const MSG_DONTWAIT = 0x40;
const TCP_TIME_WAIT = 6;
const TCP_SYN_RECV = 3;
const ALL_STATES = 0xffffffff;
const NO_COOKIE = 0xffffffff;

const HEADER = 16;
const REQUEST_SIZE = HEADER + 8 + 48;
const UID_OFFSET = HEADER + 4 + 48 + 12;
const ANSWER_SIZE = 1024;

interface Diag {
  fd: number;
  sendto(fd: number, buf: Buffer, len: number, flags: number, addr: Buffer, addrLen: number): number;
  recv(fd: number, buf: Buffer, len: number, flags: number): number;
  errno(): number;
}

const REQUEST = Buffer.alloc(REQUEST_SIZE);
const ANSWER = Buffer.alloc(ANSWER_SIZE);
/** struct sockaddr_nl of the kernel: family AF_NETLINK, pid 0, groups 0. */
const KERNEL = Buffer.alloc(12);
KERNEL.writeUInt16LE(AF_NETLINK, 0);

let diag: Diag | Error | undefined;
let seq = 0;

function open(): Diag | Error {
  try {
    const koffi = createRequire(import.meta.url)('koffi') as {
      load(path: string): { func(signature: string): (...args: unknown[]) => number };
      errno(): number;
    };
    const libc = koffi.load('libc.so.6');
    const socket = libc.func('int socket(int, int, int)');
    const fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (fd < 0) return new Error(`socket(AF_NETLINK, NETLINK_SOCK_DIAG) failed (errno ${koffi.errno()})`);
    return {
      fd,
      sendto: libc.func(
        'long sendto(int, const void *buf, size_t len, int flags, const void *addr, uint32_t alen)',
      ),
      recv: libc.func('long recv(int, void *buf, size_t len, int flags)'),
      errno: () => koffi.errno(),
    } as Diag;
  } catch (err) {
    return new Error('could not load koffi for NETLINK_SOCK_DIAG', { cause: err });
  }
}

/** An IPv4 (`version` 4) or IPv6 address as 16 bytes in network order (IPv4 in the first four, as the kernel reads it). */
export function addressBytes(address: string, version: 4 | 6): Buffer {
  const out = Buffer.alloc(16);
  if (version === 4) {
    address.split('.').forEach((part, i) => {
      out[i] = Number(part);
    });
    return out;
  }
  let text = address;
  let v4: string | undefined;
  if (text.includes('.')) {
    const at = text.lastIndexOf(':');
    v4 = text.slice(at + 1);
    text = `${text.slice(0, at)}:0:0`;
  }
  const [head, tail] = text.split('::') as [string, string | undefined];
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right];
  for (const [i, g] of groups.entries()) out.writeUInt16BE(Number.parseInt(g, 16), i * 2);
  if (v4 !== undefined) addressBytes(v4, 4).copy(out, 12, 0, 4);
  return out;
}

/**
 * Ask for the socket whose local end is `src`:`sport` and remote end `dst`:`dport` (for the
 * client socket of an accepted connection: src = the peer's address, dst = ours).
 */
export function socketOwner(src: string, sport: number, dst: string, dport: number): DiagAnswer {
  diag ??= open();
  if (diag instanceof Error) return { kind: 'unavailable', reason: diag };
  const v4 = isIP(src) === 4 && isIP(dst) === 4;
  const family = v4 ? AF_INET : AF_INET6;
  // One request, address and answer buffer for the process: a lookup per accepted connection
  // should not be three allocations (the flood suite's profile showed them).
  const req = REQUEST.fill(0);
  const id = ++seq >>> 0;
  req.writeUInt32LE(REQUEST_SIZE, 0);
  req.writeUInt16LE(SOCK_DIAG_BY_FAMILY, 4);
  req.writeUInt16LE(NLM_F_REQUEST, 6);
  req.writeUInt32LE(id, 8);
  req.writeUInt8(family, HEADER);
  req.writeUInt8(IPPROTO_TCP, HEADER + 1);
  req.writeUInt32LE(ALL_STATES, HEADER + 4);
  const sockid = HEADER + 8;
  req.writeUInt16BE(sport, sockid);
  req.writeUInt16BE(dport, sockid + 2);
  addressBytes(src, v4 ? 4 : 6).copy(req, sockid + 4);
  addressBytes(dst, v4 ? 4 : 6).copy(req, sockid + 20);
  req.writeUInt32LE(NO_COOKIE, sockid + 40);
  req.writeUInt32LE(NO_COOKIE, sockid + 44);
  if (diag.sendto(diag.fd, req, req.length, 0, KERNEL, KERNEL.length) !== req.length)
    return {
      kind: 'unavailable',
      reason: new Error(`sendto(NETLINK_SOCK_DIAG) failed (errno ${diag.errno()})`),
    };
  // The kernel answered inside sendto(); never block for it. Skip stale answers (other seq).
  const answer = ANSWER;
  for (;;) {
    const n = diag.recv(diag.fd, answer, answer.length, MSG_DONTWAIT);
    if (n < HEADER)
      return {
        kind: 'unavailable',
        reason: new Error(`recv(NETLINK_SOCK_DIAG) failed (errno ${diag.errno()})`),
      };
    if (answer.readUInt32LE(8) !== id) continue;
    if (answer.readUInt16LE(4) === NLMSG_ERROR) return { kind: 'missing' };
    if (n < UID_OFFSET + 4)
      return { kind: 'unavailable', reason: new Error('short NETLINK_SOCK_DIAG answer') };
    const state = answer.readUInt8(HEADER + 1);
    // TIME_WAIT and SYN_RECV entries are mini-sockets without an owner (they print uid 0).
    if (state === TCP_TIME_WAIT || state === TCP_SYN_RECV) return { kind: 'missing' };
    return { kind: 'found', uid: answer.readUInt32LE(UID_OFFSET) };
  }
}
