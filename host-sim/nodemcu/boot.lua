-- Boots a simulated NodeMCU board on the host: the stand-in's globals, then Petrel's built Lua
-- from PETREL_LUA_DIST (like the modules on the board's flash). Under Lua 5.1 it is an ESP8266:
-- `bit` built in (Debian lua-bitop stands in) and no `debug` library.
--   local standin, Petrel, base = dofile(os.getenv("PETREL_STANDIN_DIR") .. "/boot.lua")
-- `base` is collectgarbage("count") (KB) before Petrel was loaded.
local here = assert(os.getenv("PETREL_STANDIN_DIR"), "PETREL_STANDIN_DIR is not set")
local dist = assert(os.getenv("PETREL_LUA_DIST"), "PETREL_LUA_DIST is not set")
package.path = dist .. "/?.lua;" .. package.path
local standin = dofile(here .. "/standin.lua")
if io.stdout.setvbuf then io.stdout:setvbuf("line") end -- print reaches the serial console at once on a board; a test reads it as it comes
if _VERSION == "Lua 5.1" then
  bit = require("bit")
  debug = nil
  package.loaded.debug = nil
end
-- fengari has no collector control (its heap is JavaScript's): there `base` is nil.
local base = nil
if pcall(collectgarbage, "collect") then base = collectgarbage("count") end
-- PETREL_ENTRY: the entry module's name (a packed board's is "petrel").
local Petrel = require(os.getenv("PETREL_ENTRY") or "firmware.targets.nodemcu.index")
return standin, Petrel, base
