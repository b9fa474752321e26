-- Shared by every script (the loader puts it first): Redis's clock, and retention.

-- Now on Redis's own clock, in milliseconds: one clock for every lease and deadline.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Keep a job's keys until until_ms: its record, its expiry entry and its idempotency key.
local function keep_until(job, id, until_ms, expiry)
  redis.call('HSET', job, 'expires_at', until_ms)
  redis.call('PEXPIREAT', job, until_ms)
  redis.call('ZADD', expiry, until_ms, id)
  local idempotency = redis.call('HGET', job, 'idempotency_key')
  if idempotency and idempotency ~= '' then redis.call('PEXPIREAT', idempotency, until_ms) end
end

-- Count a job that finished (complete or failed) in its minute's counter, kept keep_ms: the
-- dashboard's "finished in the last hour" reads 60 of them, whatever the number of jobs.
local function count_finished(finished_prefix, keep_ms, state, now)
  local counter = finished_prefix .. state .. ':' .. math.floor(now / 60000)
  redis.call('INCR', counter)
  redis.call('PEXPIRE', counter, keep_ms)
end

-- Put a job (back) in the queue at its place in submission order: its created_at.
local function enqueue(queue, job, id)
  redis.call('ZADD', queue, redis.call('HGET', job, 'created_at') or 0, id)
end
