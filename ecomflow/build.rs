//! Stamps the binary with its git revision (`ecomflow_build_info`):
//! `ECOMFLOW_GIT_REVISION` from the environment when set (a Docker build
//! without `.git`), otherwise `git rev-parse`, otherwise "unknown".

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=ECOMFLOW_GIT_REVISION");
    let git_dir = std::path::Path::new("../.git");
    if git_dir.join("HEAD").exists() {
        println!("cargo:rerun-if-changed=../.git/HEAD");
        println!("cargo:rerun-if-changed=../.git/refs/heads");
    }
    let revision = std::env::var("ECOMFLOW_GIT_REVISION")
        .ok()
        .filter(|r| !r.is_empty())
        .or_else(|| {
            let out = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            out.status
                .success()
                .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
        })
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=ECOMFLOW_GIT_REVISION={revision}");
}
