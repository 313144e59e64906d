//! The ACL file (`aclfile`): ACL LOAD, ACL SAVE, and the users defined at
//! start-up by `user` lines of the config file or by the ACL file.
//!
//! The file holds one `user <name> <rules...>` line per user, the format
//! ACL LIST prints; redis-server 7.0 reads and writes the same files.

use super::user::{merge_selectors, RuleError, User};
use bytes::Bytes;
use std::collections::BTreeMap;

fn has_spaces(s: &[u8]) -> bool {
    s.iter().any(|&c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0))
}

/// Splits on every single `sep` as Redis's sdssplitlen does (empty
/// fields kept; an empty input has no fields).
fn split_exact(s: &[u8], sep: u8) -> Vec<&[u8]> {
    if s.is_empty() {
        return Vec::new();
    }
    s.split(|&c| c == sep).collect()
}

fn trim<'a>(s: &'a [u8], set: &[u8]) -> &'a [u8] {
    let start = s.iter().position(|c| !set.contains(c)).unwrap_or(s.len());
    let end = s.iter().rposition(|c| !set.contains(c)).map_or(start, |e| e + 1);
    &s[start..end.max(start)]
}

/// Parses an ACL file. Ok(users) when every line is valid; otherwise
/// Redis's one-line description of every problem found.
pub fn parse(text: &[u8], filename: &str, pubsub_all: bool) -> Result<BTreeMap<Bytes, User>, String> {
    let mut users: BTreeMap<Bytes, User> = BTreeMap::new();
    let mut errors = String::new();
    for (i, raw) in split_exact(text, b'\n').into_iter().enumerate() {
        let linenum = i + 1;
        let line = trim(raw, b" \t\r\n");
        if line.is_empty() {
            continue;
        }
        let argv = split_exact(line, b' ');
        if argv.is_empty() {
            continue;
        }
        if argv[0] != b"user" || argv.len() < 2 {
            errors.push_str(&format!("{filename}:{linenum} should start with user keyword followed by the username. "));
            continue;
        }
        let name = argv[1];
        if has_spaces(name) {
            errors.push_str(&format!(
                "'{filename}:{linenum}: username '{}' contains invalid characters. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        if users.contains_key(name) {
            errors.push_str(&format!(
                "WARNING: Duplicate user '{}' found on line {linenum}. ",
                String::from_utf8_lossy(name)
            ));
            continue;
        }
        let mut user = User::new(pubsub_all);
        let ops: Vec<Bytes> = argv[2..].iter().map(|a| Bytes::copy_from_slice(a)).collect();
        let merged = match merge_selectors(&ops) {
            Ok(m) => m,
            Err(_) => {
                errors.push_str(&format!("{filename}:{linenum}: Unmatched parenthesis in selector definition."));
                Vec::new()
            }
        };
        // Every unknown command is reported; of the other errors only the
        // line's first, as the rules after it may depend on it.
        let mut reported = false;
        for op in &merged {
            let op = trim(op, b"\t\r\n");
            if let Err(e) = user.apply(op, pubsub_all) {
                if e == RuleError::Unknown {
                    errors.push_str(&format!(
                        "{filename}:{linenum}: Error in applying operation '{}': {}. ",
                        String::from_utf8_lossy(op),
                        e.message()
                    ));
                } else if !reported {
                    errors.push_str(&format!("{filename}:{linenum}: {}. ", e.message()));
                    reported = true;
                }
            }
        }
        users.insert(Bytes::copy_from_slice(name), user);
    }
    if errors.is_empty() {
        Ok(users)
    } else {
        errors.push_str("WARNING: ACL errors detected, no change to the previously active ACL rules was performed");
        Err(errors)
    }
}

/// Reads and parses the ACL file `name` (as configured; messages name it
/// so) found at `path`.
pub fn load(name: &str, path: &std::path::Path, pubsub_all: bool) -> Result<BTreeMap<Bytes, User>, String> {
    let text =
        std::fs::read(path).map_err(|e| format!("Error loading ACLs, opening file '{name}': {}", os_error(&e)))?;
    parse(&text, name, pubsub_all)
}

/// The text of an OS error as C's strerror gives it ("No such file or directory").
fn os_error(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The ACL file's text for `users` (ordered by name).
pub fn render(users: &[(Bytes, std::sync::Arc<User>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, rules) in users {
        out.extend_from_slice(b"user ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(&rules.describe());
        out.push(b'\n');
    }
    out
}

/// Writes `text` to `path` through a temporary file renamed over it.
pub fn save(path: &std::path::Path, text: &[u8]) -> std::io::Result<()> {
    let now = crate::storage::now_ms();
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}-{now}", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    let result = std::fs::write(&tmp, text).and_then(|_| std::fs::rename(&tmp, path));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The users of the config file's `user` lines (each: the words after
/// `user`), checked as Redis checks them. Err is the message to stop with.
pub fn configured_users(lines: &[Vec<String>], pubsub_all: bool) -> Result<BTreeMap<Bytes, User>, String> {
    let mut users: BTreeMap<Bytes, User> = BTreeMap::new();
    for words in lines {
        // Redis names the failing argument by its index among the rules,
        // counted in the whole line ("user", the name, the rules).
        let mut argv: Vec<&str> = vec!["user"];
        argv.extend(words.iter().map(|w| w.as_str()));
        let Some(name) = words.first() else {
            return Err("Error in user declaration 'user': Syntax error".to_string());
        };
        if users.contains_key(name.as_bytes()) {
            return Err(format!("Error in user declaration '{name}': {}", RuleError::Duplicate.message()));
        }
        let ops: Vec<Bytes> = words[1..].iter().map(|w| Bytes::copy_from_slice(w.as_bytes())).collect();
        let merged = merge_selectors(&ops).map_err(|j| {
            format!("Error in user declaration '{}': Unmatched parenthesis in selector definition", argv[j])
        })?;
        if has_spaces(name.as_bytes()) {
            return Err("Spaces not allowed in ACL usernames".to_string());
        }
        let mut user = User::new(pubsub_all);
        if name == "default" {
            let _ = user.apply(b"reset", pubsub_all);
        }
        for (j, op) in merged.iter().enumerate() {
            if let Err(e) = user.apply(op, pubsub_all) {
                if e == RuleError::Unknown {
                    return Err(format!(
                        "Error loading ACL rule '{}' for the user named '{name}': {}",
                        String::from_utf8_lossy(op),
                        e.message()
                    ));
                }
                let at = argv.get(j).copied().unwrap_or("");
                return Err(format!("Error in user declaration '{at}': {}", e.message()));
            }
        }
        users.insert(Bytes::copy_from_slice(name.as_bytes()), user);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_reports_like_redis() {
        let ok = parse(b"\nuser bob on >pw ~*\n\nuser alice on (+get ~a*) (+set ~b*)\n", "f.acl", false).unwrap();
        assert_eq!(ok.len(), 2);
        let bad = parse(b"user bob on >pw\n# comment\nuser bob off\nuser c on +nosuch %X~a\n", "f.acl", false);
        assert_eq!(
            bad.unwrap_err(),
            "f.acl:2 should start with user keyword followed by the username. WARNING: Duplicate user 'bob' \
             found on line 3. f.acl:4: Error in applying operation '+nosuch': Unknown command or category name in \
             ACL. f.acl:4: Syntax error. WARNING: ACL errors detected, no change to the previously active ACL \
             rules was performed"
        );
        // Single spaces separate words: a double space makes an empty name.
        assert!(parse(b"  user   bob   on  >pw\n", "f", false).is_err());
        // One error other than an unknown command per line.
        assert_eq!(
            parse(b"user a on bad1 bad2 +nosuch bad3\nuser b #x\n", "f", false).unwrap_err(),
            "f:1: Syntax error. f:1: Error in applying operation '+nosuch': Unknown command or category name in ACL. \
             f:2: The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters. \
             WARNING: ACL errors detected, no change to the previously active ACL rules was performed"
        );
    }
}
