// node-redis (the `redis` package, v5) against one server: each step's
// result as one JSON line. tests/node_clients.rs runs it against moonshard
// and against redis-server 7.0, in RESP2 and RESP3, and compares the lines.
// Usage: node node_redis_steps.mjs <port> <2|3>
import { createClient, RESP_TYPES } from 'redis';

const port = Number(process.argv[2]);
const resp = Number(process.argv[3] || 2);
const out = [];
const log = (name, v) => console.log(JSON.stringify([name, v], (k, x) => (typeof x === 'bigint' ? String(x) : x instanceof Map ? Object.fromEntries(x) : x instanceof Set ? [...x].sort() : x)));
async function step(name, f) {
  const t = new Promise((_, rej) => setTimeout(() => rej(new Error('TIMEOUT')), 3000));
  try { log(name, await Promise.race([f(), t])); } catch (e) { log(name, 'ERR ' + (e && e.message)); }
}

const c = createClient({ socket: { port, host: '127.0.0.1' }, RESP: resp });
c.on('error', () => {});
await c.connect();
await c.flushAll();
await step('set', () => c.set('{a}s', 'v', { EX: 100 }));
await step('setget', () => c.set('{a}s', 'w', { GET: true }));
await step('get', () => c.get('{a}s'));
await step('ttl', () => c.ttl('{a}s'));
await step('mset', () => c.mSet({ '{a}1': 'x', '{a}2': 'y' }));
await step('mget', () => c.mGet(['{a}1', '{a}2', '{a}3']));
await step('incr', () => c.incrBy('{a}n', 5));
await step('incrfloat', () => c.incrByFloat('{a}f', 1.5));
await step('hset', () => c.hSet('{a}h', { f1: 'a', f2: 'b' }));
await step('hgetall', () => c.hGetAll('{a}h'));
await step('hrandfield', () => c.hRandFieldCount('{a}h', -1).then(x => x.length));
await step('lpush', () => c.lPush('{a}l', ['1', '2', '3']));
await step('lrange', () => c.lRange('{a}l', 0, -1));
await step('lpos', () => c.lPos('{a}l', '2'));
await step('lmpop', () => c.lmPop(['{a}l', '{a}l2'], 'LEFT', { COUNT: 2 }));
await step('sadd', () => c.sAdd('{a}set', ['a', 'b', 'c']));
await step('smembers', () => c.sMembers('{a}set').then(x => x.sort()));
await step('smismember', () => c.smIsMember('{a}set', ['a', 'z']));
await step('zadd', () => c.zAdd('{a}z', [{ score: 1, value: 'one' }, { score: 2.5, value: 'two' }]));
await step('zrangews', () => c.zRangeWithScores('{a}z', 0, -1));
await step('zrangebyscore', () => c.zRange('{a}z', '-inf', '+inf', { BY: 'SCORE', LIMIT: { offset: 0, count: 1 } }));
await step('zscore', () => c.zScore('{a}z', 'two'));
await step('zmpop', () => c.zmPop(['{a}z'], 'MIN'));
await step('zrandmember', () => c.zRandMemberCountWithScores('{a}z', 1));
await step('zunion', () => c.zUnionWithScores(['{a}z', '{a}z']));
await step('xadd', () => c.xAdd('{a}x', '1-1', { f: 'v' }));
await step('xadd2', () => c.xAdd('{a}x', '2-1', { g: 'w' }));
await step('xrange', () => c.xRange('{a}x', '-', '+'));
await step('xgroup', () => c.xGroupCreate('{a}x', 'g', '0'));
await step('xreadgroup', () => c.xReadGroup('g', 'c1', { key: '{a}x', id: '>' }, { COUNT: 1 }));
await step('xpending', () => c.xPending('{a}x', 'g'));
await step('xpendingrange', () => c.xPendingRange('{a}x', 'g', '-', '+', 10).then(r => r.map(e => [e.id, e.consumer, e.deliveriesCounter])));
await step('xautoclaim', () => c.xAutoClaim('{a}x', 'g', 'c2', 0, '0-0'));
await step('xinfostream', () => c.xInfoStream('{a}x').then(r => ({ length: r.length, groups: r.groups, first: r['first-entry'] })));
await step('xinfogroups', () => c.xInfoGroups('{a}x'));
await step('xinfoconsumers', () => c.xInfoConsumers('{a}x', 'g').then(r => r.map(x => [x.name, x.pending])));
await step('geoadd', () => c.geoAdd('{a}g', [{ longitude: 13.361389, latitude: 38.115556, member: 'Palermo' }, { longitude: 15.087269, latitude: 37.502669, member: 'Catania' }]));
await step('geosearch', () => c.geoSearchWith('{a}g', { longitude: 15, latitude: 37 }, { radius: 200, unit: 'km' }, ['WITHDIST', 'WITHCOORD']));
await step('geodist', () => c.geoDist('{a}g', 'Palermo', 'Catania', 'km'));
await step('geopos', () => c.geoPos('{a}g', ['Palermo', 'nope']));
await step('setbit', () => c.setBit('{a}b', 7, 1));
await step('bitcount', () => c.bitCount('{a}b'));
await step('bitfield', () => c.bitField('{a}b', [{ operation: 'INCRBY', encoding: 'u8', offset: 0, increment: 300 }, { operation: 'GET', encoding: 'i4', offset: 4 }]));
await step('pfadd', () => c.pfAdd('{a}hll', ['a', 'b', 'c']));
await step('pfcount', () => c.pfCount('{a}hll'));
await step('type', () => Promise.all(['{a}s', '{a}h', '{a}l', '{a}set', '{a}z', '{a}x', '{a}hll'].map(k => c.type(k))));
await step('objectenc', () => Promise.all(['{a}s', '{a}h', '{a}set', '{a}z', '{a}n'].map(k => c.objectEncoding(k))));
await step('scan', async () => { const keys = []; for await (const ks of c.scanIterator({ MATCH: '{a}*', COUNT: 100 })) keys.push(...ks); return keys.sort(); });
await step('hscan', async () => { const e = []; for await (const x of c.hScanIterator('{a}h')) e.push(x); return e.flat(); });
await step('sort', () => c.sort('{a}set', { DIRECTION: 'DESC', ALPHA: true }));
await step('multi', () => c.multi().set('{a}m', '1').incr('{a}m').get('{a}m').exec());
await step('multierr', () => c.multi().set('{a}m', '1').lPush('{a}m', 'x').get('{a}m').exec());
await step('watch', async () => {
  const w = c.duplicate(); w.on('error', () => {}); await w.connect();
  await w.watch('{a}w');
  await c.set('{a}w', 'changed');
  const r = await w.multi().set('{a}w', 'mine').exec().catch(e => 'ERR ' + e.constructor.name);
  await w.close();
  return r;
});
await step('eval', () => c.eval('return {KEYS[1], ARGV[1], 1.5, false, {err="x"}}', { keys: ['{a}k'], arguments: ['arg'] }).catch(e => 'ERR ' + e.message));
await step('evalnum', () => c.eval("return redis.call('incr', KEYS[1])", { keys: ['{a}k2'] }));
await step('evalro', () => c.evalRo("return redis.call('get', KEYS[1])", { keys: ['{a}k2'] }));
await step('scriptload', async () => { const sha = await c.scriptLoad('return 42'); return [sha, await c.evalSha(sha), await c.scriptExists([sha, 'x'.repeat(40)])]; });
await step('function', async () => {
  await c.functionLoad("#!lua name=nrlib\nredis.register_function('nrf', function(keys, args) return args[1] end)\nredis.register_function{function_name='nrro', callback=function(keys) return redis.call('get', keys[1]) end, flags={'no-writes'}}", { REPLACE: true });
  return [await c.fCall('nrf', { arguments: ['hi'] }), await c.fCallRo('nrro', { keys: ['{a}s'] }), (await c.functionList()).map(l => [l.library_name, l.functions.map(f => [f.name, f.flags]).sort()])];
});
await step('blpop', async () => {
  const b = c.duplicate(); b.on('error', () => {}); await b.connect();
  const p = b.blPop('{a}bl', 2);
  await new Promise(r => setTimeout(r, 100));
  await c.rPush('{a}bl', 'x');
  const r = await p; await b.close(); return r;
});
await step('blmpop-timeout', async () => {
  const b = c.duplicate(); b.on('error', () => {}); await b.connect();
  const r = await b.blmPop(0.1, ['{a}none'], 'LEFT'); await b.close(); return r;
});
await step('pubsub', async () => {
  const s = c.duplicate(); s.on('error', () => {}); await s.connect();
  const got = [];
  await s.subscribe('ch', (m, ch) => got.push(['s', ch, m]));
  await s.pSubscribe('c*', (m, ch) => got.push(['p', ch, m]));
  await s.sSubscribe('{a}sch', (m, ch) => got.push(['ss', ch, m]));
  const n = [await c.publish('ch', 'hello'), await c.sPublish('{a}sch', 'sh')];
  await new Promise(r => setTimeout(r, 100));
  const ch = await c.pubSubChannels(); const nums = await c.pubSubNumSub(['ch']); const np = await c.pubSubNumPat();
  await s.unsubscribe('ch'); await s.pUnsubscribe('c*'); await s.sUnsubscribe('{a}sch');
  await s.close();
  return [n, got.sort(), ch, nums, np];
});
await step('clientinfo', async () => { const i = await c.clientInfo(); return [typeof i.id, i.db, i.flags, i.resp, i.name]; });
await step('clientlist', async () => (await c.clientList()).map(x => [x.db, x.flags, x.cmd]).length > 0);
await step('clientname', async () => { await c.clientSetName('nr'); return c.clientGetName(); });
await step('hello', () => c.hello().then(h => [h.server, h.version, h.proto, h.mode, h.role, h.modules]).catch(e => 'ERR ' + e.message));
await step('info', async () => { const i = await c.info('server'); return i.includes('redis_version:7.0'); });
await step('configget', async () => Object.entries(await c.configGet('maxmemory*')).sort());
await step('command', async () => { const i = await c.commandInfo(['get', 'nosuch', 'set']); return i.map(x => x && [x.name, x.arity, x.firstKeyIndex]); });
await step('commandcount', async () => (await c.commandCount()) > 200);
await step('commandgetkeys', () => c.commandGetKeys(['SET', '{a}k', 'v']));
await step('memusage', async () => typeof (await c.memoryUsage('{a}s')));
await step('dbsize', () => c.dbSize());
await step('lcs', () => c.mSet({ '{a}l1': 'ohmytext', '{a}l2': 'mynewtext' }).then(() => c.lcs('{a}l1', '{a}l2')));
await step('lcsidx', () => c.lcsIdxWithMatchLen('{a}l1', '{a}l2'));
await step('copy', () => c.copy('{a}s', '{a}s2', { REPLACE: true }));
await step('expiretime', async () => { await c.expireAt('{a}s2', 4102444800); return c.expireTime('{a}s2'); });
await step('objectfreq', () => c.objectFreq('{a}s').catch(e => 'ERR ' + e.message));
await step('wrongtype', () => c.lPush('{a}s', 'x').catch(e => 'ERR ' + e.message));
await step('unknown', () => c.sendCommand(['NOSUCHCMD', 'x']).catch(e => 'ERR ' + e.message));
await step('latency', () => c.latencyLatest());
await step('slowlog', async () => Array.isArray(await c.sendCommand(['SLOWLOG', 'GET', '1'])));
await step('time', async () => (await c.time()) instanceof Date);
await step('lolwut', async () => typeof (await c.sendCommand(['LOLWUT', 'VERSION', '5'])));
await step('flushdb', () => c.flushDb());
await c.close();
process.exit(0);

