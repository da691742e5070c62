//! One process per data directory: a lock file (`ecomflow.lock`, an
//! advisory lock the OS drops when the process ends, however it ends),
//! taken before anything in the directory is opened or removed. Without it,
//! `replay --fresh` deleted a running process's files before any store
//! lock refused it.

use anyhow::Context;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

/// Holds the data directory for this process until dropped.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "ecomflow.lock";

/// Takes `dir`'s lock, or says which process holds it.
pub fn lock_data_dir(dir: &Path) -> anyhow::Result<DataDirLock> {
    crate::pipeline::check_data_dir(dir)?;
    let path = dir.join(LOCK_FILE);
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("opening the lock file {}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {
            // Who holds it, for the next process's message.
            let pid = std::process::id().to_string();
            file.set_len(0)
                .and_then(|()| file.rewind())
                .and_then(|()| file.write_all(pid.as_bytes()))
                .with_context(|| format!("writing the lock file {}", path.display()))?;
            Ok(DataDirLock { _file: file })
        }
        Err(TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another ecomflow process".to_string()
            } else {
                format!("another ecomflow process (pid {holder})")
            };
            anyhow::bail!(
                "--data-dir {} is in use by {who}: stop it first, or use another --data-dir",
                dir.display()
            )
        }
        Err(TryLockError::Error(e)) => {
            Err(e).with_context(|| format!("locking {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_pid() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = lock_data_dir(dir.path()).expect("first lock");
        let err = lock_data_dir(dir.path())
            .expect_err("second lock")
            .to_string();
        assert!(
            err.contains("is in use by another ecomflow process"),
            "{err}"
        );
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        drop(first);
        lock_data_dir(dir.path()).expect("free again once dropped");
    }

    #[test]
    fn a_data_dir_that_is_a_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").expect("write");
        let err = format!("{:#}", lock_data_dir(&file).expect_err("a file"));
        assert!(
            err.contains(&format!(
                "--data-dir {} is a file, not a directory",
                file.display()
            )),
            "{err}"
        );
        // A missing one is created.
        let fresh = dir.path().join("new").join("data");
        lock_data_dir(&fresh).expect("created");
        assert!(fresh.is_dir());
    }
}
