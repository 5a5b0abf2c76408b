"""The Lua scripts of the Redis budget meter (budget/redis_meter.py), one atomic step each."""

# KEYS: hash and zset per budget-period in the batch (hash at 2k-1, zset at 2k).
# ARGV[1] lease lifetime (ms), ARGV[2] lease name, ARGV[3] the batch as JSON, ARGV[4] LEASE_AHEAD:
#   {"g": [[[k, need, want, cap], ...], ...],      room for one request each, all or none
#    "p": [[k, seq, cost, returned, blocking], ...]} reports, each applied once (by seq)
# Returns JSON {"g": [...], "p": [...]}: per grant [1, [granted, ...], [[spent, held], ...]],
# [0, j, spent] budget j has no room, [-1, j, needed] its ceiling must be raised first,
# [-2, j] not loaded; per report [spent, held, ceiling, lost (1: the lease had expired)].
# Time is the Redis server's, so processes' clocks cannot expire each other's leases.
BATCH = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local life, lease = tonumber(ARGV[1]), ARGV[2]
local batch = cjson.decode(ARGV[3])
local function num(h, f) return tonumber(redis.call('HGET', h, f) or '0') end
local purged = {}
local function purge(k)
  if purged[k] then return end
  purged[k] = true
  local h, z = KEYS[2 * k - 1], KEYS[2 * k]
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', now)
  if #expired == 0 then return end
  local gone = 0
  for _, name in ipairs(expired) do
    gone = gone + num(h, 'h:' .. name)
    redis.call('HDEL', h, 'h:' .. name, 's:' .. name)
  end
  redis.call('ZREMRANGEBYSCORE', z, '-inf', now)
  -- a dead process may have spent all of it: count it spent, never free it
  redis.call('HINCRBY', h, 'held', 0 - gone)  -- never -0: not an integer to Redis
  redis.call('HINCRBY', h, 'spent', gone)
end
local out = {g = {}, p = {}}
for i, op in ipairs(batch.p) do
  local k, seq, cost, back, blocking = op[1], op[2], op[3], op[4], op[5]
  local h, z = KEYS[2 * k - 1], KEYS[2 * k]
  purge(k)
  local lost = 0
  if seq > num(h, 's:' .. lease) then  -- not applied before (a reply lost on the way back)
    local mine = redis.call('HGET', h, 'h:' .. lease)
    if mine then
      local left = tonumber(mine) - cost - back
      redis.call('HINCRBY', h, 'held', 0 - (cost + back))
      redis.call('HINCRBY', h, 'spent', cost)
      if left > 0 then
        redis.call('HSET', h, 'h:' .. lease, left, 's:' .. lease, seq)
        redis.call('ZADD', z, now + life, lease)
      else
        -- the sequence stays: a retry of this report must still be recognised
        redis.call('HDEL', h, 'h:' .. lease)
        redis.call('HSET', h, 's:' .. lease, seq)
        redis.call('ZREM', z, lease)
      end
    elseif blocking == 1 then
      lost = 1  -- expired and already counted as spent in full
    else
      redis.call('HINCRBY', h, 'spent', cost)  -- an alert-only budget holds no room
    end
  end
  out.p[i] = {num(h, 'spent'), num(h, 'held'), num(h, 'ceiling'), lost}
end
for i, asks in ipairs(batch.g) do
  local result, granted, state = nil, {}, {}
  for j, ask in ipairs(asks) do
    local k, need, want, cap = ask[1], ask[2], ask[3], ask[4]
    local h = KEYS[2 * k - 1]
    if redis.call('EXISTS', h) == 0 then result = {-2, j} break end
    purge(k)
    local spent, held, ceiling = num(h, 'spent'), num(h, 'held'), num(h, 'ceiling')
    local free = cap - spent - held
    if need > free then result = {0, j, spent} break end
    local take = need
    if free >= want * tonumber(ARGV[4]) then take = want end
    if spent + held + take > ceiling then result = {-1, j, spent + held + take} break end
    granted[j] = take
    state[j] = {spent, held + take}
  end
  if not result then
    for j, ask in ipairs(asks) do
      local h, z = KEYS[2 * ask[1] - 1], KEYS[2 * ask[1]]
      redis.call('HINCRBY', h, 'held', granted[j])
      redis.call('HINCRBY', h, 'h:' .. lease, granted[j])
      redis.call('ZADD', z, now + life, lease)
    end
    result = {1, granted, state}
  end
  out.g[i] = result
end
return cjson.encode(out)
"""

# KEYS[1] hash; ARGV spent=ceiling start, ttl seconds: only if no process seeded it first
SEED = """
if redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1], 'held', 0, 'ceiling', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

# KEYS[1] hash; ARGV[1] new ceiling (only ever raised)
RAISE = """
local cur = redis.call('HGET', KEYS[1], 'ceiling')
if cur and tonumber(cur) < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'ceiling', ARGV[1]) end
return 1
"""
