/**
 * Delivering an outbox through a reconnecting client (docs/outbox.md, "Delivery"): one request in
 * flight per lane, the lane's first entry each time, read back from disk; its end decides the
 * entry's (a DONE record, or kept for the next attempt):
 *
 *   answered ────────────────────────────► DONE ok       delivered { id, value }
 *   refused for good (TERMINAL_OUTBOX) ──► DONE failed   failed { id, error }
 *   TTL passed ──────────────────────────► DONE expired  expired { id, sent }
 *   anything else ───────────────────────► kept: again after 100 ms × 2^n (≤ 30 s, ±20 %)
 */
import { isSecureIpcError, RemoteError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import { type Backoff, createBackoff } from '../resilience/backoff.js';
import type { ReconnectingClient } from '../resilience/reconnect.js';
import type { DoneResult, EnqueueBody } from './format.js';
import type { IndexedEntry } from './journal.js';

/** What delivery needs of an outbox (the Outbox class; an interface, so the two files do not import each other). */
export interface DeliverySource {
  readonly closed: boolean;
  onChange: (() => void) | undefined;
  lanes(): IterableIterator<string>;
  head(lane: string): IndexedEntry | undefined;
  beginSend(seq: number): void;
  endSend(seq: number): void;
  read(entry: IndexedEntry): Promise<EnqueueBody | undefined>;
  finish(seq: number, result: DoneResult): Promise<boolean>;
  fail(err: unknown): void;
  emit(event: 'delivered', e: { readonly id: string; readonly value: unknown }): boolean;
  emit(event: 'failed', e: { readonly id: string; readonly error: SecureIpcError }): boolean;
  emit(event: 'expired', e: { readonly id: string; readonly sent: boolean }): boolean;
}

/** Codes a server answers with that end an entry: the same request would get the same answer. */
export const TERMINAL_OUTBOX_CODES: readonly string[] = Object.freeze([
  'SIPC_ERR_FORBIDDEN',
  'SIPC_ERR_NO_SUCH_METHOD',
  'SIPC_ERR_BAD_ENVELOPE',
  'SIPC_ERR_INVALID_ARGUMENT',
  'SIPC_ERR_IDEMPOTENCY_CONFLICT',
  'SIPC_ERR_MESSAGE_TOO_LARGE',
  'SIPC_ERR_HANDLER',
]);
const TERMINAL = new Set(TERMINAL_OUTBOX_CODES);

/** First wait before an entry is sent again, ms. */
export const OUTBOX_RETRY_INITIAL_MS = 100;
/** Largest wait before an entry is sent again, ms. */
export const OUTBOX_RETRY_MAX_MS = 30_000;

/** What a failed request means for its entry. */
export function outboxVerdict(
  error: unknown,
  expiresAt: number | undefined,
  now: number,
): 'failed' | 'expired' | 'again' {
  if (expiresAt !== undefined && now >= expiresAt) return 'expired';
  if (!isSecureIpcError(error)) return 'again';
  if (error instanceof RemoteError) return 'failed';
  // Too large for this channel is the same on the next one (local or answered).
  if (error.code === 'SIPC_ERR_MESSAGE_TOO_LARGE') return 'failed';
  return error.details?.remote === true && TERMINAL.has(error.code) ? 'failed' : 'again';
}

/** The delivery loop of one outbox through one client (made by `Outbox.attach`). */
export class OutboxDelivery {
  readonly #outbox: DeliverySource;
  readonly #client: ReconnectingClient<any, any>;
  /** Lanes with a request in flight or a retry waiting. */
  readonly #busy = new Set<string>();
  /** Each entry's wait before its next attempt (gRPC's backoff: the first 100 ms, then ×2 with ±20 %). */
  readonly #backoffs = new Map<number, Backoff>();
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #onState = ({ to }: { to: string }) => {
    if (to === 'ready') this.pump();
  };
  #stopped = false;

  constructor(outbox: DeliverySource, client: ReconnectingClient<any, any>) {
    this.#outbox = outbox;
    this.#client = client;
    outbox.onChange = () => this.pump();
    client.on('stateChange', this.#onState);
    queueMicrotask(() => this.pump());
  }

  /** Stop: no new request (running ones end with the client). */
  stop(): void {
    this.#stopped = true;
    this.#outbox.onChange = undefined;
    this.#client.off('stateChange', this.#onState);
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  /** Start the first entry of every lane that has nothing in flight. */
  pump(): void {
    if (this.#stopped || this.#outbox.closed || this.#client.state === 'shutdown') return;
    for (const lane of [...this.#outbox.lanes()]) {
      if (this.#busy.has(lane)) continue;
      const entry = this.#outbox.head(lane);
      if (entry !== undefined) void this.#send(lane, entry);
    }
  }

  async #send(lane: string, entry: IndexedEntry): Promise<void> {
    const outbox = this.#outbox;
    const { seq } = entry;
    const id = String(seq);
    this.#busy.add(lane);
    outbox.beginSend(seq);
    let again = false;
    let sent = false;
    try {
      const body = await outbox.read(entry);
      if (body === undefined) return; // quarantined: the lane goes on with its next entry
      const left = body.expiresAt === undefined ? undefined : body.expiresAt - Date.now();
      if (left !== undefined && left <= 0) {
        if (await outbox.finish(seq, 'expired')) outbox.emit('expired', { id, sent: false });
        return;
      }
      let result: { ok: true; value: unknown } | { ok: false; error: unknown };
      try {
        sent = true;
        const value = await this.#client.request(body.method, body.params, {
          idempotencyKey: body.idempotencyKey,
          waitForReady: true,
          ...(left === undefined ? {} : { timeoutMs: left }),
        });
        result = { ok: true, value };
      } catch (error) {
        result = { ok: false, error };
      }
      if (result.ok) {
        if (await outbox.finish(seq, 'ok')) outbox.emit('delivered', { id, value: result.value });
        return;
      }
      const verdict = outboxVerdict(result.error, body.expiresAt, Date.now());
      if (verdict === 'again') {
        again = true;
        return;
      }
      if (!(await outbox.finish(seq, verdict))) return;
      if (verdict === 'expired') outbox.emit('expired', { id, sent });
      else outbox.emit('failed', { id, error: asError(result.error) });
    } catch (err) {
      // A DONE record that cannot be written: the outbox closes itself (unknown disk state).
      outbox.fail(err);
    } finally {
      outbox.endSend(seq);
      if (again) this.#later(lane, seq);
      else {
        this.#backoffs.delete(seq);
        this.#busy.delete(lane);
        this.pump();
      }
    }
  }

  /** Keep the lane busy for the entry's backoff, then try again. */
  #later(lane: string, seq: number): void {
    let backoff = this.#backoffs.get(seq);
    if (backoff === undefined) {
      backoff = createBackoff({
        initialMs: OUTBOX_RETRY_INITIAL_MS,
        multiplier: 2,
        maxMs: OUTBOX_RETRY_MAX_MS,
      });
      this.#backoffs.set(seq, backoff);
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      this.#busy.delete(lane);
      this.pump();
    }, backoff.next().delayMs);
    timer.unref();
    this.#timers.add(timer);
  }
}

function asError(error: unknown): SecureIpcError {
  return isSecureIpcError(error) ? error : toSecureIpcError(error, 'SIPC_ERR_HANDLER');
}
