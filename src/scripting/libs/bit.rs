//! The `bit` library (LuaBitOp 1.0 semantics, as Redis ships it): 32-bit
//! operations on Lua numbers, results as signed 32-bit numbers.

use super::arg::Args;
use mlua::{Lua, MultiValue, Table};

/// LuaBitOp's conversion: add 2^52+2^51 so the low 32 bits of the double's
/// representation hold the rounded integer (modulo 2^32). Values outside the
/// trick's range wrap the same way they do in C.
pub fn to_bits(n: f64) -> u32 {
    (n + 6_755_399_441_055_744.0).to_bits() as u32
}

/// An argument as LuaBitOp reads it: `lua_tonumber`, and a type error only
/// when the conversion gave 0 from something that is not a number.
fn barg(lua: &Lua, a: &Args, i: usize) -> mlua::Result<u32> {
    let n = a.number_or_zero(lua, i)?;
    let b = to_bits(n.unwrap_or(0.0));
    if b == 0 && n.is_none() {
        return Err(a.type_error(lua, i, "number"));
    }
    Ok(b)
}

fn ret(b: u32) -> f64 {
    b as i32 as f64
}

type Op = fn(u32, u32) -> u32;

fn unary(lua: &Lua, name: &'static str, f: fn(u32) -> u32) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let a = Args::new(&args, name);
        Ok(ret(f(barg(lua, &a, 1)?)))
    })
}

fn fold(lua: &Lua, name: &'static str, f: Op) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let a = Args::new(&args, name);
        let mut acc = barg(lua, &a, 1)?;
        // From the last argument down, as LuaBitOp does: with several bad
        // arguments, the error names the last one.
        for i in (2..=args.len()).rev() {
            acc = f(acc, barg(lua, &a, i)?);
        }
        Ok(ret(acc))
    })
}

fn shift(lua: &Lua, name: &'static str, f: Op) -> mlua::Result<mlua::Function> {
    lua.create_function(move |lua, args: MultiValue| {
        let a = Args::new(&args, name);
        let x = barg(lua, &a, 1)?;
        let n = barg(lua, &a, 2)? & 31;
        Ok(ret(f(x, n)))
    })
}

fn tohex(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let a = Args::new(&args, "tohex");
    let mut b = barg(lua, &a, 1)?;
    let mut n: i64 = if args.len() < 2 { 8 } else { barg(lua, &a, 2)? as i32 as i64 };
    let digits: &[u8; 16] = if n < 0 {
        n = -n;
        b"0123456789ABCDEF"
    } else {
        b"0123456789abcdef"
    };
    // C negates INT_MIN into itself and then clamps it to 8 digits.
    let n = n.min(8) as usize;
    let mut out = [0u8; 8];
    for i in (0..n).rev() {
        out[i] = digits[(b & 15) as usize];
        b >>= 4;
    }
    lua.create_string(&out[..n])
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("tobit", unary(lua, "tobit", |x| x)?)?;
    t.raw_set("bnot", unary(lua, "bnot", |x| !x)?)?;
    t.raw_set("bswap", unary(lua, "bswap", u32::swap_bytes)?)?;
    t.raw_set("band", fold(lua, "band", |a, b| a & b)?)?;
    t.raw_set("bor", fold(lua, "bor", |a, b| a | b)?)?;
    t.raw_set("bxor", fold(lua, "bxor", |a, b| a ^ b)?)?;
    t.raw_set("lshift", shift(lua, "lshift", |x, n| x << n)?)?;
    t.raw_set("rshift", shift(lua, "rshift", |x, n| x >> n)?)?;
    t.raw_set("arshift", shift(lua, "arshift", |x, n| ((x as i32) >> n) as u32)?)?;
    t.raw_set("rol", shift(lua, "rol", |x, n| x.rotate_left(n))?)?;
    t.raw_set("ror", shift(lua, "ror", |x, n| x.rotate_right(n))?)?;
    t.raw_set("tohex", lua.create_function(tohex)?)?;
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tobit_wraps_like_luabitop() {
        assert_eq!(to_bits(1.0), 1);
        assert_eq!(to_bits(-1.0) as i32, -1);
        assert_eq!(to_bits(4294967296.0 + 5.0), 5);
        assert_eq!(to_bits(2.5), 2); // round half to even
        assert_eq!(to_bits(3.5), 4);
    }
}
