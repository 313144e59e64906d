-- Two small writes, for the cost of a standalone-mode script's undo
-- journal (README, "Keyspace modes"): run with benches/callgrind.sh.
redis.call("SET", KEYS[1], ARGV[1])
redis.call("INCRBY", KEYS[2], ARGV[2])
return 1
