// NodeMCU's Lua Flash Store (LFS): the image of a board's modules, built with the luac.cross of
// the board's firmware, and its size as it sits in flash.
//
// An LFS image must come from the luac.cross of the same firmware build as the board (Lua 5.1 and
// 5.3 images differ, and so do builds with other number types). NodeMCU's firmware build makes
// it (ESP8266: `make` in the firmware tree leaves `luac.cross` at its top; ESP32: build/
// luac_cross/luac.cross). Found here through LUAC_CROSS_51 / LUAC_CROSS_53, else in
// PETREL_RUNTIMES (default ../shared/runtimes beside the repository) as luac-cross-51 / -53.
//
// The size checked against a board's LFS region is the image's size in flash (uncompressed):
//   5.1: luac.cross prints it ("Image size: N") and writes a compressed file.
//   5.3: luac.cross prints nothing and ignores -m, so the image is loaded on a 32-bit 5.3
//        luac.cross (the board's word size) and written back out in absolute form (-F img -a addr
//        -o out): that file is exactly the LFS header's flash_size bytes, the region it fills.
//        Loading it also proves the firmware's own loader takes the image. Without a 32-bit 5.3
//        luac.cross that loads it, the 5.1 build of the same modules stands in (measured larger:
//        218,340 against 199,148 bytes for the same 44 modules, December 2026), and the figure
//        says so. (A 64-bit 5.3 luac.cross, which a firmware build makes on a 64-bit host, is
//        never asked to load an image: it allocates without bound, ../shared/runtimes/README.md.)
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

/** The folder of prebuilt runtimes: PETREL_RUNTIMES (relative to the repository), or ../shared/runtimes. */
export function runtimesDir() {
  return path.resolve(root, process.env.PETREL_RUNTIMES ?? "../shared/runtimes");
}

/** Where a user gets a luac.cross, for error messages. */
export const LUAC_CROSS_HELP = "NodeMCU's firmware build makes it, configured like the board's firmware (ESP8266: make in a nodemcu-firmware " +
  "checkout leaves luac.cross at its top, LUA=53 for Lua 5.3; ESP32, dev-esp32: build/luac_cross/luac.cross); point LUAC_CROSS_51 / " +
  "LUAC_CROSS_53 at it, or set PETREL_RUNTIMES to a folder holding luac-cross-51 / luac-cross-53 (../shared/runtimes/README.md says how those were built)";

/** The Lua version a luac.cross reports with -v ("5.1", "5.3"), or undefined when it does not run. */
function versionOf(exe) {
  const r = spawnSync(exe, ["-v"], { encoding: "latin1", timeout: 20000 });
  if (r.error) return undefined;
  const m = /Lua (5\.\d)/.exec(`${r.stdout}${r.stderr}`);
  return m ? m[1] : undefined;
}

/**
 * The luac.cross that builds images for Lua `lua` ("5.1" | "5.3"): { exe, from }. Throws saying
 * where to get one when there is none, or when the one named is for another Lua.
 */
export function findLuacCross(lua) {
  const env = lua === "5.1" ? "LUAC_CROSS_51" : "LUAC_CROSS_53";
  const named = process.env[env];
  const exe = named !== undefined && named !== "" ? path.resolve(named) : path.join(runtimesDir(), lua === "5.1" ? "luac-cross-51" : "luac-cross-53");
  const from = named ? env : "PETREL_RUNTIMES";
  if (!fs.existsSync(exe)) {
    throw new Error(`no luac.cross for Lua ${lua} (looked for ${exe}${named ? ` from ${env}` : `; ${env} is not set`}); an LFS image is built with the luac.cross of the board's own firmware build. ${LUAC_CROSS_HELP}`);
  }
  const v = versionOf(exe);
  if (v === undefined) throw new Error(`${exe} (${from}) does not run here; ${LUAC_CROSS_HELP}`);
  if (v !== lua) throw new Error(`${exe} (${from}) is a Lua ${v} luac.cross, the board runs Lua ${lua}: an image must come from the luac.cross of the board's firmware build; ${LUAC_CROSS_HELP}`);
  return { exe, from };
}

/** A 32-bit 5.3 luac.cross that can load an image (-F), or undefined. */
function luacCross53x32() {
  const p = path.join(runtimesDir(), "luac-cross-53-32");
  return fs.existsSync(p) && versionOf(p) === "5.3" ? p : undefined;
}

/** The LFS region of the host luac.cross (LFS_SIZE in NodeMCU's app/lua53/host/lnodemcu.c): the largest image it loads. */
export const HOST_LFS_REGION = 0x40000;

/** In an absolute image, where the LFS is mapped: any address in ESP8266's mapped flash (0x40200000 + up to 1 MB) will do. */
const ABSOLUTE_AT = "0x40210000";

/**
 * The size in flash of a 5.3 image: { size, how }, or undefined without a 32-bit 5.3 luac.cross.
 * Throws when the firmware's loader refuses the image.
 */
function size53(image) {
  const exe = luacCross53x32();
  if (exe === undefined) return undefined;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-lfs-"));
  try {
    const abs = path.join(tmp, "abs.img");
    const r = spawnSync(exe, ["-F", image, "-a", ABSOLUTE_AT, "-o", abs], { encoding: "latin1", timeout: 60000 });
    // luac.cross 5.3 exits 0 on errors: the absolute image is the proof it loaded
    if (!fs.existsSync(abs)) throw new Error(`the 32-bit Lua 5.3 luac.cross (${exe}) could not load ${image}: ${`${r.stderr}${r.stdout}`.trim().slice(-800) || `exit ${r.status}`}`);
    const size = fs.statSync(abs).size;
    // the host luac.cross loads an image into a region of its own of LFS_SIZE (0x40000 in its
    // app/lua53/host lnodemcu.c); a larger image runs past it, so what it "loads" proves nothing
    // (from about 271 KB it crashes). A board's partition may be larger: the proof here may not.
    if (size > HOST_LFS_REGION) {
      throw new Error(`the LFS image is ${size} bytes in flash, more than the ${HOST_LFS_REGION} bytes the host luac.cross (${exe}) holds ` +
        `(its LFS_SIZE): past it the load overruns the tool's buffer, so the image cannot be loaded and proven on this machine; ` +
        `fix: make the firmware's Lua smaller (fewer or smaller modules, features left out of the profile)`);
    }
    return { size, how: "loaded on the 32-bit Lua 5.3 luac.cross and written back in absolute form" };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

/**
 * Builds `out` (an LFS image) from `files` (names in `dir`) with the luac.cross for `lua`.
 * Returns { image, fileBytes, size, how, luac } where size is the image's size in flash
 * (uncompressed) and how says how it was measured. Throws on a luac.cross error or without one.
 */
export function buildLfsImage({ dir, files, lua, out }) {
  const luac = findLuacCross(lua);
  fs.rmSync(out, { force: true });
  const r = spawnSync(luac.exe, ["-f", "-o", out, ...files], { cwd: dir, encoding: "latin1", timeout: 120000 });
  const said = `${r.stderr ?? ""}${r.stdout ?? ""}`.trim();
  // 5.3's luac.cross exits 0 after an error: stderr says it
  if (r.status !== 0 || (r.stderr ?? "").trim() !== "" || !fs.existsSync(out)) {
    fs.rmSync(out, { force: true });
    throw new Error(`luac.cross (Lua ${lua}, ${luac.exe}) did not build the LFS image: ${said.slice(-1200) || `exit ${r.status}`}` +
      (/Number of modules/.test(said) ? "; fix: Lua 5.1's luac.cross takes at most 50 modules in one image: pack fewer modules" : ""));
  }
  const fileBytes = fs.statSync(out).size;
  if (lua === "5.1") {
    const m = /Image size: (\d+)/.exec(r.stdout ?? "");
    if (!m) throw new Error(`luac.cross 5.1 (${luac.exe}) did not print the image size ("Image size: N"); it said: ${said.slice(-400)}`);
    return { image: out, fileBytes, size: Number(m[1]), how: 'as luac.cross 5.1 reports it ("Image size")', luac: luac.exe };
  }
  let exact;
  let unloaded = "";
  try {
    exact = size53(out);
  } catch (e) {
    // the prebuilt 32-bit luac.cross and a user's own (LUAC_CROSS_53) may be built with other
    // number types: then it cannot load the user's image, and only the estimate below is left
    if (luac.from === "PETREL_RUNTIMES") throw e;
    unloaded = `; ${e.message}`;
  }
  if (exact !== undefined) return { image: out, fileBytes, ...exact, luac: luac.exe };
  // no 32-bit 5.3 luac.cross that loads it: the 5.1 image of the same modules stands in, when there is a 5.1 luac.cross
  let estimate;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "petrel-lfs51-"));
  try {
    estimate = buildLfsImage({ dir, files, lua: "5.1", out: path.join(tmp, "lfs.img") }).size;
  } catch (e) {
    throw new Error(`cannot measure the Lua 5.3 image's size in flash: that needs a 32-bit Lua 5.3 luac.cross (${path.join(runtimesDir(), "luac-cross-53-32")}) ` +
      `or, as an estimate, a Lua 5.1 one (${e.message})`);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  return { image: out, fileBytes, size: estimate, luac: luac.exe,
    how: `estimated from the Lua 5.1 image of the same modules (no 32-bit Lua 5.3 luac.cross loaded it${unloaded}; 5.1's image is the larger)` };
}
