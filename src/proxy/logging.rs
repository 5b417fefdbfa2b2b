//! Process-wide log level, settable at start (`-l`) and at run time (admin `POST /logging`).

use std::sync::OnceLock;

use tracing_subscriber::{filter::LevelFilter, reload, EnvFilter, Registry};

type Handle = reload::Handle<EnvFilter, Registry>;

static HANDLE: OnceLock<Handle> = OnceLock::new();
static CURRENT: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Envoy's level names → tracing's. `critical` has no tracing equivalent; it maps to `error`.
pub fn tracing_level(envoy_level: &str) -> Option<LevelFilter> {
    Some(match envoy_level {
        "trace" => LevelFilter::TRACE,
        "debug" => LevelFilter::DEBUG,
        "info" => LevelFilter::INFO,
        "warning" | "warn" => LevelFilter::WARN,
        "error" | "critical" => LevelFilter::ERROR,
        "off" => LevelFilter::OFF,
        _ => return None,
    })
}

/// Installs the global subscriber (logs go to stderr, as Envoy's do). Safe to call once.
pub fn init(envoy_level: &str) {
    use tracing_subscriber::prelude::*;
    let level = tracing_level(envoy_level).unwrap_or(LevelFilter::INFO);
    let (filter, handle) = reload::Layer::new(EnvFilter::default().add_directive(level.into()));
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false);
    if tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .try_init()
        .is_ok()
    {
        let _ = HANDLE.set(handle);
        *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = envoy_level.to_string();
    }
}

/// Changes the level at run time; unknown names are ignored (the admin handler validates).
pub fn set_level(envoy_level: &str) {
    if let (Some(handle), Some(level)) = (HANDLE.get(), tracing_level(envoy_level)) {
        let _ = handle.modify(|f| *f = EnvFilter::default().add_directive(level.into()));
    }
    *CURRENT.lock().unwrap_or_else(|e| e.into_inner()) = envoy_level.to_string();
}

pub fn current_level() -> String {
    let current = CURRENT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    if current.is_empty() {
        "info".into()
    } else {
        current
    }
}
