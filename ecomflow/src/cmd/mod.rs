//! One module per subcommand, each with a `run(args)`: what the command
//! does, in order. The wiring they share is in [`crate::pipeline`], what
//! they print in [`crate::ui`].

pub mod batch;
pub mod bench;
pub mod evaluate;
pub mod generate;
pub mod import;
pub mod ingest;
pub mod query;
pub mod replay;
pub mod serve;
pub mod sql;

use anyhow::Context;
use stage::Shutdown;

/// The process's root [`Shutdown`] token, stopped by Ctrl-C (or SIGTERM);
/// a second one exits at once.
pub fn ctrl_c() -> anyhow::Result<Shutdown> {
    let root = Shutdown::new();
    let token = root.clone();
    ctrlc::set_handler(move || {
        if token.is_stopped() {
            // Second Ctrl-C: the user really wants out.
            std::process::exit(130);
        }
        eprintln!("\nStopping after the current batch (Ctrl-C again to quit at once)...");
        token.stop();
    })
    .context("installing the Ctrl-C handler")?;
    Ok(root)
}
