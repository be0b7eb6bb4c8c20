-- The NodeMCU stand-in's host layer on fengari: the interface of host-luasocket.lua over the
-- primitives fengari-board.ts provides in PETREL_JS (Node sockets in a worker, Node files).
local js = assert(PETREL_JS, "host-fengari.lua runs under fengari-board.js")

local H = {
  now = js.now,
  connect = js.connect,
  send = js.send,
  close = js.close,
  resolve = js.resolve,
  wait = js.wait,
  console = js.console,
  list = js.list,
  remove = js.remove,
  rename = js.rename,
}

local File = {}
File.__index = File

function File:read(n)
  if n == "*a" or n == "a" then
    return js.fread(self.fd, -1) or ""
  end
  if type(n) ~= "number" then error("host-fengari: read(" .. tostring(n) .. ") is not supported") end
  return js.fread(self.fd, n)
end

function File:write(...)
  for i = 1, select("#", ...) do js.fwrite(self.fd, tostring((select(i, ...)))) end
  return self
end

function File:seek(whence, offset)
  return js.fseek(self.fd, whence or "cur", offset or 0)
end

function File:flush() return self end

function File:close()
  js.fclose(self.fd)
  return true
end

function H.open(p, mode)
  local fd = js.fopen(p, mode or "r")
  if fd == nil then return nil end
  return setmetatable({ fd = fd }, File)
end

return H
