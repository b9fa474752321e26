-- Store a new pending job and queue it; safe to send again.
-- KEYS: job queue all_index pending_index expiry idempotency
-- ARGV: id ttl_ms fingerprint job_prefix ...
-- The rest of ARGV is the record's field/value pairs. `idempotency` is '' without a key.
-- Returns {outcome, job id, record}: created; resent (this very submit ran already, its
-- reply was lost); existing (another request with the same key and body); conflict.
if idempotency ~= '' then
  local earlier = redis.call('GET', idempotency)
  if earlier then
    local record = job_prefix .. earlier
    local stored = redis.call('HGET', record, 'idempotency_fingerprint')
    if stored then
      local outcome = 'conflict'
      if earlier == id then outcome = 'resent' elseif stored == fingerprint then outcome = 'existing' end
      return {outcome, earlier, redis.call('HGETALL', record)}
    end
  end
end
-- Job IDs are never reused, so a record under this one can only be this submit's own.
if redis.call('EXISTS', job) == 1 then
  return {'resent', id, redis.call('HGETALL', job)}
end
local now = now_ms()
redis.call('HSET', job, 'created_at', now, unpack(ARGV, REST))
if idempotency ~= '' then
  redis.call('HSET', job, 'idempotency_key', idempotency)
  redis.call('SET', idempotency, id)
end
keep_until(job, id, now + tonumber(ttl_ms), expiry)
redis.call('ZADD', queue, now, id)
redis.call('ZADD', all_index, 0, id)
redis.call('ZADD', pending_index, 0, id)
return {'created', id, redis.call('HGETALL', job)}
