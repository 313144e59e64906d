//! The registry: collects every family's declarations into one index that
//! routing, `COMMAND` and the statistics read. Adding a family is one line
//! in `FAMILIES`.

pub use super::spec::{flags, CommandSpec, Exec, Group, KeySpec};
use crate::protocol::Reply;
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Every family's declarations. Adding a command family means adding one line here.
static FAMILIES: &[&[CommandSpec]] = &[
    super::connection::COMMANDS,
    super::server::COMMANDS,
    super::cluster::COMMANDS,
    super::keys::COMMANDS,
    super::strings::COMMANDS,
    crate::scripting::commands::COMMANDS,
    super::lists::COMMANDS,
    super::hashes::COMMANDS,
    super::sets::COMMANDS,
    super::zsets::COMMANDS,
    super::streams::COMMANDS,
    super::transactions::COMMANDS,
    super::pubsub::COMMANDS,
    super::bitmaps::COMMANDS,
    super::hyperloglog::COMMANDS,
    super::geo::COMMANDS,
    super::sort::COMMANDS,
    super::memory::COMMANDS,
    super::debug::COMMANDS,
    super::dump::COMMANDS,
    super::module::COMMANDS,
    super::replication::COMMANDS,
    super::acl::COMMANDS,
];

/// A resolved command: its table entry and its index in `all()` (for stats).
#[derive(Clone, Copy)]
pub struct Command {
    pub id: usize,
    pub spec: &'static CommandSpec,
}

struct Index {
    all: Vec<&'static CommandSpec>,
    by_name: HashMap<&'static str, Command, ahash::RandomState>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let mut all = Vec::new();
        let mut by_name = HashMap::default();
        for family in FAMILIES {
            for spec in family.iter() {
                by_name.insert(spec.name, Command { id: all.len(), spec });
                all.push(spec);
                for sub in spec.subcommands {
                    by_name.insert(sub.name, Command { id: all.len(), spec: sub });
                    all.push(sub);
                }
            }
        }
        Index { all, by_name }
    })
}

/// Every command and subcommand, in table order.
pub fn all() -> &'static [&'static CommandSpec] {
    &index().all
}

/// Top-level commands only.
pub fn top_level() -> impl Iterator<Item = &'static CommandSpec> {
    FAMILIES.iter().flat_map(|f| f.iter())
}

/// Finds a command by name, case-insensitively, without allocating.
pub fn lookup(name: &[u8]) -> Option<Command> {
    find(name, false)
}

/// A command as a request names it: `config|get` is no command name (Redis
/// finds subcommands only under their container).
pub fn lookup_top(name: &[u8]) -> Option<Command> {
    find(name, true)
}

/// `lookup`; `top`: None for a name with `|` (a subcommand's), checked
/// while the name is folded to lower case.
#[inline]
fn find(name: &[u8], top: bool) -> Option<Command> {
    let mut buf = [0u8; 48];
    if name.len() > buf.len() {
        return None;
    }
    let mut bar = false;
    for (d, s) in buf.iter_mut().zip(name) {
        bar |= *s == b'|';
        *d = s.to_ascii_lowercase();
    }
    if top && bar {
        return None;
    }
    let lower = std::str::from_utf8(&buf[..name.len()]).ok()?;
    index().by_name.get(lower).copied()
}

/// Resolves a container's subcommand (`CONFIG GET` → `config|get`).
pub fn lookup_sub(parent: &CommandSpec, sub: &[u8]) -> Option<Command> {
    if sub.len() > 40 {
        return None;
    }
    let mut name = String::with_capacity(parent.name.len() + 1 + sub.len());
    name.push_str(parent.name);
    name.push('|');
    name.push_str(&String::from_utf8_lossy(sub).to_ascii_lowercase());
    let cmd = index().by_name.get(name.as_str()).copied()?;
    parent.subcommands.iter().any(|s| std::ptr::eq(s, cmd.spec)).then_some(cmd)
}

/// Resolves `args` to the command that runs: the subcommand for containers.
/// Errors are Redis's texts for unknown commands, subcommands and arity.
pub fn resolve(args: &[Bytes]) -> Result<Command, Reply> {
    let Some(cmd) = lookup_top(&args[0]) else {
        return Err(unknown_command(args));
    };
    if !matches!(cmd.spec.exec, Exec::Container) {
        if !cmd.spec.arity_ok(args.len()) {
            return Err(Reply::wrong_arity(cmd.spec.name));
        }
        return Ok(cmd);
    }
    if args.len() < 2 {
        // A container may have a meaning of its own when called bare (COMMAND).
        if cmd.spec.arity_ok(args.len()) {
            return Ok(cmd);
        }
        return Err(Reply::wrong_arity(cmd.spec.name));
    }
    let Some(sub) = lookup_sub(cmd.spec, &args[1]) else {
        return Err(unknown_subcommand(&args[1], cmd.spec.name));
    };
    if !sub.spec.arity_ok(args.len()) {
        return Err(Reply::wrong_arity(sub.spec.name));
    }
    Ok(sub)
}

/// The command or subcommand `args` names, whatever its arity: a call
/// refused for its arity counts in that command's `rejected_calls`. None for
/// an unknown command or subcommand (no command to count it on).
pub fn named(args: &[Bytes]) -> Option<Command> {
    let cmd = lookup_top(args.first()?)?;
    match (&cmd.spec.exec, args.get(1)) {
        (Exec::Container, Some(sub)) => lookup_sub(cmd.spec, sub),
        _ => Some(cmd),
    }
}

/// At most `max` bytes of a client argument as C's `%.*s` prints it
/// (up to a NUL). Redis sends these bytes back as they are.
fn quoted(b: &[u8], max: usize) -> &[u8] {
    let b = crate::protocol::c_str(b);
    &b[..b.len().min(max)]
}

/// Redis's reply to a subcommand given the wrong arguments
/// (`addReplySubcommandSyntaxError`): the subcommand as typed, the command
/// upper-cased.
pub fn subcommand_syntax_error(args: &[Bytes]) -> Reply {
    let cmd = String::from_utf8_lossy(crate::protocol::c_str(&args[0])).to_uppercase();
    Reply::error_concat(&[
        b"ERR unknown subcommand or wrong number of arguments for '",
        quoted(&args[1], 128),
        b"'. Try ",
        cmd.as_bytes(),
        b" HELP.",
    ])
}

/// Redis's reply to an unknown subcommand of the container `parent`.
pub fn unknown_subcommand(sub: &[u8], parent: &str) -> Reply {
    let mut text = b"ERR unknown subcommand '".to_vec();
    text.extend_from_slice(quoted(sub, 128));
    text.extend_from_slice(b"'. Try ");
    text.extend_from_slice(parent.to_uppercase().as_bytes());
    text.extend_from_slice(b" HELP.");
    Reply::error_from_bytes(text)
}

/// Redis's reply to an unknown command, with the beginning of its
/// arguments: 128 bytes of the name, then arguments while the list is
/// shorter than 128 bytes, each cut to what is left of those 128.
pub fn unknown_command(args: &[Bytes]) -> Reply {
    let mut shown = Vec::new();
    for a in &args[1..] {
        if shown.len() >= 128 {
            break;
        }
        let room = 128 - shown.len();
        shown.push(b'\'');
        shown.extend_from_slice(quoted(a, room));
        shown.extend_from_slice(b"' ");
    }
    let mut text = b"ERR unknown command '".to_vec();
    text.extend_from_slice(quoted(&args[0], 128));
    text.extend_from_slice(b"', with args beginning with: ");
    text.extend_from_slice(&shown);
    Reply::error_from_bytes(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_unique_and_lowercase() {
        let mut seen = std::collections::HashSet::new();
        for spec in all() {
            assert!(seen.insert(spec.name), "duplicate {}", spec.name);
            assert_eq!(spec.name, spec.name.to_lowercase());
        }
    }

    /// A command added without its docs fails here: `COMMAND DOCS` must
    /// describe every command and subcommand.
    #[test]
    fn every_command_is_documented() {
        for spec in all() {
            assert!(!spec.summary.is_empty(), "{} has no summary: add .doc(since, summary)", spec.name);
            let version: Vec<&str> = spec.since.split('.').collect();
            assert!(
                version.len() == 3 && version.iter().all(|p| p.parse::<u32>().is_ok()),
                "{} has no valid `since` version",
                spec.name
            );
        }
    }

    /// Every declared syntax line parses, and a command that takes keys
    /// names them among its arguments (COMMAND DOCS's `key_spec_index`).
    #[test]
    fn every_syntax_line_parses() {
        use crate::commands::syntax::{parse, Arg};
        fn has_key(args: &[Arg]) -> bool {
            args.iter().any(|a| a.key_spec.is_some() || has_key(&a.args))
        }
        for spec in all() {
            let args = parse(spec.syntax).unwrap_or_else(|e| panic!("{}: {e}", spec.name));
            if !matches!(spec.keys, KeySpec::None) && !spec.keys_are_channels() {
                assert!(has_key(&args), "{} takes keys but its syntax names none", spec.name);
            }
            if matches!(spec.exec, Exec::Container) {
                assert!(args.is_empty(), "{}: a container's arguments belong to its subcommands", spec.name);
            }
        }
    }

    #[test]
    fn key_positions() {
        let args: Vec<Bytes> = ["mset", "a", "1", "b", "2"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(lookup(b"MSET").unwrap().spec.key_positions(&args), vec![1, 3]);
        let args: Vec<Bytes> = ["eval", "s", "2", "a", "b", "x"].iter().map(|s| Bytes::from(*s)).collect();
        assert_eq!(lookup(b"eval").unwrap().spec.key_positions(&args), vec![3, 4]);
    }
}
