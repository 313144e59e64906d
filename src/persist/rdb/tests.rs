use super::*;
use crate::storage::{Hash, List, Set, SmallBytes, ZSet};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn empty_file_round_trips() {
    let f = empty(true, 123_456);
    assert!(f.starts_with(b"REDIS0010"));
    check_empty(&f).unwrap();
    let mut bad = f.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(check_empty(&bad).unwrap_err().starts_with("Wrong RDB checksum"));
    assert!(check_empty(&f[..f.len() - 3]).is_err());
    assert!(check_empty(b"NOTRDB").is_err());
    assert_eq!(check_empty(b"REDIS0011\xff").unwrap_err(), "Can't handle RDB format version 11");
}

#[test]
fn dump_footer_matches_redis() {
    // DUMP of "12345" and of a 30-byte string on redis-server 7.0.
    let p = dump_payload(&Value::Str("12345".into()), &EncodeOptions::default());
    assert_eq!(p, unhex("00c139300a009d94ea2793fc08b9"));
    assert!(verify_payload(&p));
    let mut bad = p.clone();
    bad[1] ^= 1;
    assert!(!verify_payload(&bad));
    let mut newer = p[..p.len() - 8].to_vec();
    let n = newer.len();
    newer[n - 2] = 11;
    let crc = crc64(0, &newer);
    newer.extend_from_slice(&crc.to_le_bytes());
    assert!(!verify_payload(&newer));
    assert!(!verify_payload(&p[..9]));
    let a = dump_payload(&Value::Str(SmallBytes::from_slice(&[b'a'; 30])), &EncodeOptions::default());
    assert_eq!(a[..13], unhex("00c3091e016161e01100016161"));
    assert!(verify_payload(&a));
    // FUNCTION DUMP of one library on redis-server 7.0.
    let code = b"#!lua name=mylib\nredis.register_function('f', function() return 1 end)";
    let fp = functions_payload([&code[..]], true);
    assert_eq!(
        fp,
        unhex("f5404623216c7561206e616d653d6d796c69620a72656469732e72656769737465725f66756e6374696f6e282766272c2066756e6374696f6e28292072657475726e203120656e64290a00c531defc4ff44599")
    );
    assert_eq!(parse_functions_payload(&fp).unwrap(), vec![code.to_vec()]);
    assert_eq!(parse_functions_payload(&p).unwrap_err(), "given type is not a function");
    assert_eq!(parse_functions_payload(b"xx").unwrap_err(), "DUMP payload version or checksum are wrong");
    assert!(parse_functions_payload(&functions_payload([], true)).unwrap().is_empty());
}

fn sample_values() -> Vec<Value> {
    let mut l = List::new();
    for i in 0..300 {
        l.push_back(format!("element-{i}").as_bytes());
    }
    let mut h = Hash::new();
    h.set(b"f", b"v", Default::default());
    let mut z = ZSet::default();
    z.insert(b"m", 1.5, Default::default());
    let mut s = Set::default();
    s.insert(b"7", 512);
    vec![
        Value::Str("hello".into()),
        Value::Str(SmallBytes::from_slice(&[b'x'; 1000])),
        Value::List(Box::new(l)),
        Value::Hash(Box::new(h)),
        Value::ZSet(Box::new(z)),
        Value::Set(Box::new(s)),
    ]
}

#[test]
fn files_round_trip() {
    for checksum in [true, false] {
        let opts = WriterOptions {
            checksum,
            used_memory: 1 << 40,
            repl: Some(ReplInfo { stream_db: 0, id: "a".repeat(40), offset: 12345 }),
            ..Default::default()
        };
        let mut w = RdbWriter::new(Vec::new(), &opts).unwrap();
        w.function(b"#!lua name=l\nredis.register_function('f', function() return 1 end)").unwrap();
        let values = sample_values();
        w.select_db(0, values.len() as u64, 1).unwrap();
        for (i, v) in values.iter().enumerate() {
            let access = match i % 3 {
                0 => Access::None,
                1 => Access::Idle(i as u64 * 10),
                _ => Access::Freq(i as u8),
            };
            w.entry(format!("k{i}").as_bytes(), v, (i == 2).then_some(1_900_000_000_000), access).unwrap();
        }
        w.select_db(3, 1, 0).unwrap();
        w.entry(b"other", &values[0], None, Access::None).unwrap();
        let file = w.finish().unwrap();
        if !checksum {
            assert_eq!(file[file.len() - 8..], [0; 8]);
        }
        let mut entries = Vec::new();
        let mut aux = Vec::new();
        let mut funcs = 0;
        for item in RdbReader::new(&file[..], ReaderOptions::default()).unwrap() {
            match item.unwrap() {
                Item::Entry(e) => entries.push(e),
                Item::Aux { key, value } => aux.push((key, value)),
                Item::Function(_) => funcs += 1,
                _ => {}
            }
        }
        assert_eq!(funcs, 1);
        let names: Vec<&[u8]> = aux.iter().map(|(k, _)| &k[..]).collect();
        assert_eq!(
            names,
            vec![
                &b"redis-ver"[..],
                b"redis-bits",
                b"ctime",
                b"used-mem",
                b"repl-stream-db",
                b"repl-id",
                b"repl-offset",
                b"aof-base"
            ]
        );
        assert_eq!(aux[3].1, Bytes::from((1u64 << 40).to_string()));
        assert_eq!(aux[5].1, Bytes::from("a".repeat(40)));
        assert_eq!(entries.len(), values.len() + 1);
        for (i, v) in values.iter().enumerate() {
            let e = &entries[i];
            assert_eq!(e.db, 0);
            assert_eq!(&e.key[..], format!("k{i}").as_bytes());
            assert_eq!(e.value.type_name(), v.type_name());
            assert_eq!(e.expire_ms, (i == 2).then_some(1_900_000_000_000i64));
            assert_eq!(e.idle_secs, (i % 3 == 1).then_some(i as u64 * 10));
            assert_eq!(e.freq, (i % 3 == 2).then_some(i as u8));
        }
        assert_eq!(entries[values.len()].db, 3);
        // Any damage is an error: a flipped byte (checksum, or structure),
        // a truncation.
        if checksum {
            for i in (9..file.len()).step_by(7) {
                let mut bad = file.clone();
                bad[i] ^= 0x21;
                let r: Result<Vec<_>, _> = RdbReader::new(&bad[..], ReaderOptions::default()).unwrap().collect();
                assert!(r.is_err(), "byte {i}");
            }
        }
        for cut in (0..file.len()).step_by(13) {
            let r = RdbReader::new(&file[..cut], ReaderOptions::default()).map(|r| r.collect::<Result<Vec<_>, _>>());
            assert!(!matches!(r, Ok(Ok(_))), "cut at {cut}");
        }
    }
}

#[test]
fn refuses_databases_beyond_the_configured_count() {
    let mut w = RdbWriter::new(Vec::new(), &WriterOptions::default()).unwrap();
    w.select_db(20, 1, 0).unwrap();
    w.entry(b"k", &Value::Str("v".into()), None, Access::None).unwrap();
    let file = w.finish().unwrap();
    let r: Result<Vec<_>, _> = RdbReader::new(&file[..], ReaderOptions::default()).unwrap().collect();
    assert!(r.unwrap_err().0.contains("more than 16 databases"));
}

#[test]
fn reads_the_old_function_opcode_and_expiry_in_seconds() {
    let mut f = b"REDIS0009".to_vec();
    f.push(OP_FUNCTION);
    for s in [&b"lib"[..], b"LUA"] {
        codec::put_string(&mut f, s, false);
    }
    codec::put_len(&mut f, 1);
    codec::put_string(&mut f, b"a description", false);
    codec::put_string(&mut f, b"return 1", false);
    f.push(OP_EXPIRETIME);
    f.extend_from_slice(&1_000_000i32.to_le_bytes());
    f.push(0);
    codec::put_string(&mut f, b"k", false);
    codec::put_string(&mut f, b"v", false);
    f.push(OP_EOF);
    let crc = crc64(0, &f);
    f.extend_from_slice(&crc.to_le_bytes());
    let items: Vec<Item> = RdbReader::new(&f[..], ReaderOptions::default()).unwrap().collect::<Result<_, _>>().unwrap();
    assert!(matches!(&items[0], Item::Function(c) if &c[..] == b"#!LUA name=lib\nreturn 1"));
    assert!(matches!(&items[1], Item::Entry(e) if e.expire_ms == Some(1_000_000_000i64)));
}

#[test]
fn entries_out_of_database_order() {
    let mut w = RdbWriter::new(Vec::new(), &WriterOptions::default()).unwrap();
    let v = Value::Str("v".into());
    let mut encoded = Vec::new();
    codec::encode_value(&v, &EncodeOptions::default(), &mut encoded);
    w.entry_at(0, b"a", &v, None, Access::None).unwrap();
    w.entry_at(3, b"b", &v, Some(5), Access::Idle(1)).unwrap();
    w.entry_encoded(0, b"c", codec::type_of(&v), &encoded, None, Access::Freq(9)).unwrap();
    w.entry_at(0, b"d", &v, None, Access::None).unwrap();
    let file = w.finish().unwrap();
    let got: Vec<(usize, Bytes, Option<i64>, Option<u8>)> = RdbReader::new(&file[..], ReaderOptions::default())
        .unwrap()
        .filter_map(|i| match i.unwrap() {
            Item::Entry(e) => Some((e.db, e.key, e.expire_ms, e.freq)),
            _ => None,
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (0, Bytes::from("a"), None, None),
            (3, Bytes::from("b"), Some(5), None),
            (0, Bytes::from("c"), None, Some(9)),
            (0, Bytes::from("d"), None, None)
        ]
    );
}
