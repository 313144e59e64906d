//! Redis's error texts that more than one place replies with, each defined
//! once. `Reply::err(TEXT)` adds the `ERR ` prefix; texts with their own code
//! (WRONGTYPE, CROSSSLOT, NOSCRIPT, ...) are whole and go to `Reply::error`.
//! A text used in one place only stays next to its use.

// Whole texts, with their own error code.
pub const WRONGTYPE: &str = "WRONGTYPE Operation against a key holding the wrong kind of value";
pub const CROSSSLOT: &str = "CROSSSLOT Keys in request don't hash to the same slot";
pub const NOSCRIPT: &str = "NOSCRIPT No matching script. Please use EVAL.";
pub const NOAUTH: &str = "NOAUTH Authentication required.";
pub const LOADING: &str = "LOADING Redis is loading the dataset in memory";
pub const MISCONF: &str = "MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist \
to disk. Commands that may modify the data set are disabled, because this instance is configured to report errors \
during writes if RDB snapshotting fails (stop-writes-on-bgsave-error option). Please check the Redis logs for \
details about the RDB error.";

// ERR texts (without the prefix).
pub const SYNTAX: &str = "syntax error";
pub const NOT_INTEGER: &str = "value is not an integer or out of range";
pub const NOT_FLOAT: &str = "value is not a valid float";
pub const NO_SUCH_KEY: &str = "no such key";
pub const OUT_OF_RANGE: &str = "value is out of range";
pub const OUT_OF_RANGE_POSITIVE: &str = "value is out of range, must be positive";
pub const OUT_OF_RANGE_I32: &str = "value is out of range, value must between -2147483648 and 2147483647";
pub const INVALID_CURSOR: &str = "invalid cursor";
pub const TIMEOUT_NEGATIVE: &str = "timeout is negative";
pub const TIMEOUT_NOT_INTEGER: &str = "timeout is not an integer or out of range";
pub const NUMKEYS_POSITIVE: &str = "numkeys should be greater than 0";
pub const COUNT_POSITIVE: &str = "count should be greater than 0";
pub const COUNT_GT_ZERO: &str = "COUNT must be > 0";
pub const LIMIT_NEGATIVE: &str = "LIMIT can't be negative";
pub const MIN_MAX_NOT_FLOAT: &str = "min or max is not a float";
pub const MIN_MAX_NOT_RANGE_ITEM: &str = "min or max not valid string range item";
pub const DB_INDEX_OUT_OF_RANGE: &str = "DB index is out of range";
pub const SAME_OBJECT: &str = "source and destination objects are the same";
pub const INCR_NAN: &str = "increment would produce NaN or Infinity";
pub const INCR_OVERFLOW: &str = "increment or decrement would overflow";
pub const ZSET_MEMBER_UNDECODABLE: &str = "could not decode requested zset member";
pub const NUMKEYS_TOO_MANY: &str = "Number of keys can't be greater than number of args";
pub const GETKEYS_ARITY: &str = "Invalid number of arguments specified for command";
pub const GETKEYS_ARGS: &str = "Invalid arguments specified for command";
pub const FUNCTION_NOT_FOUND: &str = "Function not found";
pub const RO_SCRIPT_WRITES: &str = "Can not execute a script with write flag using *_ro command.";
pub const NON_LOCAL_KEY: &str = "Script attempted to access a non local key in a cluster node";
pub const SCRIPT_DENIED: &str = "This Redis command is not allowed from script";
pub const SCRIPT_WRONG_ARITY: &str = "Wrong number of args calling Redis command from script";
/// moonshard's own: a command reached a place its declaration does not allow.
pub const INTERNAL_ROUTING: &str = "internal routing error";
