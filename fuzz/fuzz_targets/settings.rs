//! Settings files, read as the `orbita` commands read them (each from a real file, written
//! per input into a private temporary directory).
//!
//! The first byte picks the file, the rest is its text:
//! 0. `orbita serve --config x.toml` (`Settings::from_args`, then `sfu_config`, `limits`);
//! 1. `orbita coordinator --config x.toml`, 2. the same as JSON (`CoordinatorConfig::resolve`);
//! 3. `orbita node --node-config x.toml`, 4. the same as JSON (`NodeSettings::resolve`);
//! 5. `servers.json` (`parse_servers`); 6. `sessions_planned.json` (`load_plans`);
//! 7. `configuration.json` (`FileConfiguration::load`).
//!
//! Inputs naming `/dev`, `/proc` or `/sys` are skipped: settings may name files that are then
//! read (an operator's choice, not an attacker's), and a device would only stall the run.

#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use orbita_coordinator::config::{load_plans, parse_servers, FileConfiguration};
use orbita_server::cluster::coordinator::CoordinatorConfig;
use orbita_server::cluster::node::NodeSettings;
use orbita_server::cluster::{CoordinatorArgs, NodeArgs};
use orbita_server::{ServeArgs, Settings};

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("orbita-fuzz-settings-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a temporary directory");
        dir
    })
}

fn file(name: &str, text: &str) -> PathBuf {
    let path = dir().join(name);
    std::fs::write(&path, text).expect("the settings file is written");
    path
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    if ["/dev", "/proc", "/sys"].iter().any(|p| text.contains(p)) {
        return;
    }
    match mode % 8 {
        0 => {
            let args = ServeArgs {
                config: Some(file("serve.toml", text)),
                ..ServeArgs::default()
            };
            if let Ok(settings) = Settings::from_args(args) {
                let _ = settings.sfu_config();
                let _ = settings.limits();
            }
        }
        1 | 2 => {
            let name = if mode % 8 == 1 {
                "coordinator.toml"
            } else {
                "coordinator.json"
            };
            let args = CoordinatorArgs {
                config: Some(file(name, text)),
                ..CoordinatorArgs::default()
            };
            let _ = CoordinatorConfig::resolve(args);
        }
        3 | 4 => {
            let name = if mode % 8 == 3 {
                "node.toml"
            } else {
                "node.json"
            };
            let args = NodeArgs {
                node_config: Some(file(name, text)),
                ..NodeArgs::default()
            };
            let _ = NodeSettings::resolve(&args);
        }
        5 => {
            let _ = parse_servers(text);
        }
        6 => {
            let _ = load_plans(&file("sessions_planned.json", text));
        }
        _ => {
            let _ = FileConfiguration::load(&file("configuration.json", text));
        }
    }
});
