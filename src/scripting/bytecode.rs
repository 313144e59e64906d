//! Reads a compiled chunk (Lua 5.1's `string.dump` format) to learn whether
//! any of its functions assigns a global (`SETGLOBAL`). A script that never
//! does can run with the globals table itself as its environment: reads of
//! globals then hit the table directly instead of going through the
//! read-only proxy, and nothing can write to it (see `Vm::ensure_compiled`).

/// Lua 5.1's opcode for `name = value` on a global.
const OP_SETGLOBAL: u32 = 7;

/// Whether the dumped chunk `dump` provably has no `SETGLOBAL` in any of
/// its functions. Anything unexpected in the dump answers false (the safe
/// answer: the script keeps the proxy).
pub fn never_sets_globals(dump: &[u8]) -> bool {
    let mut r = Reader { buf: dump, pos: 0, int: 4, size_t: 8, number: 8, little: true };
    r.header().is_some() && r.function(0) == Some(false)
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    int: usize,
    size_t: usize,
    number: usize,
    little: bool,
}

impl Reader<'_> {
    fn bytes(&mut self, n: usize) -> Option<&[u8]> {
        let end = self.pos.checked_add(n)?;
        let s = self.buf.get(self.pos..end)?;
        self.pos = end;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    /// An unsigned integer of `n` bytes (at most 8) in the dump's byte order.
    fn uint(&mut self, n: usize) -> Option<u64> {
        if n > 8 {
            return None;
        }
        let little = self.little;
        let s = self.bytes(n)?;
        let mut v = 0u64;
        for i in 0..n {
            let b = if little { s[n - 1 - i] } else { s[i] };
            v = (v << 8) | b as u64;
        }
        Some(v)
    }

    /// A count (an `int`), refused when negative or beyond what is left.
    fn count(&mut self) -> Option<usize> {
        let n = self.uint(self.int)?;
        let n = usize::try_from(n).ok()?;
        (n <= self.buf.len()).then_some(n)
    }

    fn string(&mut self) -> Option<()> {
        let n = usize::try_from(self.uint(self.size_t)?).ok()?;
        self.bytes(n).map(|_| ())
    }

    fn header(&mut self) -> Option<()> {
        if self.bytes(4)? != b"\x1bLua" || self.byte()? != 0x51 || self.byte()? != 0 {
            return None;
        }
        self.little = self.byte()? == 1;
        self.int = self.byte()? as usize;
        self.size_t = self.byte()? as usize;
        let instruction = self.byte()?;
        self.number = self.byte()? as usize;
        let _integral = self.byte()?;
        (instruction == 4 && matches!(self.int, 4 | 8) && matches!(self.size_t, 4 | 8)).then_some(())
    }

    /// Reads one function (and its nested ones): whether any sets a global.
    fn function(&mut self, depth: u32) -> Option<bool> {
        if depth > 200 {
            return None;
        }
        self.string()?; // source
        self.bytes(2 * self.int)?; // linedefined, lastlinedefined
        self.bytes(4)?; // nups, numparams, is_vararg, maxstacksize
        let mut sets = false;
        for _ in 0..self.count()? {
            let op = self.uint(4)? as u32 & 0x3f;
            sets |= op == OP_SETGLOBAL;
        }
        for _ in 0..self.count()? {
            match self.byte()? {
                0 => {}
                1 => {
                    self.byte()?;
                }
                3 => {
                    self.bytes(self.number)?;
                }
                4 => self.string()?,
                _ => return None,
            }
        }
        for _ in 0..self.count()? {
            sets |= self.function(depth + 1)?;
        }
        // Debug information: line info, locals, upvalue names.
        let lines = self.count()?;
        self.bytes(lines.checked_mul(self.int)?)?;
        for _ in 0..self.count()? {
            self.string()?;
            self.bytes(2 * self.int)?;
        }
        for _ in 0..self.count()? {
            self.string()?;
        }
        Some(sets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlua::Lua;

    fn check(src: &str) -> bool {
        let lua = Lua::new();
        let f = lua.load(src).into_function().unwrap();
        let full = never_sets_globals(&f.dump(false));
        assert_eq!(full, never_sets_globals(&f.dump(true)), "{src}");
        full
    }

    #[test]
    fn finds_global_assignments() {
        assert!(check("return 1"));
        assert!(check("local x = 1 x = 2 return KEYS[1], redis.call('get', 'a'), tonumber(ARGV[1])"));
        assert!(check("local t = {} t.x = 1 KEYS[1] = 2 return t"));
        assert!(check("local function f() local g = function() return 1.5, 'x', true, nil end return g end return f"));
        assert!(!check("x = 1"));
        assert!(!check("function f() end"));
        assert!(!check("local function f() return function() y = 2 end end return f"));
        assert!(!check("local a = 'some string' .. 1.25 if a then z = true end"));
    }

    #[test]
    fn refuses_garbage() {
        assert!(!never_sets_globals(b""));
        assert!(!never_sets_globals(b"\x1bLua"));
        let lua = Lua::new();
        let dump = lua.load("local x = 1 return x").into_function().unwrap().dump(false);
        for cut in 0..dump.len() {
            assert!(!never_sets_globals(&dump[..cut]), "cut at {cut}");
        }
        let mut bad = dump.clone();
        bad[4] = 0x52;
        assert!(!never_sets_globals(&bad));
    }
}
