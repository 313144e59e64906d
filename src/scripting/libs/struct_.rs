//! The `struct` library Redis ships (Roberto Ierusalimschy's lua_struct,
//! with Redis's overflow fixes): `pack`, `unpack` and `size` of binary
//! records described by a format string.
//!
//! Formats: `<` `>` `=` endianness, `!n` alignment, `x` pad byte, `b B h H
//! l L T` integers, `iN IN` integers of N bytes (at most 32), `f d` floats,
//! `s` zero-terminated string, `cN` fixed string (`c0`: length from the
//! string, or in unpack from the previous value). Sizes are checked so a
//! huge or overflowing count is an error, never a crash.

use super::arg::{to_number, Args};
use mlua::{Lua, MultiValue, Table, Value};

const MAX_INT_SIZE: usize = 32;
/// The platform's maximum alignment (offsetof a double after a char).
const MAX_ALIGN: usize = 8;
/// Lua 5.1's LUAI_MAXCSTACK: how many values a C function may leave on
/// the stack.
const MAX_STACK: usize = 8000;
/// Beyond Redis: the most strings one unpack returns (each is an mlua
/// reference until returned, and mlua's reference stack is limited).
const MAX_STRINGS: usize = 2000;

#[derive(Clone, Copy, PartialEq)]
enum Endian {
    Little,
    Big,
}

struct Header {
    endian: Endian,
    align: usize,
}

impl Header {
    fn new() -> Header {
        Header { endian: Endian::Little, align: 1 }
    }
}

/// A cursor over the format (which ends at its first NUL, as a C string).
struct Fmt<'a> {
    s: &'a [u8],
    i: usize,
}

impl Fmt<'_> {
    fn next(&mut self) -> Option<u8> {
        let c = *self.s.get(self.i)?;
        self.i += 1;
        Some(c)
    }

    fn getnum(&mut self, lua: &Lua, default: usize) -> mlua::Result<usize> {
        if !self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            return Ok(default);
        }
        let mut a: i64 = 0;
        while let Some(d) = self.s.get(self.i).filter(|c| c.is_ascii_digit()) {
            let d = (d - b'0') as i64;
            if a > i32::MAX as i64 / 10 || a * 10 > i32::MAX as i64 - d {
                return Err(lua_err(lua, "integral size overflow"));
            }
            a = a * 10 + d;
            self.i += 1;
        }
        Ok(a as usize)
    }

    fn optsize(&mut self, lua: &Lua, opt: u8) -> mlua::Result<usize> {
        Ok(match opt {
            b'B' | b'b' | b'x' => 1,
            b'H' | b'h' => 2,
            b'L' | b'l' | b'T' | b'd' => 8,
            b'f' => 4,
            b'c' => self.getnum(lua, 1)?,
            b'i' | b'I' => {
                let sz = self.getnum(lua, 4)?;
                if sz > MAX_INT_SIZE {
                    return Err(lua_err(lua, format!("integral size {sz} is larger than limit of {MAX_INT_SIZE}")));
                }
                sz
            }
            _ => 0,
        })
    }

    /// The options that change the header; anything else is invalid.
    fn control(&mut self, lua: &Lua, a: &Args, opt: u8, h: &mut Header) -> mlua::Result<()> {
        match opt {
            b' ' => {}
            b'>' => h.endian = Endian::Big,
            b'<' => h.endian = Endian::Little,
            b'!' => {
                let n = self.getnum(lua, MAX_ALIGN)?;
                if n == 0 || n & (n - 1) != 0 {
                    return Err(lua_err(lua, format!("alignment {n} is not a power of 2")));
                }
                h.align = n;
            }
            _ => {
                let msg = format!("invalid format option '{}'", String::from_utf8_lossy(&[opt]));
                return Err(a.error(lua, 1, &msg));
            }
        }
        Ok(())
    }
}

fn lua_err(lua: &Lua, msg: impl AsRef<str>) -> mlua::Error {
    crate::scripting::api::lua_error(lua, msg)
}

/// Padding before an item of `size` at offset `len` (the C expression,
/// wrapping included, for sizes that are not powers of two).
fn gettoalign(len: usize, h: &Header, opt: u8, size: usize) -> usize {
    if size == 0 || opt == b'c' {
        return 0;
    }
    let size = size.min(h.align);
    size.wrapping_sub(len & size.wrapping_sub(1)) & size.wrapping_sub(1)
}

/// The format as C sees it: up to its first NUL.
fn format(s: &mlua::String) -> Vec<u8> {
    let b = s.as_bytes();
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    b[..end].to_vec()
}

/// The value of pack's argument `i`: past the last argument, the first
/// slot reads as nil (lua_struct pushes a nil marker there) and the rest
/// as no value.
fn pack_number(lua: &Lua, a: &Args, i: usize) -> mlua::Result<f64> {
    if i == a.len() + 1 {
        return Err(a.error(lua, i, "number expected, got nil"));
    }
    a.check_number(lua, i)
}

fn pack_string(lua: &Lua, a: &Args, i: usize) -> mlua::Result<mlua::String> {
    if i == a.len() + 1 {
        return Err(a.error(lua, i, "string expected, got nil"));
    }
    a.check_string(lua, i)
}

/// C's conversion of a double to the 64-bit pattern lua_struct writes.
fn int_bits(n: f64) -> u64 {
    if n < 0.0 {
        crate::scripting::convert::c_cast(n) as u64
    } else if n < 18_446_744_073_709_551_616.0 {
        n as u64
    } else if n.is_nan() {
        // x86-64's out-of-range conversion (cvttsd2si's "integer indefinite").
        1 << 63
    } else {
        // 2^64 and above (inf included): compilers convert n - 2^63 (out of
        // range: 2^63) and flip the top bit back, which gives 0.
        0
    }
}

fn put_int(out: &mut Vec<u8>, mut v: u64, endian: Endian, size: usize) {
    let start = out.len();
    for _ in 0..size {
        out.push((v & 0xff) as u8);
        v >>= 8;
    }
    if endian == Endian::Big {
        out[start..].reverse();
    }
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8], endian: Endian) {
    let start = out.len();
    out.extend_from_slice(bytes);
    if endian == Endian::Big {
        out[start..].reverse();
    }
}

fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<mlua::String> {
    let a = Args::new(&args, "pack");
    let fs = a.check_string(lua, 1)?;
    let fb = format(&fs);
    let mut fmt = Fmt { s: &fb, i: 0 };
    let mut h = Header::new();
    let mut arg = 2;
    let mut total: usize = 0;
    let mut out = Vec::new();
    while let Some(opt) = fmt.next() {
        let mut size = fmt.optsize(lua, opt)?;
        let pad = gettoalign(total, &h, opt, size);
        total = total.wrapping_add(pad);
        out.resize(out.len() + pad, 0);
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                let n = pack_number(lua, &a, arg)?;
                arg += 1;
                put_int(&mut out, int_bits(n), h.endian, size);
            }
            b'x' => out.push(0),
            b'f' => {
                let n = pack_number(lua, &a, arg)?;
                arg += 1;
                put_bytes(&mut out, &(n as f32).to_le_bytes(), h.endian);
            }
            b'd' => {
                let n = pack_number(lua, &a, arg)?;
                arg += 1;
                put_bytes(&mut out, &n.to_le_bytes(), h.endian);
            }
            b'c' | b's' => {
                let s = pack_string(lua, &a, arg)?;
                arg += 1;
                let s = s.as_bytes();
                if size == 0 {
                    size = s.len();
                }
                if s.len() < size {
                    // lua_struct names the argument after the one it read.
                    return Err(a.error(lua, arg, "string too short"));
                }
                out.extend_from_slice(&s[..size]);
                if opt == b's' {
                    out.push(0);
                    size += 1;
                }
            }
            _ => fmt.control(lua, &a, opt, &mut h)?,
        }
        total = total.wrapping_add(size);
    }
    lua.create_string(&out)
}

fn get_int(data: &[u8], endian: Endian, signed: bool, size: usize) -> f64 {
    let mut l: u64 = 0;
    let mut push = |b: u8| l = (l << 8) | b as u64;
    if endian == Endian::Big {
        data.iter().take(size).for_each(|&b| push(b));
    } else {
        data.iter().take(size).rev().for_each(|&b| push(b));
    }
    if !signed {
        return l as f64;
    }
    // The C shift count is taken modulo 64, as x86 does.
    let mask = u64::MAX.wrapping_shl((size as u32).wrapping_mul(8).wrapping_sub(1));
    if l & mask != 0 {
        l |= mask;
    }
    l as i64 as f64
}

fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<MultiValue> {
    let a = Args::new(&args, "unpack");
    let fs = a.check_string(lua, 1)?;
    let ds = a.check_string(lua, 2)?;
    let data = ds.as_bytes();
    let ld = data.len();
    // Redis's fix reads the offset unsigned: 0 is refused here, negative
    // offsets become huge and fail the length check below.
    let start = a.opt_integer(lua, 3, 1)? as u64;
    if start == 0 {
        return Err(a.error(lua, 3, "offset must be 1 or greater"));
    }
    let mut pos = (start - 1) as usize;
    let fb = format(&fs);
    let mut fmt = Fmt { s: &fb, i: 0 };
    let mut h = Header::new();
    let mut out: Vec<Value> = Vec::new();
    let mut strings = 0;
    let too_short = |size: usize, pos: usize| size > ld || pos > ld - size;
    while let Some(opt) = fmt.next() {
        let mut size = fmt.optsize(lua, opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if too_short(size, pos) {
            return Err(a.error(lua, 2, "data string too short"));
        }
        if a.len() + out.len() + 2 > MAX_STACK || strings > MAX_STRINGS {
            return Err(lua_err(lua, "stack overflow (too many results)"));
        }
        let at = &data[pos..];
        match opt {
            b'b' | b'B' | b'h' | b'H' | b'l' | b'L' | b'T' | b'i' | b'I' => {
                out.push(Value::Number(get_int(at, h.endian, opt.is_ascii_lowercase(), size)));
            }
            b'x' => {}
            b'f' => {
                let mut b = [0u8; 4];
                b.copy_from_slice(&at[..4]);
                if h.endian == Endian::Big {
                    b.reverse();
                }
                out.push(Value::Number(f32::from_le_bytes(b) as f64));
            }
            b'd' => {
                let mut b = [0u8; 8];
                b.copy_from_slice(&at[..8]);
                if h.endian == Endian::Big {
                    b.reverse();
                }
                out.push(Value::Number(f64::from_le_bytes(b)));
            }
            b'c' => {
                if size == 0 {
                    let prev = match out.last() {
                        Some(v) => to_number(lua, v)?,
                        None => None,
                    };
                    let Some(n) = prev else {
                        return Err(lua_err(lua, "format 'c0' needs a previous size"));
                    };
                    size = int_bits(n) as usize;
                    out.pop();
                    if too_short(size, pos) {
                        return Err(a.error(lua, 2, "data string too short"));
                    }
                }
                out.push(Value::String(lua.create_string(&data[pos..pos + size])?));
                strings += 1;
            }
            b's' => {
                let Some(end) = at.iter().position(|&c| c == 0) else {
                    return Err(lua_err(lua, "unfinished string in data"));
                };
                out.push(Value::String(lua.create_string(&at[..end])?));
                strings += 1;
                size = end + 1;
            }
            _ => fmt.control(lua, &a, opt, &mut h)?,
        }
        pos = pos.wrapping_add(size);
    }
    out.push(Value::Number(pos.wrapping_add(1) as i64 as f64));
    Ok(MultiValue::from_vec(out))
}

fn size(lua: &Lua, args: MultiValue) -> mlua::Result<f64> {
    let a = Args::new(&args, "size");
    let fs = a.check_string(lua, 1)?;
    let fb = format(&fs);
    let mut fmt = Fmt { s: &fb, i: 0 };
    let mut h = Header::new();
    let mut pos: usize = 0;
    while let Some(opt) = fmt.next() {
        let size = fmt.optsize(lua, opt)?;
        pos = pos.wrapping_add(gettoalign(pos, &h, opt, size));
        if opt == b's' {
            return Err(a.error(lua, 1, "option 's' has no fixed size"));
        }
        if opt == b'c' && size == 0 {
            return Err(a.error(lua, 1, "option 'c0' has no fixed size"));
        }
        if !opt.is_ascii_alphanumeric() {
            fmt.control(lua, &a, opt, &mut h)?;
        }
        pos = pos.wrapping_add(size);
    }
    Ok(pos as i64 as f64)
}

pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.raw_set("pack", super::arg::exact_function(lua, pack)?)?;
    t.raw_set("unpack", lua.create_function(unpack)?)?;
    t.raw_set("size", lua.create_function(size)?)?;
    Ok(t)
}
