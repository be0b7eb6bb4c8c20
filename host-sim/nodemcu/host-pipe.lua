-- The NodeMCU stand-in's host layer on NodeMCU's own luac.cross, which has no C modules (no
-- sockets, no timers): the interface of host-luasocket.lua, relayed by the parent process
-- (pipe-board.ts) over two inherited descriptors. Host-only: never shipped to a board.
-- stdout stays the board's UART; stdin is not read.
--
-- Protocol: ASCII lines, bytes as lowercase hex. Requests, on fd 3:
--   H                      hello (answered, so the clock is the parent's from the start)
--   C id port ip [ca]      connect; with ca (hex of a PEM, or "*": no verification) over TLS
--   S id hex               send          X id        close
--   K                      console lines wanted from now on
--   R name                 resolve       L dir       list a directory
--   W seconds              wait: answered at once when events are pending, else when one
--                          comes or the time is up
-- Only H, R, L and W are answered, on fd 4: lines, then "T seconds" (the parent's clock, which
-- every answer carries). W's lines are events "kind id [hex]", the kinds of host-luasocket.lua:
-- open, fail, data, eof, reset, sent, and line (id 0: a console line) and stop (id 0: the board
-- powers off cleanly, exit status 0).
-- R's line is "a ip" (none: no address); L's are "n size name".
--
-- Between answers the clock runs on os.clock() (this process's CPU time: it advances while the
-- program computes, and a blocked read ends with the parent's clock anyway); never backwards.
-- luac.cross's 5.3 has single-precision floats, so the parent's clock counts from the start of
-- the process (small numbers keep their microseconds), not from the epoch.
--
-- Files: io.open, os.remove and os.rename, which luac.cross has; only listing a directory
-- (no lfs module, no io.popen on 5.1) goes through the parent.
--
-- Heap (collectgarbage("count") after a full collect, luac-cross-53-32): 4.7 KB once loaded from
-- source: its function prototypes and closures, H and the two file handles (the stdio buffers
-- are C's, not counted); 4.5 KB when an LFS image already holds many of its strings; 6.0 KB on
-- luac-cross-51-32. A wait with no events leaves about 0.14 KB of garbage, a data event its hex
-- line and the decoded string besides.
local open, exit, clock, stdout = io.open, os.exit, os.clock, io.stdout
local format, byte, char, gsub, match, sub = string.format, string.byte, string.char, string.gsub, string.match, string.sub

local req = assert(open("/dev/fd/3", "w"), "host-pipe: no fd 3 (run under pipe-board.ts)")
local rep = assert(open("/dev/fd/4", "r"), "host-pipe: no fd 4 (run under pipe-board.ts)")

local H = { open = open }
local last, at, ids, consoleOn = 0, clock(), 0, false

local function now()
  return last + (clock() - at)
end
H.now = now

local function hexByte(c)
  return format("%02x", byte(c))
end

local function unhexByte(x)
  return char(tonumber(x, 16))
end

--- Sends a request; when it is one that is answered, reads the answer: its lines, up to the
--- "T seconds" that ends it. The parent bounds every answer; the pipe's end means the parent is
--- gone, and the board with it.
local function ask(s, answered)
  req:write(s, "\n")
  req:flush()
  if not answered then return end
  local lines = {}
  while true do
    local l = rep:read("*l")
    if l == nil then
      stdout:flush()
      exit(3)
    end
    if byte(l) == 84 then -- "T"
      local t, n = tonumber(sub(l, 3)), now()
      last, at = t > n and t or n, clock()
      return lines
    end
    lines[#lines + 1] = l
  end
end

function H.wait(timeout)
  local evs = ask(format("W %.3f", timeout), true)
  for i = 1, #evs do
    local kind, id, h = match(evs[i], "^(%a+) (%d+) ?(%x*)$")
    if kind == "stop" then
      stdout:flush()
      exit(0)
    end
    if kind == nil then error("host-pipe: bad event " .. evs[i]) end
    evs[i] = { kind = kind, id = kind ~= "line" and tonumber(id) or nil, data = h ~= "" and gsub(h, "%x%x", unhexByte) or nil }
  end
  return evs
end

function H.connect(ip, port, ca)
  ids = ids + 1
  local c = "C " .. ids .. " " .. format("%d", port) .. " " .. ip
  if ca ~= nil then c = c .. " " .. (ca == true and "*" or gsub(ca, ".", hexByte)) end
  ask(c)
  return ids
end

function H.send(id, data)
  ask("S " .. id .. " " .. gsub(data, ".", hexByte))
end

function H.close(id)
  ask("X " .. id)
end

function H.resolve(name)
  local l = ask("R " .. name, true)[1]
  return l and match(l, "^a (.+)$")
end

function H.console()
  if not consoleOn then ask("K") end
  consoleOn = true
end

function H.list(dir)
  local t = {}
  for _, l in ipairs(ask("L " .. dir, true)) do
    local size, name = match(l, "^n (%d+) (.+)$")
    if size then t[name] = tonumber(size) end
  end
  return t
end

function H.remove(p)
  return os.remove(p) == true
end

function H.rename(from, to)
  return os.rename(from, to) == true
end

ask("H", true)
return H
