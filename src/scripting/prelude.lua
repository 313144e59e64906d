-- The sandbox every shard's VM runs scripts in. Run once per VM with a
-- table of Rust functions; returns the runners. Everything here keeps what
-- it needs in locals, so a script cannot reach or alter it.
local R = ...
local G = _G
local error, type, tostring, rawset, rawget = error, type, tostring, rawset, rawget
local setmetatable, getmetatable, xpcall = setmetatable, getmetatable, xpcall
local setfenv_raw = setfenv
local getinfo = debug.getinfo
local aborted, errmsg = R.aborted, R.errmsg

-- Redis 7.0 has none of these. getfenv would hand out the real globals
-- table (the environment of every C function), setfenv could swap a
-- function's, and newproxy is the only way to a __gc metamethod, which runs
-- with hooks off (SCRIPT KILL could not stop it) at any later allocation.
-- (`debug` goes last, below.)
for _, name in ipairs({'dofile', 'loadfile', 'print', 'module', 'require', 'os', 'io', 'package',
                       'getfenv', 'setfenv', 'newproxy'}) do
  G[name] = nil
end

-- Redis's pcall (an error table with a string `err` comes back as that
-- string; a kill or a move to another shard cannot be caught), xpcall and
-- coroutine.resume (a kill inside a coroutine ends the script, not just the
-- coroutine) are C functions of `views.rs`, as are loadstring and load,
-- which take text only (`R.views_more`).
R.views_more(G, G.coroutine, errmsg)

-- The read-only views scripts see instead of the globals and library
-- tables: proxy -> its metatable, which holds the proxied table at
-- `__index` and, at `shown`, what getmetatable shows for it (Redis's
-- tables have none, but the globals' one, itself read-only). The builtins
-- that read or write tables raw (rawget, next, pairs, rawset,
-- setmetatable, getmetatable, table.insert, table.foreach) are C functions
-- of `views.rs` that look through these views (`R.views`).
local protected = setmetatable({}, {__mode = 'k'})
local function readonly_error() error('Attempt to modify a readonly table', 2) end

-- A read-only view of `t`, and its metatable.
local function readonly(t, shown)
  local m = {__index = t, __newindex = readonly_error, __metatable = false, shown = shown}
  local p = setmetatable({}, m)
  protected[p] = m
  return p, m
end

-- The error of a missing global (or, while a library loads, missing API).
local function nonexistent(_, k)
  error("Script attempted to access nonexistent global variable '" .. tostring(k) .. "'", 2)
end

local redis = R.redis
local math_ = G.math
math_.random = R.random
math_.randomseed = R.randomseed
G.redis = redis
G.cjson = R.cjson
G.cmsgpack = R.cmsgpack
G.bit = R.bit
G.struct = R.struct
G.tonumber = R.tonumber
R.views(protected, G, G.table)

-- Functions see `redis` without the EVAL-only entries, as in Redis where
-- they live in another Lua state: a copy taken before those are added.
local function_redis = {}
for k, v in pairs(redis) do function_redis[k] = v end
redis.breakpoint = R.breakpoint
redis.debug = R.debug
redis.replicate_commands = function() return true end

local redis_meta
for _, name in ipairs({'string', 'table', 'math', 'coroutine', 'redis', 'cjson', 'cmsgpack', 'bit', 'struct'}) do
  if type(G[name]) == 'table' then
    local view, meta = readonly(G[name])
    G[name] = view
    if name == 'redis' then redis_meta = meta end
  end
end
-- Method calls on strings go through the read-only view too.
local smt = getmetatable('')
smt.__index = G.string
smt.__metatable = readonly({__index = G.string})

setmetatable(G, {__index = nonexistent})
local proxy, proxy_meta = readonly(G, (readonly({__index = nonexistent})))
rawset(G, '_G', proxy)
setfenv_raw(0, proxy)

-- What library code sees while FUNCTION LOAD runs it, as in Redis: only
-- `redis` with register_function, log and the version constants. The
-- functions it defines see the full API when they run later.
local load_redis = {register_function = R.register_function, log = redis.log,
                    REDIS_VERSION = redis.REDIS_VERSION, REDIS_VERSION_NUM = redis.REDIS_VERSION_NUM}
for _, name in ipairs({'LOG_DEBUG', 'LOG_VERBOSE', 'LOG_NOTICE', 'LOG_WARNING'}) do
  load_redis[name] = redis[name]
end
setmetatable(load_redis, {__index = nonexistent})
local load_env = setmetatable({redis = readonly(load_redis)}, {__index = nonexistent})

-- Uncaught errors: the error table Redis builds, with the script line.
local function handler(e)
  local a = aborted()
  if a then
    e = {err = a}
  elseif type(e) == 'userdata' then
    local msg, coded = errmsg(e)
    if coded then e = {err = msg} else e = {err = 'ERR ' .. msg} end
  elseif type(e) ~= 'table' then
    e = {err = 'ERR ' .. tostring(e)}
  end
  for level = 2, 64 do
    local i = getinfo(level, 'Sl')
    if not i then break end
    if i.what ~= 'C' and i.what ~= 'tail' and i.source ~= '=sandbox' then
      e.source = i.source
      e.line = i.currentline
      break
    end
  end
  return e
end

-- Redis 7.0 gives EVAL scripts its error handler as a global (functions
-- have none: `Vm` removes it for them, as it does KEYS and ARGV).
rawset(G, '__redis__err__handler', handler)

-- The builtins removed above left dead keys in the globals' hash part,
-- which `next` still accepts (`next(_G, 'getfenv')`); Redis's table has
-- none. A resize drops dead keys: grow the table with keys no script can
-- name (fresh tables), then remove them again.
do
  local fill = {}
  for i = 1, 256 do
    fill[i] = {}
    rawset(G, fill[i], true)
  end
  for i = 1, 256 do rawset(G, fill[i], nil) end
end
-- Redis removes the debug library after setting up its sandbox, and its
-- dead key stays: `next(_G, 'debug')` works there.
rawset(G, 'debug', nil)

local function run(f)
  return xpcall(f, handler)
end
local function runf(f, keys, args)
  redis_meta.__index = function_redis
  local ok, e = xpcall(function() return f(keys, args) end, handler)
  redis_meta.__index = redis
  return ok, e
end
local function runl(f)
  proxy_meta.__index = load_env
  local ok, e = xpcall(f, handler)
  proxy_meta.__index = G
  return ok, e
end
return run, runf, runl, G, handler, protected
