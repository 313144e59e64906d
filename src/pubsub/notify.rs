//! Keyspace notifications (`notify-keyspace-events`).
//!
//! Handlers report every modification through `Ctx::written(key, event)`
//! with Redis's event name; the class a notification belongs to (the
//! letters of `notify-keyspace-events`) is derived from that name here.

use crate::server::Server;
use bytes::{BufMut, Bytes, BytesMut};

pub use crate::config::keyspace_events::*;

/// The class of a Redis event name.
pub fn class_of(event: &str) -> u32 {
    match event {
        "set" | "setrange" | "incrby" | "incrbyfloat" | "append" | "decrby" | "incr" | "decr" | "mset" => STRING,
        "pfadd" => STRING,
        "lpush" | "rpush" | "lpop" | "rpop" | "linsert" | "lset" | "lrem" | "ltrim" | "sortstore" | "lmove" => LIST,
        "sadd" | "srem" | "spop" | "sinterstore" | "sunionstore" | "sdiffstore" | "smove" => SET,
        "hset" | "hdel" | "hincrby" | "hincrbyfloat" => HASH,
        "zadd" | "zincr" | "zrem" | "zpopmin" | "zpopmax" | "zremrangebyscore" | "zremrangebyrank"
        | "zremrangebylex" | "zinterstore" | "zunionstore" | "zdiffstore" | "zrangestore" => ZSET,
        "expired" => EXPIRED,
        "evicted" => EVICTED,
        "new" => NEW,
        "keymiss" => KEY_MISS,
        e if e.starts_with('x') => STREAM,
        // del, expire, persist, rename_from/to, move_from/to, copy_to, restore...
        _ => GENERIC,
    }
}

fn channel(prefix: &str, db: usize, name: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(prefix.len() + 24 + name.len());
    b.put_slice(prefix.as_bytes());
    b.put_slice(db.to_string().as_bytes());
    b.put_slice(b"__:");
    b.put_slice(name);
    b.freeze()
}

/// Publishes the keyspace and/or keyevent notification of `event` on `key`
/// when `flags` (the live `notify-keyspace-events`) select its class.
pub fn keyspace_event(server: &Server, flags: u32, event: &str, key: &[u8], db: usize) {
    if flags & class_of(event) == 0 || !server.pubsub.has_listeners() {
        return;
    }
    if flags & KEYSPACE != 0 {
        let ch = channel("__keyspace@", db, key);
        server.pubsub.publish(&ch, &Bytes::copy_from_slice(event.as_bytes()));
    }
    if flags & KEYEVENT != 0 {
        let ch = channel("__keyevent@", db, event.as_bytes());
        server.pubsub.publish(&ch, &Bytes::copy_from_slice(key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_round_trip_like_redis() {
        let canon = |s: &str| normalize(s).unwrap();
        assert_eq!(canon("KEA"), "AKE");
        assert_eq!(canon("Kx"), "xK");
        assert_eq!(canon("g$lshzxetdKEmn"), "AKEmn");
        assert_eq!(canon(""), "");
        assert_eq!(canon("E$"), "$E");
        assert!(normalize("Q").is_err());
    }

    #[test]
    fn classes() {
        assert_eq!(class_of("del"), GENERIC);
        assert_eq!(class_of("rename_to"), GENERIC);
        assert_eq!(class_of("set"), STRING);
        assert_eq!(class_of("lpush"), LIST);
        assert_eq!(class_of("zincr"), ZSET);
        assert_eq!(class_of("xadd"), STREAM);
        assert_eq!(class_of("expired"), EXPIRED);
    }
}
