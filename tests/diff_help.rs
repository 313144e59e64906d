//! The HELP replies of container commands are part of what clients and
//! people read: each must equal redis-server 7.0's, line for line.

mod common;

use common::Diff;

#[test]
fn help_replies_equal_redis() {
    let debug = ["--enable-debug-command", "yes"];
    let Some(mut d) = Diff::start_with(&debug, &debug) else { return };
    for cmd in [
        "ACL", "CLIENT", "COMMAND", "CONFIG", "FUNCTION", "LATENCY", "MEMORY", "MODULE", "OBJECT", "PUBSUB", "SCRIPT",
        "SLOWLOG", "XGROUP", "XINFO",
    ] {
        let help = d.check(&[cmd, "HELP"]).expect("HELP answers");
        let redis::Value::Array(lines) = help else { panic!("{cmd} HELP is not an array") };
        assert!(lines.len() > 4, "{cmd} HELP has only {} lines", lines.len());
        // Lowercase works too, and extra arguments are an error in both.
        d.check(&[&cmd.to_lowercase(), "help"]).expect("help answers");
        let _ = d.check(&[cmd, "HELP", "extra"]);
    }
    d.check(&["DEBUG", "HELP"]).expect("DEBUG HELP answers");
}
