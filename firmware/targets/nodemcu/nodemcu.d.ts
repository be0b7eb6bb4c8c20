/** @noSelfInFile */
// NodeMCU's own modules, as far as the adapters use them (ESP8266 `release` and ESP32
// `dev-esp32` branches; where they differ, both shapes are allowed and the adapter checks).
// Methods called with `:` in Lua take an explicit `this`.

/** A `net` TCP client socket. Callbacks get the socket first. */
interface NetSocket {
  on(this: NetSocket, event: "connection" | "sent", fn: (this: void, sk: NetSocket) => void): void;
  on(this: NetSocket, event: "receive", fn: (this: void, sk: NetSocket, data: string) => void): void;
  on(this: NetSocket, event: "disconnection" | "reconnection", fn: (this: void, sk: NetSocket, err: number | undefined) => void): void;
  connect(this: NetSocket, port: number, host: string): void;
  send(this: NetSocket, data: string): void;
  close(this: NetSocket): void;
}

interface NetModule {
  createConnection(this: void): NetSocket;
  dns: { resolve(this: void, host: string, fn: (this: void, a: unknown, b: unknown) => void): void };
}

interface TmrObject {
  alarm(this: TmrObject, ms: number, mode: number, fn: (this: void, t: TmrObject) => void): boolean;
  stop(this: TmrObject): boolean;
  unregister(this: TmrObject): void;
}

interface TmrModule {
  ALARM_SINGLE: number;
  create(this: void): TmrObject;
  now?: (this: void) => number;
}

interface NodeModule {
  task?: { post(this: void, fn: (this: void) => void): void };
  heap(this: void): number;
  chipid?: (this: void) => unknown;
  random?: (this: void, lo: number, hi: number) => number;
  uptime?: (this: void) => number;
}

/** ESP8266's file object (`file.open`); ESP32 builds use `io.open`, whose handles look alike here. */
interface FileHandle {
  read(this: FileHandle, n: number | string): string | undefined;
  write(this: FileHandle, s: string): unknown;
  close(this: FileHandle): void;
}

interface FileModule {
  open?: (this: void, name: string, mode: string) => FileHandle | undefined;
  exists?: (this: void, name: string) => boolean;
  remove(this: void, name: string): void;
  rename(this: void, from: string, to: string): boolean;
  list(this: void): { [name: string]: number };
  fsinfo?: (this: void) => LuaMultiReturn<[number, number, number]>;
}

/** Standard Lua `io`/`os`, for the ESP32 fallback. */
interface IoModule {
  open(this: void, name: string, mode: string): LuaMultiReturn<[FileHandle | undefined, string | undefined]>;
}
interface OsModule {
  remove(this: void, name: string): unknown;
  rename(this: void, from: string, to: string): unknown;
}
