//! Readiness of the process: each part that can fail in a way the process
//! waits out (a store or the log unreachable, checkpoints failing) says so
//! here while it lasts, and `/readyz` answers 503 with the reasons.
//! Liveness (`/livez`) only says the process answers.

use std::collections::BTreeMap;
use std::sync::{LazyLock, Mutex};

static UNREADY: LazyLock<Mutex<BTreeMap<String, String>>> = LazyLock::new(Mutex::default);

/// `component` cannot do its work now, for `reason` (retrying).
pub fn set_unready(component: &str, reason: impl Into<String>) {
    let mut map = UNREADY.lock().unwrap_or_else(|e| e.into_inner());
    map.insert(component.to_string(), reason.into());
}

/// `component` works again.
pub fn set_ready(component: &str) {
    let mut map = UNREADY.lock().unwrap_or_else(|e| e.into_inner());
    map.remove(component);
}

/// What is not ready, `component: reason` each, in name order.
pub fn unready() -> Vec<String> {
    let map = UNREADY.lock().unwrap_or_else(|e| e.into_inner());
    map.iter().map(|(c, r)| format!("{c}: {r}")).collect()
}

/// The body and status of `/readyz`: 200 `{"status":"ok"}`, or 503
/// `{"status":"not_ready","reason":"..."}`.
pub fn readiness() -> (u16, String) {
    let reasons = unready();
    if reasons.is_empty() {
        (200, serde_json::json!({"status": "ok"}).to_string())
    } else {
        (
            503,
            serde_json::json!({"status": "not_ready", "reason": reasons.join("; ")}).to_string(),
        )
    }
}
