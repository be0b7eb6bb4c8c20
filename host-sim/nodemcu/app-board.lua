-- The sensor node (firmware/targets/nodemcu/app, the board's module `app`) on the NodeMCU
-- stand-in: its serial console is stdin/stdout (lines; Enter is "\r" on a terminal), its flash
-- STANDIN_FLASH. PETREL_DEFAULTS: "key=value" lines, the board's own setting defaults (the
-- global PETREL_BOARD.defaults, as a board's init.lua would set it). node.restart() ends the
-- process with status 4 (STANDIN_RESTART=exit), for a harness to power the board on again.
local defaults = {}
for kv in string.gmatch(os.getenv("PETREL_DEFAULTS") or "", "[^\n]+") do
  local k, v = string.match(kv, "^([^=]+)=(.*)$")
  if k then defaults[k] = v end
end
PETREL_BOARD = { defaults = defaults }
local standin = dofile(os.getenv("PETREL_STANDIN_DIR") .. "/boot.lua")
standin.run(tonumber(os.getenv("PETREL_DEADLINE") or "86400"))
