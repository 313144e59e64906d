//! The libraries Redis gives scripts besides the standard ones, written here
//! in Rust: cjson, cmsgpack, bit, struct, and the deterministic math.random;
//! and `tonumber` with a fast path for plain integers.

pub(crate) mod arg;
pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod random;
pub mod struct_;
pub mod tonumber;

/// The registry name of the prelude's table of read-only views (proxy ->
/// its metatable, the proxied table at `__index`).
pub(crate) const VIEWS: &str = "moonshard.views";

/// The table a read-only view shows (`_G`, `string`, `redis` ...), for
/// encoders that walk tables raw, as Redis's walk the real tables; any other
/// table as it is. A table without a metatable costs one check.
pub(crate) fn seen_through(lua: &mlua::Lua, t: mlua::Table) -> mlua::Table {
    if t.metatable().is_none() {
        return t;
    }
    let shown = lua
        .named_registry_value::<Option<mlua::Table>>(VIEWS)
        .ok()
        .flatten()
        .and_then(|views| views.raw_get::<Option<mlua::Table>>(&t).ok().flatten())
        .and_then(|m| m.raw_get::<Option<mlua::Table>>("__index").ok().flatten());
    shown.unwrap_or(t)
}
