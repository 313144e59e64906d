local n = 0
for i = 1, #ARGV do
  redis.call("LPUSH", KEYS[1], ARGV[i])
  n = n + tonumber(ARGV[i])
end
redis.call("INCRBY", KEYS[2], n)
return n
