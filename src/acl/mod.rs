//! Users and permissions, with Redis 7.0's semantics: the users (`default`
//! plus those ACL SETUSER, the config file's `user` lines or the ACL file
//! define), authentication, the permission check every command passes
//! (`commands::dispatch::acl_check`), and the ACL log.
//!
//! A user's rules are an immutable `User`; a change builds a new one and
//! swaps it into the user's entry, then bumps a global generation. Each
//! connection keeps the rules of its user (`ClientAcl`) and looks at the
//! generation before every command: one load and compare, and for a user
//! allowed everything (the default user) nothing more.

pub mod file;
pub mod index;
pub mod log;
pub mod user;

pub use user::{Denied, RuleError, User};

use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The id of the default user's entry (connections start with it).
pub const DEFAULT_USER_ID: u64 = 1;

static NEXT_ID: AtomicU64 = AtomicU64::new(DEFAULT_USER_ID + 1);

/// A user as connections refer to it: its name and its current rules.
pub struct UserEntry {
    /// Unique for the process: a user deleted and created again is another entry.
    pub id: u64,
    pub name: Bytes,
    rules: RwLock<Arc<User>>,
    deleted: AtomicBool,
}

impl UserEntry {
    fn new(id: u64, name: Bytes, rules: User) -> Arc<UserEntry> {
        Arc::new(UserEntry { id, name, rules: RwLock::new(Arc::new(rules)), deleted: AtomicBool::new(false) })
    }

    pub fn rules(&self) -> Arc<User> {
        self.rules.read().clone()
    }

    pub fn deleted(&self) -> bool {
        self.deleted.load(Ordering::Acquire)
    }
}

/// A user ACL SETUSER changed, with the rules it had before (None: created).
pub type Changed = (Arc<UserEntry>, Option<Arc<User>>);

pub struct Acl {
    users: RwLock<BTreeMap<Bytes, Arc<UserEntry>>>,
    default: Arc<UserEntry>,
    /// Bumped after every change of any user.
    generation: AtomicU64,
    /// The default user has no password and is on: connections start authenticated.
    default_open: AtomicBool,
    pub log: Mutex<log::Log>,
}

impl Default for Acl {
    fn default() -> Self {
        Acl::new()
    }
}

impl Acl {
    pub fn new() -> Acl {
        let default = UserEntry::new(DEFAULT_USER_ID, Bytes::from_static(b"default"), User::new_default());
        let mut users = BTreeMap::new();
        users.insert(default.name.clone(), default.clone());
        Acl {
            users: RwLock::new(users),
            default,
            generation: AtomicU64::new(1),
            default_open: AtomicBool::new(true),
            log: Mutex::new(log::Log::default()),
        }
    }

    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    fn changed(&self) {
        let d = self.default.rules();
        self.default_open.store(d.nopass && d.enabled, Ordering::Release);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn default_user(&self) -> Arc<UserEntry> {
        self.default.clone()
    }

    /// Whether a connection that has not authenticated must (Redis's
    /// authRequired): the default user has a password or is off.
    pub fn auth_required(&self) -> bool {
        !self.default_open.load(Ordering::Acquire)
    }

    pub fn get(&self, name: &[u8]) -> Option<Arc<UserEntry>> {
        self.users.read().get(name).cloned()
    }

    /// The user whose entry has `id` (None once removed).
    pub fn by_id(&self, id: u64) -> Option<Arc<UserEntry>> {
        if id == DEFAULT_USER_ID {
            return Some(self.default.clone());
        }
        self.users.read().values().find(|e| e.id == id).cloned()
    }

    /// Every user with its rules, ordered by name.
    pub fn users(&self) -> Vec<(Bytes, Arc<User>)> {
        self.users.read().values().map(|e| (e.name.clone(), e.rules())).collect()
    }

    /// Checks that the user `name` exists, is enabled and that `accepts`
    /// its rules (AUTH: the password matches); on success calls `bind` with
    /// the user while deletions wait, so a connection is never bound to a
    /// user removed meanwhile without being found by the removal.
    pub fn authenticate(
        &self,
        name: &[u8],
        accepts: impl FnOnce(&User) -> bool,
        bind: impl FnOnce(&Arc<UserEntry>),
    ) -> bool {
        let users = self.users.read();
        let Some(entry) = users.get(name) else {
            return false;
        };
        let rules = entry.rules();
        if !rules.enabled || !accepts(&rules) {
            return false;
        }
        bind(entry);
        true
    }

    /// `requirepass`: the default user's password (None: nopass).
    pub fn set_default_password(&self, pass: Option<&[u8]>) {
        let mut rules = (*self.default.rules()).clone();
        let _ = rules.apply(b"resetpass", false);
        match pass {
            Some(p) => {
                let mut op = b">".to_vec();
                op.extend_from_slice(p);
                let _ = rules.apply(&op, false);
            }
            None => {
                let _ = rules.apply(b"nopass", false);
            }
        }
        *self.default.rules.write() = Arc::new(rules);
        self.changed();
    }

    /// ACL SETUSER: applies every rule to a copy of the user (a new user if
    /// none has the name), all or nothing. On success returns the entry
    /// and the rules it had before (None for a new user).
    pub fn setuser(&self, name: &[u8], ops: &[Bytes], pubsub_all: bool) -> Result<Changed, Vec<u8>> {
        if name.iter().any(|&c| matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0)) {
            return Err(b"ERR Usernames can't contain spaces or null characters".to_vec());
        }
        let merged = user::merge_selectors(ops).map_err(|j| {
            let mut e = b"ERR Unmatched parenthesis in acl selector starting at '".to_vec();
            e.extend_from_slice(crate::protocol::c_str(&ops[j]));
            e.extend_from_slice(b"'.");
            e
        })?;
        let mut users = self.users.write();
        let existing = users.get(name).cloned();
        let before = existing.as_ref().map(|e| e.rules());
        let mut temp = before.as_deref().cloned().unwrap_or_else(|| User::new(pubsub_all));
        for op in &merged {
            if let Err(err) = temp.apply(op, pubsub_all) {
                let mut e = b"ERR Error in ACL SETUSER modifier '".to_vec();
                e.extend_from_slice(crate::protocol::c_str(op));
                e.extend_from_slice(b"': ");
                e.extend_from_slice(err.message().as_bytes());
                return Err(e);
            }
        }
        let entry = match existing {
            Some(e) => {
                *e.rules.write() = Arc::new(temp);
                e
            }
            None => {
                let name = Bytes::copy_from_slice(name);
                let e = UserEntry::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), name.clone(), temp);
                users.insert(name, e.clone());
                e
            }
        };
        drop(users);
        self.changed();
        Ok((entry, before))
    }

    /// ACL DELUSER: removes the named users (the default user cannot be);
    /// returns the removed entries.
    pub fn deluser(&self, names: &[Bytes]) -> Result<Vec<Arc<UserEntry>>, &'static str> {
        if names.iter().any(|n| &n[..] == b"default") {
            return Err("ERR The 'default' user cannot be removed");
        }
        let mut users = self.users.write();
        let mut removed = Vec::new();
        for n in names {
            if let Some(e) = users.remove(&n[..]) {
                e.deleted.store(true, Ordering::Release);
                removed.push(e);
            }
        }
        drop(users);
        if !removed.is_empty() {
            self.changed();
        }
        Ok(removed)
    }

    /// ACL LOAD and start-up: `users` replaces every user. The default user
    /// keeps its entry (connections stay with it) and takes the new rules;
    /// every other old entry is removed, and returned.
    pub fn replace_all(&self, mut new: BTreeMap<Bytes, User>) -> Vec<Arc<UserEntry>> {
        let default_rules = new.remove(&b"default"[..]).unwrap_or_else(User::new_default);
        let mut users = self.users.write();
        let old = std::mem::take(&mut *users);
        *self.default.rules.write() = Arc::new(default_rules);
        users.insert(self.default.name.clone(), self.default.clone());
        for (name, rules) in new {
            let e = UserEntry::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), name.clone(), rules);
            users.insert(name, e);
        }
        let removed: Vec<Arc<UserEntry>> = old.into_values().filter(|e| e.id != DEFAULT_USER_ID).collect();
        for e in &removed {
            e.deleted.store(true, Ordering::Release);
        }
        drop(users);
        self.changed();
        removed
    }

    /// Start-up: the users of the config file's `user` lines join the
    /// default user (whose rules a `user default` line replaces).
    pub fn add_configured(&self, new: BTreeMap<Bytes, User>) {
        let mut users = self.users.write();
        for (name, rules) in new {
            if name[..] == b"default"[..] {
                *self.default.rules.write() = Arc::new(rules);
                continue;
            }
            let e = UserEntry::new(NEXT_ID.fetch_add(1, Ordering::Relaxed), name.clone(), rules);
            users.insert(name, e);
        }
        drop(users);
        self.changed();
    }

    /// Whether the default user has no password (protected mode looks at it).
    pub fn default_nopass(&self) -> bool {
        self.default.rules().nopass
    }

    /// Records a refusal or failed authentication in the ACL log.
    pub fn log(&self, e: log::Entry, max_len: usize) {
        self.log.lock().add(e, max_len);
    }
}

/// A connection's user and a copy of its rules, refreshed when any user
/// changed.
#[derive(Clone)]
pub struct ClientAcl {
    entry: Arc<UserEntry>,
    rules: Arc<User>,
    gen: u64,
    unrestricted: bool,
}

impl ClientAcl {
    /// Bound to `entry`; the first command reads its rules afresh.
    pub fn new(entry: Arc<UserEntry>) -> ClientAcl {
        let rules = entry.rules();
        let unrestricted = rules.unrestricted();
        ClientAcl { entry, rules, gen: 0, unrestricted }
    }

    /// Picks up rule changes. False when the user was deleted: the
    /// connection must close without running anything more.
    #[inline]
    pub fn refresh(&mut self, acl: &Acl) -> bool {
        let g = acl.generation();
        if g == self.gen {
            return true;
        }
        self.reload(g)
    }

    #[cold]
    fn reload(&mut self, g: u64) -> bool {
        if self.entry.deleted() {
            return false;
        }
        self.rules = self.entry.rules();
        self.unrestricted = self.rules.unrestricted();
        self.gen = g;
        true
    }

    /// Whether no user changed since the rules were last read.
    pub fn is_current(&self, acl: &Acl) -> bool {
        acl.generation() == self.gen
    }

    /// Allowed everything: no check needed.
    #[inline]
    pub fn unrestricted(&self) -> bool {
        self.unrestricted
    }

    pub fn rules(&self) -> &User {
        &self.rules
    }

    pub fn name(&self) -> &Bytes {
        &self.entry.name
    }

    pub fn entry(&self) -> &Arc<UserEntry> {
        &self.entry
    }
}
