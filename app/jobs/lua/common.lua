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

-- Count a job that finished (complete or failed) in its state's hash of per-minute counts: the
-- dashboard's "finished in the last hour" sums its fields of the last 60 minutes. A new minute
-- drops the fields past the hour (once a minute, at most 61 fields), and an idle hash expires.
local function count_finished(finished_prefix, keep_ms, state, now)
  local counts = finished_prefix .. state
  local minute = math.floor(now / 60000)
  if redis.call('HINCRBY', counts, minute, 1) == 1 then
    for _, field in ipairs(redis.call('HKEYS', counts)) do
      if tonumber(field) < minute - 59 then redis.call('HDEL', counts, field) end
    end
  end
  redis.call('PEXPIRE', counts, keep_ms)
end

-- Fail a job that was asked to stop (POST /jobs/<id>/cancel), now: failed with the cancel's
-- code, kept for the retention, listed and counted as failed. The caller takes it off the queue.
local function finish_cancelled(job, id, now, ttl_ms, expiry, failed_index, finished_prefix,
                                finished_keep_ms, code, message)
  redis.call('HSET', job, 'state', 'failed', 'finished_at', now, 'error_code', code,
             'error_message', message)
  keep_until(job, id, now + tonumber(ttl_ms), expiry)
  redis.call('ZADD', failed_index, 0, id)
  count_finished(finished_prefix, finished_keep_ms, 'failed', now)
end

-- Put a job (back) in the queue at its place in submission order: its created_at.
local function enqueue(queue, job, id)
  redis.call('ZADD', queue, redis.call('HGET', job, 'created_at') or 0, id)
end
