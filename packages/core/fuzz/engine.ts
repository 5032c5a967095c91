/**
 * A small coverage-guided fuzzer on V8's own block coverage (node:inspector precise coverage),
 * for the decoders of peer and file input. Why not @jazzer.js/core: its only Linux build
 * (4.0.0) needs glibc 2.38 and this project's machines have 2.36; 2.x builds from source by
 * downloading LLVM, which cannot be reached from here. The targets keep Jazzer's shape
 * (`fuzz(data: Buffer)`, throw = finding), so they also run under Jazzer where it installs.
 *
 * Loop: take an input from the corpus, mutate it, run the target; every BATCH inputs read the
 * block coverage of the guided code (counters reset at each read). When a batch reached blocks
 * never reached before, its inputs are run again one by one to find which did, and those join
 * the corpus. A target that throws, or runs longer than the time
 * limit on one input, is a finding: the input is written out and the run fails.
 */
import { createHash } from 'node:crypto';
import { Session } from 'node:inspector';

/** A fuzz target: throw to report a finding; return normally for any acceptable outcome. */
export type FuzzTarget = (data: Buffer) => void;

/** Options of one fuzzing run. */
export interface FuzzOptions {
  /** Inputs to run (mutations; the seeds and regression inputs come on top). */
  runs: number;
  /** Starting inputs. */
  seeds: readonly Uint8Array[];
  /** Largest input generated, in bytes (default 4096). */
  maxLength?: number;
  /** Longest time one input may take, in ms (default 1000). */
  timeLimitMs?: number;
  /** Source files whose coverage guides the run: URLs containing one of these (default core's own and msgpack's). */
  coverageOf?: readonly string[];
  /** Seed of the mutation random generator (default: random; printed). */
  randomSeed?: number;
}

/** What a run found. */
export interface FuzzResult {
  /** Inputs run. */
  executions: number;
  /** Inputs kept because they reached new code. */
  corpus: number;
  /** Distinct blocks of code reached. */
  features: number;
  /** The first failing input and its error, if any. */
  finding?: { input: Buffer; error: unknown; sha256: string };
  /** The random seed used. */
  randomSeed: number;
}

const BATCH = 256;

// xorshift32: fast, reproducible from the printed seed.
function rng(seed: number): () => number {
  let x = seed >>> 0 || 0x9e3779b9;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 0x1_0000_0000;
  };
}

const INTERESTING_BYTES = [
  0x00, 0x01, 0x7f, 0x80, 0xff, 0xc0, 0xc1, 0xc4, 0xc5, 0xc6, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0x90,
  0x80, 0xa0, 0x2d, 0x0a, 0x3d, 0x22, 0x5b, 0x7b,
];
const INTERESTING_16 = [0, 1, 0x7f, 0x80, 0xff, 0x100, 0x3ff, 0x400, 0x7fff, 0x8000, 0xfffe, 0xffff];
const INTERESTING_32 = [0, 1, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(
  input: Uint8Array,
  corpus: readonly Uint8Array[],
  random: () => number,
  maxLength: number,
): Buffer {
  let out = Buffer.from(input);
  const pick = (n: number) => Math.floor(random() * n);
  const steps = 1 + pick(4);
  for (let s = 0; s < steps; s++) {
    const at = out.length === 0 ? 0 : pick(out.length);
    switch (pick(11)) {
      case 0: // flip a bit
        if (out.length > 0) out[at]! ^= 1 << pick(8);
        break;
      case 1: // an interesting byte
        if (out.length > 0) out[at] = INTERESTING_BYTES[pick(INTERESTING_BYTES.length)]!;
        break;
      case 2: // a random byte
        if (out.length > 0) out[at] = pick(256);
        break;
      case 3: // an interesting 16-bit big-endian value (lengths)
        if (at + 2 <= out.length) out.writeUInt16BE(INTERESTING_16[pick(INTERESTING_16.length)]!, at);
        break;
      case 4: // an interesting 32-bit big-endian value
        if (at + 4 <= out.length) out.writeUInt32BE(INTERESTING_32[pick(INTERESTING_32.length)]! >>> 0, at);
        break;
      case 5: // delete a run
        out = Buffer.concat([out.subarray(0, at), out.subarray(Math.min(out.length, at + 1 + pick(16)))]);
        break;
      case 6: // insert random bytes
        out = Buffer.concat([
          out.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + pick(16) }, () => pick(256))),
          out.subarray(at),
        ]);
        break;
      case 7: // duplicate a run (repetition: nesting, many fields)
        {
          const len = 1 + pick(Math.max(1, Math.min(64, out.length - at)));
          const run = out.subarray(at, at + len);
          const times = 1 + pick(8);
          out = Buffer.concat([
            out.subarray(0, at),
            ...Array.from({ length: times }, () => run),
            out.subarray(at),
          ]);
        }
        break;
      case 8: // splice with another corpus entry
        {
          const other = corpus[pick(corpus.length)]!;
          const cut = pick(other.length + 1);
          out = Buffer.concat([out.subarray(0, at), Buffer.from(other.subarray(cut))]);
        }
        break;
      case 9: // truncate
        out = out.subarray(0, at);
        break;
      default: // overwrite with a run copied from elsewhere in the input
        if (out.length > 1) {
          const from = pick(out.length);
          const len = 1 + pick(Math.min(16, out.length - Math.max(from, at)));
          out.copy(out, at, from, from + len);
        }
    }
  }
  return out.length > maxLength ? out.subarray(0, maxLength) : out;
}

/** Run a target under coverage guidance. */
export function fuzz(target: FuzzTarget, options: FuzzOptions): FuzzResult {
  const randomSeed = options.randomSeed ?? Math.floor(Math.random() * 0xffff_ffff);
  const random = rng(randomSeed);
  const maxLength = options.maxLength ?? 4096;
  const timeLimitMs = options.timeLimitMs ?? 1000;
  const coverageOf = options.coverageOf ?? ['/packages/core/dist/src/', '/@msgpack/msgpack/'];
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object): any => {
    let result: unknown;
    let failure: unknown;
    session.post(method, params, (err, res) => {
      failure = err;
      result = res;
    });
    if (failure) throw failure;
    return result;
  };
  post('Profiler.enable');
  post('Profiler.startPreciseCoverage', { callCount: true, detailed: true });
  const seen = new Set<string>();
  // V8 reports a block's range only where its count differs from the enclosing range's, so a
  // block executed as often as its function does not appear at all. Every block ever reported is
  // remembered per function; its count in a take is that of the innermost range reported around
  // it. A feature is such a block executed at least once (counts are summed over a batch, so only
  // "executed or not" is comparable between a batch and a single input).
  const blocks = new Map<string, [number, number][]>();
  const take = (): string[] => {
    const { result } = post('Profiler.takePreciseCoverage') as {
      result: {
        url: string;
        functions: { ranges: { startOffset: number; endOffset: number; count: number }[] }[];
      }[];
    };
    const out: string[] = [];
    for (const script of result) {
      if (!coverageOf.some((part) => script.url.includes(part))) continue;
      for (const fn of script.functions) {
        const ranges = fn.ranges;
        const key = `${script.url}:${ranges[0]!.startOffset}`;
        let known = blocks.get(key);
        if (known === undefined) {
          known = [];
          blocks.set(key, known);
        }
        for (const r of ranges)
          if (!known.some(([start, end]) => start === r.startOffset && end === r.endOffset))
            known.push([r.startOffset, r.endOffset]);
        if (ranges[0]!.count === 0) continue;
        for (const [start, end] of known) {
          let count = 0;
          let width = Number.POSITIVE_INFINITY;
          for (const r of ranges)
            if (r.startOffset <= start && end <= r.endOffset && r.endOffset - r.startOffset < width) {
              width = r.endOffset - r.startOffset;
              count = r.count;
            }
          if (count > 0) out.push(`${key}:${start}:${end}`);
        }
      }
    }
    return out;
  };
  const fresh = (features: readonly string[]): boolean => features.some((f) => !seen.has(f));
  const learn = (features: readonly string[]) => {
    for (const f of features) seen.add(f);
  };
  const corpus: Uint8Array[] = [];
  let executions = 0;
  const run = (input: Buffer): FuzzResult['finding'] => {
    executions++;
    const start = performance.now();
    try {
      target(input);
    } catch (error) {
      return { input, error, sha256: createHash('sha256').update(input).digest('hex') };
    }
    let took = performance.now() - start;
    // A slow input is timed once more before it counts: on a loaded machine a GC pause or the
    // scheduler can stretch one run (seen: a 0.3 ms input over 1 s while other suites ran).
    if (took > timeLimitMs) {
      const again = performance.now();
      try {
        target(input);
      } catch {}
      took = Math.min(took, performance.now() - again);
    }
    if (took > timeLimitMs)
      return {
        input,
        error: new Error(`one input took ${took.toFixed(0)} ms (limit ${timeLimitMs} ms)`),
        sha256: createHash('sha256').update(input).digest('hex'),
      };
    return undefined;
  };
  const done = (finding?: FuzzResult['finding']): FuzzResult => {
    post('Profiler.stopPreciseCoverage');
    post('Profiler.disable');
    session.disconnect();
    return { executions, corpus: corpus.length, features: seen.size, finding, randomSeed };
  };
  take(); // forget what ran before
  for (const seed of options.seeds.length > 0 ? options.seeds : [new Uint8Array(0)]) {
    const finding = run(Buffer.from(seed));
    if (finding) return done(finding);
    learn(take());
    corpus.push(seed);
  }
  let mutations = 0;
  while (mutations < options.runs) {
    const batch: Buffer[] = [];
    for (let i = 0; i < BATCH && mutations < options.runs; i++, mutations++) {
      const input = mutate(corpus[Math.floor(random() * corpus.length)]!, corpus, random, maxLength);
      const finding = run(input);
      if (finding) return done(finding);
      batch.push(input);
    }
    if (!fresh(take())) continue;
    // Something in the batch reached new code: find which inputs, one by one.
    for (const input of batch) {
      run(input);
      const features = take();
      if (fresh(features)) {
        learn(features);
        corpus.push(input);
      }
    }
  }
  return done();
}
