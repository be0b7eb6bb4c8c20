/**
 * The sensor node's settings for tests on Node: loaded from a storage (defaults filled in), then
 * the given values set, each checked as the console would.
 */
import "../../firmware/targets/node/index";
import "../../firmware/targets/node/app";
import { expect } from "vitest";
import { loadSettings, setSetting } from "../../firmware/app/config";
import { Settings } from "../../firmware/app/settings";
import type { Storage } from "../../firmware/port/storage";

export function settingsWith(storage: Storage, tls: boolean, set: Record<string, string>): Settings {
  const st = new Settings(storage, tls);
  expect(loadSettings(st)).toBeNull();
  for (const [k, v] of Object.entries(set)) expect(setSetting(st, k, v), k).toBeNull();
  return st;
}
