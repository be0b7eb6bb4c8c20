import type { Wire } from "../../port/bytes";
import { STORAGE_FAILED, STORAGE_FULL, type Storage } from "../../port/storage";

/**
 * The Storage contract over NodeMCU's flash file system: `file` on ESP8266 (SPIFFS), and on
 * ESP32 builds, whose `file` module has no `open`, the standard `io.open` for the contents with
 * `file.list`/`remove`/`rename` for the rest. One file per record.
 *
 * A record file is `P<length>\n` followed by the record's bytes: it is complete when the bytes
 * after the header number exactly <length> (SPIFFS keeps what was written before a power cut;
 * a torn file is shorter, or has no full header).
 *
 * write(key), with `k` the record file and `k.new` its next version:
 *   0. settle(k) (below): a `k.new` left by an earlier failure is finished or dropped first;
 *   1. write `k.new` completely and close it;
 *   2. remove `k`;
 *   3. rename `k.new` to `k`.
 * read(key) takes a complete `k.new` when there is one, else `k`.
 * settle(k): a complete `k.new` is newer than `k`: remove `k`, rename `k.new` to `k`; an
 * incomplete one is removed. Every record is settled when the storage is created (at boot).
 *
 * A power cut during 1 leaves `k` (the old record) and an incomplete `k.new`: read gives the
 * old record, settle drops the torn copy. After 1, or during 2 or 3, a complete `k.new` exists:
 * read gives the new record, and settle finishes steps 2 and 3 (each of them again safe to cut).
 * After 3 only `k` is left, the new record. So read returns the old record or the new one,
 * never a mix, and never an older one than a read before the cut returned: settling before
 * any write (rather than simply dropping `k.new`) is what rules out going back to `k`.
 * remove(key) settles, then removes `k`: a cut leaves either the record or nothing.
 * A rename that fails (step 3) still leaves a complete `k.new`, which read prefers: the write
 * counts as done.
 */

const TAIL = ".new";
const READ_PIECE = 1024;

interface Fs {
  open(this: void, name: string, mode: string): FileHandle | undefined;
  remove(this: void, name: string): void;
  rename(this: void, from: string, to: string): boolean;
  list(this: void): { [name: string]: number };
}

/** The file functions of this firmware: `file` where it can open files, else `io`/`os`. */
function pickFs(): Fs | undefined {
  const file = _G["file"] as FileModule | undefined;
  if (file === undefined) return undefined;
  const fopen = file.open;
  if (fopen !== undefined) return { open: fopen, remove: file.remove, rename: file.rename, list: file.list };
  const io = _G["io"] as IoModule | undefined;
  if (io === undefined) return undefined;
  return {
    open: (name, mode) => {
      const [h] = io.open(name, mode === "r" ? "rb" : "wb");
      return h;
    },
    remove: file.remove,
    rename: file.rename,
    list: file.list,
  };
}

function validKey(key: string): boolean {
  if (key.length === 0 || key.length > 24) return false;
  const [at] = string.find(key, "^[%w%._%-]+$", 1, false);
  return at !== undefined;
}

/** The whole file, or undefined when it cannot be opened. */
function slurp(fs: Fs, name: string): string | undefined {
  const h = fs.open(name, "r");
  if (h === undefined) return undefined;
  const parts: string[] = [];
  let n = 0;
  for (;;) {
    const s = h.read(READ_PIECE);
    if (s === undefined || s.length === 0) break;
    parts[n] = s;
    n = n + 1;
  }
  h.close();
  return n === 1 ? parts[0] : table.concat(parts);
}

/** The record's bytes when `s` is a complete record file, else undefined. */
function body(s: string | undefined): string | undefined {
  if (s === undefined || string.byte(s, 1) !== 80) return undefined; // "P"
  const [nl] = string.find(s, "\n", 2, true);
  if (nl === undefined) return undefined;
  const len = tonumber(string.sub(s, 2, nl - 1));
  if (len === undefined || s.length - nl !== len) return undefined;
  return string.sub(s, nl + 1);
}

export interface NodemcuStorageOptions {
  /** Prepended to every file name ("" on ESP8266's flat SPIFFS; a path such as "/FLASH/" where needed). */
  dir?: string;
}

export function nodemcuStorage(o?: NodemcuStorageOptions): Storage {
  const dir = o !== undefined && o.dir !== undefined ? o.dir : "";
  const fsOrNone = pickFs();
  if (fsOrNone === undefined) {
    // No file system: every write fails, loudly, through the codes the session reports.
    return { putRecord: () => STORAGE_FAILED, getRecord: () => undefined, dropRecord: () => undefined, listRecords: () => [] };
  }
  const fs = fsOrNone;
  const fexists = (_G["file"] as FileModule).exists;
  const exists = (name: string): boolean => {
    if (fexists !== undefined) return fexists(name);
    const h = fs.open(name, "r");
    if (h === undefined) return false;
    h.close();
    return true;
  };
  const settle = (name: string): void => {
    const tmp = name + TAIL;
    if (!exists(tmp)) return;
    if (body(slurp(fs, tmp)) !== undefined) {
      fs.remove(name);
      fs.rename(tmp, name);
    } else {
      fs.remove(tmp);
    }
  };
  const room = (): number => {
    const fsinfo = (_G["file"] as FileModule).fsinfo;
    if (fsinfo === undefined) return -1;
    const [ok, remaining] = pcall(() => {
      const [r] = fsinfo();
      return r;
    });
    return ok ? (remaining as number) : -1;
  };

  const write = (key: string, data: Wire): number => {
    if (!validKey(key)) return STORAGE_FAILED;
    const name = dir + key;
    const tmp = name + TAIL;
    const s = data as unknown as string;
    const length = s.length;
    const [ok, code] = pcall(() => {
      settle(name);
      const h = fs.open(tmp, "w");
      if (h === undefined) return;
      const a = h.write("P" + tostring(length) + "\n");
      const b = length > 0 ? h.write(s) : true;
      h.close();
      if (a === undefined || a === false || b === undefined || b === false) return;
      fs.remove(name);
      fs.rename(tmp, name);
      return 0;
    });
    if (ok && code === 0) return 0;
    pcall(() => fs.remove(tmp));
    const left = room();
    return left >= 0 && left < length + 16 ? STORAGE_FULL : STORAGE_FAILED;
  };

  const read = (key: string): Wire | undefined => {
    if (!validKey(key)) return undefined;
    const name = dir + key;
    const [, got] = pcall(() => {
      const fresh = body(slurp(fs, name + TAIL));
      return fresh !== undefined ? fresh : body(slurp(fs, name));
    });
    return got as Wire | undefined;
  };

  const remove = (key: string): void => {
    if (!validKey(key)) return;
    const name = dir + key;
    pcall(() => {
      settle(name);
      fs.remove(name);
    });
  };

  const list = (prefix: string): string[] => {
    const out: string[] = [];
    const seen: { [name: string]: boolean } = {};
    const [, all] = pcall(() => fs.list());
    if (all === undefined) return out;
    const from = dir.length + 1;
    for (const name in all as { [name: string]: number }) {
      let key = string.sub(name, from);
      const [tailAt] = string.find(key, TAIL, 1, true);
      if (tailAt !== undefined && tailAt === key.length - TAIL.length + 1) key = string.sub(key, 1, tailAt - 1);
      if (string.sub(name, 1, dir.length) === dir && string.sub(key, 1, prefix.length) === prefix && seen[key] !== true) {
        seen[key] = true;
        out[out.length] = key;
      }
    }
    return out;
  };

  // At boot: finish or drop whatever a power cut interrupted.
  const keys = list("");
  for (let i = 0; i < keys.length; i++) pcall(() => settle(dir + keys[i]));

  return { putRecord: write, getRecord: read, dropRecord: remove, listRecords: list };
}
