//! The `ecomflow` binary: thin wiring of the stage crates behind one CLI,
//! one module per subcommand ([`cmd`]).

mod alloc;
mod cli;
mod cmd;
mod features;
mod lock;
mod nightly;
mod pipeline;
mod priority;
mod servers;
mod stages;
mod threads;
mod ui;

use clap::Parser;
use cli::{Cli, Command};

fn main() -> std::process::ExitCode {
    alloc::tune();
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal;
    ui::set_progress_every(cli.progress_every);
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if cli.log_format == "json" {
        logs.json().init();
    } else {
        logs.with_ansi(std::io::stderr().is_terminal()).init();
    }
    if cli.check_config {
        return match cli.check() {
            Ok(()) => {
                println!("ok: the settings of this command are valid");
                std::process::ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::FAILURE
            }
        };
    }
    telemetry::build_info(
        env!("CARGO_PKG_VERSION"),
        option_env!("ECOMFLOW_GIT_REVISION").unwrap_or("unknown"),
    );
    if let Err(e) = cli::check_backends(&cli.command) {
        eprintln!("error: {e:#}");
        return std::process::ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Generate(args) => cmd::generate::run(args),
        Command::Import(args) => cmd::import::run(args),
        Command::Replay(args) => cmd::replay::run(args),
        Command::Ingest(args) => cmd::ingest::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Evaluate(args) => cmd::evaluate::run(args),
        Command::Batch(args) => cmd::batch::run(args),
        Command::Sql(args) => cmd::sql::run(args),
        Command::Serve(args) => cmd::serve::run(args),
        Command::Query(args) => cmd::query::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
