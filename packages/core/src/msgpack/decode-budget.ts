/**
 * The decode budget for msgpack from a peer (docs/protocol.md, section 8): one linear pass over
 * the bytes, before any of them is decoded, that refuses a value whose decoding would cost more
 * than a fixed multiple of its own size. Every decoder of peer input goes through `decodeBounded`
 * (envelopes, handshake payloads, certificates).
 *
 * Why: msgpack is compact and a decoded value is not. A 16 MiB message of empty arrays is 16
 * million arrays (40 bytes of heap each), of empty maps 64 bytes each, of empty binaries 104
 * bytes each, measured on Node 20 x64. Bounding lengths by the message size (the only bound
 * before) bounds the bytes, not the objects.
 *
 * The pass walks the value as the decoder would, item by item, keeping only a count of the items
 * left at each nesting level in a fixed-size array: no recursion (a peer cannot overflow the
 * stack) and no allocation (it costs the same whatever the shape). It refuses:
 * - containers nested deeper than MAX_DECODE_DEPTH (the outermost container is depth 1);
 * - a string, binary or ext longer than the bytes left, an array of more elements than bytes left
 *   (each takes at least one), a map of more than half that many entries;
 * - a map key that is a container or an ext (keys are scalars: str, int, float, bin, nil, bool);
 * - an ext of the registered types 1 (Map) and 2 (Set) whose payload is not exactly one array (of
 *   an even length for 1): their items are walked as part of the value, like any container's;
 * - trailing bytes, a truncated value, the unused type byte 0xc1;
 * - a total cost over DECODE_COST_PER_BYTE x bytes + DECODE_COST_ALLOWANCE, where each item costs
 *   its estimated heap in bytes (DECODE_COSTS below: V8 x64 sizes, each at or above the size
 *   measured for the shape that makes it largest, e.g. a map is charged as a dictionary-mode
 *   object since a peer can force that representation).
 */
import { Decoder, type DecoderOptions } from '@msgpack/msgpack';

/** Containers (arrays, maps) nest at most this deep; the outermost one is at depth 1. */
export const MAX_DECODE_DEPTH = 32;

/** The decode cost allowed per byte of the encoded value. */
export const DECODE_COST_PER_BYTE = 32;

/** Cost allowed on top of DECODE_COST_PER_BYTE x bytes (so small values are never refused for cost). */
export const DECODE_COST_ALLOWANCE = 1024 * 1024;

/**
 * What each decoded item is charged, in bytes of heap (V8 x64, Node 20, no pointer compression;
 * measured per shape, see test/decode-budget-heap.test.ts). Normative: docs/protocol.md, section 8.
 */
export const DECODE_COSTS = {
  /** Every item except a map key: its slot in the parent array or object (a pointer). */
  slot: 8,
  /** Any number but a fixint (a heap number when outside the small-integer range). */
  number: 16,
  /** A string of n > 0 bytes: 24 + 2n (header, and two bytes per UTF-16 unit at most). */
  stringBase: 24,
  stringPerByte: 2,
  /** A binary: a Uint8Array view of the message (96 bytes), whatever its length. */
  binary: 96,
  /** An ext value: an ExtData (or Date) holding a Uint8Array view. */
  ext: 136,
  /** An array: the JSArray, plus its element store's header when not empty. */
  array: 32,
  arrayStore: 16,
  /** A map: the object; when not empty, a dictionary (136) plus 64 per entry. */
  map: 56,
  mapStore: 136,
  mapEntry: 64,
} as const;

// The items still to read at each open level (a map counts its keys and values), and whether the
// level is a map. Fixed size: the pass allocates nothing. Uint32 is enough: a level is stored only
// once its items are known to fit in the bytes left, and `& 1` keeps the parity cheap (a float
// `%` is a call to fmod: it made the pass cost as much as the decode, in the envelope micro A/B).
const left = new Uint32Array(MAX_DECODE_DEPTH + 1);
const mapLevel = new Uint8Array(MAX_DECODE_DEPTH + 1);
// Where the payload of the ext 1 / ext 2 open at each level ends, or 0 for a plain container.
const extEnd = new Float64Array(MAX_DECODE_DEPTH + 1);

const C = DECODE_COSTS;

/** The reason `bytes` would be refused, or undefined if decoding them fits the budget. */
export function decodeBudgetRefusal(bytes: Uint8Array): string | undefined {
  const end = bytes.length;
  const budget = DECODE_COST_PER_BYTE * end + DECODE_COST_ALLOWANCE;
  let pos = 0;
  let depth = 0;
  let cost = 0;
  left[0] = 1;
  mapLevel[0] = 0;
  for (;;) {
    if (pos >= end) return 'truncated';
    // In a map, keys come at an even count of items left (2n, 2n - 2, ...).
    const isKey = mapLevel[depth] === 1 && (left[depth]! & 1) === 0;
    const b = bytes[pos]!;
    let head = 1; // header bytes, type byte included
    let len = 0; // bytes after the header
    let entries = -1; // >= 0: a container with this many entries
    let isMap = false;
    let item = 0;
    let ext = false;
    if (b < 0x80 || b >= 0xe0) {
      // fixint: a small integer, no heap
    } else if (b < 0x90) {
      entries = b & 0x0f;
      isMap = true;
    } else if (b < 0xa0) {
      entries = b & 0x0f;
    } else if (b < 0xc0) {
      len = b & 0x1f;
      item = len === 0 ? 0 : C.stringBase + C.stringPerByte * len;
    } else {
      // The header's length field, if any, is big-endian after the type byte.
      let field = 0;
      switch (b) {
        case 0xc0: // nil
        case 0xc2: // false
        case 0xc3: // true
          break;
        case 0xc1:
          return 'unused type byte 0xc1';
        case 0xc4:
        case 0xc5:
        case 0xc6: // bin 8/16/32
          field = 1 << (b - 0xc4);
          item = C.binary;
          break;
        case 0xc7:
        case 0xc8:
        case 0xc9: // ext 8/16/32: length, then the type byte
          field = 1 << (b - 0xc7);
          item = C.ext;
          ext = true;
          break;
        case 0xca: // float 32
        case 0xce: // uint 32
        case 0xd2: // int 32
          len = 4;
          item = C.number;
          break;
        case 0xcb: // float 64
        case 0xcf: // uint 64
        case 0xd3: // int 64
          len = 8;
          item = C.number;
          break;
        case 0xcc: // uint 8
        case 0xd0: // int 8
          len = 1;
          item = C.number;
          break;
        case 0xcd: // uint 16
        case 0xd1: // int 16
          len = 2;
          item = C.number;
          break;
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8: // fixext 1/2/4/8/16: the type byte, then the data
          len = 1 + (1 << (b - 0xd4));
          item = C.ext;
          ext = true;
          break;
        case 0xd9:
        case 0xda:
        case 0xdb: // str 8/16/32
          field = 1 << (b - 0xd9);
          break;
        case 0xdc:
        case 0xdd: // array 16/32
          field = b === 0xdc ? 2 : 4;
          entries = 0;
          break;
        default: // 0xde, 0xdf: map 16/32
          field = b === 0xde ? 2 : 4;
          entries = 0;
          isMap = true;
      }
      if (field > 0) {
        if (pos + 1 + field > end) return 'truncated';
        let n = 0;
        for (let i = 1; i <= field; i++) n = n * 256 + bytes[pos + i]!;
        head = 1 + field;
        if (entries === 0) entries = n;
        else if (b >= 0xd9) {
          len = n;
          item = n === 0 ? 0 : C.stringBase + C.stringPerByte * n;
        } else len = b >= 0xc7 ? n + 1 : n; // ext: the type byte too
      }
    }
    if (isKey && (entries >= 0 || ext)) return 'a map key that is a container or an ext';
    pos += head;
    if (ext && len <= end - pos && (bytes[pos] === 1 || bytes[pos] === 2)) {
      // ext 1 (Map) / ext 2 (Set): one array, its items walked in place (section 8.1, rule 2).
      const isMapExt = bytes[pos] === 1;
      const stop = pos + len;
      const a = pos + 1 < stop ? bytes[pos + 1]! : -1;
      let n: number;
      if ((a & 0xf0) === 0x90) {
        n = a & 0x0f;
        pos += 2;
      } else if (a === 0xdc && pos + 4 <= stop) {
        n = (bytes[pos + 2]! << 8) | bytes[pos + 3]!;
        pos += 4;
      } else if (a === 0xdd && pos + 6 <= stop) {
        n =
          bytes[pos + 2]! * 0x1000000 + ((bytes[pos + 3]! << 16) | (bytes[pos + 4]! << 8) | bytes[pos + 5]!);
        pos += 6;
      } else return 'an ext 1 or 2 whose payload is not an array';
      if (isMapExt && (n & 1) === 1) return 'an ext 1 with an odd number of items';
      if (depth + 1 > MAX_DECODE_DEPTH) return `containers nested deeper than ${MAX_DECODE_DEPTH}`;
      if (n > stop - pos) return 'a container longer than the bytes left';
      // A Map or Set: its object, and a hash table entry per item or pair.
      cost +=
        C.slot +
        C.ext +
        (isMapExt ? C.map + C.mapStore + (C.mapEntry * n) / 2 : C.array + C.arrayStore + C.mapEntry * n);
      if (cost > budget) return 'over its decode budget';
      if (n > 0) {
        depth++;
        left[depth] = n;
        mapLevel[depth] = isMapExt ? 1 : 0;
        extEnd[depth] = stop;
        continue;
      }
      if (pos !== stop) return 'trailing bytes in an ext payload';
    } else if (entries >= 0) {
      if (depth + 1 > MAX_DECODE_DEPTH) return `containers nested deeper than ${MAX_DECODE_DEPTH}`;
      const items = isMap ? 2 * entries : entries;
      if (items > end - pos) return 'a container longer than the bytes left';
      cost +=
        C.slot +
        (isMap
          ? C.map + (entries === 0 ? 0 : C.mapStore + C.mapEntry * entries)
          : C.array + (entries === 0 ? 0 : C.arrayStore));
      if (cost > budget) return 'over its decode budget';
      if (items > 0) {
        depth++;
        left[depth] = items;
        mapLevel[depth] = isMap ? 1 : 0;
        extEnd[depth] = 0;
        continue;
      }
    } else {
      if (len > end - pos) return 'a length beyond the bytes left';
      pos += len;
      cost += isKey ? item : C.slot + item;
      if (cost > budget) return 'over its decode budget';
    }
    // One item done; a container whose last item this was is one item done in its parent.
    while (--left[depth]! === 0) {
      if (depth === 0) return pos === end ? undefined : 'trailing bytes';
      if (extEnd[depth] !== 0 && pos !== extEnd[depth])
        return 'an ext payload longer or shorter than its items';
      depth--;
    }
  }
}

/**
 * A decoder for `decodeBounded`, with the caller's own structural limits (the budget already
 * bounds every length by the bytes left, so none is needed for safety).
 */
export function boundedDecoder(
  options?: Pick<
    DecoderOptions,
    'maxArrayLength' | 'maxMapLength' | 'maxStrLength' | 'maxBinLength' | 'maxExtLength'
  >,
): Decoder {
  return new Decoder(options);
}

const unlimited = boundedDecoder();

/**
 * Decode one msgpack value from a peer: refused (a RangeError saying why, never quoting the
 * input) unless it fits the decode budget; then decoded by `decoder`. Throws whatever the decoder
 * throws for a malformed value: callers wrap both in their own typed error.
 */
export function decodeBounded(bytes: Uint8Array, decoder: Decoder = unlimited): unknown {
  const refusal = decodeBudgetRefusal(bytes);
  if (refusal !== undefined) throw new RangeError(`msgpack value refused: ${refusal}`);
  return decoder.decode(bytes);
}
