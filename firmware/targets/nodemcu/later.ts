/**
 * Runs `fn` soon, from NodeMCU's event loop: the adapters never call the session back from
 * inside one of its own calls (transport and resolver contracts). `node.task.post` where the
 * firmware has it (ESP8266 and ESP32 both do), else a one-shot 1 ms timer (ESP8266 refuses 0 ms).
 */
export function later(fn: (this: void) => void): void {
  const node = _G["node"] as NodeModule | undefined;
  if (node !== undefined && node.task !== undefined) {
    node.task.post(fn);
    return;
  }
  const t = (_G["tmr"] as TmrModule).create();
  t.alarm(1, (_G["tmr"] as TmrModule).ALARM_SINGLE, () => {
    t.unregister();
    fn();
  });
}
