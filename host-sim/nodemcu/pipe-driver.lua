-- Runs a program on the NodeMCU stand-in under NodeMCU's own luac.cross, its host layer being
-- host-pipe.lua (served by pipe-board.ts). Host-only: never shipped to a board.
--
--   luac.cross [-F lfs.img] -e host-sim/nodemcu/pipe-driver.lua     (from pipe-board.ts)
--
-- Environment (luac.cross passes no arguments to the script):
--   PETREL_STANDIN_DIR  this directory
--   PETREL_LUA_DIST     where modules not in LFS come from (as on package.path)
--   PETREL_ENTRY        the entry module (default firmware.targets.nodemcu.index; a packed
--                       board's is "petrel")
--   PETREL_FIXTURE      the program: called with (standin, Petrel, base); it sets things going
--                       and may return a function, called after the loop with the program's
--                       state still alive (the heap is read after it)
--   PETREL_DEADLINE     seconds the loop may run (default 20); the stand-in raises after it
-- and the stand-in's own (STANDIN_FLASH, STANDIN_ESP32, STANDIN_US_START, ...).
--
-- With an LFS image loaded (-F: global LFS), require serves modules from it first, as a board's
-- LFS loader does; what is not there comes from PETREL_LUA_DIST.
--
-- luac.cross 5.3 (32- or 64-bit) runs it; NodeMCU's 5.1 refuses standin.lua itself (its main
-- chunk has more than the 50 locals that build allows).
--
-- Prints "heap <stage> <KB>" (collectgarbage("count") after a full collect) at the start, after
-- the pipe host, after the stand-in, after the entry module and at the end; with LFS, how many
-- modules it served.
local here = assert(os.getenv("PETREL_STANDIN_DIR"), "PETREL_STANDIN_DIR is not set")
-- print reaches the serial console at once on a board; a test reads it as it comes
io.stdout:setvbuf("line")

local function heap(stage)
  collectgarbage("collect")
  local kb = collectgarbage("count")
  print(string.format("heap %s %.2f", stage, kb))
  return kb
end
heap("start")

local fromLFS = 0
if LFS ~= nil then
  local get = LFS.get
  table.insert(package.searchers or package.loaders, 2, function(name)
    local fn = get(name)
    if fn == nil then return "\n\tno module '" .. name .. "' in LFS" end
    fromLFS = fromLFS + 1
    return fn
  end)
end
local dist = os.getenv("PETREL_LUA_DIST")
if dist ~= nil and dist ~= "" then package.path = dist .. "/?.lua;" .. package.path end

PETREL_HOST = dofile(here .. "/host-pipe.lua")
heap("host")
local standin = dofile(here .. "/standin.lua")
local base = heap("standin")
local Petrel = require(os.getenv("PETREL_ENTRY") or "firmware.targets.nodemcu.index")
heap("petrel")

local program = assert(loadfile(assert(os.getenv("PETREL_FIXTURE"), "PETREL_FIXTURE is not set")))
local after = program(standin, Petrel, base)
standin.run(tonumber(os.getenv("PETREL_DEADLINE") or "") or 20)
if after ~= nil then after() end
if LFS ~= nil then print("modules from LFS " .. fromLFS) end
heap("end")
-- `after` (and so the program's state) is alive up to the reading above
after = nil
