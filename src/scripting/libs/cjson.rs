//! (stub)
use mlua::{Lua, Table};

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    lua.create_table()
}
