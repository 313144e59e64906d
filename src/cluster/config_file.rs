//! nodes.conf in Redis's format: one CLUSTER NODES line per node (nodes in
//! handshake left out), then `vars currentEpoch N lastVoteEpoch N`.
//! Rewritten atomically (see [`save`]).

use super::state::{self, flags, parse_id, Node, State, NULL_ID};
use std::io::Write;
use std::path::Path;

/// The file's text for `st`.
pub fn render(st: &State) -> String {
    let mut ids: Vec<_> = st.nodes.keys().copied().collect();
    ids.sort();
    let mut out = String::new();
    for id in ids {
        let n = &st.nodes[&id];
        if n.in_handshake() {
            continue;
        }
        out.push_str(&st.node_line(n));
        out.push('\n');
    }
    out.push_str(&format!("vars currentEpoch {} lastVoteEpoch {}\n", st.current_epoch, st.last_vote_epoch));
    out
}

/// Writes `text` to `path` atomically and durably: a temporary file in the
/// same directory, fsync, rename over the old one, fsync of the directory.
/// A crash (or `kill -9` in the middle of the write) leaves the old file or
/// the new one, never a mix.
///
/// This costs a disk write (on ext4 the rename alone forces the data out),
/// so it is not done under the cluster state lock for every SETSLOT: see
/// [`super::Cluster::commit`] for which changes are written at once and
/// which within 100 ms by the cron.
pub fn save(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!("temp-{}-{}", std::process::id(), name));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = written {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Reads nodes.conf into a state. `Ok(None)`: no file (a new node).
pub fn load(path: &Path, port: u16, cport: u16) -> Result<Option<State>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Loading the cluster node config from {} failed: {e}", path.display())),
    };
    if text.trim().is_empty() {
        return Ok(None);
    }
    let bad = |line: &str| format!("Unrecoverable error: corrupted cluster config file \"{line}\".");
    let now = state::now_ms();
    let mut st: Option<State> = None;
    let mut nodes: Vec<Node> = Vec::new();
    let mut open: Vec<(usize, bool, state::NodeId)> = Vec::new();
    let (mut current_epoch, mut last_vote) = (0, 0);
    let mut myself = None;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(' ').filter(|w| !w.is_empty()).collect();
        if f[0] == "vars" {
            let mut i = 1;
            while i + 1 < f.len() {
                let v: u64 = f[i + 1].parse().map_err(|_| bad(line))?;
                match f[i] {
                    "currentEpoch" => current_epoch = v,
                    "lastVoteEpoch" => last_vote = v,
                    _ => {}
                }
                i += 2;
            }
            continue;
        }
        if f.len() < 8 {
            return Err(bad(line));
        }
        let id = parse_id(f[0].as_bytes()).ok_or_else(|| bad(line))?;
        let mut n = Node::new(id, 0, now);
        let (addr, hostname) = f[1].split_once(',').unwrap_or((f[1], ""));
        let (hostport, bus) = addr.split_once('@').ok_or_else(|| bad(line))?;
        let (ip, p) = hostport.rsplit_once(':').ok_or_else(|| bad(line))?;
        n.ip = ip.to_string();
        n.hostname = hostname.to_string();
        n.port = p.parse().map_err(|_| bad(line))?;
        n.cport = bus.parse().map_err(|_| bad(line))?;
        for word in f[2].split(',') {
            n.flags |= match word {
                "myself" => flags::MYSELF,
                "master" => flags::MASTER,
                "slave" => flags::SLAVE,
                "fail?" => flags::PFAIL,
                "fail" => flags::FAIL,
                "handshake" => flags::HANDSHAKE,
                "noaddr" => flags::NOADDR,
                "nofailover" => flags::NOFAILOVER,
                _ => 0,
            };
        }
        if f[3] != "-" {
            n.master = Some(parse_id(f[3].as_bytes()).ok_or_else(|| bad(line))?);
        }
        if f[4] != "0" {
            n.ping_sent = now;
        }
        if f[5] != "0" {
            n.pong_received = now;
        }
        n.config_epoch = f[6].parse().map_err(|_| bad(line))?;
        for w in &f[8..] {
            if let Some(inner) = w.strip_prefix('[').and_then(|w| w.strip_suffix(']')) {
                let (slot, migrating, other) = if let Some((s, o)) = inner.split_once("->-") {
                    (s, true, o)
                } else if let Some((s, o)) = inner.split_once("-<-") {
                    (s, false, o)
                } else {
                    return Err(bad(line));
                };
                let slot: usize = slot.parse().map_err(|_| bad(line))?;
                let other = parse_id(other.as_bytes()).ok_or_else(|| bad(line))?;
                if slot < state::SLOTS {
                    open.push((slot, migrating, other));
                }
                continue;
            }
            let (a, b) = w.split_once('-').unwrap_or((w, w));
            let a: usize = a.parse().map_err(|_| bad(line))?;
            let b: usize = b.parse().map_err(|_| bad(line))?;
            if a > b || b >= state::SLOTS {
                return Err(bad(line));
            }
            for s in a..=b {
                n.slots[s >> 3] |= 1 << (s & 7);
            }
        }
        if n.flags & flags::MYSELF != 0 {
            myself = Some(id);
        }
        nodes.push(n);
    }
    let Some(me) = myself else {
        return Err("Unrecoverable error: the cluster config file has no line for this node (myself).".into());
    };
    let s = st.get_or_insert_with(|| State::new(me, port, cport));
    s.nodes.clear();
    for mut n in nodes {
        let slots = std::mem::replace(&mut n.slots, Box::new([0; state::SLOT_BYTES]));
        if n.flags & flags::MYSELF != 0 {
            n.port = port;
            n.cport = cport;
            n.flags &= !(flags::PFAIL | flags::FAIL);
        }
        let id = n.id;
        s.nodes.insert(id, n);
        for slot in 0..state::SLOTS {
            if state::bit(&slots, slot) {
                s.del_slot(slot);
                s.add_slot(id, slot);
            }
        }
    }
    for (slot, migrating, other) in open {
        if other != NULL_ID {
            if migrating {
                s.migrating.insert(slot, other);
            } else {
                s.importing.insert(slot, other);
            }
        }
    }
    s.current_epoch = current_epoch;
    s.last_vote_epoch = last_vote;
    s.dirty = false;
    Ok(st)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_then_load_keeps_nodes_slots_and_epochs() {
        let mut st = State::new([b'a'; 40], 7000, 17000);
        st.me_mut().ip = "127.0.0.1".into();
        st.me_mut().config_epoch = 3;
        st.current_epoch = 5;
        let mut other = Node::new([b'b'; 40], flags::MASTER, 0);
        other.ip = "127.0.0.1".into();
        other.port = 7001;
        other.cport = 17001;
        other.config_epoch = 5;
        st.nodes.insert(other.id, other);
        for s in 0..10 {
            st.add_slot([b'a'; 40], s);
        }
        st.add_slot([b'b'; 40], 100);
        st.migrating.insert(3, [b'b'; 40]);
        let text = render(&st);
        assert!(text.ends_with("vars currentEpoch 5 lastVoteEpoch 0\n"));
        let dir = std::env::temp_dir().join(format!("moonshard-nodes-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("nodes.conf");
        save(&path, &text).unwrap();
        let back = load(&path, 7000, 17000).unwrap().unwrap();
        assert_eq!(back.myself, [b'a'; 40]);
        assert_eq!(back.current_epoch, 5);
        assert_eq!(back.me().config_epoch, 3);
        assert_eq!(back.me().numslots, 10);
        assert_eq!(back.owner[100], Some([b'b'; 40]));
        assert_eq!(back.migrating.get(&3), Some(&[b'b'; 40]));
        assert_eq!(render(&back), text);
        // Replaced whole: a shorter text leaves nothing of the longer one.
        let longer = format!("{text}{}", "x".repeat(300));
        save(&path, &longer).unwrap();
        save(&path, &text).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        assert!(std::fs::read_dir(&dir).unwrap().count() == 1, "no temporary file is left");
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(load(&path, 7000, 17000).unwrap().is_none());
    }
}
