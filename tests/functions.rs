//! Redis 7 functions: FUNCTION LOAD/DELETE/FLUSH/LIST/DUMP/RESTORE/STATS/KILL,
//! FCALL/FCALL_RO, register_function forms, libraries in every shard's VM.

mod common;

use common::{moonshard, run_str, Diff};
use redis::Value;

const LIB: &str = "#!lua name=lib\n\
redis.register_function('echo1', function(keys, args) return args[1] end)\n\
redis.register_function('setk', function(keys, args) return redis.call('set', keys[1], args[1]) end)\n\
redis.register_function{function_name='getk', callback=function(keys, args) return redis.call('get', keys[1]) end, flags={'no-writes'}, description='reads'}\n\
redis.register_function('oops', function(keys, args) return redis.call('nosuch') end)\n";

#[test]
fn load_call_list_delete() {
    let srv = moonshard(&["--shards", "4"]);
    let mut c = srv.client();
    assert_eq!(run_str(&mut c, &["FUNCTION", "LOAD", LIB]), Ok(Value::BulkString(b"lib".to_vec())));
    assert_eq!(run_str(&mut c, &["FUNCTION", "LOAD", LIB]).unwrap_err(), "ERR Library 'lib' already exists");
    assert_eq!(run_str(&mut c, &["FUNCTION", "LOAD", "REPLACE", LIB]), Ok(Value::BulkString(b"lib".to_vec())));
    assert_eq!(run_str(&mut c, &["FCALL", "echo1", "0", "hi"]), Ok(Value::BulkString(b"hi".to_vec())));
    // Functions route by keys like EVAL, on every shard.
    for i in 0..12 {
        let k = format!("key{i}");
        assert_eq!(run_str(&mut c, &["FCALL", "setk", "1", &k, "v"]), Ok(Value::Okay));
        assert_eq!(run_str(&mut c, &["FCALL_RO", "getk", "1", &k]), Ok(Value::BulkString(b"v".to_vec())));
    }
    assert_eq!(
        run_str(&mut c, &["FCALL", "setk", "2", "a", "b", "v"]).unwrap_err(),
        "CROSSSLOT Keys in request don't hash to the same slot"
    );
    assert_eq!(
        run_str(&mut c, &["FCALL_RO", "setk", "1", "a", "v"]).unwrap_err(),
        "ERR Can not execute a script with write flag using *_ro command."
    );
    assert_eq!(run_str(&mut c, &["FCALL", "nosuch", "0"]).unwrap_err(), "ERR Function not found");
    assert_eq!(
        run_str(&mut c, &["FCALL", "oops", "0"]).unwrap_err(),
        "ERR Unknown Redis command called from script script: oops, on @user_function:5."
    );
    let list = run_str(&mut c, &["FUNCTION", "LIST", "WITHCODE"]).unwrap();
    let text = format!("{list:?}");
    assert!(
        text.contains("getk") && text.contains("reads") && text.contains("no-writes") && text.contains("library_code"),
        "{text}"
    );
    assert_eq!(run_str(&mut c, &["FUNCTION", "LIST", "LIBRARYNAME", "nomatch*"]), Ok(Value::Array(vec![])));
    // DUMP / RESTORE round trip.
    let dump = match run_str(&mut c, &["FUNCTION", "DUMP"]).unwrap() {
        Value::BulkString(b) => b,
        other => panic!("{other:?}"),
    };
    assert_eq!(run_str(&mut c, &["FUNCTION", "DELETE", "lib"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut c, &["FUNCTION", "DELETE", "lib"]).unwrap_err(), "ERR Library not found");
    assert_eq!(run_str(&mut c, &["FCALL", "echo1", "0", "x"]).unwrap_err(), "ERR Function not found");
    assert_eq!(common::run(&mut c, &[b"FUNCTION", b"RESTORE", &dump]), Ok(Value::Okay));
    assert_eq!(run_str(&mut c, &["FCALL", "echo1", "0", "back"]), Ok(Value::BulkString(b"back".to_vec())));
    // RESTORE words it without quotes, as Redis does.
    assert_eq!(common::run(&mut c, &[b"FUNCTION", b"RESTORE", &dump]).unwrap_err(), "ERR Library lib already exists");
    assert_eq!(common::run(&mut c, &[b"FUNCTION", b"RESTORE", &dump, b"REPLACE"]), Ok(Value::Okay));
    assert_eq!(
        run_str(&mut c, &["FUNCTION", "RESTORE", "garbage"]).unwrap_err(),
        "ERR DUMP payload version or checksum are wrong"
    );
    let stats = format!("{:?}", run_str(&mut c, &["FUNCTION", "STATS"]).unwrap());
    assert!(stats.contains("libraries_count") && stats.contains("functions_count"), "{stats}");
    assert_eq!(run_str(&mut c, &["FUNCTION", "FLUSH"]), Ok(Value::Okay));
    assert_eq!(run_str(&mut c, &["FCALL", "echo1", "0", "x"]).unwrap_err(), "ERR Function not found");
    assert_eq!(run_str(&mut c, &["FUNCTION", "KILL"]).unwrap_err(), "NOTBUSY No scripts in execution right now.");
}

#[test]
fn load_errors_match_redis() {
    let Some(mut d) = Diff::start(&["--shards", "2"]) else {
        return;
    };
    let bad = [
        "return 1",
        "#!lua\nlocal x = 1",
        "#!lua name=lib3 foo=bar\nlocal x = 1",
        "#!lua name=lib2\nlocal x = 1",
        "#!lua name=l4\nredis.call('ping')",
        "#!lua name=l4\nredis.register_function('f9', function() return 1 end)\nx = 1",
        "#!lua name=l4\nredis.register_function('f9', function() return 1 end) return y",
        "#!lua name=l4\nredis.register_function('f 9', function() return 1 end)",
        "#!lua name=l4\nredis.register_function{function_name='f9', callback=function() return 1 end, flags={'bad'}}",
        "#!lua name=l4\nredis.register_function('f9')",
        "#!lua name=l4\nredis.register_function('f9', function() return 1 end)\nredis.register_function('f9', function() return 1 end)",
    ];
    for code in bad {
        let _ = d.check(&["FUNCTION", "LOAD", code]);
    }
    let _ = d.check(&["FUNCTION", "LOAD", LIB]);
    let _ =
        d.check(&["FUNCTION", "LOAD", "#!lua name=other\nredis.register_function('echo1', function() return 1 end)"]);
    let _ = d.check(&["FCALL", "echo1", "0", "x"]);
    let _ = d.check(&["FCALL", "getk", "1", "k"]);
    let _ = d.check(&["FCALL", "oops", "0"]);
    let _ = d.check(&["FCALL_RO", "setk", "1", "k", "v"]);
    let _ = d.check(&["FCALL", "nosuch", "0"]);
    let _ = d.check(&["FCALL", "echo1", "-1"]);
    let _ = d.check(&["FUNCTION", "DELETE", "nosuch"]);
    let _ = d.check(&["FUNCTION", "FLUSH", "bad"]);
    let _ = d.check(&["FUNCTION", "RESTORE", "garbage"]);
    let _ = d.check(&["FUNCTION", "KILL"]);
}
