//! The production backends this binary was built with (cargo features
//! `kafka`, `mongodb`, `hbase`; `distributed` is all three), and the error
//! a flag that needs a missing one gets before anything runs.

/// The backends compiled in, e.g. `["kafka", "mongodb", "hbase"]`.
pub fn enabled() -> Vec<&'static str> {
    let mut on = Vec::new();
    if cfg!(feature = "kafka") {
        on.push("kafka");
    }
    if cfg!(feature = "mongodb") {
        on.push("mongodb");
    }
    if cfg!(feature = "hbase") {
        on.push("hbase");
    }
    on
}

/// The text of `--version`: the version and the backends compiled in.
pub static LONG_VERSION: std::sync::LazyLock<String> = std::sync::LazyLock::new(long_version);

fn long_version() -> String {
    let on = enabled();
    format!(
        "{}\nbackends: embedded{}{}",
        env!("CARGO_PKG_VERSION"),
        if on.is_empty() { "" } else { ", " },
        on.join(", ")
    )
}

/// The error for `flag` in a build without `feature`.
pub fn missing(feature: &str, flag: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "{flag} needs the `{feature}` backend, and this ecomflow was built without it \
         (`ecomflow --version` lists the backends built in): rebuild with \
         `cargo build --release --features distributed` (all three server backends) or \
         `--features {feature}`, or run the Docker image, which has them all"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{check_backends as check, Command};

    /// `args` parsed without the environment (the test script exports
    /// `ECOMFLOW_KAFKA_BROKERS` and the rest for other tests).
    fn parse(args: &[&str]) -> Command {
        use clap::{CommandFactory, FromArgMatches};
        let mut cli = crate::cli::Cli::command().mut_args(|a| a.env(None));
        let names: Vec<String> = cli
            .get_subcommands()
            .map(|s| s.get_name().to_string())
            .collect();
        for name in names {
            cli = cli.mut_subcommand(name, |s| s.mut_args(|a| a.env(None)));
        }
        let parsed = cli
            .try_get_matches_from(args)
            .and_then(|m| crate::cli::Cli::from_arg_matches(&m));
        match parsed {
            Ok(cli) => cli.command,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn embedded_runs_need_no_backend() {
        for args in [
            &["ecomflow", "replay"][..],
            &["ecomflow", "serve"],
            &["ecomflow", "batch"],
            &["ecomflow", "query", "top-customers"],
        ] {
            assert!(check(&parse(args)).is_ok(), "{args:?}");
        }
    }

    /// Each server flag passes exactly when its backend is built in, and
    /// the refusal names the flag, the feature and the rebuild command.
    #[test]
    fn a_server_flag_needs_its_backend() {
        let cases = [
            (
                &["ecomflow", "serve", "--kafka-brokers", "b:9092"][..],
                "kafka",
                "--kafka-brokers",
                cfg!(feature = "kafka"),
            ),
            (
                &["ecomflow", "batch", "--mongodb-uri", "mongodb://db:27017"],
                "mongodb",
                "--mongodb-uri",
                cfg!(feature = "mongodb"),
            ),
            (
                &["ecomflow", "ingest", "--hbase-thrift", "hbase:9090"],
                "hbase",
                "--hbase-thrift",
                cfg!(feature = "hbase"),
            ),
        ];
        for (args, feature, flag, built) in cases {
            match check(&parse(args)) {
                Ok(()) => assert!(built, "{args:?} passed without the {feature} feature"),
                Err(e) => {
                    assert!(!built, "{args:?} refused with the {feature} feature: {e}");
                    let msg = e.to_string();
                    assert!(msg.starts_with(flag), "{msg}");
                    assert!(msg.contains(&format!("`{feature}` backend")), "{msg}");
                    assert!(msg.contains("--features distributed"), "{msg}");
                }
            }
        }
        assert_eq!(
            long_version().lines().nth(1).map(str::to_string),
            Some(format!(
                "backends: embedded{}",
                enabled()
                    .iter()
                    .map(|b| format!(", {b}"))
                    .collect::<String>()
            ))
        );
    }
}
