-- A host stand-in for NodeMCU's firmware API, for running the built Lua of Petrel on Debian's
-- lua5.1 / lua5.3 (over luasocket) and on fengari (over Node's sockets and files). Host-only:
-- never shipped to a board. The host's sockets, clock, files and console come through one small
-- interface, host-luasocket.lua or host-fengari.lua; everything NodeMCU-specific is here.
--
--   local standin = dofile("host-sim/nodemcu/standin.lua")   -- defines net, tmr, file, node, wifi, uart
--   ... program code ...
--   standin.run(10)   -- the event loop; errors out if the program has not called standin.stop() within 10 s
--
-- What it reproduces, and checks (a breach ends the run with an error, so the test fails):
-- * net: createConnection, sk:on("connection"|"reconnection"|"disconnection"|"receive"|"sent"),
--   sk:connect(port, ip), sk:send(s), sk:close(); net.dns.resolve. Every event comes later, from
--   the loop, never from inside the call. "receive" delivers at most 1,460 bytes per event (one
--   TCP segment). A second sk:send before the previous "sent" is a breach (NodeMCU loses or
--   garbles back-to-back sends), and so is one send larger than ESP8266's 2,920-byte send buffer.
--   A refused or reset connection is reported by "reconnection" with an lwIP error number, an
--   orderly close by the peer by "disconnection"; sk:close() itself reports nothing.
-- * tmr: create():alarm/register/start/stop/unregister/interval/state, ALARM_SINGLE/SEMI/AUTO;
--   intervals of 1..6,870,947 ms as on ESP8266; tmr.now() in µs wrapping at 2^31, reading
--   STANDIN_US_START at its first call (default: 0.5 s before the wrap).
-- * file (ESP8266 flavour): open → read/write/close/seek/flush, exists, remove, rename (false
--   when the target exists), list, fsinfo, getcontents/putcontents, over the directory
--   STANDIN_FLASH (default "."). With STANDIN_ESP32=1 it is the ESP32 flavour: no file.open,
--   files through io.open (relative names land in the same directory).
--   standin.powerCut(n): the n-th flash mutation from now (a write, remove or rename) is cut:
--   a write keeps only the first half of its data; from then on every flash call fails until
--   standin.powerOn(), as after a power cut and a reboot.
-- * tls: createConnection (after the handshake), cert.verify(pem | false); needs luasec on Lua.
-- * node: task.post, heap (STANDIN_HEAP fixes its reading), chipid, random, restart (an error), egc.setmode; wifi minimal.
-- * uart: on("data", "\n" or "\r", fn, 0) delivers each console line (stdin) ending in that
--   delimiter; write. With STANDIN_REPL=1 lines nobody reads run as Lua (the interpreter's REPL).
local here = os.getenv("PETREL_STANDIN_DIR") or "host-sim/nodemcu"
local host = PETREL_HOST or dofile(here .. "/host-luasocket.lua")

local M = {}

local US_WRAP = 2147483648
local US_START = tonumber(os.getenv("STANDIN_US_START") or "") or (US_WRAP - 500000)
local FLASH = os.getenv("STANDIN_FLASH") or "."
local ESP32 = os.getenv("STANDIN_ESP32") == "1"
--- node.heap() reads this many bytes when STANDIN_HEAP is set (a board short of memory).
local HEAP = tonumber(os.getenv("STANDIN_HEAP") or "")
local SEGMENT = 1460
local SEND_BUFFER = 2920
local T0 = host.now()

local tasks, taskHead, taskTail = {}, 1, 0
local timers = {}
local conns = {}
local stopped = false
local fatal = nil
local wifiUp = true -- the station (see wifi below)
local tlsVerify = nil -- the CA (PEM) set by tls.cert.verify (see tls below)

M.esp32 = ESP32
M.flash = FLASH

--- Records a breach of NodeMCU's rules: raised where it happens and again by the loop, so a
--- pcall in the program cannot hide it.
local function breach(msg)
  fatal = fatal or ("stand-in: " .. msg)
  error(fatal, 2)
end

local function post(fn)
  taskTail = taskTail + 1
  tasks[taskTail] = fn
end

-- ---------------------------------------------------------------------------------------- tmr
local ALARM_SINGLE, ALARM_SEMI, ALARM_AUTO = 0, 1, 2
--- The µs counter counts from its first reading: it reads US_START then, whatever the load took.
local usBase = nil
local MAX_MS = 6870947

local function nowMs()
  return (host.now() - T0) * 1000
end

local Timer = {}
Timer.__index = Timer

function Timer:register(ms, mode, fn)
  if type(ms) ~= "number" or ms < 1 or ms > MAX_MS then
    breach("tmr interval must be 1.." .. MAX_MS .. " ms (got " .. tostring(ms) .. ")")
  end
  if type(fn) ~= "function" then breach("tmr callback is not a function") end
  timers[self] = nil
  self.ms, self.mode, self.fn, self.running = ms, mode, fn, false
end

function Timer:start()
  if self.fn == nil then return false end
  if self.running then return false end
  self.running = true
  self.due = nowMs() + self.ms
  timers[self] = true
  return true
end

function Timer:alarm(ms, mode, fn)
  self:register(ms, mode, fn)
  return self:start()
end

function Timer:stop()
  local was = self.running
  self.running = false
  timers[self] = nil
  return was
end

function Timer:unregister()
  self:stop()
  self.fn = nil
end

function Timer:interval(ms)
  self.ms = ms
end

function Timer:state()
  if self.fn == nil then return nil end
  return self.running, self.mode
end

tmr = {
  ALARM_SINGLE = ALARM_SINGLE,
  ALARM_SEMI = ALARM_SEMI,
  ALARM_AUTO = ALARM_AUTO,
  create = function() return setmetatable({ running = false }, Timer) end,
  now = function()
    usBase = usBase or host.now()
    local us = math.floor((host.now() - usBase) * 1000000) + US_START
    return math.floor(us % US_WRAP)
  end,
  time = function() return math.floor(host.now() - T0) end,
  wdclr = function() end,
  delay = function(us)
    local t = host.now() + us / 1000000
    while host.now() < t do end
  end,
}

local function runTimers()
  local t = nowMs()
  local due = {}
  for tm in pairs(timers) do
    if tm.due <= t then due[#due + 1] = tm end
  end
  table.sort(due, function(a, b) return a.due < b.due end)
  for _, tm in ipairs(due) do
    if timers[tm] and tm.running then
      local fn = tm.fn
      if tm.mode == ALARM_AUTO then
        tm.due = tm.due + tm.ms
      else
        tm.running = false
        timers[tm] = nil
        if tm.mode == ALARM_SINGLE then tm.fn = nil end -- a single alarm unregisters itself
      end
      fn(tm)
    end
  end
end

local function nextTimerIn()
  local best = nil
  for tm in pairs(timers) do
    if best == nil or tm.due < best then best = tm.due end
  end
  if best == nil then return nil end
  local d = (best - nowMs()) / 1000
  if d < 0 then d = 0 end
  return d
end

-- ---------------------------------------------------------------------------------------- net
local ERR_TIMEOUT, ERR_RST = -3, -11

local Socket = {}
Socket.__index = Socket

local function fire(sk, event, a)
  local fn = sk.handlers[event]
  if fn ~= nil then fn(sk, a) end
end

function Socket:on(event, fn)
  local ok = { connection = true, reconnection = true, disconnection = true, receive = true, sent = true }
  if not ok[event] then breach("sk:on: unknown event " .. tostring(event)) end
  self.handlers[event] = fn
end

function Socket:connect(port, ip)
  if self.id ~= nil then breach("sk:connect called twice on one socket") end
  if type(port) ~= "number" or type(ip) ~= "string" then breach("sk:connect(port, host) takes a number and a string") end
  self.host, self.port = ip, port
  self.state = "connecting"
  if not wifiUp then
    self.state = "closed"
    post(function() if not self.userClosed then fire(self, "reconnection", ERR_RST) end end)
    return
  end
  self.id = host.connect(ip, port, self.secure and (tlsVerify or true) or nil)
  conns[self.id] = self
end

function Socket:send(data, fn)
  if type(data) ~= "string" then breach("sk:send takes a string") end
  if self.sending then
    breach("sk:send before the previous send's \"sent\" event (NodeMCU loses or garbles back-to-back sends)")
  end
  if #data > SEND_BUFFER then breach("sk:send of " .. #data .. " bytes: more than ESP8266's " .. SEND_BUFFER .. "-byte send buffer") end
  if self.state ~= "open" then error("not connected") end
  if fn ~= nil then self.handlers.sent = fn end
  self.sending = true
  self.sentCount = (self.sentCount or 0) + 1
  host.send(self.id, data)
end

function Socket:close()
  self.userClosed = true
  if self.id ~= nil then
    host.close(self.id)
    conns[self.id] = nil
  end
  self.state = "closed"
  self.sending = false
end

function Socket:getpeer()
  return self.host, self.port
end

local function lost(sk, event, err)
  sk.state = "closed"
  sk.sending = false
  conns[sk.id] = nil
  post(function() if not sk.userClosed then fire(sk, event, err) end end)
end

--- What the host reports, as NodeMCU's events: later, from the loop; data in segments.
local consoleFn = nil
-- STANDIN_REPL=1: console lines no program reads run as Lua, as NodeMCU's interpreter runs them
-- (run_input on), answered with the "> " prompt.
local replOn = os.getenv("STANDIN_REPL") == "1"
local function repl(line)
  io.write(line)
  local fn, err = (loadstring or load)(line, "stdin")
  if fn == nil then
    print(err)
  else
    local ok, e = pcall(fn)
    if not ok then print(tostring(e)) end
  end
  io.write("> ")
end
if replOn then host.console() end
local function hostEvents(timeout)
  for _, ev in ipairs(host.wait(timeout)) do
    if ev.kind == "line" then
      -- whoever holds the console when the line is taken in: the program, else the REPL
      local line = ev.data
      post(function()
        if consoleFn ~= nil then consoleFn(line)
        elseif replOn then repl(line) end
      end)
    else
      local sk = conns[ev.id]
      if sk ~= nil then
        if ev.kind == "open" then
          sk.state = "open"
          post(function() if not sk.userClosed then fire(sk, "connection") end end)
        elseif ev.kind == "fail" then
          lost(sk, "reconnection", ERR_RST)
        elseif ev.kind == "sent" then
          post(function()
            if sk.state == "open" and sk.sending then
              sk.sending = false
              fire(sk, "sent")
            end
          end)
        elseif ev.kind == "data" then
          local d = ev.data
          for i = 1, #d, SEGMENT do
            -- delivered even when the peer's close follows (it is queued after this), not after sk:close()
            local chunk = string.sub(d, i, i + SEGMENT - 1)
            post(function() if not sk.userClosed then fire(sk, "receive", chunk) end end)
          end
        elseif ev.kind == "eof" then
          lost(sk, "disconnection", nil)
        else
          lost(sk, "reconnection", ERR_RST)
        end
      end
    end
  end
end

-- tls (ESP8266 and ESP32 builds with TLS): createConnection() gives a socket like net's whose
-- "connection" comes after the handshake; tls.cert.verify(pem) makes later handshakes verify the
-- broker's chain against that CA (false: no verification, NodeMCU's default). A refused
-- handshake is a "reconnection" event.
tls = {
  createConnection = function()
    return setmetatable({ handlers = {}, state = "new", sending = false, secure = true }, Socket)
  end,
  cert = {
    verify = function(x)
      if x == false then
        tlsVerify = nil
      elseif type(x) == "string" then
        tlsVerify = x
      else
        breach("tls.cert.verify: the stand-in takes a PEM string or false")
      end
      return true
    end,
  },
}

net = {
  TCP = 1,
  UDP = 2,
  createConnection = function(kind, secure)
    if kind ~= nil and kind ~= 1 then breach("only net.TCP connections are in the stand-in") end
    return setmetatable({ handlers = {}, state = "new", sending = false }, Socket)
  end,
  createServer = function() breach("net.createServer is not in the stand-in") end,
  dns = {
    resolve = function(name, fn)
      local ip = host.resolve(name)
      post(function() fn(nil, ip) end)
    end,
  },
}

-- --------------------------------------------------------------------------------------- file
local powered = true
local cutAt = nil

--- The n-th flash mutation from now is cut (n = 1: the next one).
function M.powerCut(n)
  cutAt = n
end

--- False from a power cut until powerOn().
function M.powered()
  return powered
end

--- Power back on (a reboot): flash works again, nothing is cut.
function M.powerOn()
  powered = true
  cutAt = nil
end

local function alive()
  if not powered then error("stand-in: no power (flash call after a power cut)") end
end

--- Counts a mutation; true when this one is cut.
local function mutation()
  alive()
  if cutAt == nil then return false end
  cutAt = cutAt - 1
  if cutAt > 0 then return false end
  cutAt = nil
  powered = false
  return true
end

local function path(name)
  if string.sub(name, 1, 1) == "/" then return name end
  return FLASH .. "/" .. name
end

local hostOpen = host.open
local MODES = { r = "rb", w = "wb", a = "ab", ["r+"] = "r+b", ["w+"] = "w+b", ["a+"] = "a+b",
  rb = "rb", wb = "wb", ab = "ab", ["r+b"] = "r+b", ["w+b"] = "w+b", ["a+b"] = "a+b" }

local Handle = {}
Handle.__index = Handle

function Handle:read(n)
  alive()
  if self.h == nil then error("file is closed") end
  if n == nil then n = 1024 end
  local s
  if type(n) == "number" then
    s = self.h:read(n)
  elseif n == "*a" or n == "a" then
    s = self.h:read("*a")
    if s == "" then s = nil end
  else
    s = self.h:read(n)
  end
  return s
end

function Handle:write(s)
  if self.h == nil then error("file is closed") end
  if mutation() then
    self.h:write(string.sub(s, 1, math.floor(#s / 2)))
    self.h:close()
    self.h = nil
    error("stand-in: power cut")
  end
  local ok = self.h:write(s)
  if not ok then return nil end
  return true
end

function Handle:seek(whence, offset)
  alive()
  return self.h:seek(whence or "cur", offset or 0)
end

function Handle:flush()
  alive()
  self.h:flush()
end

function Handle:close()
  if self.h ~= nil then self.h:close() end
  self.h = nil
end

--- SPIFFS keeps names of at most 31 characters (absolute host paths are the tests' own files).
local function tooLong(name)
  return string.sub(name, 1, 1) ~= "/" and #name > 31
end

local function open(name, mode)
  alive()
  if tooLong(name) then return nil end
  local m = MODES[mode or "r"]
  if m == nil then error("bad mode " .. tostring(mode)) end
  local h = hostOpen(path(name), m)
  if h == nil then return nil end
  return setmetatable({ h = h }, Handle)
end

local function exists(name)
  alive()
  local h = hostOpen(path(name), "rb")
  if h == nil then return false end
  h:close()
  return true
end

local function list()
  alive()
  return host.list(FLASH)
end

file = {
  exists = exists,
  list = list,
  remove = function(name)
    if mutation() then error("stand-in: power cut") end
    host.remove(path(name))
  end,
  rename = function(from, to)
    if mutation() then error("stand-in: power cut") end
    if tooLong(to) or exists(to) or not exists(from) then return false end
    return host.rename(path(from), path(to))
  end,
  fsinfo = function()
    local used = 0
    for _, size in pairs(list()) do used = used + size end
    local total = 3 * 1024 * 1024
    return total - used, used, total
  end,
  getcontents = function(name)
    local h = open(name, "r")
    if h == nil then return nil end
    local s = h.h:read("*a")
    h:close()
    return s
  end,
  putcontents = function(name, s)
    local h = open(name, "w")
    if h == nil then return nil end
    local ok = h:write(s)
    h:close()
    return ok
  end,
}

if ESP32 then
  -- ESP32 builds: the file module has no open; files go through io.open.
  file.open = nil
  io.open = function(name, mode)
    local h = open(name, mode)
    if h == nil then return nil, name .. ": No such file or directory" end
    return h
  end
else
  file.open = open
end

-- --------------------------------------------------------------------------------------- node
node = {
  task = {
    LOW_PRIORITY = 0,
    MEDIUM_PRIORITY = 1,
    HIGH_PRIORITY = 2,
    post = function(a, b)
      local fn = b or a
      if type(fn) ~= "function" then breach("node.task.post takes a function") end
      post(fn)
    end,
  },
  --- Free heap in bytes, as on an ESP8266 with about 44 KB free after boot, less what Lua holds.
  heap = function()
    if HEAP ~= nil then return HEAP end
    local ok, kb = pcall(collectgarbage, "count") -- fengari: not available, the heap reads as full
    local free = 44 * 1024 - math.floor((ok and kb or 0) * 1024)
    if free < 0 then free = 0 end
    return free
  end,
  chipid = function() return 1193046 end,
  --- node.compile("x.lua") writes x.lc (bytecode), as the firmware's own compiler does.
  compile = function(name)
    local h = open(name, "r")
    if h == nil then error("node.compile: no file " .. tostring(name)) end
    local src = h:read("*a")
    h:close()
    local fn, err = (loadstring or load)(src, "@" .. name)
    if fn == nil then error(err) end
    local out = open((string.gsub(name, "%.lua$", "")) .. ".lc", "w")
    out:write(string.dump(fn))
    out:close()
  end,
  random = function(lo, hi)
    if hi == nil then return math.random(lo) end
    return math.random(lo, hi)
  end,
  -- STANDIN_RESTART=exit: the board restarts (the process ends with status 4, for its harness to
  -- power it on again); otherwise a restart is a breach (no test program should reach it)
  restart = function()
    if os.getenv("STANDIN_RESTART") ~= "exit" then breach("node.restart() called") end
    print("REBOOT")
    io.stdout:flush()
    os.exit(4)
  end,
  egc = { setmode = function() end, ALWAYS = 1, ON_ALLOC_FAILURE = 2, ON_MEM_LIMIT = 3 },
}

-- wifi: the station, up from boot; M.wifi(false / true) takes it down and back (events from the
-- loop). ESP8266 flavour: setmode, sta.config/getip/status, eventmon.register; ESP32 flavour
-- (STANDIN_ESP32=1): mode, start, sta.config/connect, sta.on. While it is down a new connection
-- fails ("reconnection"), as with no route; open ones are left to their own fate.
local wifiHandlers = {}
local function wifiEvent(name)
  local fn = wifiHandlers[name]
  if fn ~= nil then post(function() fn({}) end) end
end
function M.wifi(up)
  if up == wifiUp then return end
  wifiUp = up
  if up then
    wifiEvent(ESP32 and "got_ip" or 1)
  else
    wifiEvent(ESP32 and "disconnected" or 2)
  end
end

wifi = {
  STATION = 1,
  sta = {
    config = function(cfg)
      if type(cfg) ~= "table" or type(cfg.ssid) ~= "string" then breach("wifi.sta.config takes a table with ssid") end
      return true
    end,
  },
}
if ESP32 then
  wifi.mode = function() end
  wifi.start = function() end
  wifi.sta.connect = function() end
  wifi.sta.on = function(ev, fn)
    local ok = { start = true, stop = true, connected = true, disconnected = true, authmode_changed = true, got_ip = true }
    if not ok[ev] then breach("wifi.sta.on: unknown event " .. tostring(ev)) end
    wifiHandlers[ev] = fn
  end
else
  wifi.setmode = function() return 1 end
  wifi.sta.status = function() return wifiUp and 5 or 1 end -- STA_GOTIP / STA_CONNECTING
  wifi.sta.getip = function()
    if not wifiUp then return nil end
    return "127.0.0.1", "255.0.0.0", "127.0.0.1"
  end
  wifi.eventmon = {
    STA_GOT_IP = 1,
    STA_DISCONNECTED = 2,
    register = function(ev, fn) wifiHandlers[ev] = fn end,
  }
end

uart = {
  setup = function() return 115200 end,
  --- Console input (stdin): on("data", "\n", fn, 0) delivers lines, on("data", 1, fn, run) each
  --- character; on("data") removes the handler (input goes to the REPL again: STANDIN_REPL).
  on = function(event, delim, fn, run)
    if event ~= "data" then breach("uart.on: only the data event is in the stand-in") end
    if fn == nil then
      consoleFn = nil
      return
    end
    if delim == 1 then
      consoleFn = function(line)
        for i = 1, #line do fn(string.sub(line, i, i)) end
      end
    elseif delim == "\n" or delim == "\r" then
      if run ~= 0 then breach("uart.on: run_input must be 0 while the program reads console lines") end
      -- a terminal's Enter is "\r": the line comes with it in place of stdin's "\n"
      consoleFn = delim == "\n" and fn or function(line) fn((string.gsub(line, "\n$", "\r"))) end
    else
      breach("uart.on: the stand-in takes the delimiter \"\\n\" or \"\\r\", or the size 1")
    end
    host.console()
  end,
  write = function(_, ...)
    for i = 1, select("#", ...) do io.write(tostring((select(i, ...)))) end
  end,
}

-- --------------------------------------------------------------------------------- the loop
function M.stop()
  stopped = true
end

--- Runs the event loop until stop() or an error; raises when `seconds` pass first.
function M.run(seconds)
  stopped = false
  local deadline = host.now() + seconds
  while not stopped do
    if fatal then error(fatal, 0) end
    if host.now() > deadline then
      error("stand-in: the program did not finish within " .. seconds .. " s", 0)
    end
    -- posted tasks, those present now (a task may post more: they run next round)
    local last = taskTail
    while taskHead <= last and not stopped do
      local fn = tasks[taskHead]
      tasks[taskHead] = nil
      taskHead = taskHead + 1
      fn()
      if fatal then error(fatal, 0) end
    end
    if stopped then break end
    runTimers()
    if fatal then error(fatal, 0) end
    if stopped then break end
    local wait = 0.05
    if taskHead <= taskTail then wait = 0 end
    local t = nextTimerIn()
    if t ~= nil and t < wait then wait = t end
    local left = deadline - host.now()
    if left < wait then wait = left > 0 and left or 0 end
    hostEvents(wait)
  end
  if fatal then error(fatal, 0) end
end

return M
