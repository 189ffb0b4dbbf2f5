//! `gatehouse`: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use gatehouse::cli::{self, Cli};

/// mimalloc rather than the system allocator: the store's writer copies sled's leaf nodes on
/// every write, and glibc's malloc took about a quarter of the CPU of a mass revocation
/// (docs/performance.md, the restart with 100,000 overdue grants). Built without transparent
/// huge pages (`no_thp`): with them each of its arenas is backed by 2 MiB pages as soon as it
/// is touched, and an idle Gatehouse held 70 MB instead of 27 MB; the revocation ran as fast.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cli::init_tracing(&cli.global);
    gatehouse::app::install_tls_provider();
    match cli::run(cli, cli::shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {}", cli::error_line(&err));
            ExitCode::FAILURE
        }
    }
}
