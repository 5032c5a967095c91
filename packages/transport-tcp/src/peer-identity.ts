/**
 * The OS user at the other end of a loopback TCP connection, on Linux: the owner uid of the
 * client's socket — local address:port = our peer's, remote address:port = ours. No peer can
 * choose it, and while our accepted socket exists no other socket can have the same four-tuple.
 * Asked of the kernel by that exact four-tuple over NETLINK_SOCK_DIAG (sock-diag.ts: microseconds
 * per connection); where that is not available, read from /proc/net/tcp and /proc/net/tcp6 (the
 * `uid` column), which lists every socket and so costs 100+ ms per read once a flood has left
 * tens of thousands of rows: one read then answers every lookup queued before it started, and a
 * lookup a read misses (the listing is not atomic) gets one more read before it gives up.
 * Only loopback peers are looked up (elsewhere the socket is on another host); the answer is
 * undefined wherever it cannot be read (another OS, /proc hidden, the client already gone).
 *
 * Caveat, documented in the README: a local proxy that forwards connections to the port (socat,
 * an SSH or container port forward) owns the client socket, so its uid is what is reported.
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { endianness } from 'node:os';
import { addressBytes, type DiagAnswer, socketOwner } from './sock-diag.js';

/** The four addresses and ports of a connection, as the server's socket reports them. */
export interface ConnectionEnds {
  readonly localAddress?: string | undefined;
  readonly localPort?: number | undefined;
  readonly remoteAddress?: string | undefined;
  readonly remotePort?: number | undefined;
}

/** How /proc is read (a test may substitute it). */
export type ProcReader = (path: string) => Promise<string>;

const FILES = { v4: '/proc/net/tcp', v6: '/proc/net/tcp6' } as const;
const LITTLE_ENDIAN = endianness() === 'LE';

// TCP states whose row carries a real socket's owner: TIME_WAIT (06) and SYN_RECV (03) rows are
// mini-sockets that print uid 0, LISTEN (0A) and CLOSE (07) are no connection.
const NOT_A_CONNECTION = new Set(['03', '06', '07', '0A']);

/** Is `address` on this host's loopback (127.0.0.0/8, ::1, ::ffff:127.x.y.z)? */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  if (address === '::1') return true;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return isIP(v4) === 4 && v4.startsWith('127.');
}

// One 32-bit word as the kernel prints it: `%08X` of the network-order word read natively.
function word(bytes: number[]): string {
  const ordered = LITTLE_ENDIAN ? [...bytes].reverse() : bytes;
  return ordered
    .map((b) => b.toString(16).padStart(2, '0'))
    .join('')
    .toUpperCase();
}

function hexPort(port: number): string {
  return port.toString(16).padStart(4, '0').toUpperCase();
}

/** The /proc rows (`file`, `local remote` as the kernel prints them) that would be the client's socket. */
export function candidateRows(ends: ConnectionEnds): { file: string; key: string }[] {
  const { localAddress, localPort, remoteAddress, remotePort } = ends;
  if (localAddress === undefined || remoteAddress === undefined) return [];
  if (localPort === undefined || remotePort === undefined) return [];
  const rows: { file: string; key: string }[] = [];
  const peer4 = unmapped(remoteAddress);
  const ours4 = unmapped(localAddress);
  // An IPv4 client (also one seen through a dual-stack listener as ::ffff:a.b.c.d) is in tcp.
  if (isIP(peer4) === 4 && isIP(ours4) === 4) {
    const hex = (a: string) => word([...addressBytes(a, 4).subarray(0, 4)]);
    rows.push({
      file: FILES.v4,
      key: `${hex(peer4)}:${hexPort(remotePort)} ${hex(ours4)}:${hexPort(localPort)}`,
    });
  }
  // An IPv6 client socket (::1, or mapped addresses from an IPv6 socket) is in tcp6.
  if (isIP(remoteAddress) === 6 || isIP(localAddress) === 6) {
    const hex6 = (a: string) => {
      const b = [...addressBytes(isIP(a) === 4 ? `::ffff:${a}` : a, 6)];
      return [0, 4, 8, 12].map((i) => word(b.slice(i, i + 4))).join('');
    };
    rows.push({
      file: FILES.v6,
      key: `${hex6(remoteAddress)}:${hexPort(remotePort)} ${hex6(localAddress)}:${hexPort(localPort)}`,
    });
  }
  return rows;
}

/** The uid of each wanted `local remote` key found in one /proc/net/tcp* text. */
export function parseRows(text: string, wanted: ReadonlySet<string>, found: Map<string, number>): void {
  let start = text.indexOf('\n') + 1; // skip the header line
  while (start > 0 && start < text.length) {
    const end = text.indexOf('\n', start);
    const line = text.slice(start, end < 0 ? text.length : end);
    start = end < 0 ? text.length : end + 1;
    // "  sl: local rem st tx_queue:rx_queue tr:tm->when retrnsmt uid ..."
    const fields = line.trim().split(/\s+/);
    const key = `${fields[1]} ${fields[2]}`;
    if (!wanted.has(key) || NOT_A_CONNECTION.has(fields[3] ?? '')) continue;
    const uid = Number(fields[7]);
    if (Number.isSafeInteger(uid) && uid >= 0) found.set(key, uid);
  }
}

const unmapped = (a: string) => (a.startsWith('::ffff:') && isIP(a.slice(7)) === 4 ? a.slice(7) : a);

/** Ask NETLINK_SOCK_DIAG for the client socket of this accepted connection. */
export function askKernel(ends: ConnectionEnds): DiagAnswer {
  const { localAddress, localPort, remoteAddress, remotePort } = ends;
  if (localAddress === undefined || remoteAddress === undefined) return { kind: 'missing' };
  if (localPort === undefined || remotePort === undefined) return { kind: 'missing' };
  // A v4-mapped pair is looked up as IPv4 (the kernel hashes such connections with IPv4 keys).
  return socketOwner(unmapped(remoteAddress), remotePort, unmapped(localAddress), localPort);
}

interface Lookup {
  readonly rows: { file: string; key: string }[];
  readonly resolve: (uid: number | undefined) => void;
  misses: number;
}

/** Batches lookups into shared reads of /proc/net/tcp*. */
export class LoopbackUidResolver {
  #queued: Lookup[] = [];
  #reading = false;

  /**
   * `read` reads a /proc file; `ask` asks the kernel for one socket (default NETLINK_SOCK_DIAG;
   * a test passes one that is unavailable to exercise the /proc path).
   */
  constructor(
    private readonly read: ProcReader = (path) => readFile(path, 'latin1'),
    private readonly ask: (ends: ConnectionEnds) => DiagAnswer = askKernel,
  ) {}

  /** The uid owning the client socket of this loopback connection, or undefined. */
  lookup(ends: ConnectionEnds): Promise<number | undefined> {
    if (process.platform !== 'linux' || !isLoopbackAddress(ends.remoteAddress))
      return Promise.resolve(undefined);
    const asked = this.ask(ends);
    if (asked.kind === 'found') return Promise.resolve(asked.uid);
    if (asked.kind === 'missing') return Promise.resolve(undefined);
    const rows = candidateRows(ends);
    if (rows.length === 0) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.#queued.push({ rows, resolve, misses: 0 });
      this.#schedule();
    });
  }

  #schedule(): void {
    if (this.#reading || this.#queued.length === 0) return;
    this.#reading = true;
    // Let the rest of this burst of connections queue up first.
    setImmediate(() => void this.#readOnce());
  }

  async #readOnce(): Promise<void> {
    const batch = this.#queued;
    this.#queued = [];
    const found = new Map<string, number>();
    try {
      const files = new Set(batch.flatMap((l) => l.rows.map((r) => r.file)));
      for (const file of files) {
        const wanted = new Set(batch.flatMap((l) => l.rows.filter((r) => r.file === file).map((r) => r.key)));
        let text: string;
        try {
          text = await this.read(file);
        } catch {
          continue; // no IPv6, or /proc not readable here: those lookups find nothing
        }
        parseRows(text, wanted, found);
      }
    } finally {
      for (const lookup of batch) {
        const uid = lookup.rows.map((r) => found.get(r.key)).find((u) => u !== undefined);
        if (uid !== undefined || ++lookup.misses > 1) lookup.resolve(uid);
        else this.#queued.push(lookup);
      }
      this.#reading = false;
      this.#schedule();
    }
  }
}
