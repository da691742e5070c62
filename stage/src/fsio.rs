//! Files that are replaced whole, and how durable a write is.
//!
//! Every file ecomflow writes for later (the aggregator checkpoint, the
//! snapshot's Parquet files and manifest, the report, Kafka-mode markers, a
//! query's `--out`) goes through [`Replace`]: a new temporary file beside the
//! target, then a rename over it. A reader never sees half a file, and an
//! existing path (a symlink included) is replaced, never written through.
//! With [`Durability::Machine`] the file is synced before the rename and its
//! directory after it, so the new content survives a power loss once
//! [`Replace::commit`] returns.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// How hard a write pushes data towards the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Durability {
    /// Into the OS buffers: survives a crash of the process (the default).
    #[default]
    Process,
    /// `fsync`/`fdatasync` before anything that depends on the write: also
    /// survives a crash of the machine, at a cost per write.
    Machine,
}

/// A file being written under a temporary name beside its target. Dropped
/// without [`Replace::commit`], it removes the temporary file.
#[derive(Debug)]
pub struct Replace {
    tmp: PathBuf,
    target: PathBuf,
    done: bool,
}

impl Replace {
    /// Creates the temporary file (and the target's directory); write to the
    /// returned file, then hand it to [`Replace::commit`].
    pub fn begin(target: &Path) -> io::Result<(Replace, File)> {
        let dir = parent_of(target);
        std::fs::create_dir_all(&dir)?;
        let name = target.file_name().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{}: not a file name", target.display()),
            )
        })?;
        // Hidden and not ending in the target's extension: a query that
        // lists `*.parquet` in the directory does not see it.
        let tmp = dir.join(format!(
            ".{}.tmp-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let file = match create_new(&tmp) {
            // Left by a process that had this pid and crashed: ours to take.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                std::fs::remove_file(&tmp)?;
                create_new(&tmp)?
            }
            other => other?,
        };
        let guard = Replace {
            tmp,
            target: target.to_path_buf(),
            done: false,
        };
        Ok((guard, file))
    }

    /// Syncs `file` if `durability` asks for it, renames it over the target
    /// and syncs the directory; returns the file's size.
    pub fn commit(mut self, file: File, durability: Durability) -> io::Result<u64> {
        let size = file.metadata()?.len();
        if durability == Durability::Machine {
            file.sync_all()?;
        }
        drop(file);
        std::fs::rename(&self.tmp, &self.target)?;
        self.done = true;
        if durability == Durability::Machine {
            sync_dir(&parent_of(&self.target))?;
        }
        Ok(size)
    }
}

impl Drop for Replace {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Replaces `target` with `bytes` (see [`Replace`]).
pub fn replace_with(target: &Path, bytes: &[u8], durability: Durability) -> io::Result<u64> {
    use std::io::Write;
    let (guard, mut file) = Replace::begin(target)?;
    file.write_all(bytes)?;
    guard.commit(file, durability)
}

/// Makes a directory's entries (a rename, a new or removed file) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn create_new(path: &Path) -> io::Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replaced_file_has_the_new_bytes_and_no_temporary_is_left() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("sub").join("state.bin");
        for (bytes, durability) in [
            (&b"first"[..], Durability::Process),
            (b"2nd", Durability::Machine),
        ] {
            assert_eq!(
                replace_with(&target, bytes, durability).expect("replace"),
                bytes.len() as u64
            );
            assert_eq!(std::fs::read(&target).expect("read"), bytes);
        }
        let names: Vec<_> = std::fs::read_dir(target.parent().expect("parent"))
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("state.bin")]);
    }

    #[test]
    #[cfg(unix)]
    fn a_symlink_at_the_target_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().expect("tempdir");
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").expect("write");
        let target = dir.path().join("report.svg");
        std::os::unix::fs::symlink(&victim, &target).expect("symlink");
        replace_with(&target, b"<svg/>", Durability::Process).expect("replace");
        assert_eq!(std::fs::read_to_string(&victim).expect("read"), "keep");
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "<svg/>");
        assert!(!std::fs::symlink_metadata(&target)
            .expect("meta")
            .file_type()
            .is_symlink());
    }

    #[test]
    fn an_abandoned_write_leaves_nothing_and_keeps_the_old_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let target = dir.path().join("manifest.json");
        std::fs::write(&target, "old").expect("write");
        {
            let (_guard, mut file) = Replace::begin(&target).expect("begin");
            std::io::Write::write_all(&mut file, b"half").expect("write");
            // Dropped here, as on an error path.
        }
        assert_eq!(std::fs::read_to_string(&target).expect("read"), "old");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 1);
    }
}
