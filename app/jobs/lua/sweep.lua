-- Recover lapsed leases and trim the entries of expired jobs, in one shard; at most `batch` of
-- each, so one call is short at any queue length.
-- KEYS: leases queue running_index pending_index failed_index complete_index all_index expiry
-- ARGV: job_prefix max_lost ttl_ms batch worker_lost_message finished_prefix finished_keep_ms
-- Returns {more, id, outcome, id, outcome, ...}: `more` is 1 when a batch was full (call again
-- at once); each recovered job is requeued or failed (worker_lost).
local now = now_ms()
local limit = tonumber(batch)
local out = {0}
local lapsed = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(lapsed) do
  local job = job_prefix .. id
  redis.call('ZREM', leases, id)
  if redis.call('HGET', job, 'state') == 'running' then
    redis.call('ZREM', running_index, id)
    if redis.call('HINCRBY', job, 'lost_attempts', 1) >= tonumber(max_lost) then
      redis.call('HSET', job, 'state', 'failed', 'finished_at', now,
                 'error_code', 'worker_lost', 'error_message', worker_lost_message)
      keep_until(job, id, now + tonumber(ttl_ms), expiry)
      redis.call('ZADD', failed_index, 0, id)
      count_finished(finished_prefix, finished_keep_ms, 'failed', now)
      table.insert(out, id)
      table.insert(out, 'failed')
    else
      redis.call('HSET', job, 'state', 'pending')
      enqueue(queue, job, id)
      redis.call('ZADD', pending_index, 0, id)
      table.insert(out, id)
      table.insert(out, 'requeued')
    end
  end
end
local gone = redis.call('ZRANGEBYSCORE', expiry, '-inf', now, 'LIMIT', 0, limit)
for _, id in ipairs(gone) do
  local job = job_prefix .. id
  local kept = redis.call('HGET', job, 'expires_at')
  if kept then
    redis.call('ZADD', expiry, kept, id)  -- its retention was extended since
  else
    for _, key in ipairs({queue, leases, running_index, pending_index, failed_index,
                          complete_index, all_index, expiry}) do
      redis.call('ZREM', key, id)
    end
  end
end
if #lapsed == limit or #gone == limit then out[1] = 1 end
return out
