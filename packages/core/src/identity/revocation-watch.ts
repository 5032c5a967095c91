/**
 * A revocation list backed by a watched file. fs.watch on the file's directory gives immediate
 * reloads (watching the directory, not the file, because an atomic replace renames a new inode
 * over the path and a watch on the old inode would go silent); a stat poll is the fallback for
 * file systems where fs.watch misses events (network mounts, some containers). A file that fails
 * to load keeps the last good list in force and emits `reloadError`.
 */
import { type FSWatcher, promises as fs, watch } from 'node:fs';
import { basename, dirname } from 'node:path';
import { createError, toSecureIpcError } from '../errors.js';
import { readBoundedFile } from '../keys/private-file.js';
import { MAX_REVOCATION_FILE_BYTES, parseRevocationList, RevocationList } from './revocation.js';

/** Options of `watchRevocationList`. */
export interface WatchRevocationListOptions {
  /** Stat-poll interval in ms (default 250, so a missed fs.watch event still applies well within 1 s). */
  pollIntervalMs?: number | undefined;
  /** Use fs.watch besides polling (default true; false for file systems where it misbehaves). */
  fsWatch?: boolean | undefined;
}

/** A revocation list that follows a file until closed. */
export class WatchedRevocationList extends RevocationList {
  /** The watched file. */
  readonly path: string;
  #watcher: FSWatcher | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lastText: string | undefined;
  #lastStat = '';
  #reloading: Promise<boolean> = Promise.resolve(false);
  #closed = false;

  /** Use `watchRevocationList`, which loads the file first. */
  constructor(path: string) {
    super();
    this.path = path;
  }

  /**
   * Re-read the file now; resolves true if the entries changed. Reloads are serialized. A failure
   * rejects and emits `reloadError`; the previous entries stay.
   */
  reload(): Promise<boolean> {
    const next = this.#reloading.catch(() => false).then(() => this.#load());
    this.#reloading = next;
    return next;
  }

  async #load(): Promise<boolean> {
    if (this.#closed) return false;
    let text: string;
    let parsed: ReturnType<typeof parseRevocationList>;
    try {
      const raw = await readBoundedFile(this.path, {
        maxBytes: MAX_REVOCATION_FILE_BYTES,
        code: 'SIPC_ERR_INVALID_ARGUMENT',
        kind: 'trust',
      });
      text = raw.toString('utf8');
      if (text === this.#lastText) return false;
      parsed = parseRevocationList(text);
    } catch (err) {
      const error = toSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT');
      if (this.#lastText !== undefined) this.emit('reloadError', error);
      throw error;
    }
    this.#lastText = text;
    this.replace(parsed);
    return true;
  }

  /** @internal Start watching (after the first successful load). */
  start(pollIntervalMs: number, fsWatch: boolean): void {
    const name = basename(this.path);
    const kick = (): void => {
      this.reload().catch(() => {
        /* reported through reloadError; the last good list stays */
      });
    };
    if (fsWatch)
      try {
        this.#watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
          // Some platforms omit the name: reload then, the content comparison makes it cheap.
          if (file === null || file === name) kick();
        });
        this.#watcher.on('error', () => {
          // The stat poll below keeps working without the watcher.
          this.#watcher?.close();
          this.#watcher = undefined;
        });
      } catch {
        this.#watcher = undefined;
      }
    this.#timer = setInterval(() => {
      fs.stat(this.path).then(
        (st) => {
          const sig = `${st.ino}:${st.size}:${st.mtimeMs}:${st.ctimeMs}`;
          if (sig !== this.#lastStat) {
            this.#lastStat = sig;
            kick();
          }
        },
        () => {
          if (this.#lastStat !== 'missing') {
            this.#lastStat = 'missing';
            kick();
          }
        },
      );
    }, pollIntervalMs);
    this.#timer.unref();
  }

  /** Stop watching; the entries stay as they were. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/**
 * Load a revocation list file and keep it up to date until `close()`. The first load must
 * succeed (fail closed: a server never starts with a list it cannot read).
 */
export async function watchRevocationList(
  path: string,
  options: WatchRevocationListOptions = {},
): Promise<WatchedRevocationList> {
  const interval = options.pollIntervalMs ?? 250;
  if (!Number.isFinite(interval) || interval < 10)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'pollIntervalMs must be at least 10');
  const list = new WatchedRevocationList(path);
  await list.reload();
  list.start(interval, options.fsWatch ?? true);
  return list;
}
