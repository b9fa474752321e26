-- Take the oldest pending job, start an attempt under the caller's token and lease it.
-- KEYS: queue leases pending_index running_index failed_index all_index expiry claim
-- ARGV: job_prefix token lease_ms worker instance ttl_ms claim_ttl_ms skip_limit finished_prefix finished_keep_ms cancelled_code cancelled_message
-- `claim` is the key of this token: sent again, the claim returns the job it took the first
-- time, never a second one. A pending job whose cancel was acknowledged while it ran (it came
-- back by a hand-back, a lease recovery or a deferral) is failed as cancelled here, never run.
-- Returns {outcome, job id, record, the IDs it failed as cancelled}: claimed; empty; busy
-- (went through skip_limit entries of expired or cancelled jobs: call again at once); or lost
-- (this token's attempt has ended already, its lease lapsed: nothing to run).
local earlier = redis.call('GET', claim)
if earlier then
  local job = job_prefix .. earlier
  local held = redis.call('HMGET', job, 'state', 'claim_token')
  if held[1] == 'running' and held[2] == token then
    return {'claimed', earlier, redis.call('HGETALL', job), {}}
  end
  return {'lost', '', {}, {}}
end
local now = now_ms()
local cancelled = {}
for _ = 1, tonumber(skip_limit) do
  local popped = redis.call('ZPOPMIN', queue)
  if #popped == 0 then return {'empty', '', {}, cancelled} end
  local id = popped[1]
  local job = job_prefix .. id
  local held = redis.call('HMGET', job, 'state', 'cancel_requested_at')
  if held[1] == 'pending' and held[2] then
    redis.call('ZREM', pending_index, id)
    finish_cancelled(job, id, now, ttl_ms, expiry, failed_index, finished_prefix,
                     finished_keep_ms, cancelled_code, cancelled_message)
    table.insert(cancelled, id)
  elseif held[1] == 'pending' then
    redis.call('HINCRBY', job, 'attempts', 1)
    redis.call('HSET', job, 'state', 'running', 'started_at', now, 'worker', worker,
               'instance', instance, 'claim_token', token)
    keep_until(job, id, now + tonumber(ttl_ms), expiry)
    redis.call('ZADD', leases, now + tonumber(lease_ms), id)
    redis.call('ZREM', pending_index, id)
    redis.call('ZADD', running_index, 0, id)
    redis.call('SET', claim, id, 'PX', claim_ttl_ms)
    return {'claimed', id, redis.call('HGETALL', job), cancelled}
  elseif not held[1] then
    -- Expired while queued: its record is gone; drop the entries that still name it.
    redis.call('ZREM', pending_index, id)
    redis.call('ZREM', all_index, id)
    redis.call('ZREM', expiry, id)
  end
end
return {'busy', '', {}, cancelled}
