/**
 * What the decoded value cannot tell: how a field was encoded. A decoded `1` may have been the
 * msgpack integer `01` or the float 64 `cb 3ff0000000000000`, and a decoded object may have come
 * from a map with integer keys or with two entries under the same key. The protocol says which
 * fields are integers and that maps are keyed by distinct strings (docs/protocol.md, 3.3 and
 * "Envelope v1"), so those checks read the bytes.
 *
 * Only for bytes `decodeBudgetRefusal` (./decode-budget.ts) accepted: every length was checked
 * there against the bytes left, so these readers do no bounds checks of their own. No recursion,
 * no allocation but the key strings of the map being read.
 */

/** True if the item at `pos` is a msgpack integer (fixint, uint 8-64, int 8-64), never a float. */
export function isIntegerAt(bytes: Uint8Array, pos: number): boolean {
  const b = bytes[pos]!;
  return b < 0x80 || b >= 0xe0 || (b >= 0xcc && b <= 0xcf) || (b >= 0xd0 && b <= 0xd3);
}

/** True if the item at `pos` is a msgpack str (fixstr, str 8/16/32). */
export function isStringAt(bytes: Uint8Array, pos: number): boolean {
  const b = bytes[pos]!;
  return (b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb);
}

function readLength(bytes: Uint8Array, pos: number, width: number): number {
  let n = 0;
  for (let i = 1; i <= width; i++) n = n * 256 + bytes[pos + i]!;
  return n;
}

/** The entries of the map at `pos` and the position of its first key, or undefined if not a map. */
export function mapAt(bytes: Uint8Array, pos: number): [entries: number, first: number] | undefined {
  const b = bytes[pos]!;
  if (b >= 0x80 && b <= 0x8f) return [b & 0x0f, pos + 1];
  if (b === 0xde) return [readLength(bytes, pos, 2), pos + 3];
  if (b === 0xdf) return [readLength(bytes, pos, 4), pos + 5];
  return undefined;
}

/** The elements of the array at `pos` and the position of its first one, or undefined if not an array. */
export function arrayAt(bytes: Uint8Array, pos: number): [elements: number, first: number] | undefined {
  const b = bytes[pos]!;
  if (b >= 0x90 && b <= 0x9f) return [b & 0x0f, pos + 1];
  if (b === 0xdc) return [readLength(bytes, pos, 2), pos + 3];
  if (b === 0xdd) return [readLength(bytes, pos, 4), pos + 5];
  return undefined;
}

/** The str at `pos` as [text, position after it], or undefined if the item there is not a str. */
export function stringAt(bytes: Uint8Array, pos: number): [text: string, next: number] | undefined {
  if (!isStringAt(bytes, pos)) return undefined;
  const b = bytes[pos]!;
  const width = b <= 0xbf ? 0 : 1 << (b - 0xd9); // 1, 2 or 4 length bytes after str 8/16/32
  const len = width === 0 ? b & 0x1f : readLength(bytes, pos, width);
  const start = pos + 1 + width;
  return [
    shortAscii(bytes, start, len) ??
      Buffer.from(bytes.buffer, bytes.byteOffset + start, len).toString('utf8'),
    start + len,
  ];
}

// Keys are short ASCII names: built by hand (no Buffer per key), undefined for anything else.
function shortAscii(bytes: Uint8Array, start: number, len: number): string | undefined {
  if (len > 8) return undefined;
  let text = '';
  for (let i = start; i < start + len; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) return undefined;
    text += String.fromCharCode(c);
  }
  return text;
}

/** The number of own enumerable keys of a decoded map (compared with its entries: no key twice). */
export function keyCount(value: object): number {
  let n = 0;
  for (const _ in value) n++;
  return n;
}

/** The position after the value at `pos` (containers included), walked without recursion. */
export function skipValue(bytes: Uint8Array, pos: number): number {
  let items = 1;
  while (items > 0) {
    items--;
    const b = bytes[pos]!;
    if (b < 0x80 || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) pos += 1;
    else if (b <= 0x8f) {
      items += 2 * (b & 0x0f);
      pos += 1;
    } else if (b <= 0x9f) {
      items += b & 0x0f;
      pos += 1;
    } else if (b <= 0xbf) pos += 1 + (b & 0x1f);
    else
      switch (b) {
        case 0xc4:
        case 0xc5:
        case 0xc6: {
          const width = 1 << (b - 0xc4);
          pos += 1 + width + readLength(bytes, pos, width);
          break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9: {
          const width = 1 << (b - 0xc7);
          pos += 2 + width + readLength(bytes, pos, width);
          break;
        }
        case 0xca:
        case 0xce:
        case 0xd2:
          pos += 5;
          break;
        case 0xcb:
        case 0xcf:
        case 0xd3:
          pos += 9;
          break;
        case 0xcc:
        case 0xd0:
          pos += 2;
          break;
        case 0xcd:
        case 0xd1:
          pos += 3;
          break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
          pos += 2 + (1 << (b - 0xd4));
          break;
        case 0xd9:
        case 0xda:
        case 0xdb: {
          const width = 1 << (b - 0xd9);
          pos += 1 + width + readLength(bytes, pos, width);
          break;
        }
        case 0xdc:
        case 0xdd: {
          const width = b === 0xdc ? 2 : 4;
          items += readLength(bytes, pos, width);
          pos += 1 + width;
          break;
        }
        default: {
          // 0xde, 0xdf (0xc1 never passes the budget)
          const width = b === 0xde ? 2 : 4;
          items += 2 * readLength(bytes, pos, width);
          pos += 1 + width;
        }
      }
  }
  return pos;
}

/**
 * Walk the map at `pos`: every key must be a str, no key twice. `onEntry(key, valuePos)` sees each
 * entry and returns a reason to refuse it, or undefined. Returns the first reason, or undefined
 * if the map is fine; 'not a map' if the item at `pos` is not one.
 */
export function scanStringKeyedMap(
  bytes: Uint8Array,
  pos: number,
  onEntry?: (key: string, valuePos: number) => string | undefined,
): string | undefined {
  const map = mapAt(bytes, pos);
  if (map === undefined) return 'not a map';
  let [entries, at] = map;
  const seen = new Set<string>();
  for (; entries > 0; entries--) {
    const entry = stringAt(bytes, at);
    if (entry === undefined) return 'a map key that is not a string';
    const [key, valuePos] = entry;
    if (seen.has(key)) return 'a map key that appears twice';
    seen.add(key);
    const reason = onEntry?.(key, valuePos);
    if (reason !== undefined) return reason;
    at = skipValue(bytes, valuePos);
  }
  return undefined;
}
