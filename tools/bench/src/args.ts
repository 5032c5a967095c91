/** Command-line options of `npm run bench -- [options]`; kept apart from cli.ts so it is testable. */
import { SCENARIOS, type Scenario } from './e2e.js';
import { FULL, type Plan, QUICK } from './plan.js';

export interface Options {
  plan: Plan;
  /** Row ids to run; undefined = the default rows. */
  rows: string[] | undefined;
  micro: boolean;
  e2e: boolean;
  /** Directory for the report files. */
  out: string | undefined;
  /** Base name of the report files (`results` for full runs, `quick` for quick ones). */
  name: string;
  /** Only the micro cases whose name matches. */
  microFilter: RegExp | undefined;
  /** Directory for V8 CPU profiles of every worker (`--cpu-prof DIR`), or undefined. */
  cpuProfDir: string | undefined;
}

export const USAGE = `usage: npm run bench -- [--quick] [--rows id,id] [--rounds N] [--scenarios a,b] [--inflight N] [--rss-rounds N] [--sweep-rounds N] [--conn-counts N,N] [--no-conn-sweep]
       [--idle N] [--no-micro] [--micro REGEX] [--no-e2e] [--out DIR] [--name BASE] [--cpu-prof DIR]`;

export function parseArgs(argv: readonly string[]): Options {
  const quick = argv.includes('--quick');
  const plan: Plan = structuredClone(quick ? QUICK : FULL);
  const o: Options = {
    plan,
    rows: undefined,
    micro: true,
    e2e: true,
    out: undefined,
    name: quick ? 'quick' : 'results',
    cpuProfDir: undefined,
    microFilter: undefined,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
      return v;
    };
    const count = () => {
      const n = Number(value());
      if (!Number.isInteger(n) || n < 0) throw new Error(`${a} needs a whole number\n${USAGE}`);
      return n;
    };
    switch (a) {
      case '--quick':
        break;
      case '--rows':
        o.rows = value()
          .split(',')
          .map((s) => s.trim())
          .filter(Boolean);
        break;
      case '--rounds':
        plan.rounds = count();
        break;
      case '--scenarios': {
        const list = value().split(',');
        const bad = list.filter((x) => !(SCENARIOS as readonly string[]).includes(x));
        if (bad.length > 0)
          throw new Error(`unknown scenario ${bad.join(', ')}; known: ${SCENARIOS.join(', ')}`);
        plan.scenarios = list as Scenario[];
        break;
      }
      case '--inflight':
        plan.pipelined.inflight = count();
        break;
      case '--rss-rounds':
        plan.rssRounds = count();
        break;
      case '--sweep-rounds':
        plan.sweep.rounds = count();
        break;
      case '--conn-counts': {
        const list = value().split(',').map(Number);
        if (list.some((n) => !Number.isInteger(n) || n < 1))
          throw new Error('--conn-counts takes connection counts >= 1, comma-separated');
        plan.connSweep.counts = list;
        break;
      }
      case '--no-conn-sweep':
        plan.connSweep.counts = [];
        break;
      case '--idle':
        plan.idle = count();
        break;
      case '--no-micro':
        o.micro = false;
        break;
      case '--no-e2e':
        o.e2e = false;
        break;
      case '--out':
        o.out = value();
        break;
      case '--name':
        o.name = value();
        break;
      case '--micro':
        o.microFilter = new RegExp(value(), 'i');
        break;
      case '--cpu-prof':
        o.cpuProfDir = value();
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  return o;
}
