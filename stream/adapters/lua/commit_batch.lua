-- Apply one ingest batch of one partition atomically (tidecast.stream.redis_store.RedisWindowStore.commit).
-- Every key shares the partition's hash tag (ARGV[1] = "<prefix>{<partition>}:"), so this runs on Redis Cluster.
-- ARGV[2] = topic, ARGV[3] = offset the batch was built on ('' for none), ARGV[4] = the batch as JSON:
--   {"next": int, "max_ts": int|null, "trim": int|null, "counts": [ingested, duplicates, late, invalid, dlq],
--    "rows": [[bucket, series, units, orders, revenue, returns, views, add_to_cart, promo_orders], ...],
--    "forget": [bucket, ...], "seen": [[bucket, [event_id, ...]], ...]}
-- redis.call formats Lua numbers exactly (shortest round trip), so float sums lose nothing on the way.
-- Returns 1 when applied, 0 when fenced: the stored offset is not the one the batch was built on.
local p, topic = ARGV[1], ARGV[2]
local off_key = KEYS[1]
local current = redis.call('HGET', off_key, topic)
if (current or '') ~= ARGV[3] then return 0 end
local batch = cjson.decode(ARGV[4])

local counters = {'ingested', 'duplicates', 'late', 'invalid', 'dlq'}
local stats_key = p .. 'stats:' .. topic
for k = 1, 5 do
  local v = batch.counts[k]
  if v ~= 0 then redis.call('HINCRBY', stats_key, counters[k], v) end
end

local metrics = {'units', 'orders', 'revenue', 'returns', 'views', 'add_to_cart', 'promo_orders'}
local known = {}
for _, row in ipairs(batch.rows) do
  local b = row[1]
  if not known[b] then
    redis.call('ZADD', p .. 'buckets', b, b)
    known[b] = p .. 'w:' .. b .. ':'
  end
  local prefix, series = known[b], row[2]
  for m = 1, 7 do
    local v = row[m + 2]
    if v ~= 0 then redis.call('HINCRBYFLOAT', prefix .. metrics[m], series, v) end
  end
end

for _, b in ipairs(batch.forget) do
  redis.call('DEL', p .. 'seen:' .. topic .. ':' .. b)
end
for _, group in ipairs(batch.seen) do
  local key, ids = p .. 'seen:' .. topic .. ':' .. group[1], group[2]
  local k, j = #ids, 1
  while j <= k do
    local last = math.min(k, j + 3999)
    redis.call('SADD', key, unpack(ids, j, last))
    j = last + 1
  end
end

if batch.trim ~= cjson.null then
  local old = redis.call('ZRANGEBYSCORE', p .. 'buckets', '-inf', '(' .. batch.trim)
  for _, b in ipairs(old) do
    for m = 1, 7 do redis.call('DEL', p .. 'w:' .. b .. ':' .. metrics[m]) end
  end
  if #old > 0 then redis.call('ZREMRANGEBYSCORE', p .. 'buckets', '-inf', '(' .. batch.trim) end
end

redis.call('HSET', off_key, topic, batch.next)
if batch.max_ts ~= cjson.null then redis.call('HSET', p .. 'maxts', topic, batch.max_ts) end
return 1
