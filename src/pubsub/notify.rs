//! Keyspace notifications (`notify-keyspace-events`).
//!
//! Handlers report every modification through `Ctx::written(key, event)`
//! with Redis's event name; the class a notification belongs to (the
//! letters of `notify-keyspace-events`) is derived from that name here.

use crate::server::Server;
use bytes::{BufMut, Bytes, BytesMut};

pub const KEYSPACE: u32 = 1 << 0;
pub const KEYEVENT: u32 = 1 << 1;
pub const GENERIC: u32 = 1 << 2;
pub const STRING: u32 = 1 << 3;
pub const LIST: u32 = 1 << 4;
pub const SET: u32 = 1 << 5;
pub const HASH: u32 = 1 << 6;
pub const ZSET: u32 = 1 << 7;
pub const EXPIRED: u32 = 1 << 8;
pub const EVICTED: u32 = 1 << 9;
pub const STREAM: u32 = 1 << 10;
pub const KEY_MISS: u32 = 1 << 11;
pub const MODULE: u32 = 1 << 13;
pub const NEW: u32 = 1 << 14;
/// What `A` stands for (Redis leaves out key-miss and new-key events).
pub const ALL: u32 = GENERIC | STRING | LIST | SET | HASH | ZSET | EXPIRED | EVICTED | STREAM | MODULE;

/// Letters in the order Redis prints them.
const LETTERS: &[(u32, char)] = &[
    (GENERIC, 'g'),
    (STRING, '$'),
    (LIST, 'l'),
    (SET, 's'),
    (HASH, 'h'),
    (ZSET, 'z'),
    (EXPIRED, 'x'),
    (EVICTED, 'e'),
    (STREAM, 't'),
    (MODULE, 'd'),
];

/// Parses a `notify-keyspace-events` value; None on an unknown letter.
pub fn parse_flags(s: &str) -> Option<u32> {
    let mut flags = 0;
    for c in s.chars() {
        flags |= match c {
            'A' => ALL,
            'K' => KEYSPACE,
            'E' => KEYEVENT,
            'm' => KEY_MISS,
            'n' => NEW,
            _ => LETTERS.iter().find(|(_, l)| *l == c)?.0,
        };
    }
    Some(flags)
}

/// The canonical text of `flags`, as `CONFIG GET` shows it.
pub fn flags_to_string(flags: u32) -> String {
    let mut s = String::new();
    if flags & ALL == ALL {
        s.push('A');
    } else {
        s.extend(LETTERS.iter().filter(|(f, _)| flags & f != 0).map(|(_, l)| *l));
    }
    for (f, l) in [(KEYSPACE, 'K'), (KEYEVENT, 'E'), (KEY_MISS, 'm'), (NEW, 'n')] {
        if flags & f != 0 {
            s.push(l);
        }
    }
    s
}

/// Validates and canonicalises a `CONFIG SET notify-keyspace-events` value.
pub fn normalize(value: &str) -> Result<String, String> {
    parse_flags(value)
        .map(flags_to_string)
        .ok_or_else(|| "Invalid event class character. Use 'Ag$lshzxeKEtmdn'.".to_string())
}

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
