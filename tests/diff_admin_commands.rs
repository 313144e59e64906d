//! Commands a standalone redis-server 7.0 with no replicas, no modules and
//! cluster mode off answers in fixed ways: ROLE, FAILOVER, MODULE, ASKING,
//! READONLY/READWRITE and the CLUSTER administration subcommands. moonshard
//! must answer each exactly as redis-server does.

mod common;

use common::Diff;

#[test]
fn admin_commands_answer_as_a_standalone_redis() {
    let Some(mut d) = Diff::start(&[]) else { return };
    for line in [
        "ROLE",
        "ROLE extra",
        "FAILOVER",
        "FAILOVER ABORT",
        "FAILOVER TO h 1",
        "FAILOVER TO h notaport",
        "FAILOVER TIMEOUT 0",
        "FAILOVER TIMEOUT 10 FORCE",
        "FAILOVER bogus",
        "FAILOVER TO h 1 ABORT",
        "FAILOVER FORCE FORCE",
        "MODULE LIST",
        "MODULE HELP",
        "MODULE LOAD /nonexistent.so",
        "MODULE UNLOAD nosuch",
        "MODULE",
        "ASKING",
        "READONLY",
        "READWRITE",
        "CLUSTER ADDSLOTS 1 2",
        "CLUSTER COUNTKEYSINSLOT 5",
        "CLUSTER COUNTKEYSINSLOT x",
        "CLUSTER GETKEYSINSLOT x 1",
        "CLUSTER HELP",
        "SELECT 1",
        "CLUSTER GETKEYSINSLOT 5 10",
        "CLUSTER LINKS",
        "CLUSTER RESET",
        "CLUSTER SETSLOT 1 STABLE",
        "CLUSTER ADDSLOTSRANGE x y",
        "CLUSTER DELSLOTS x",
        "CLUSTER SETSLOT x y",
        "CLUSTER MEET x y",
    ] {
        let args: Vec<&str> = line.split(' ').collect();
        let _ = d.check(&args);
    }
}
