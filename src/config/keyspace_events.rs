//! `notify-keyspace-events`: its classes as flags, and its value's syntax.
//! (Delivering the notifications is `pubsub::notify`'s job.)

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
