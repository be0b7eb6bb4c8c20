import type { Wire } from "./bytes";

/**
 * Small records in flash (or a file on the host), keyed by short names (at most 24 characters,
 * letters, digits, `.` `-` `_`: SPIFFS and Espruino Storage limits).
 *
 * Promises of every implementation:
 * - `write` replaces a record atomically: after a power cut at any point, `read` returns the old
 *   record or the new one, never a mix or a torn record (boards have no atomic rename: the
 *   adapters write a new copy, then retire the old one, and `read` prefers the newer complete one).
 * - `write` returns 0, or an error code: STORAGE_FULL when there is no room, STORAGE_FAILED when
 *   the medium failed. A failed write leaves the old record as it was.
 * - `read` returns the record as it was written, or undefined when there is none (a torn copy
 *   counts as none).
 * - `list` returns the names that start with `prefix` (allocates: for start-up, not hot paths).
 * - Nothing throws.
 */
export const STORAGE_FULL = 1;
export const STORAGE_FAILED = 2;

export interface Storage {
  putRecord(this: void, key: string, data: Wire): number;
  getRecord(this: void, key: string): Wire | undefined;
  dropRecord(this: void, key: string): void;
  listRecords(this: void, prefix: string): string[];
}
