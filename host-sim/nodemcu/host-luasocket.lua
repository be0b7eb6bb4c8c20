-- The NodeMCU stand-in's host layer on Debian's lua5.1 / lua5.3: sockets and time from
-- luasocket, files from io, the console from stdin. Host-only: never shipped to a board.
-- The same interface is provided to fengari by host-fengari.lua (Node sockets and files).
--
--   host.now()                 seconds, fractional
--   host.connect(ip, port, ca) → id; later an event "open" or "fail". With `ca` (PEM text, or
--                                true for no verification) the connection is TLS: "open" comes
--                                after the handshake, which verifies the chain against `ca`
--   host.send(id, data)        later "sent" once all of it is written (or "reset")
--   host.close(id)             nothing is reported for it
--   host.resolve(name)         → address or nil
--   host.wait(seconds)         → events {id=, kind=, data=} that happened within the wait:
--                                "open", "fail", "data" (any size), "eof", "reset", "sent",
--                                and {kind="line", data=...} for each console line (with "\n")
--   host.open(path, mode)      → an io-like handle (read/write/seek/flush/close) or nil
--   host.list(dir)             → { name = size }
--   host.remove(path); host.rename(from, to) → true/false
local socket = require("socket")
local okSsl, ssl = pcall(require, "ssl") -- luasec (Debian lua-sec), for the stand-in's tls

local H = {}
local conns, nextId = {}, 0
local events = {}
local stdinOn, stdinEof = false, false

local handshake, startTls

local function emit(id, kind, data)
  events[#events + 1] = { id = id, kind = kind, data = data }
end

H.now = socket.gettime

local caContexts = {}
--- A client context verifying against `pem`, one per PEM text. luasec takes a CA from a file
--- only: it is written to a temporary file, read into the context, and removed at once.
local function caContext(params, pem)
  if caContexts[pem] == nil then
    local name = os.tmpname()
    local h = assert(io.open(name, "w"))
    h:write(pem)
    h:close()
    params.cafile = name
    local ctx, err = ssl.newcontext(params)
    os.remove(name)
    if ctx == nil then return nil, err end
    caContexts[pem] = ctx
  end
  return caContexts[pem]
end

function H.connect(ip, port, ca)
  nextId = nextId + 1
  local id = nextId
  local tcp = socket.tcp()
  tcp:settimeout(0)
  local c = { tcp = tcp, ip = ip, port = port, state = "connecting", ca = ca }
  conns[id] = c
  local ok, err = tcp:connect(ip, port)
  if ok then
    if ca ~= nil then
      startTls(id, c)
    else
      c.state = "open"
      emit(id, "open")
    end
  elseif err ~= "timeout" and err ~= "Operation already in progress" then
    tcp:close()
    conns[id] = nil
    emit(id, "fail")
  end
  return id
end

function H.send(id, data)
  local c = conns[id]
  if c == nil then return end
  c.out = data
end

function H.close(id)
  local c = conns[id]
  if c == nil then return end
  c.tcp:close()
  conns[id] = nil
end

function H.resolve(name)
  return socket.dns.toip(name)
end

--- Console lines from stdin (unbuffered, so select sees every byte still waiting).
function H.console()
  if stdinOn then return end
  stdinOn = true
  io.stdin:setvbuf("no")
end

local STDIN = { getfd = function() return 0 end, dirty = function() return false end }

local function lost(id, kind)
  local c = conns[id]
  c.tcp:close()
  conns[id] = nil
  emit(id, kind)
end

--- One step of the TLS handshake (non-blocking): "open" when done, "fail" when refused.
handshake = function(id, c)
  local ok, err = c.tcp:dohandshake()
  if ok then
    c.state = "open"
    emit(id, "open")
  elseif err ~= "wantread" and err ~= "wantwrite" then
    c.tlsError = err
    lost(id, "fail")
  else
    c.want = err
  end
end

startTls = function(id, c)
  if not okSsl then error("stand-in: tls needs luasec (Debian package lua-sec)") end
  local params = { mode = "client", protocol = "any", options = { "all", "no_sslv2", "no_sslv3" } }
  local cfg, err = params, nil
  if c.ca == true then
    params.verify = "none"
  else
    params.verify = "peer"
    cfg, err = caContext(params, c.ca)
  end
  local wrapped
  if cfg ~= nil then wrapped, err = ssl.wrap(c.tcp, cfg) end
  if wrapped == nil then
    c.tlsError = err
    lost(id, "fail")
    return
  end
  wrapped:settimeout(0)
  c.tcp = wrapped
  c.state = "handshake"
  handshake(id, c)
end

function H.wait(timeout)
  local rd, wr, idOf = {}, {}, {}
  for id, c in pairs(conns) do
    idOf[c.tcp] = id
    if c.state == "connecting" or c.out ~= nil or (c.state == "handshake" and c.want == "wantwrite") then wr[#wr + 1] = c.tcp end
    if c.state == "open" or (c.state == "handshake" and c.want == "wantread") then rd[#rd + 1] = c.tcp end
  end
  if stdinOn and not stdinEof then rd[#rd + 1] = STDIN end
  if #events > 0 then timeout = 0 end
  if #rd == 0 and #wr == 0 then
    if timeout > 0 then socket.sleep(timeout) end
  else
    local r, w = socket.select(rd, wr, timeout)
    for _, tcp in ipairs(w) do
      local id = idOf[tcp]
      local c = id and conns[id]
      if c then
        if c.state == "connecting" then
          local ok, err = tcp:connect(c.ip, c.port)
          if ok or err == "already connected" then
            if c.ca ~= nil then
              startTls(id, c)
            else
              c.state = "open"
              emit(id, "open")
            end
          else
            lost(id, "fail")
          end
        elseif c.state == "handshake" then
          handshake(id, c)
        elseif c.out ~= nil then
          local n, err, partial = tcp:send(c.out)
          local done = n or partial or 0
          if n == nil and err ~= "timeout" and err ~= "wantwrite" and err ~= "wantread" then
            lost(id, "reset")
          elseif done >= #c.out then
            c.out = nil
            emit(id, "sent")
          else
            c.out = string.sub(c.out, done + 1)
          end
        end
      end
    end
    for _, tcp in ipairs(r) do
      if tcp == STDIN then
        local l = io.stdin:read("*l")
        if l == nil then stdinEof = true else emit(nil, "line", l .. "\n") end
      else
        local id = idOf[tcp]
        local c = id and conns[id]
        if c and c.state == "handshake" then
          handshake(id, c)
        elseif c and c.state == "open" then
          local data, err, partial = tcp:receive(65536)
          local chunk = data or partial
          if chunk ~= nil and #chunk > 0 then emit(id, "data", chunk) end
          if err == "closed" then
            lost(id, "eof")
          elseif err ~= nil and err ~= "timeout" and err ~= "wantread" and err ~= "wantwrite" then
            lost(id, "reset")
          end
        end
      end
    end
  end
  local out = events
  events = {}
  return out
end

H.open = io.open

function H.list(dir)
  local out = {}
  local p = io.popen('ls -1A "' .. dir .. '" 2>/dev/null')
  for name in p:lines() do
    local h = io.open(dir .. "/" .. name, "rb")
    if h ~= nil then
      out[name] = h:seek("end")
      h:close()
    end
  end
  p:close()
  return out
end

function H.remove(p)
  return os.remove(p) == true
end

function H.rename(from, to)
  return os.rename(from, to) == true
end

return H
