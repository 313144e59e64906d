use super::*;
use crate::storage::hash::Limits as HashLimits;
use crate::storage::zset::Limits as ZLimits;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The DUMP payload body (type byte + value) moonshard writes for `v`.
fn body(v: &Value) -> Vec<u8> {
    let mut out = vec![type_of(v)];
    encode_value(v, &EncodeOptions::default(), &mut out);
    out
}

/// A payload redis-server 7.0 gave, without its 10-byte footer.
fn redis_body(hex: &str) -> Vec<u8> {
    let mut b = unhex(hex);
    b.truncate(b.len() - 10);
    b
}

fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

fn hash(pairs: &[(&str, &str)], limits: HashLimits) -> Value {
    let mut h = Hash::new();
    for (f, v) in pairs {
        h.set(f.as_bytes(), v.as_bytes(), limits);
    }
    Value::Hash(Box::new(h))
}

fn zset(items: &[(&str, f64)], limits: ZLimits) -> Value {
    let mut z = ZSet::for_first_member(items[0].0.as_bytes(), limits);
    for (m, s) in items {
        z.insert(m.as_bytes(), *s, limits);
    }
    Value::ZSet(Box::new(z))
}

fn redis_stream() -> Value {
    let mut s = Stream::new();
    s.append(StreamId::new(1, 1), &[b("a"), b("1"), b("b"), b("2")]);
    s.append(StreamId::new(1, 2), &[b("a"), b("3"), b("b"), b("4")]);
    s.append(StreamId::new(2, 0), &[b("c"), b("5")]);
    let mut g = Group::new(StreamId::new(1, 1), Some(1));
    let t = 1796525833029;
    g.pel.insert(StreamId::new(1, 1), Nack { delivery_time: t, delivery_count: 1, consumer: b("alice") });
    let mut c = Consumer { seen_time: t, pel: Default::default() };
    c.pel.insert(StreamId::new(1, 1));
    g.consumers.insert(b("alice"), c);
    s.groups.insert(b("g"), g);
    assert!(s.delete(StreamId::new(1, 2)));
    s.max_deleted_id = StreamId::new(1, 2);
    Value::Stream(Box::new(s))
}

#[test]
fn bytes_equal_to_redis() {
    let set_ints = Value::Set(Box::new(Set::Ints(vec![-70000, 1, 2, 3])));
    let mut t = Set::Table(Default::default());
    t.insert(b"hello", 0);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("si", set_ints, "0b18040000000400000090eefeff0100000002000000030000000a00a8b63c622cbf2c9c"),
        ("st", Value::Set(Box::new(t)), "02010568656c6c6f0a003498ac0ee7d43661"),
        (
            "zl",
            zset(&[("a", 1.0), ("b", 2.5), ("c", -3.0), ("d", f64::INFINITY)], ZLimits::default()),
            "1122220000000800816302dffd02816102010181620283322e350481640283696e6604ff0a00c54a2b13accba97f",
        ),
        (
            "zs",
            zset(&[("a", 1.0), ("b", 2.0), ("c", 3.0), ("d", 1.5)], ZLimits { entries: 2, value: 64 }),
            "050401630000000000000840016200000000000000400164000000000000f83f0161000000000000f03f0a0092a0bba818fd24a2",
        ),
        (
            "hl",
            hash(&[("f", "v"), ("n", "12")], HashLimits::default()),
            "1012120000000400816602817602816e020c01ff0a0001369481d35b8974",
        ),
        (
            "ht",
            hash(&[("x", "y")], HashLimits { max_entries: 0, max_value: 64 }),
            "0401017801790a002293e9fa46621f06",
        ),
        (
            "s",
            redis_stream(),
            "13011000000000000000010000000000000001c3383d123d000000190002010101020181610281620200200900002001401102050103600902030104200b401301dfff202b0781630205010601ff0202000101010203010167010101010000000000000001000000000000000145bb4849a2010000010105616c69636545bb4849a201000001000000000000000100000000000000010a00e81097e19522f5af",
        ),
        ("str", Value::Str("12345".into()), "00c139300a009d94ea2793fc08b9"),
        ("big", Value::Str("123456789012".into()), "000c3132333435363738393031320a00911001b1d116e7ac"),
        (
            "lzf",
            Value::Str(SmallBytes::from_slice(&[b'a'; 30])),
            "00c3091e016161e0110001616100000000000000000000",
        ),
    ];
    for (name, v, hex) in cases {
        let want = redis_body(hex);
        assert_eq!(body(&v), want, "{name}");
        // And what Redis wrote reads back as the same content.
        let back = decode_single(&unhex(hex), &DecodeOptions::default()).unwrap();
        assert_eq!(canon(&back), canon(&v), "{name}");
        // Loading applies this server's thresholds, as Redis does: the
        // skiplist and table written under lower limits load packed.
        let want_enc = match name {
            "zs" | "ht" => "listpack",
            _ => v.encoding(),
        };
        assert_eq!(back.encoding(), want_enc, "{name}");
    }
    // RPUSH l a b 1 2 300 70000 -5: one listpack node.
    let mut l = List::new();
    for e in ["a", "b", "1", "2", "300", "70000", "-5"] {
        l.push_back(e.as_bytes());
    }
    assert_eq!(
        body(&Value::List(Box::new(l))),
        b"\x12\x01\x02\x1c\x1c\x00\x00\x00\x07\x00\x81a\x02\x81b\x02\x01\x01\x02\x01\xc1,\x02\xf2p\x11\x01\x04\xdf\xfb\x02\xff"
    );
}

/// A description of a value's content that two equal values share.
fn canon(v: &Value) -> String {
    match v {
        Value::Str(s) => format!("str:{:?}", s.as_slice()),
        Value::List(l) => format!("list:{:?}", l.iter().collect::<Vec<_>>()),
        Value::Set(s) => {
            let mut m = s.members();
            m.sort();
            format!("set:{m:?}")
        }
        Value::ZSet(z) => format!("zset:{:?}", z.range(0, z.len(), false)),
        Value::Hash(h) => {
            let mut p = h.pairs();
            p.sort();
            format!("hash:{p:?}")
        }
        Value::Stream(s) => {
            let entries = s.range(StreamId::MIN, StreamId::MAX, false, 0);
            let groups: Vec<String> = s
                .groups
                .iter()
                .map(|(n, g)| {
                    let pel: Vec<_> = g
                        .pel
                        .iter()
                        .map(|(id, n)| (*id, n.delivery_time, n.delivery_count, n.consumer.clone()))
                        .collect();
                    let cons: Vec<_> =
                        g.consumers.iter().map(|(n, c)| (n.clone(), c.seen_time, c.pel.clone())).collect();
                    format!("{n:?}/{}/{:?}/{pel:?}/{cons:?}", g.last_id, g.entries_read)
                })
                .collect();
            format!(
                "stream:{entries:?} len={} last={} first={} maxdel={} added={} groups={groups:?}",
                s.len(),
                s.last_id,
                s.first_id,
                s.max_deleted_id,
                s.entries_added
            )
        }
    }
}

fn rand_elem(rng: &mut SmallRng, big: bool) -> Vec<u8> {
    match rng.gen_range(0..8) {
        0 => rng.gen_range(-1000i64..1000).to_string().into_bytes(),
        1 => rng.gen::<i64>().to_string().into_bytes(),
        2 => Vec::new(),
        3 => (0..rng.gen_range(1..40)).map(|_| rng.gen::<u8>()).collect(),
        4 if big => vec![b'r'; rng.gen_range(60..300)],
        5 if big => (0..rng.gen_range(64..5000)).map(|i| b'a' + (i % 13) as u8).collect(),
        _ => format!("e{}", rng.gen_range(0..100000)).into_bytes(),
    }
}

fn rand_value(rng: &mut SmallRng) -> Value {
    let big = rng.gen_bool(0.3);
    let n = if big { rng.gen_range(1..700) } else { rng.gen_range(1..20) };
    match rng.gen_range(0..6) {
        0 => Value::Str(SmallBytes::from_vec(rand_elem(rng, big))),
        1 => {
            let mut l = List::new();
            for _ in 0..n {
                l.push_back(&rand_elem(rng, big));
            }
            Value::List(Box::new(l))
        }
        2 => {
            let ints = rng.gen_bool(0.5);
            let mut s = Set::default();
            for _ in 0..n {
                let m =
                    if ints { rng.gen_range(-100000i64..100000).to_string().into_bytes() } else { rand_elem(rng, big) };
                if s.is_empty() {
                    s = Set::for_member(&m);
                }
                s.insert(&m, 512);
            }
            Value::Set(Box::new(s))
        }
        3 => {
            let lim = ZLimits::default();
            let first = rand_elem(rng, big);
            let mut z = ZSet::for_first_member(&first, lim);
            for i in 0..n {
                let m = if i == 0 { first.clone() } else { rand_elem(rng, big) };
                let score = match rng.gen_range(0..4) {
                    0 => rng.gen_range(-50i64..50) as f64,
                    1 => rng.gen::<f64>() * 1e6,
                    2 => f64::INFINITY,
                    _ => rng.gen_range(-3i64..3) as f64 / 7.0,
                };
                z.insert(&m, score, lim);
            }
            Value::ZSet(Box::new(z))
        }
        4 => {
            let mut h = Hash::new();
            for _ in 0..n {
                h.set(&rand_elem(rng, big), &rand_elem(rng, big), HashLimits::default());
            }
            Value::Hash(Box::new(h))
        }
        _ => {
            let mut s = Stream::new();
            let mut id = StreamId::new(rng.gen_range(0..1000), 0);
            for _ in 0..n {
                id = if rng.gen_bool(0.5) { StreamId::new(id.ms, id.seq + 1) } else { StreamId::new(id.ms + 7, 3) };
                let nf = rng.gen_range(1..4);
                let fields: Vec<Bytes> = (0..nf * 2)
                    .map(|i| {
                        if i % 2 == 0 {
                            Bytes::from(format!("f{}", rng.gen_range(0..3)))
                        } else {
                            Bytes::from(rand_elem(rng, false))
                        }
                    })
                    .collect();
                s.append(id, &fields);
            }
            let all: Vec<StreamId> = s.range(StreamId::MIN, StreamId::MAX, false, 0).into_iter().map(|e| e.0).collect();
            for id in all.iter().filter(|_| rng.gen_bool(0.2)) {
                if s.len() > 1 {
                    s.delete(*id);
                    s.max_deleted_id = s.max_deleted_id.max(*id);
                }
            }
            s.first_id = s.edge_id(false).unwrap_or(StreamId::MIN);
            for gi in 0..rng.gen_range(0..3) {
                let mut g = Group::new(all[rng.gen_range(0..all.len())], if gi == 1 { None } else { Some(gi) });
                for c in 0..rng.gen_range(0..3u8) {
                    let name = Bytes::from(vec![b'c', c]);
                    let mut cons = Consumer { seen_time: rng.gen(), pel: Default::default() };
                    let picked: Vec<StreamId> = all.iter().copied().filter(|_| rng.gen_bool(0.3)).collect();
                    for id in picked.iter() {
                        if let std::collections::btree_map::Entry::Vacant(e) = g.pel.entry(*id) {
                            e.insert(Nack {
                                delivery_time: rng.gen(),
                                delivery_count: rng.gen_range(0..5),
                                consumer: name.clone(),
                            });
                            cons.pel.insert(*id);
                        }
                    }
                    g.consumers.insert(name, cons);
                }
                s.groups.insert(Bytes::from(format!("g{gi}")), g);
            }
            Value::Stream(Box::new(s))
        }
    }
}

#[test]
fn random_values_round_trip() {
    let mut rng = SmallRng::seed_from_u64(0x5eed);
    for compression in [true, false] {
        let opts = EncodeOptions { compression, list_fill: -2, list_compress_depth: if compression { 1 } else { 0 } };
        for _ in 0..150 {
            let v = rand_value(&mut rng);
            let mut out = vec![type_of(&v)];
            encode_value(&v, &opts, &mut out);
            let back = decode_single(&out, &DecodeOptions::default()).unwrap();
            assert_eq!(canon(&back), canon(&v));
            assert_eq!(back.encoding(), v.encoding(), "{}", canon(&v));
            // Encoding what was decoded gives the same bytes.
            let mut again = vec![type_of(&back)];
            encode_value(&back, &opts, &mut again);
            assert_eq!(again, out, "{}", canon(&v));
        }
    }
}

#[test]
fn damaged_payloads_are_errors_not_panics() {
    let mut rng = SmallRng::seed_from_u64(99);
    let opts = DecodeOptions::default();
    for _ in 0..50 {
        let v = rand_value(&mut rng);
        let payload = body(&v);
        for cut in (0..payload.len()).step_by(payload.len() / 60 + 1) {
            let _ = decode_single(&payload[..cut], &opts);
        }
        for _ in 0..40 {
            let mut bad = payload.clone();
            let i = rng.gen_range(0..bad.len());
            bad[i] = rng.gen();
            let _ = decode_single(&bad, &opts);
        }
    }
}

#[test]
fn lying_lengths_allocate_nothing_big() {
    let opts = DecodeOptions::default();
    // A string claiming 4 GiB, an LZF string claiming 4 GiB from 3 bytes,
    // a list claiming 2^64 elements.
    let cases: Vec<Vec<u8>> = vec![
        vec![0, 0x80, 0xff, 0xff, 0xff, 0xff, 1, 2],
        vec![0, 0xC3, 3, 0x80, 0xff, 0xff, 0xff, 0xff, 1, 2, 3],
        vec![1, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, b'a'],
        vec![18, 0x81, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 1, b'a'],
    ];
    for c in cases {
        assert!(decode_single(&c, &opts).is_err());
    }
}

#[test]
fn old_encodings_decode() {
    let opts = DecodeOptions::default();
    // Type 1 (plain list), 2 (set), 3 (zset with text doubles), 4 (hash).
    let mut p = vec![types::LIST];
    put_len(&mut p, 2);
    put_string(&mut p, b"x", false);
    put_string(&mut p, b"17", false);
    assert_eq!(canon(&decode_single(&p, &opts).unwrap()), r#"list:[[120], [49, 55]]"#);
    let mut p = vec![types::ZSET];
    put_len(&mut p, 3);
    for (m, s) in [("a", &b"1.5"[..]), ("b", b"\xfe" as &[u8]), ("c", b"-2")] {
        put_string(&mut p, m.as_bytes(), false);
        if s.len() == 1 && s[0] >= 253 {
            p.push(s[0]);
        } else {
            p.push(s.len() as u8);
            p.extend_from_slice(s);
        }
    }
    let z = decode_single(&p, &opts).unwrap();
    assert_eq!(canon(&z), canon(&zset(&[("a", 1.5), ("b", f64::INFINITY), ("c", -2.0)], ZLimits::default())));
    // A zipmap hash (Redis 2.4).
    let mut p = vec![types::HASH_ZIPMAP];
    put_string(&mut p, b"\x02\x03foo\x03\x00bar\x05hello\x05\x02world!!\xff", false);
    assert_eq!(
        canon(&decode_single(&p, &opts).unwrap()),
        canon(&hash(&[("foo", "bar"), ("hello", "world")], HashLimits::default()))
    );
    // Empty collections are "empty keys".
    let mut p = vec![types::SET];
    put_len(&mut p, 0);
    assert!(decode_value(types::SET, &mut SliceInput::new(&p[1..]), &opts).unwrap().is_none());
    // Duplicates are refused.
    let mut p = vec![types::SET];
    put_len(&mut p, 2);
    put_string(&mut p, b"a", false);
    put_string(&mut p, b"a", false);
    assert!(decode_single(&p, &opts).is_err());
}

#[test]
fn quicklist_nodes_split_like_redis() {
    // 1000 elements of 100 bytes: Redis packs 74 per 8 KiB node.
    let mut l = List::new();
    for i in 0..1000 {
        l.push_back(format!("{i:0100}").as_bytes());
    }
    let mut out = Vec::new();
    encode_list(&l, &EncodeOptions { compression: false, ..Default::default() }, &mut out);
    let mut inp = SliceInput::new(&out);
    let nodes = read_len(&mut inp).unwrap();
    let mut counts = Vec::new();
    for _ in 0..nodes {
        assert_eq!(read_len(&mut inp).unwrap(), 2);
        let lp = read_string(&mut inp).unwrap();
        assert!(lp.len() <= 8192);
        counts.push(listpack::parse(&lp).unwrap().len());
    }
    assert_eq!(counts.iter().sum::<usize>(), 1000);
    assert!(counts[..counts.len() - 1].iter().all(|&c| c == counts[0]));
    // A fixed count per node with a positive fill.
    let mut out = Vec::new();
    encode_list(&l, &EncodeOptions { compression: false, list_fill: 10, list_compress_depth: 0 }, &mut out);
    assert_eq!(read_len(&mut SliceInput::new(&out)).unwrap(), 100);
}

/// Timing, not a check: `cargo test --release --lib codec_speed -- --ignored --nocapture`.
#[test]
#[ignore]
fn codec_speed() {
    use std::time::Instant;
    let mut l = List::new();
    for i in 0..1_000_000 {
        l.push_back(format!("element-{i}").as_bytes());
    }
    let v = Value::List(Box::new(l));
    for compression in [false, true] {
        let opts = EncodeOptions { compression, ..Default::default() };
        let t = Instant::now();
        let mut out = Vec::new();
        encode_value(&v, &opts, &mut out);
        let enc = t.elapsed();
        let t = Instant::now();
        let back =
            decode_value(types::LIST_QUICKLIST_2, &mut SliceInput::new(&out), &DecodeOptions::default()).unwrap();
        let dec = t.elapsed();
        assert!(back.is_some());
        let t = Instant::now();
        let crc = crate::persist::crc64::crc64(0, &out);
        let crc_t = t.elapsed();
        eprintln!("1M-element list, compression {compression}: {} bytes, encode {enc:?}, decode {dec:?}, crc64 {crc_t:?} ({crc:x})", out.len());
    }
    let data: Vec<u8> = (0..8000u32).flat_map(|i| format!("element-{i}").into_bytes()).collect();
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..100 {
        n += lzf::compress(&data, data.len() - 4).map_or(0, |c| c.len());
    }
    eprintln!("LZF: {} MB in {:?} ({n})", data.len() * 100 / 1_000_000, t.elapsed());
}

#[test]
fn a_stream_node_past_65535_entries_is_split() {
    let n = 70_000i64;
    let mut w = listpack::Writer::new();
    w.push_int(n);
    w.push_int(0);
    w.push_int(1);
    w.push(b"f");
    w.push_int(0);
    for i in 0..n {
        w.push_int(STREAM_ITEM_SAMEFIELDS);
        w.push_int(0);
        w.push_int(i);
        w.push(i.to_string().as_bytes());
        w.push_int(4);
    }
    let lp = w.finish();
    let mut p = vec![types::STREAM_LISTPACKS_2];
    put_len(&mut p, 1);
    put_string(&mut p, &raw_id(StreamId::new(5, 0)), false);
    put_string(&mut p, &lp, false);
    put_len(&mut p, n as u64);
    for id in [StreamId::new(5, n as u64 - 1), StreamId::new(5, 0), StreamId::MIN] {
        put_len(&mut p, id.ms);
        put_len(&mut p, id.seq);
    }
    put_len(&mut p, n as u64);
    put_len(&mut p, 0);
    let Value::Stream(s) = decode_single(&p, &DecodeOptions::default()).unwrap() else { panic!() };
    assert_eq!(s.len(), n as u64);
    assert_eq!(s.node_count(), 2);
    assert_eq!(s.get(StreamId::new(5, 65_000)), Some(vec![Bytes::from("f"), Bytes::from("65000")]));
    assert_eq!(s.range(StreamId::MIN, StreamId::MAX, false, 0).len(), n as usize);
}
