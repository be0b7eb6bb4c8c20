/**
 * The Storage contract (firmware/port/storage.ts) over a directory, one file per record. A write
 * goes to a temporary file that is renamed over the record: atomic on POSIX. (The board
 * stand-ins model flash without atomic rename; this is the host simulator's own storage.)
 * `capacity` caps the total bytes so "storage full" can be produced on purpose.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import type { Wire } from "../../port/bytes";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../port/storage";

const VALID = /^[A-Za-z0-9._-]{1,24}$/;

/** Creates `f` empty when it does not exist; false when it exists (the caller replaces it). */
function createEmpty(f: string): boolean {
  let fd: number;
  try {
    fd = fs.openSync(f, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  fs.closeSync(fd);
  return true;
}

export function fileStorage(dir: string, capacity = Infinity): Storage & { used(): number } {
  fs.mkdirSync(dir, { recursive: true });
  const file = (key: string) => path.join(dir, key);
  const sizeOf = (key: string) => (fs.existsSync(file(key)) ? fs.statSync(file(key)).size : 0);
  const used = () => fs.readdirSync(dir).filter((f) => !f.endsWith(".tmp")).reduce((n, f) => n + fs.statSync(path.join(dir, f)).size, 0);
  return {
    used,
    putRecord(key, data: Wire) {
      if (!VALID.test(key)) return STORAGE_FAILED;
      const b = data as unknown as Buffer;
      const length = b.length;
      // Only a capped store pays for measuring what it holds.
      if (capacity !== Infinity && used() - sizeOf(key) + length > capacity) return STORAGE_FULL;
      try {
        // An empty record (a marker: its name is the information) that does not exist yet is
        // created in one step: a file that either exists, empty, or does not. That saves the
        // temporary file's write and the rename, which cost more than the record itself.
        if (length === 0 && createEmpty(file(key))) return 0;
        const tmp = file(key) + ".tmp";
        fs.writeFileSync(tmp, b);
        fs.renameSync(tmp, file(key));
        return 0;
      } catch (e) {
        return (e as NodeJS.ErrnoException).code === "ENOSPC" ? STORAGE_FULL : STORAGE_FAILED;
      }
    },
    getRecord(key) {
      if (!VALID.test(key) || !fs.existsSync(file(key))) return undefined;
      return fs.readFileSync(file(key)) as unknown as Wire;
    },
    dropRecord(key) {
      if (!VALID.test(key)) return;
      try {
        fs.unlinkSync(file(key));
      } catch {
        // absent already (or not removable): nothing to report, the contract never throws
      }
    },
    listRecords(prefix) {
      return fs.readdirSync(dir).filter((f) => !f.endsWith(".tmp") && f.startsWith(prefix)).sort();
    },
  };
}

/**
 * The Storage contract in RAM (records lost when the process ends): for many simulated boards
 * and benchmarks, where the file system would measure the disk, not Petrel. `capacity` as above.
 * A class, not an object of closures: a fleet of thousands of boards holds one each, and methods
 * on a prototype cost nothing per board.
 */
export class MemoryStorage implements Storage {
  private readonly records = new Map<string, Uint8Array>();
  private total = 0;

  constructor(private readonly capacity = Infinity) {}

  used(): number {
    return this.total;
  }

  keys(): string[] {
    return [...this.records.keys()].sort();
  }

  putRecord(key: string, data: Wire): number {
    if (!VALID.test(key)) return STORAGE_FAILED;
    const b = data as unknown as Uint8Array;
    const old = this.records.get(key)?.length ?? 0;
    if (this.total - old + b.length > this.capacity) return STORAGE_FULL;
    // Wires are immutable once made (a socket may still hold this one): kept as given
    this.records.set(key, b);
    this.total += b.length - old;
    return 0;
  }

  getRecord(key: string): Wire | undefined {
    return this.records.get(key) as unknown as Wire | undefined;
  }

  dropRecord(key: string): void {
    const r = this.records.get(key);
    if (r !== undefined) {
      this.total -= r.length;
      this.records.delete(key);
    }
  }

  listRecords(prefix: string): string[] {
    return [...this.records.keys()].filter((k) => k.startsWith(prefix)).sort();
  }
}

export function memoryStorage(capacity = Infinity): MemoryStorage {
  return new MemoryStorage(capacity);
}
