-- Hand a running attempt back: the job is pending again, at its place in the queue.
-- KEYS: job leases queue running_index pending_index
-- ARGV: id token
-- Returns applied; already_applied (a re-sent call); or superseded.
local held = redis.call('HMGET', job, 'state', 'claim_token', 'released_token')
if held[1] == 'running' and held[2] == token then
  redis.call('HSET', job, 'state', 'pending', 'released_token', token)
  redis.call('ZREM', leases, id)
  enqueue(queue, job, id)
  redis.call('ZREM', running_index, id)
  redis.call('ZADD', pending_index, 0, id)
  return 'applied'
end
if held[3] == token then return 'already_applied' end
return 'superseded'
