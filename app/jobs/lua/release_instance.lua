-- From a gunicorn master at exit: hand back every job still running under it.
-- KEYS: leases queue running_index pending_index handback
-- ARGV: job_prefix instance handback_ttl_ms
-- `handback` lists what this instance handed back, so a re-sent call returns the same jobs.
for _, id in ipairs(redis.call('ZRANGE', leases, 0, -1)) do
  local job = job_prefix .. id
  local held = redis.call('HMGET', job, 'state', 'instance', 'claim_token')
  if held[1] == 'running' and held[2] == instance then
    redis.call('HSET', job, 'state', 'pending', 'released_token', held[3] or '')
    redis.call('ZREM', leases, id)
    enqueue(queue, job, id)
    redis.call('ZREM', running_index, id)
    redis.call('ZADD', pending_index, 0, id)
    redis.call('RPUSH', handback, id)
  end
end
if redis.call('EXISTS', handback) == 1 then redis.call('PEXPIRE', handback, handback_ttl_ms) end
return redis.call('LRANGE', handback, 0, -1)
