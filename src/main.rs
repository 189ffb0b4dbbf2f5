//! `gatehouse`: parse the command line, set up logging, run the command.

use std::process::ExitCode;

use clap::Parser;
use gatehouse::cli::{self, Cli};

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
