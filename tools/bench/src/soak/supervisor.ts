/**
 * The soak supervisor: writes the key and trust files, starts the fault proxy (in this process),
 * the server process and the client processes, SIGKILLs and restarts the server (after every
 * `1 / (restarts + 1)` of the calls settled, and every `restartEveryMs` if set), then reads the
 * ledger and gathers every process's report. Nothing is asserted here: `soak.test.ts` and the
 * report decide what the numbers mean.
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeKey, generateKeyPair, writeSecretKeyFile } from '@secure-ipc/core';
import { checkLedger, type LedgerCheck } from './ledger.js';
import type { SoakClientConfig, SoakClientReport, SoakProgress, SoakServerConfig } from './protocol.js';
import { type FaultCounts, type FaultProxyOptions, startFaultProxy } from './proxy.js';

/** Options of one soak run. */
export interface SoakOptions {
  clients: number;
  requests: number;
  /** Client processes (clients are spread over them). */
  processes: number;
  /** Requests in flight per client. */
  window: number;
  /** Restarts spread evenly over the calls' progress. */
  restarts: number;
  /** Also restart whenever the server has been up this long (0: progress only). */
  restartEveryMs: number;
  callTimeoutMs: number;
  rssEveryMs: number;
  faults: Omit<FaultProxyOptions, 'listenPath' | 'targetPath'>;
}

/** Everything a run measured. */
export interface SoakResult {
  options: SoakOptions;
  restarts: number;
  injected: FaultCounts;
  ok: number;
  errors: Record<string, number>;
  wrong: number;
  lost: number;
  /** Clients whose reconnecting client shut down on its own, by the terminal failure's code. */
  shutdown: Record<string, number>;
  ledger: LedgerCheck;
  /** Per restart and client: ms from the new server's ready to that client's next ready. */
  reconnectMs: number[];
  /** Per client process: RSS samples. */
  rss: SoakClientReport['rss'][];
  /** Faults by process (`server 2: fault unhandledRejection`, `client 0: ...`). */
  faults: string[];
  /** Client processes that exited without a report. */
  missingReports: number;
  durationMs: number;
}

const here = path.dirname(fileURLToPath(import.meta.url));

interface ServerLife {
  child: ChildProcess;
  readyAt: number;
  exited: Promise<void>;
}

function startServer(config: SoakServerConfig, faults: string[]): Promise<ServerLife> {
  const child = spawn(process.execPath, [path.join(here, 'server.js')], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin.write(`${JSON.stringify(config)}\n`);
  return new Promise((resolve, reject) => {
    child.once('exit', (code, signal) =>
      reject(new Error(`soak server exited before ready (${code ?? signal})`)),
    );
    createInterface({ input: child.stdout }).on('line', (line) => {
      const [word, value] = line.split(' ');
      if (word === 'ready') resolve({ child, readyAt: Number(value), exited });
      else if (word === 'fault') faults.push(`server ${config.life}: ${value}`);
    });
  });
}

async function kill(life: ServerLife): Promise<void> {
  life.child.kill('SIGKILL');
  await life.exited;
}

/** Spread `n` client ids over `p` processes. */
function shares(n: number, p: number): number[][] {
  const out: number[][] = Array.from({ length: Math.min(n, p) }, () => []);
  for (let c = 0; c < n; c++) out[c % out.length]!.push(c);
  return out;
}

/** Run one soak. */
export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const started = Date.now();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sipc-soak-'));
  try {
    return await runIn(dir, options, started);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runIn(dir: string, options: SoakOptions, started: number): Promise<SoakResult> {
  const serverKeys = generateKeyPair();
  const serverKeyFile = path.join(dir, 'server.key');
  await writeSecretKeyFile(serverKeyFile, serverKeys.secretKey);
  const groups = shares(options.clients, options.processes);
  const clientKeyFiles: string[] = [];
  const trust: string[] = [];
  for (let i = 0; i < groups.length; i++) {
    const kp = generateKeyPair();
    clientKeyFiles.push(path.join(dir, `client-${i}.key`));
    await writeSecretKeyFile(clientKeyFiles[i]!, kp.secretKey);
    trust.push(encodeKey(kp.publicKey));
  }
  const trustFile = path.join(dir, 'trust.txt');
  writeFileSync(trustFile, `${trust.join('\n')}\n`, { mode: 0o600 });
  const ledgerFile = path.join(dir, 'ledger.txt');
  writeFileSync(ledgerFile, '', { mode: 0o600 });
  const serverPath = path.join(dir, 'server.sock');
  const proxyPath = path.join(dir, 'proxy.sock');
  const proxy = await startFaultProxy({ ...options.faults, listenPath: proxyPath, targetPath: serverPath });
  const faults: string[] = [];
  const serverConfig = (life: number): SoakServerConfig => ({
    address: `unix://${serverPath}`,
    keyFile: serverKeyFile,
    trustFile,
    ledgerFile,
    life,
  });
  const lives: ServerLife[] = [await startServer(serverConfig(0), faults)];
  const total = options.clients * options.requests;
  const settled = new Array<number>(groups.length).fill(0);
  let restarting: Promise<void> = Promise.resolve();
  let pending = false;
  const restart = () => {
    if (pending) return;
    pending = true;
    restarting = restarting.then(async () => {
      await kill(lives.at(-1)!);
      lives.push(await startServer(serverConfig(lives.length), faults));
      pending = false;
    });
  };
  const due = () => {
    const done = settled.reduce((a, b) => a + b, 0);
    return lives.length <= options.restarts && done >= (lives.length * total) / (options.restarts + 1);
  };
  const timer =
    options.restartEveryMs > 0
      ? setInterval(() => {
          if (Date.now() - lives.at(-1)!.readyAt >= options.restartEveryMs) restart();
        }, 100)
      : undefined;
  const reports = await Promise.all(
    groups.map((clients, i) => {
      const config: SoakClientConfig = {
        address: `unix://${proxyPath}`,
        keyFile: clientKeyFiles[i]!,
        serverKey: encodeKey(serverKeys.publicKey),
        clients,
        requests: options.requests,
        window: options.window,
        callTimeoutMs: options.callTimeoutMs,
        run: randomUUID().slice(0, 8),
        rssEveryMs: options.rssEveryMs,
      };
      return runClientProcess(config, i, faults, (n) => {
        settled[i] = n;
        if (due()) restart();
      });
    }),
  );
  clearInterval(timer);
  await restarting;
  await kill(lives.at(-1)!);
  await proxy.close();
  return summarize(options, lives, reports, ledgerFile, { ...proxy.counts }, faults, started);
}

function runClientProcess(
  config: SoakClientConfig,
  index: number,
  faults: string[],
  onProgress: (settled: number) => void,
): Promise<SoakClientReport | undefined> {
  const child = fork(path.join(here, 'client.js'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  let report: SoakClientReport | undefined;
  child.on('message', (m: SoakClientReport | SoakProgress) => {
    if (m.type === 'progress') onProgress(m.settled);
    else report = m;
  });
  child.send(config);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      if (code !== 0) faults.push(`client ${index}: exited with ${code ?? signal}`);
      for (const f of report?.faults ?? []) faults.push(`client ${index}: ${f}`);
      resolve(report);
    });
  });
}

function summarize(
  options: SoakOptions,
  lives: ServerLife[],
  reports: (SoakClientReport | undefined)[],
  ledgerFile: string,
  injected: FaultCounts,
  faults: string[],
  started: number,
): SoakResult {
  const got = reports.filter((r): r is SoakClientReport => r !== undefined);
  const errors = merge(got.map((r) => r.errors));
  const sum = (f: (r: SoakClientReport) => number) => got.reduce((a, r) => a + f(r), 0);
  return {
    options,
    restarts: lives.length - 1,
    injected,
    ok: sum((r) => r.ok),
    errors,
    wrong: sum((r) => r.wrong),
    lost: sum((r) => r.lost),
    shutdown: merge(got.map((r) => r.shutdown)),
    ledger: checkLedger(
      ledgerFile,
      got.flatMap((r) => r.okKeys),
    ),
    reconnectMs: reconnectTimes(lives, got),
    rss: got.map((r) => r.rss),
    faults,
    missingReports: reports.length - got.length,
    durationMs: Date.now() - started,
  };
}

/** Sum counts by key. */
function merge(counts: Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of counts) for (const [k, n] of Object.entries(c)) out[k] = (out[k] ?? 0) + n;
  return out;
}

/** For every restart and client: the new server's ready → that client's first ready after it (within that lifetime). */
function reconnectTimes(lives: ServerLife[], reports: SoakClientReport[]): number[] {
  const out: number[] = [];
  for (let i = 1; i < lives.length; i++) {
    const from = lives[i]!.readyAt;
    const until = lives[i + 1]?.readyAt ?? Number.POSITIVE_INFINITY;
    for (const r of reports)
      for (const readies of Object.values(r.ready)) {
        const first = readies.find((t) => t >= from && t < until);
        if (first !== undefined) out.push(first - from);
      }
  }
  return out;
}
