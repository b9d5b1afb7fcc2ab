//! The `pds` command line.
//!
//! Exit codes: 0 success; 1 the server failed while running, or a health
//! check failed; 2 the configuration is unusable (or the command line is
//! wrong), with one line on standard error naming the setting.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pds::config::{Config, ConfigError, data_dir, secrets};
use pds::logging::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "pds", version, about = "An AT Protocol Personal Data Server")]
struct Cli {
    /// The configuration file [default: ./pds.toml if it exists, else built-in
    /// defaults]. Environment variables (PDS_*) override it.
    #[arg(long, global = true, value_name = "PATH", env = "PDS_CONFIG")]
    config: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server until SIGTERM or SIGINT.
    Serve,
    /// Ask the server configured here for /xrpc/_health; exit 0 if it answers, 1 if not.
    Healthcheck,
    /// Write one account's data (repo.car, blobs/, preferences.json, account.json) into a
    /// directory, from this server's data directory (works while the server runs).
    Export {
        /// The account: its DID or handle.
        account: String,
        /// Where to write (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// A did:plc directory for development and tests.
    Plc {
        #[command(subcommand)]
        command: PlcCommand,
    },
}

#[derive(Debug, Subcommand)]
enum PlcCommand {
    /// Run a PLC directory until SIGTERM or SIGINT.
    Serve {
        /// TCP port to listen on; 0 picks a free one.
        #[arg(long, default_value_t = 2582)]
        port: u16,
        /// IP address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: IpAddr,
        /// The SQLite database of operations (created if missing).
        #[arg(long, value_name = "PATH", default_value = "plc.sqlite")]
        db: PathBuf,
    },
}

/// How a command failed, which decides the exit code.
enum Failure {
    Config(ConfigError),
    Runtime(String),
}

impl From<ConfigError> for Failure {
    fn from(e: ConfigError) -> Failure {
        Failure::Config(e)
    }
}

/// glibc's malloc, left alone, tripled the server's resident memory under load: each thread
/// that allocates gets an arena of its own that keeps what is freed, and after each 16 MiB
/// scrypt buffer is freed it raises its mmap threshold, so the next ones come from (and stay in)
/// those arenas. Two arenas and a fixed 128 KiB threshold (large buffers are mapped and
/// returned at once) keep it near what is in use (measured: 120 MiB -> 43 MiB after the load
/// benchmark). Must run before any thread starts.
fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve => serve(cli.config),
        Command::Healthcheck => healthcheck(cli.config),
        Command::Export { account, out } => export(cli.config, &account, &out),
        Command::Plc {
            command: PlcCommand::Serve { port, bind, db },
        } => plc_serve(bind, port, &db),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Config(e)) => {
            eprintln!("config error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn serve(config_path: Option<PathBuf>) -> Result<(), Failure> {
    logging::init(LogFormat::from_env(&env_var)?);
    let config = Config::load(config_path.as_deref(), &env_var)?;
    data_dir::prepare(&config)?;
    let secrets = secrets::resolve(&config)?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        did = %config.server.service_did,
        dev_mode = config.server.dev_mode,
        data_directory = %config.storage.data_directory.display(),
        "starting"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(pds::server::run(config, secrets))
        .map_err(|e| Failure::Runtime(e.to_string()))
}

fn healthcheck(config_path: Option<PathBuf>) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    let body = pds::healthcheck::check(&config).map_err(Failure::Runtime)?;
    println!("{body}");
    Ok(())
}

fn export(config_path: Option<PathBuf>, account: &str, out: &Path) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let summary = runtime
        .block_on(pds::export::export_account(&config, account, out))
        .map_err(Failure::Runtime)?;
    println!(
        "exported {} to {}: {} repo blocks, {} blobs, {} preferences",
        summary.did,
        out.display(),
        summary.repo_blocks,
        summary.blobs,
        summary.preferences
    );
    Ok(())
}

fn plc_serve(bind: IpAddr, port: u16, db: &Path) -> Result<(), Failure> {
    logging::init(LogFormat::from_env(&env_var)?);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime
        .block_on(pds_plc::server::run(bind, port, db))
        .map_err(|e| Failure::Runtime(e.to_string()))
}
