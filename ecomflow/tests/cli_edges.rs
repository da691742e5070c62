//! The command line as a user meets it: an error for work that has nothing
//! to work on, an example in every help page, only the flags a command
//! uses, and compose's empty values accepted. Each run has a deadline.
// Test code: a failed unwrap is a failed assertion, with its location.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Runs the binary with `args` and the environment `env` (no other
/// `ECOMFLOW_*` variable), killed after 120 s.
fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ecomflow"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ECOMFLOW_")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    support::output_within(&mut cmd, Duration::from_secs(120))
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn work_with_nothing_stored_is_an_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let out = run(&["batch", "--data-dir", d], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("nothing is stored"),
        "{}",
        stderr(&out)
    );
    let out = run(&["bench", "--data-dir", d], &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("no users in the"), "{}", stderr(&out));
}

#[test]
fn every_help_page_has_an_example_and_only_its_flags() {
    for command in [
        "generate", "replay", "ingest", "bench", "evaluate", "batch", "serve", "sql", "query",
    ] {
        let out = run(&[command, "--help"], &[]);
        let help = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{command}");
        assert!(
            help.contains("Example"),
            "{command} --help has no example:\n{help}"
        );
        assert!(
            help.contains(&format!("ecomflow {command}")),
            "{command}:\n{help}"
        );
    }
    for command in ["query", "bench", "batch", "sql"] {
        let help = String::from_utf8_lossy(&run(&[command, "--help"], &[]).stdout).into_owned();
        for flag in ["--kafka-brokers", "--partitions", "--kafka-property"] {
            assert!(!help.contains(flag), "{command} --help lists {flag}");
        }
    }
}

#[test]
fn speeds_too_slow_are_errors_and_empty_is_full_speed() {
    let out = run(&["replay", "--speed", "1e-15", "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("out of range"), "{}", stderr(&out));
    let out = run(&["replay", "--check-config"], &[("ECOMFLOW_SPEED", "")]);
    assert!(out.status.success(), "{}", stderr(&out));
}

#[test]
fn the_mongodb_password_never_shows_in_help() {
    let uri = "mongodb://app:hunter2-secret@db:27017/";
    let out = run(&["ingest", "--help"], &[("ECOMFLOW_MONGODB_URI", uri)]);
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(!all.contains("hunter2-secret"), "{all}");
}

/// `replay --fresh` beside a running process is refused before it removes
/// anything: the running process keeps its files.
#[test]
fn fresh_is_refused_while_another_process_holds_the_data_dir() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path().to_str().expect("utf-8 path");
    let small = [
        "--users",
        "40",
        "--products",
        "30",
        "--categories",
        "4",
        "--sessions",
        "600",
        "--transactions",
        "150",
        "--days",
        "5",
    ];
    let mut publish = vec!["replay", "--publish-only", "--data-dir", d];
    publish.extend(small);
    let out = run(&publish, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = dir.path().join("log");
    assert!(log.is_dir());
    let mut serve = Command::new(env!("CARGO_BIN_EXE_ecomflow"))
        .args(["serve", "--data-dir", d, "--http", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("serve");
    // The lock file holds the server's pid once it has the directory.
    let lock = dir.path().join("ecomflow.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).unwrap_or_default().trim() != serve.id().to_string() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "serve did not take the lock"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut fresh = vec!["replay", "--fresh", "--data-dir", d];
    fresh.extend(small);
    let out = run(&fresh, &[]);
    let _ = serve.kill();
    let _ = serve.wait();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("is in use by another ecomflow process"),
        "{}",
        stderr(&out)
    );
    assert!(log.is_dir(), "the running process's log was removed");
    assert!(
        std::fs::read_dir(&log)
            .map(|mut e| e.next().is_some())
            .unwrap_or(false),
        "the running process's log was emptied"
    );
}
