//! A user's rules: flags, password hashes and selectors (the root one, then
//! those added in parentheses), how ACL SETUSER's rules change them, how
//! ACL LIST and GETUSER describe them, and the permission check.

use super::index::{self, Channels, Entry, KeyAccess, FUTURE_BIT, READ, RW, WORDS, WRITE};
use bytes::Bytes;
use std::collections::BTreeMap;

/// Why a rule was refused (Redis's errno cases and their texts).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum RuleError {
    Syntax,
    Unknown,
    KeyAfterAll,
    ChannelAfterAll,
    NoSuchPassword,
    BadHash,
    SubcommandFirstArg,
    Duplicate,
}

impl RuleError {
    pub fn message(self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::Unknown => "Unknown command or category name in ACL",
            RuleError::KeyAfterAll => {
                "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any \
                 effect. Try 'resetkeys' to start with an empty list of patterns"
            }
            RuleError::ChannelAfterAll => {
                "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any \
                 effect. Try 'resetchannels' to start with an empty list of channels"
            }
            RuleError::NoSuchPassword => "The password you are trying to remove from the user does not exist",
            RuleError::BadHash => {
                "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters"
            }
            RuleError::SubcommandFirstArg => "Allowing first-arg of a subcommand is not supported",
            RuleError::Duplicate => "Duplicate user found. A user can only be defined once in config files",
        }
    }
}

/// A glob pattern (keys, channels), with the common shapes decided up
/// front so the check of `~prefix:*` is a prefix comparison.
#[derive(Clone, Debug)]
pub struct Pattern {
    pub text: Bytes,
    shape: Shape,
}

#[derive(Clone, Copy, Debug)]
enum Shape {
    Any,
    Exact,
    /// A prefix of up to 8 bytes, compared as one word: its bytes
    /// (little-endian), the mask of its length, the length.
    ShortPrefix(u64, u64, usize),
    Prefix(usize),
    Glob,
}

/// The first 8 bytes of `s` as a little-endian word (zeros past its end).
#[inline(always)]
fn first_word(s: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    if s.len() >= 8 {
        b.copy_from_slice(&s[..8]);
    } else {
        b[..s.len()].copy_from_slice(s);
    }
    u64::from_le_bytes(b)
}

impl Pattern {
    pub fn new(text: Bytes) -> Pattern {
        let special = |c: &u8| matches!(c, b'*' | b'?' | b'[' | b'\\');
        let shape = match text.iter().position(special) {
            None => Shape::Exact,
            Some(i) if text[i..].iter().all(|&c| c == b'*') => {
                if i == 0 {
                    Shape::Any
                } else if i <= 8 {
                    let mask = if i == 8 { u64::MAX } else { (1u64 << (i * 8)) - 1 };
                    Shape::ShortPrefix(first_word(&text[..i]), mask, i)
                } else {
                    Shape::Prefix(i)
                }
            }
            Some(_) => Shape::Glob,
        };
        Pattern { text, shape }
    }

    #[inline(always)]
    pub fn matches(&self, s: &[u8]) -> bool {
        // The commonest shape first, without the jump of the match below.
        if let Shape::ShortPrefix(word, mask, n) = self.shape {
            return s.len() >= n && first_word(s) & mask == word;
        }
        self.matches_other(s)
    }

    fn matches_other(&self, s: &[u8]) -> bool {
        match self.shape {
            Shape::Any => true,
            Shape::Exact => self.text[..] == *s,
            Shape::ShortPrefix(word, mask, n) => s.len() >= n && first_word(s) & mask == word,
            Shape::Prefix(n) => s.len() >= n && self.text[..n] == s[..n],
            Shape::Glob => crate::util::glob_match(&self.text, s, false),
        }
    }
}

/// A key pattern and the permissions it grants.
#[derive(Clone, Debug)]
pub struct KeyPattern {
    pub perm: u8,
    pub pattern: Pattern,
}

impl KeyPattern {
    /// `~p`, `%R~p`, `%W~p` as ACL LIST writes it.
    fn describe(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(match self.perm {
            READ => b"%R~".as_slice(),
            WRITE => b"%W~",
            _ => b"~",
        });
        out.extend_from_slice(&self.pattern.text);
    }
}

/// One set of permissions: commands, keys, channels. A command runs when
/// some selector of the user allows it entirely.
#[derive(Clone, Debug)]
pub struct Selector {
    pub root: bool,
    pub allkeys: bool,
    pub allchannels: bool,
    pub allcommands: bool,
    allowed: [u64; WORDS],
    /// Allowed first arguments of otherwise denied commands (`+select|0`).
    firstargs: BTreeMap<usize, Vec<Bytes>>,
    pub keys: Vec<KeyPattern>,
    pub channels: Vec<Pattern>,
}

/// Why a command was refused, and the argument at fault. Ordered as
/// Redis ranks them when it reports one reason for several selectors.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Denied {
    Command,
    Key(usize),
    Channel(usize),
}

impl Denied {
    fn rank(self) -> (u8, usize) {
        match self {
            Denied::Command => (1, 0),
            Denied::Key(p) => (2, p),
            Denied::Channel(p) => (4, p),
        }
    }
}

fn has_spaces(s: &[u8]) -> bool {
    // C's isspace: space, \t, \n, \v, \f, \r; and NUL.
    s.iter().any(|&c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

impl Selector {
    pub fn new(root: bool, pubsub_all: bool) -> Selector {
        Selector {
            root,
            allkeys: false,
            allchannels: pubsub_all,
            allcommands: false,
            allowed: [0; WORDS],
            firstargs: BTreeMap::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    #[inline]
    pub fn bit(&self, id: usize) -> bool {
        id < WORDS * 64 && self.allowed[id / 64] & (1 << (id % 64)) != 0
    }

    fn set_bit(&mut self, id: usize, on: bool) {
        if id >= WORDS * 64 {
            return;
        }
        if on {
            self.allowed[id / 64] |= 1 << (id % 64);
        } else {
            self.allowed[id / 64] &= !(1 << (id % 64));
            self.allcommands = false;
        }
    }

    /// Allows or denies a command; a container's subcommands follow it.
    fn change(&mut self, id: usize, allow: bool) {
        self.set_bit(id, allow);
        self.firstargs.remove(&id);
        if let Some(e) = index::index().get(id) {
            for &sub in &e.subs {
                self.set_bit(sub, allow);
            }
        }
    }

    fn change_category(&mut self, cat: u32, allow: bool) {
        let ix = index::index();
        for id in ix.walk() {
            if ix.get(id).is_some_and(|e| e.cats & cat != 0) {
                self.change(id, allow);
            }
        }
    }

    /// Commands of the category this selector allows and denies.
    fn count_category(&self, cat: u32) -> (u64, u64) {
        let ix = index::index();
        let (mut on, mut off) = (0, 0);
        for id in ix.walk() {
            if ix.get(id).is_some_and(|e| e.cats & cat != 0) {
                if self.bit(id) {
                    on += 1;
                } else {
                    off += 1;
                }
            }
        }
        (on, off)
    }

    fn all_commands(&mut self, allow: bool) {
        self.allowed = if allow { [u64::MAX; WORDS] } else { [0; WORDS] };
        self.allcommands = allow;
        self.firstargs.clear();
    }

    /// Applies one selector rule (Redis's ACLSetSelector).
    pub fn apply(&mut self, op: &[u8]) -> Result<(), RuleError> {
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if op.is_empty() {
            return Err(RuleError::Syntax);
        }
        if is("allkeys") || is("~*") {
            self.allkeys = true;
            self.keys.clear();
        } else if is("resetkeys") {
            self.allkeys = false;
            self.keys.clear();
        } else if is("allchannels") || is("&*") {
            self.allchannels = true;
            self.channels.clear();
        } else if is("resetchannels") {
            self.allchannels = false;
            self.channels.clear();
        } else if is("allcommands") || is("+@all") {
            self.all_commands(true);
        } else if is("nocommands") || is("-@all") {
            self.all_commands(false);
        } else if op[0] == b'~' || op[0] == b'%' {
            if self.allkeys {
                return Err(RuleError::KeyAfterAll);
            }
            let (perm, start) = key_rule(op)?;
            let text = &op[start..];
            if has_spaces(text) {
                return Err(RuleError::Syntax);
            }
            match self.keys.iter_mut().find(|k| k.pattern.text[..] == *text) {
                Some(k) => k.perm |= perm,
                None => self.keys.push(KeyPattern { perm, pattern: Pattern::new(Bytes::copy_from_slice(text)) }),
            }
        } else if op[0] == b'&' {
            if self.allchannels {
                return Err(RuleError::ChannelAfterAll);
            }
            let text = &op[1..];
            if has_spaces(text) {
                return Err(RuleError::Syntax);
            }
            if !self.channels.iter().any(|c| c.text[..] == *text) {
                self.channels.push(Pattern::new(Bytes::copy_from_slice(text)));
            }
        } else if op[0] == b'+' && op.get(1) != Some(&b'@') {
            self.allow_command(&op[1..])?;
        } else if op[0] == b'-' && op.get(1) != Some(&b'@') {
            let id = index::index().lookup(&op[1..]).ok_or(RuleError::Unknown)?;
            self.change(id, false);
        } else if (op[0] == b'+' || op[0] == b'-') && op.get(1) == Some(&b'@') {
            let cat = index::category(&op[2..]).ok_or(RuleError::Unknown)?;
            self.change_category(cat, op[0] == b'+');
        } else {
            return Err(RuleError::Syntax);
        }
        Ok(())
    }

    /// `+name`, `+container|sub`, `+command|first-arg`.
    fn allow_command(&mut self, name: &[u8]) -> Result<(), RuleError> {
        let ix = index::index();
        let Some(bar) = name.iter().rposition(|&c| c == b'|') else {
            let id = ix.lookup(name).ok_or(RuleError::Unknown)?;
            self.change(id, true);
            return Ok(());
        };
        let (base, sub) = (&name[..bar], &name[bar + 1..]);
        let id = ix.lookup(base).ok_or(RuleError::Unknown)?;
        let entry = ix.get(id).ok_or(RuleError::Unknown)?;
        if entry.parent.is_some() {
            return Err(RuleError::SubcommandFirstArg);
        }
        if sub.is_empty() {
            return Err(RuleError::Syntax);
        }
        if !entry.subs.is_empty() {
            let sid = ix.lookup(name).ok_or(RuleError::Unknown)?;
            self.change(sid, true);
        } else {
            let args = self.firstargs.entry(id).or_default();
            if !args.iter().any(|a| a.eq_ignore_ascii_case(sub)) {
                args.push(Bytes::copy_from_slice(sub));
            }
        }
        Ok(())
    }

    /// The command part of the description: `+@all` or `-@all`, the
    /// categories that fit best, then single commands (ACL LIST's form).
    pub fn describe_commands(&self) -> Vec<u8> {
        let additive = !self.bit(FUTURE_BIT);
        let mut rules: Vec<u8> = Vec::new();
        let mut fake = Selector::new(false, false);
        if additive {
            rules.extend_from_slice(b"-@all ");
            fake.all_commands(false);
        } else {
            rules.extend_from_slice(b"+@all ");
            fake.all_commands(true);
        }
        // Categories, the best fit first: the one with the fewest commands
        // to correct afterwards (then the most in common), among those with
        // more commands in common than not, until none is left.
        let mut temp = Selector::new(false, false);
        temp.allowed = self.allowed;
        let mut applied = [false; index::CATEGORIES.len()];
        loop {
            let mut best = None;
            let (mut mindiff, mut maxsame) = (i32::MAX as u64, 0u64);
            for (j, done) in applied.iter().enumerate() {
                if *done {
                    continue;
                }
                let (on, off) = temp.count_category(1 << j);
                let (diff, same) = if additive { (off, on) } else { (on, off) };
                if same > diff && (diff < mindiff || (diff == mindiff && same > maxsame)) {
                    best = Some(j);
                    mindiff = diff;
                    maxsame = same;
                }
            }
            let Some(j) = best else {
                break;
            };
            fake.change_category(1 << j, additive);
            temp.change_category(1 << j, !additive);
            rules.push(if additive { b'+' } else { b'-' });
            rules.push(b'@');
            rules.extend_from_slice(index::CATEGORIES[j].as_bytes());
            rules.push(b' ');
            applied[j] = true;
        }
        let ix = index::index();
        self.describe_single(&mut fake, &mut rules, &ix.top);
        rules.pop();
        rules
    }

    fn describe_single(&self, fake: &mut Selector, rules: &mut Vec<u8>, ids: &[usize]) {
        let ix = index::index();
        for &id in ids {
            let Some(e) = ix.get(id) else {
                continue;
            };
            let mine = self.bit(id);
            if mine != fake.bit(id) {
                rules.push(if mine { b'+' } else { b'-' });
                rules.extend_from_slice(e.name.as_bytes());
                rules.push(b' ');
                fake.change(id, mine);
            }
            if !e.subs.is_empty() {
                self.describe_single(fake, rules, &e.subs);
            }
            if !mine {
                for arg in self.firstargs.get(&id).map(|v| v.as_slice()).unwrap_or_default() {
                    rules.push(b'+');
                    rules.extend_from_slice(e.name.as_bytes());
                    rules.push(b'|');
                    rules.extend_from_slice(arg);
                    rules.push(b' ');
                }
            }
        }
    }

    /// Key patterns as GETUSER shows them.
    pub fn describe_keys(&self) -> Vec<u8> {
        if self.allkeys {
            return b"~*".to_vec();
        }
        let mut out = Vec::new();
        for (i, k) in self.keys.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            k.describe(&mut out);
        }
        out
    }

    /// Channel patterns as GETUSER shows them.
    pub fn describe_channels(&self) -> Vec<u8> {
        if self.allchannels {
            return b"&*".to_vec();
        }
        let mut out = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            out.push(b'&');
            out.extend_from_slice(&c.text);
        }
        out
    }

    /// The whole selector as ACL LIST writes it.
    fn describe(&self, out: &mut Vec<u8>) {
        if self.allkeys {
            out.extend_from_slice(b"~* ");
        } else {
            for k in &self.keys {
                k.describe(out);
                out.push(b' ');
            }
        }
        if self.allchannels {
            out.extend_from_slice(b"&* ");
        } else {
            out.extend_from_slice(b"resetchannels ");
            for c in &self.channels {
                out.push(b'&');
                out.extend_from_slice(&c.text);
                out.push(b' ');
            }
        }
        out.extend_from_slice(&self.describe_commands());
    }

    /// Whether this selector allows the command `e` (id `id`) with `args`.
    fn check(&self, e: &Entry, id: usize, args: &[Bytes]) -> Result<(), Denied> {
        if !self.allcommands && !e.no_auth && !self.bit(id) {
            let pos = if e.parent.is_some() { 2 } else { 1 };
            let first_ok = args.len() >= 2
                && self
                    .firstargs
                    .get(&id)
                    .is_some_and(|list| args.get(pos).is_some_and(|a| list.iter().any(|x| x.eq_ignore_ascii_case(a))));
            if !first_ok {
                return Err(Denied::Command);
            }
        }
        if !self.allkeys && e.keys != KeyAccess::None {
            if let (KeyAccess::Uniform(perm), Some((first, last, step))) = (e.keys, e.key_range) {
                // The common case, without the general walk's closures.
                let argc = args.len() as i32;
                let last = if last < 0 { argc + last } else { last }.min(argc - 1);
                let mut p = first;
                while p <= last {
                    if !self.key_allowed(&args[p as usize], perm) {
                        return Err(Denied::Key(p as usize));
                    }
                    p += step.max(1);
                }
                return self.check_channels(e, args);
            }
            let mut bad = None;
            for_each_key(e, args, |pos, perm| {
                if self.key_allowed(&args[pos], perm) {
                    true
                } else {
                    bad = Some(pos);
                    false
                }
            });
            if let Some(pos) = bad {
                return Err(Denied::Key(pos));
            }
        }
        self.check_channels(e, args)
    }

    #[inline]
    fn check_channels(&self, e: &Entry, args: &[Bytes]) -> Result<(), Denied> {
        if !self.allchannels && e.channels != Channels::None {
            let (range, literal) = match e.channels {
                Channels::First => (1..2.min(args.len()), false),
                Channels::All => (1..args.len(), false),
                _ => (1..args.len(), true),
            };
            for pos in range {
                if !channel_allowed(&self.channels, &args[pos], literal) {
                    return Err(Denied::Channel(pos));
                }
            }
        }
        Ok(())
    }

    #[inline(always)]
    fn key_allowed(&self, key: &[u8], perm: u8) -> bool {
        for k in &self.keys {
            if k.perm & perm == perm && k.pattern.matches(key) {
                return true;
            }
        }
        false
    }
}

/// Whether `channel` is allowed by `list`: matched by glob, or (for a
/// PSUBSCRIBE pattern) equal to one of them.
pub fn channel_allowed(list: &[Pattern], channel: &[u8], literal: bool) -> bool {
    list.iter().any(|p| if literal { p.text[..] == *channel } else { p.matches(channel) })
}

/// `~pattern`, or `%R~`, `%W~`, `%RW~`: the permissions and where the
/// pattern starts.
fn key_rule(op: &[u8]) -> Result<(u8, usize), RuleError> {
    if op[0] == b'~' {
        return Ok((RW, 1));
    }
    let mut perm = 0;
    let mut i = 1;
    while i < op.len() {
        match op[i].to_ascii_uppercase() {
            b'R' if perm & READ == 0 => perm |= READ,
            b'W' if perm & WRITE == 0 => perm |= WRITE,
            b'~' if op[i] == b'~' => {
                i += 1;
                break;
            }
            _ => return Err(RuleError::Syntax),
        }
        i += 1;
    }
    if perm == 0 {
        return Err(RuleError::Syntax);
    }
    Ok((perm, i))
}

/// Calls `f(position, permissions)` for each key argument of the command
/// until it returns false. Keys are found as routing finds them; their
/// permissions come from the command's key specs.
#[inline]
pub fn for_each_key(e: &Entry, args: &[Bytes], mut f: impl FnMut(usize, u8) -> bool) {
    let Some(spec) = e.spec else {
        return;
    };
    let perm_at = |pos: usize| -> u8 {
        match e.keys {
            KeyAccess::Uniform(p) => p,
            KeyAccess::Set => set_perm(args),
            KeyAccess::Bitfield => bitfield_perm(args),
            KeyAccess::PerSpec => index::perm_of(&crate::commands::server::command::key_flags(spec, args, pos)),
            KeyAccess::None => 0,
        }
    };
    match spec.keys {
        crate::commands::registry::KeySpec::Range { first, last, step } => {
            let argc = args.len() as i32;
            let last = if last < 0 { argc + last } else { last }.min(argc - 1);
            if first < 1 || first > last {
                return;
            }
            let mut p = first;
            while p <= last {
                if !f(p as usize, perm_at(p as usize)) {
                    return;
                }
                p += step.max(1);
            }
        }
        _ => {
            for pos in spec.key_positions(args) {
                if pos < args.len() && !f(pos, perm_at(pos)) {
                    return;
                }
            }
        }
    }
}

/// SET writes its key, and reads it too with `GET`.
#[inline]
fn set_perm(args: &[Bytes]) -> u8 {
    if args.iter().skip(3).any(|a| a.eq_ignore_ascii_case(b"get")) {
        RW
    } else {
        WRITE
    }
}

/// BITFIELD reads only when every operation is a well-formed GET or
/// OVERFLOW; anything else (or a syntax error) counts as a write.
fn bitfield_perm(args: &[Bytes]) -> u8 {
    let argc = args.len();
    let mut i = 2;
    while i < argc {
        let rem = argc - i - 1;
        let a = &args[i];
        if a.eq_ignore_ascii_case(b"get") && rem >= 2 {
            i += 2;
        } else if (a.eq_ignore_ascii_case(b"set") || a.eq_ignore_ascii_case(b"incrby")) && rem >= 3 {
            return RW;
        } else if a.eq_ignore_ascii_case(b"overflow") && rem >= 1 {
            i += 1;
        } else {
            return RW;
        }
        i += 1;
    }
    READ
}

/// A user's rules. Immutable once built: a change builds a new one.
#[derive(Clone, Debug)]
pub struct User {
    pub enabled: bool,
    pub nopass: bool,
    /// `sanitize-payload` (Some(true)), `skip-sanitize-payload` (Some(false)) or neither.
    pub sanitize: Option<bool>,
    pub passwords: Vec<[u8; 32]>,
    /// The root selector first.
    pub selectors: Vec<Selector>,
}

/// SHA-256 of a password, as users store it.
pub fn hash_password(pass: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(pass).into()
}

fn hex(h: &[u8; 32]) -> Vec<u8> {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    h.iter().flat_map(|b| [DIGITS[(b >> 4) as usize], DIGITS[(b & 15) as usize]]).collect()
}

/// A stored hash as `#hash` gives it: exactly 64 lowercase hex digits.
fn parse_hash(s: &[u8]) -> Result<[u8; 32], RuleError> {
    if s.len() != 64 || !s.iter().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c)) {
        return Err(RuleError::BadHash);
    }
    let digit = |c: u8| if c.is_ascii_digit() { c - b'0' } else { c - b'a' + 10 };
    let mut out = [0u8; 32];
    for (i, pair) in s.chunks(2).enumerate() {
        out[i] = digit(pair[0]) << 4 | digit(pair[1]);
    }
    Ok(out)
}

impl User {
    /// A new user: off, no passwords, no permissions (channels per
    /// `acl-pubsub-default`).
    pub fn new(pubsub_all: bool) -> User {
        User {
            enabled: false,
            nopass: false,
            sanitize: None,
            passwords: Vec::new(),
            selectors: vec![Selector::new(true, pubsub_all)],
        }
    }

    /// The default user of a fresh server: everything, no password.
    pub fn new_default() -> User {
        let mut u = User::new(false);
        for op in ["+@all", "~*", "&*", "on", "nopass"] {
            let _ = u.apply(op.as_bytes(), false);
        }
        u
    }

    pub fn root(&self) -> &Selector {
        &self.selectors[0]
    }

    /// Allowed everything by the root selector: nothing to check.
    pub fn unrestricted(&self) -> bool {
        let r = self.root();
        r.allcommands && r.allkeys && r.allchannels
    }

    /// Applies one rule (Redis's ACLSetUser).
    pub fn apply(&mut self, op: &[u8], pubsub_all: bool) -> Result<(), RuleError> {
        if op.is_empty() {
            return Ok(());
        }
        let is = |w: &str| op.eq_ignore_ascii_case(w.as_bytes());
        if is("on") {
            self.enabled = true;
        } else if is("off") {
            self.enabled = false;
        } else if is("skip-sanitize-payload") {
            self.sanitize = Some(false);
        } else if is("sanitize-payload") {
            self.sanitize = Some(true);
        } else if is("nopass") {
            self.nopass = true;
            self.passwords.clear();
        } else if is("resetpass") {
            self.nopass = false;
            self.passwords.clear();
        } else if op[0] == b'>' || op[0] == b'#' {
            let h = if op[0] == b'>' { hash_password(&op[1..]) } else { parse_hash(&op[1..])? };
            if !self.passwords.contains(&h) {
                self.passwords.push(h);
            }
            self.nopass = false;
        } else if op[0] == b'<' || op[0] == b'!' {
            let h = if op[0] == b'<' { hash_password(&op[1..]) } else { parse_hash(&op[1..])? };
            let pos = self.passwords.iter().position(|p| *p == h).ok_or(RuleError::NoSuchPassword)?;
            self.passwords.remove(pos);
        } else if op[0] == b'(' && op[op.len() - 1] == b')' {
            let mut sel = Selector::new(false, pubsub_all);
            let inner = &op[1..op.len() - 1];
            for rule in crate::protocol::split_args(inner).unwrap_or_default() {
                sel.apply(&rule)?;
            }
            self.selectors.push(sel);
        } else if is("clearselectors") {
            self.selectors.truncate(1);
        } else if is("reset") {
            for op in ["resetpass", "resetkeys", "resetchannels"] {
                let _ = self.apply(op.as_bytes(), pubsub_all);
            }
            if pubsub_all {
                let _ = self.apply(b"allchannels", pubsub_all);
            }
            for op in ["off", "sanitize-payload", "clearselectors", "-@all"] {
                let _ = self.apply(op.as_bytes(), pubsub_all);
            }
        } else {
            self.selectors[0].apply(op)?;
        }
        Ok(())
    }

    /// Whether `pass` is one of the user's passwords. Every stored hash is
    /// compared in full, so the time taken says nothing about which one
    /// matched or how far.
    pub fn password_matches(&self, pass: &[u8]) -> bool {
        if self.nopass {
            return true;
        }
        let h = hash_password(pass);
        let mut found = 0u8;
        for p in &self.passwords {
            let mut diff = 0u8;
            for (a, b) in p.iter().zip(h.iter()) {
                diff |= a ^ b;
            }
            found |= (diff == 0) as u8;
        }
        found != 0
    }

    /// Flags in Redis's order.
    pub fn flag_names(&self) -> Vec<&'static str> {
        let mut out = vec![if self.enabled { "on" } else { "off" }];
        if self.nopass {
            out.push("nopass");
        }
        match self.sanitize {
            Some(false) => out.push("skip-sanitize-payload"),
            Some(true) => out.push("sanitize-payload"),
            None => {}
        }
        out
    }

    pub fn password_hexes(&self) -> Vec<Vec<u8>> {
        self.passwords.iter().map(hex).collect()
    }

    /// The user's rules as ACL LIST and ACL SAVE write them.
    pub fn describe(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for f in self.flag_names() {
            out.extend_from_slice(f.as_bytes());
            out.push(b' ');
        }
        for p in &self.passwords {
            out.push(b'#');
            out.extend_from_slice(&hex(p));
            out.push(b' ');
        }
        for s in &self.selectors {
            if s.root {
                s.describe(&mut out);
            } else {
                out.extend_from_slice(b" (");
                s.describe(&mut out);
                out.push(b')');
            }
        }
        out
    }

    /// The request path's short check: true when the only selector allows
    /// the command outright and each key (found by a plain range, all
    /// needing the same permissions) matches a pattern. False means only
    /// that `check` must decide. Always inlined: it runs for every command
    /// of a user with rules, and a call costs a third of its work.
    #[inline(always)]
    pub fn quick_allows(&self, id: usize, args: &[Bytes]) -> bool {
        let [s] = &self.selectors[..] else {
            return false;
        };
        // `allcommands` sets every bit.
        if !s.bit(id) {
            return false;
        }
        let Some(q) = index::index().quick.get(id) else {
            return false;
        };
        let perm = if q.kind <= 3 {
            if q.kind == index::Quick::NO_KEYS {
                return true;
            }
            q.kind
        } else if q.kind == index::Quick::SET {
            set_perm(args)
        } else {
            return q.kind == index::Quick::CHANNELS && s.allchannels;
        };
        if s.allkeys {
            return true;
        }
        if q.first == q.last {
            // One key (GET, SET, ...): past the arguments, the full check decides.
            return args.get(q.first as usize).is_some_and(|k| s.key_allowed(k, perm));
        }
        let argc = args.len() as i32;
        let last = i32::from(q.last);
        let last = if last < 0 { argc + last } else { last }.min(argc - 1);
        let mut p = i32::from(q.first);
        while p <= last {
            if !s.key_allowed(&args[p as usize], perm) {
                return false;
            }
            p += i32::from(q.step);
        }
        true
    }

    /// Whether the user may run command `id` with `args`: some selector
    /// allows it all. Otherwise the reason Redis reports: a command no
    /// selector allows, else the last key or channel none could match.
    pub fn check(&self, id: usize, args: &[Bytes]) -> Result<(), Denied> {
        let Some(e) = index::index().get(id) else {
            return Ok(());
        };
        if let [root] = &self.selectors[..] {
            return root.check(e, id, args);
        }
        let mut worst = Denied::Command;
        for s in &self.selectors {
            match s.check(e, id, args) {
                Ok(()) => return Ok(()),
                Err(d) => {
                    if d.rank() > worst.rank() {
                        worst = d;
                    }
                }
            }
        }
        Err(worst)
    }

    /// Whether some selector that allows command `id` with `args` also
    /// grants `perm` on every key (`allkeys`, or a `*` pattern with those
    /// permissions): SORT's BY and GET patterns need it.
    pub fn unrestricted_key_access(&self, id: usize, args: &[Bytes], perm: u8) -> bool {
        let Some(e) = index::index().get(id) else {
            return true;
        };
        self.selectors.iter().any(|s| {
            s.check(e, id, args).is_ok()
                && (s.allkeys || s.keys.iter().any(|k| k.perm & perm == perm && k.pattern.text[..] == b"*"[..]))
        })
    }

    /// Every channel pattern of every selector, or None when some
    /// selector allows every channel.
    pub fn all_channel_patterns(&self) -> Option<Vec<Pattern>> {
        if self.selectors.iter().any(|s| s.allchannels) {
            return None;
        }
        Some(self.selectors.iter().flat_map(|s| s.channels.iter().cloned()).collect())
    }
}

/// ACL SETUSER's and the ACL file's argument merging: a selector written
/// over several arguments (`(+get` `~k*)`) becomes one. Err(index of the
/// argument that opened an unclosed parenthesis).
pub fn merge_selectors(ops: &[Bytes]) -> Result<Vec<Bytes>, usize> {
    let mut out = Vec::with_capacity(ops.len());
    let mut open: Option<(usize, Vec<u8>)> = None;
    for (j, op) in ops.iter().enumerate() {
        if let Some((_, sel)) = open.as_mut() {
            sel.push(b' ');
            sel.extend_from_slice(op);
            if op.last() == Some(&b')') {
                if let Some((_, sel)) = open.take() {
                    out.push(Bytes::from(sel));
                }
            }
            continue;
        }
        if op.first() == Some(&b'(') && op.last() != Some(&b')') {
            open = Some((j, op.to_vec()));
            continue;
        }
        out.push(op.clone());
    }
    match open {
        Some((j, _)) => Err(j),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(rules: &[&str]) -> User {
        let mut u = User::new(false);
        for r in rules {
            u.apply(r.as_bytes(), false).unwrap();
        }
        u
    }

    fn list(u: &User) -> String {
        String::from_utf8(u.describe()).unwrap()
    }

    #[test]
    fn describes_like_redis() {
        assert_eq!(list(&User::new_default()), "on nopass ~* &* +@all");
        assert_eq!(list(&user(&["reset"])), "off sanitize-payload resetchannels -@all");
        assert_eq!(
            list(&user(&["%R~x", "~x", "%W~y", "%R~y", "%R~z", "&a", "&a"])),
            "off ~x ~y %R~z resetchannels &a -@all"
        );
        assert_eq!(list(&user(&["+@all", "-get"])), "off resetchannels +@all -get");
        assert_eq!(list(&user(&["-@all", "+@slow"])), "off resetchannels -@all +@slow");
        assert_eq!(list(&user(&["(+get ~a*)"])), "off resetchannels -@all (~a* resetchannels -@all +get)");
    }

    #[test]
    fn rule_errors() {
        let mut u = User::new(false);
        assert_eq!(u.apply(b"+@foo", false), Err(RuleError::Unknown));
        assert_eq!(u.apply(b"bad", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"+config|get|x", false), Err(RuleError::SubcommandFirstArg));
        assert_eq!(u.apply(b"+config|", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"%~a", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"%RR~a", false), Err(RuleError::Syntax));
        assert_eq!(u.apply(b"#abc", false), Err(RuleError::BadHash));
        assert_eq!(u.apply(b"<nope", false), Err(RuleError::NoSuchPassword));
        assert!(u.apply(b"%R", false).is_ok());
        assert_eq!(list(&u), "off %R~ resetchannels -@all");
    }

    #[test]
    fn checks() {
        let u = user(&["+@all", "~k*", "%R~r*", "&c*"]);
        let a = |s: &str| s.split(' ').map(|x| Bytes::copy_from_slice(x.as_bytes())).collect::<Vec<_>>();
        let id = |n: &str| index::index().lookup(n.as_bytes()).unwrap();
        assert_eq!(u.check(id("get"), &a("get k1")), Ok(()));
        assert_eq!(u.check(id("get"), &a("get x")), Err(Denied::Key(1)));
        assert_eq!(u.check(id("get"), &a("get r1")), Ok(()));
        assert_eq!(u.check(id("set"), &a("set r1 v")), Err(Denied::Key(1)));
        assert_eq!(u.check(id("publish"), &a("publish c1 m")), Ok(()));
        assert_eq!(u.check(id("publish"), &a("publish x m")), Err(Denied::Channel(1)));
        assert_eq!(u.check(id("psubscribe"), &a("psubscribe c*")), Ok(()));
        assert_eq!(u.check(id("psubscribe"), &a("psubscribe c1")), Err(Denied::Channel(1)));
        let v = user(&["-@all", "+select|0"]);
        assert_eq!(v.check(id("select"), &a("select 0")), Ok(()));
        assert_eq!(v.check(id("select"), &a("select 1")), Err(Denied::Command));
    }

    #[test]
    fn quick_check_agrees_with_the_full_one() {
        let users = [
            user(&["+@all", "~k*"]),
            user(&["+@all", "%R~k*", "%W~w*", "&c*"]),
            user(&["-@all", "+get", "+set", "+publish", "+mset", "~key:*", "~12345678*"]),
            user(&["+@all", "allkeys", "resetchannels"]),
            user(&["+@all", "-get", "~*", "&*"]),
            user(&["-@all", "+select|0", "+get", "(~x +set)"]),
        ];
        let lines = [
            "get k1",
            "get x",
            "get key:1",
            "get 12345678x",
            "get 1234567",
            "set k v",
            "set w v",
            "set w v get",
            "set k v GET",
            "mset k 1 w 2",
            "mset k 1 k2 2",
            "publish c1 m",
            "publish x m",
            "ping",
            "select 0",
            "lpush w a",
            "lrange k 0 -1",
            "subscribe c1",
            "del k w",
            "object encoding k",
            "set x v",
        ];
        for u in &users {
            for line in lines {
                let args: Vec<Bytes> = line.split(' ').map(|x| Bytes::copy_from_slice(x.as_bytes())).collect();
                let Some(id) = index::index().lookup(line.split(' ').next().unwrap().as_bytes()) else {
                    continue;
                };
                let id =
                    if line.starts_with("object") { index::index().lookup(b"object|encoding").unwrap() } else { id };
                if u.quick_allows(id, &args) {
                    assert_eq!(u.check(id, &args), Ok(()), "{line} for {}", list(u));
                }
            }
        }
        // The short way serves the plain cases.
        let u = &users[2];
        let a = |s: &str| s.split(' ').map(|x| Bytes::copy_from_slice(x.as_bytes())).collect::<Vec<_>>();
        let id = |n: &str| index::index().lookup(n.as_bytes()).unwrap();
        assert!(u.quick_allows(id("get"), &a("get key:1")));
        assert!(u.quick_allows(id("set"), &a("set 123456789 v")));
        assert!(!u.quick_allows(id("get"), &a("get other")));
        assert!(!u.quick_allows(id("hget"), &a("hget key:1 f")));
    }

    #[test]
    fn pattern_shapes_match_as_globs() {
        let texts = ["*", "k", "key:*", "12345678*", "123456789*", "a*b", "k?y", "[ab]*", "x\\*", "**", "a**"];
        let keys = ["", "k", "key", "key:", "key:1", "12345678", "123456789", "1234567", "ab", "a1b", "x*", "xy", "a"];
        for t in texts {
            let p = Pattern::new(Bytes::copy_from_slice(t.as_bytes()));
            for k in keys {
                let want = crate::util::glob_match(t.as_bytes(), k.as_bytes(), false);
                assert_eq!(p.matches(k.as_bytes()), want, "{t} {k}");
            }
        }
    }

    #[test]
    fn passwords() {
        let u = user(&[">secret"]);
        assert!(u.password_matches(b"secret"));
        assert!(!u.password_matches(b"secreT"));
        assert_eq!(
            String::from_utf8(u.password_hexes()[0].clone()).unwrap(),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
    }
}
