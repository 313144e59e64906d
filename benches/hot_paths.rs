//! Micro-benchmarks of moonshard's hot paths: RESP request parsing, reply
//! encoding, slot hashing and keyspace access. Run with `cargo bench`
//! (`cargo bench -- slot` for one group); see docs/PERFORMANCE.md.

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use moonshard::protocol::{Reply, RequestParser};
use moonshard::shard::slot::key_slot;
use moonshard::storage::{Db, Value};

/// A pipeline of `n` SETs as redis-benchmark sends them.
fn set_pipeline(n: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..n {
        let key = format!("key:{i:012}");
        out.extend_from_slice(
            format!("*3\r\n$3\r\nSET\r\n${}\r\n{key}\r\n$16\r\nxxxxxxxxxxxxxxxx\r\n", key.len()).as_bytes(),
        );
    }
    out
}

fn resp_parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("resp_parse");
    for n in [1usize, 16, 1000] {
        let input = set_pipeline(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("set_x{n}"), |b| {
            b.iter_batched(
                || BytesMut::from(&input[..]),
                |mut buf| {
                    let mut parser = RequestParser::new();
                    let mut count = 0;
                    while let Ok(Some(args)) = parser.parse(&mut buf, 512 * 1024 * 1024, true) {
                        count += args.len();
                    }
                    black_box(count)
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn reply_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("reply_encode");
    let cases = [
        ("ok", Reply::ok()),
        ("int", Reply::Int(1_234_567)),
        ("bulk16", Reply::Bulk(Bytes::from_static(b"xxxxxxxxxxxxxxxx"))),
        ("array100", Reply::Array((0..100).map(|i| Reply::Bulk(Bytes::from(format!("element:{i}")))).collect())),
        ("double", Reply::Double(1234.5678)),
    ];
    for (name, reply) in &cases {
        for proto in [2u8, 3] {
            let mut out = Vec::with_capacity(4096);
            g.bench_function(format!("{name}_resp{proto}"), |b| {
                b.iter(|| {
                    out.clear();
                    black_box(reply).encode(proto, &mut out);
                    black_box(out.len())
                })
            });
        }
    }
    g.finish();
}

fn slot_hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("key_slot");
    for key in [
        &b"key:000000001234"[..],
        b"{user1000}.following",
        b"{t0012345}list",
        b"a-rather-long-key-name-without-any-hash-tag-0001",
    ] {
        g.bench_function(String::from_utf8_lossy(key).into_owned(), |b| b.iter(|| key_slot(black_box(key))));
    }
    g.finish();
}

fn keyspace(c: &mut Criterion) {
    const KEYS: u64 = 100_000;
    let mut g = c.benchmark_group("keyspace");
    let mut db = Db::new();
    let keys: Vec<Bytes> = (0..KEYS).map(|i| Bytes::from(format!("key:{i:012}"))).collect();
    for k in &keys {
        db.set(k, Value::Str(b"xxxxxxxxxxxxxxxx"[..].into()));
    }
    let value = &b"yyyyyyyyyyyyyyyy"[..];
    // A fixed stride walks the key space without a random number per iteration.
    let mut i = 0usize;
    g.bench_function("get_hit_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            black_box(db.get(&keys[i], 0).is_some())
        })
    });
    g.bench_function("get_miss_100k", |b| b.iter(|| black_box(db.get(b"no-such-key", 0).is_some())));
    g.bench_function("set_overwrite_100k", |b| {
        b.iter(|| {
            i = (i + 7919) % keys.len();
            // As SET does: the value is copied out of the request.
            db.set(&keys[i], Value::Str(value.into()));
        })
    });
    g.finish();
}

// TODO(scripting): "evalsha_seed_in_process": one EVALSHA of the seed script
// (shared/brief/measuring.md) on a shard in-process, once the scripting module
// exposes a way to run a loaded script against a shard without a connection.

/// cjson.encode/decode of a small job-like table (the shape BullMQ scripts
/// handle), called from Lua as scripts call them; measures the library,
/// not the script cache or routing.
fn cjson(c: &mut Criterion) {
    let mut g = c.benchmark_group("cjson");
    let lua = mlua::Lua::new();
    let table = moonshard::scripting::libs::cjson::table(&lua).expect("cjson table");
    lua.globals().set("cjson", table).expect("set cjson");
    let setup = r#"
        value = {name = 'job', data = {x = 1, y = {1, 2, 3}, s = 'a/b "q"'},
                 opts = {attempts = 3, backoff = {type = 'fixed', delay = 100}}, ts = 1712345678901.5}
        text = cjson.encode(value)
    "#;
    lua.load(setup).exec().expect("setup");
    let encode: mlua::Function = lua.load("return function() return cjson.encode(value) end").eval().expect("encode");
    let decode: mlua::Function = lua.load("return function() return cjson.decode(text) end").eval().expect("decode");
    g.bench_function("cjson_encode", |b| b.iter(|| black_box(encode.call::<mlua::String>(()).expect("encode"))));
    g.bench_function("cjson_decode", |b| b.iter(|| black_box(decode.call::<mlua::Table>(()).expect("decode"))));
    g.finish();
}

criterion_group!(benches, resp_parse, reply_encode, slot_hashing, keyspace, cjson);
criterion_main!(benches);
