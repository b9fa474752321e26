-- Take or keep the fleet's sweep lease: who holds it sweeps every shard this period.
-- KEYS: leader
-- ARGV: holder lease_ms
-- Returns 1 when `holder` holds the lease (taken now, or renewed), 0 when another does.
local current = redis.call('GET', leader)
if current == holder then
  redis.call('PEXPIRE', leader, lease_ms)
  return 1
end
if current then return 0 end
redis.call('SET', leader, holder, 'PX', lease_ms)
return 1
