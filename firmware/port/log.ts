/**
 * Where the firmware's log lines go (the serial console on a board, stdout or a test's buffer on
 * the host). Levels: 0 error, 1 warn, 2 info, 3 debug. The sink adds its own timestamp and
 * prefix; it never throws. Callers must never pass credentials: the session masks them before
 * anything is logged.
 */
export const LOG_ERROR = 0;
export const LOG_WARN = 1;
export const LOG_INFO = 2;
export const LOG_DEBUG = 3;

export interface LogSink {
  writeLog(this: void, level: number, line: string): void;
}

/**
 * Errors in Petrel are plain values, never Error objects (`class extends Error` breaks on
 * Espruino and `new Error()` crashes NodeMCU 5.1): a stable `code` a program can test
 * ("bad-credentials", "outbox-full", …) and a `message` that says what happened and the fix.
 */
export interface PetrelError {
  code: string;
  message: string;
}
