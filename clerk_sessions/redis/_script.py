"""The shared quota's whole algorithm: one Lua script, run atomically by Redis.

Times are microseconds of Redis's own clock (TIME), so hosts with skewed clocks agree.
KEYS: the quota's pause key, then a (started, planned) pair of sorted sets per level:
the limiter's own, then its parents' (a share, then the quota it is carved from). ARGV:
op, member, window, op argument, then each level's request limit, then the newest start
the caller knows of per level.

  started: the starts that count (score: start time, moved to the answer's time by
           "finish"). The window guarantee rests on these alone: a start is counted
           only when every level's last window holds fewer than its limit.
  planned: the last `limit` slots handed out per level, so that waiters wake one by
           one at distinct times, in the order they came, instead of all at once. A
           request joins a level's queue only once the levels below it let it go, so
           a share's waiters never hold up the rest of the quota.
  lost:    a log that lacks a start the caller saw less than a window ago was lost
           (Redis flushed, restarted without persistence, evicted the key, or failed
           over to a replica that had not caught up). Starts it no longer counts may
           still be in the window, so the whole quota pauses for one window: no window
           then holds more than the limit.

Every op answers {wait, booked, lost, newest start per level}. For reserve and start,
wait 0 means the start was counted; else sleep `wait` microseconds, then call start
with argument `booked` (the levels whose queue the request holds a slot in). lost is 1
when this call found a lost log; the caller keeps the newest starts for its next call.
"""

__all__ = ["SCRIPT"]

SCRIPT = """
local op, member, per, arg = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local levels = (#KEYS - 1) / 2
local paused = tonumber(redis.call('GET', KEYS[1]) or 0)

local function keep(first, horizon)
  local ms = math.ceil((horizon - now + per) / 1000) + 1000
  for i = first, #KEYS, 2 do redis.call('PEXPIRE', KEYS[i], ms) end
end

local function start()
  local wait = 0
  for l = 1, levels do
    local started, limit = KEYS[2 * l], tonumber(ARGV[4 + l])
    redis.call('ZREMRANGEBYSCORE', started, '-inf', now - per)
    local count = redis.call('ZCARD', started)
    if count >= limit then
      local nth = redis.call('ZRANGE', started, count - limit, count - limit, 'WITHSCORES')
      wait = math.max(wait, tonumber(nth[2]) + per - now)
    end
  end
  if wait > 0 then return {wait, levels} end
  for l = 1, levels do redis.call('ZADD', KEYS[2 * l], now, member) end
  keep(2, now)
  return {0, levels}
end

local function book(from)
  local slot = math.max(now, paused)
  for l = from, levels do
    local planned, limit = KEYS[2 * l + 1], tonumber(ARGV[4 + l])
    local last = redis.call('ZRANGE', planned, -1, -1, 'WITHSCORES')[2]
    if last then slot = math.max(slot, tonumber(last)) end
    local count = redis.call('ZCARD', planned)
    if count >= limit then
      local nth = redis.call('ZRANGE', planned, count - limit, count - limit, 'WITHSCORES')
      slot = math.max(slot, tonumber(nth[2]) + per)
    end
    redis.call('ZADD', planned, slot, member)
    redis.call('ZREMRANGEBYRANK', planned, 0, -(limit + 1))
    redis.call('PEXPIRE', planned, math.ceil((slot - now + per) / 1000) + 1000)
    if slot > now then return {slot - now, l} end
  end
  return start()
end

local function newest(l)
  return tonumber(redis.call('ZRANGE', KEYS[2 * l], -1, -1, 'WITHSCORES')[2] or 0)
end

local function pause(micros)
  if now + micros > paused then
    paused = now + micros
    redis.call('SET', KEYS[1], paused, 'PX', math.ceil(micros / 1000) + 1)
  end
  -- Slots booked before the pause are void: rebuild the queues from what started, so
  -- that the waiters it holds are spread over the window again when it ends.
  for l = 1, levels do
    redis.call('DEL', KEYS[2 * l + 1])
    redis.call('ZUNIONSTORE', KEYS[2 * l + 1], 1, KEYS[2 * l])
  end
  keep(3, now)
end

-- A start is trimmed from a log only once a window old, and the log's key lives a
-- window past its newest start: a start seen less than a window ago is there, or lost.
local lost = 0
if op == 'reserve' or op == 'start' then
  for l = 1, levels do
    local known = tonumber(ARGV[4 + levels + l] or 0)
    if known > now - per and newest(l) < known then lost = 1 end
  end
  if lost == 1 then pause(per) end
end

local answer = {0, 0}
if op == 'reserve' then
  answer = book(1)
elseif op == 'start' then
  -- Paused after this request booked: book again, behind the pause.
  if paused > now then answer = book(1)
  elseif arg < levels then answer = book(arg + 1)
  else answer = start() end
elseif op == 'finish' then
  -- The queue moves too: slots booked from now on count from the answer, as the log
  -- does, so that their callers do not wake before the log lets them start.
  for i = 2, #KEYS do redis.call('ZADD', KEYS[i], 'XX', 'GT', now, member) end
  keep(2, now)
elseif op == 'pause' then
  pause(arg)
end
answer[3] = lost
for l = 1, levels do answer[3 + l] = newest(l) end
return answer
"""
