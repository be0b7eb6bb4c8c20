-- A NodeMCU board that boots from LFS, on NodeMCU's own 32-bit luac.cross with the board's image
-- loaded (-F lfs.img, its global LFS), as make flash leaves a board: the image in LFS and init.lua
-- on the file system (the working directory). Host-only: never shipped to a board.
--
--   luac-cross-53-32 -F lfs.img -e host-sim/nodemcu/lfs-board.lua      (from pipe-board.ts)
--
-- The stand-in's firmware API runs over the pipe host (host-pipe.lua: sockets relayed to real TCP
-- by the parent), node.LFS is the loaded image's, and then init.lua runs as the firmware runs it
-- at power-on: an error in it is printed and the board stays at the REPL (STANDIN_REPL=1 here).
-- node.restart() ends the process with status 4 (STANDIN_RESTART=exit): the parent powers the
-- board on again.
--
-- Before init.lua it prints one line, for the parent and not part of the board's console:
--   [stand-in] heap before init.lua: <bytes> (luac.cross <bytes>, pipe host <bytes>, stand-in <bytes>)
-- collectgarbage("count") after a full collect, in bytes: what the interpreter, the pipe host and
-- the stand-in hold before any Petrel code runs. The parent subtracts it from the heap the node
-- reports. (A board has its own base too, the firmware's Lua state; that is left out here.)
--
-- Environment: PETREL_STANDIN_DIR (this directory), PETREL_DEADLINE (seconds the loop may run,
-- default one day), PETREL_HEAP_TOTAL (bytes free after boot on the board, for node.heap()), and
-- the stand-in's own (STANDIN_FLASH, STANDIN_ESP32, ...).
local here = assert(os.getenv("PETREL_STANDIN_DIR"), "PETREL_STANDIN_DIR is not set")
assert(LFS ~= nil, "lfs-board.lua runs with an LFS image loaded (luac.cross -F lfs.img)")
-- A UART sends each byte as it is written: the console's prompt has no newline after it.
io.stdout:setvbuf("no")

local function used()
  -- twice, as the node's status does: the second frees what the first finalized
  collectgarbage("collect")
  collectgarbage("collect")
  return math.floor(collectgarbage("count") * 1024)
end

local start = used()
PETREL_HOST = dofile(here .. "/host-pipe.lua")
local host = used()
local standin = dofile(here .. "/standin.lua")
-- The firmware's LFS API, over the image luac.cross loaded. reload() belongs to make flash and
-- the scripted REPL (test/fixtures/nodemcu/repl.lua), not to a board that is running.
node.LFS = {
  get = LFS.get,
  list = LFS.list,
  reload = function() error("lfs-board: node.LFS.reload is not in this stand-in (make flash loads an image)") end,
}
-- node.heap(): the board's free heap, the profile's figure after boot (PETREL_HEAP_TOTAL) less
-- what the node holds, the share measured below left out (the stand-in's own node.heap() counts
-- everything in the interpreter, so the node would see its floor crossed by the stand-in's heap).
local total, base = tonumber(os.getenv("PETREL_HEAP_TOTAL") or ""), 0
if total ~= nil then
  node.heap = function()
    local free = total - (math.floor(collectgarbage("count") * 1024) - base)
    return free > 0 and free or 0
  end
end
local before = used()
base = before
print(string.format("[stand-in] heap before init.lua: %d (luac.cross %d, pipe host %d, stand-in %d)", before, start, host - start, before - host))

-- what NodeMCU does at power-on
local ok, err = pcall(dofile, "init.lua")
if not ok then print("lua: " .. tostring(err)) end
ok, err = nil, nil
standin.run(tonumber(os.getenv("PETREL_DEADLINE") or "") or 86400)
