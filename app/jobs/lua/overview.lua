-- The dashboard's overview, reading only: what it costs does not grow with the number of jobs.
-- KEYS: queue leases complete_counts failed_counts
-- ARGV: job_prefix worker_limit
-- Returns {Redis's clock (s), pending, running, the per-minute counts of complete and of failed
-- jobs (HGETALL, summed by the caller), workers}: workers holds the `worker` of the running
-- jobs whose leases end first, at most worker_limit. Lua does no more than that loop: under
-- Redis's script hook each Lua step costs, so the sums are left to the caller.
local workers = {}
for _, id in ipairs(redis.call('ZRANGE', leases, 0, tonumber(worker_limit) - 1)) do
  workers[#workers + 1] = redis.call('HGET', job_prefix .. id, 'worker') or ''
end
return {redis.call('TIME')[1], redis.call('ZCARD', queue), redis.call('ZCARD', leases),
        redis.call('HGETALL', complete_counts), redis.call('HGETALL', failed_counts), workers}
