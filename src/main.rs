use moonshard::storage::alloc::Mimalloc;
use moonshard::storage::memory::Counting;

// Counting wrapper: INFO's used_memory and the maxmemory check read its total.
#[global_allocator]
static GLOBAL: Counting<Mimalloc> = Counting(Mimalloc);

const USAGE: &str = "Usage: moonshard [/path/to/moonshard.conf] [--port N] [--bind ADDR...] [--shards N]
                 [--requirepass PASS] [--maxclients N] [--databases N] [--loglevel LEVEL]
                 [--<any config parameter> VALUE...]";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match moonshard::config::Config::from_args(&args) {
        Ok(c) => c,
        Err(e) if e == "help" => {
            println!("{USAGE}");
            return;
        }
        Err(e) if e == "version" => {
            println!("moonshard {} (Redis {} compatible)", env!("CARGO_PKG_VERSION"), moonshard::REDIS_VERSION);
            return;
        }
        Err(e) => {
            eprintln!("moonshard: {e}\n{USAGE}");
            std::process::exit(1);
        }
    };
    // Into the background before any thread starts (the runtime, the loader).
    if moonshard::process::background(&config) {
        moonshard::process::daemonize(&config);
    }
    if let Err(e) = moonshard::run(config) {
        eprintln!("moonshard: {e}");
        std::process::exit(1);
    }
}
