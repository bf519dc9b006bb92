//! The `jabberwock` binary: parse the command line and config, then run the server or a
//! user command. Config and usage mistakes exit with code 2 and say which file, key or
//! argument is wrong.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use jabberwock_server::cli::{self, Cli};
use jabberwock_server::config::{Config, LogFormat};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match &cli.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(err) => return fail(2, &err.to_string()),
        },
        None => Config::default(),
    };
    let filter = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.is_empty() => {
            EnvFilter::try_new(&spec).map_err(|e| format!("RUST_LOG: {e}"))
        }
        _ => EnvFilter::try_new(&config.log.level)
            .map_err(|e| format!("{}: key log.level: {e}", config_name(&config))),
    };
    let filter = match filter {
        Ok(f) => f,
        Err(message) => return fail(2, &message),
    };
    // The filter sits behind a reload handle so SIGHUP can change `log.level` (reload.rs);
    // RUST_LOG, when set, stays in force.
    let from_env = std::env::var("RUST_LOG").is_ok_and(|spec| !spec.is_empty());
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let json = config.log.format == LogFormat::Json;
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::stderr().is_terminal())
    });
    // One object a line: timestamp, level, target, and the event's fields (its message
    // among them) under "fields".
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_writer(std::io::stderr)
    });
    tracing_subscriber::registry()
        .with(filter)
        .with(text_layer)
        .with(json_layer)
        .init();
    let log_reload: jabberwock_server::reload::LogReload = Arc::new(move |level: &str| {
        if from_env {
            return Err("RUST_LOG is set and overrides log.level".into());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(1, &format!("cannot start the async runtime: {e}")),
    };
    match cli.command {
        None => match runtime.block_on(jabberwock_server::run_with(config, Some(log_reload))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(2, &err.to_string()),
        },
        Some(command) => match runtime.block_on(cli::run_admin_command(&config, command)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(err.exit_code(), &err.to_string()),
        },
    }
}

fn config_name(config: &Config) -> String {
    config
        .source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<default config>".into())
}

fn fail(code: u8, message: &str) -> ExitCode {
    eprintln!("jabberwock: {message}");
    ExitCode::from(code)
}
