//! The `pds` command line.
//!
//! Exit codes: 0 success; 1 the server failed while running, a health check
//! failed, an account command (migrate, recover, rotation-key) failed, or an
//! operator command failed (a backup incomplete or refused, a restore refused, a
//! repo failing verify-repos); 2 the configuration is unusable (or the command
//! line is wrong), with one line on standard error naming the setting; 3 an account command is waiting for the
//! code the host e-mailed (run it again with `--plc-token`) or, for a did:web,
//! for its owner to publish the DID document it wrote (then run it again).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use pds::config::{Config, ConfigError, data_dir, secrets};
use pds::logging::{self, LogFormat};
use pds::migrate;

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
    /// Move an account from another host to this one (or between any two hosts): creates it
    /// here, copies the repo, blobs and preferences, points the DID here, activates it here and
    /// deactivates it there. Resumable: after any failure, run the same command again. The
    /// password is read from PDS_ACCOUNT_PASSWORD, or asked for.
    Migrate {
        /// The account on the old host: handle, DID or e-mail.
        account: String,
        /// The old host's URL (https://old.example.com).
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new host's URL [default: this server, at the address configured here].
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// The code the old host e-mailed (the first run asks for it and stops); also read from
        /// PDS_PLC_TOKEN, which keeps it out of the process list.
        #[arg(
            long,
            value_name = "CODE",
            env = "PDS_PLC_TOKEN",
            hide_env_values = true
        )]
        plc_token: Option<String>,
        /// The handle on the new host [default: the current one].
        #[arg(long)]
        handle: Option<String>,
        /// The e-mail address on the new host [default: the current one].
        #[arg(long)]
        email: Option<String>,
        /// An invite code, if the new host asks for one.
        #[arg(long, value_name = "CODE")]
        invite_code: Option<String>,
        /// A rotation key you hold (did:key), listed first in the DID (repeatable).
        #[arg(long, value_name = "DID_KEY")]
        add_rotation_key: Vec<String>,
        /// Move even if blobs the records reference are missing on the old host too.
        #[arg(long)]
        allow_missing_blobs: bool,
        /// Where the migration keeps its state [default: <data directory>/migrations].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
        /// The did:plc directory, read for the DID's current rotation keys [default: the one
        /// configured here].
        #[arg(long, value_name = "URL")]
        plc_url: Option<String>,
    },
    /// Bring an account back from a `pds export` backup when its old host is gone, with a
    /// rotation key you hold (see `pds rotation-key`). Resumable. The password for the account
    /// here is read from PDS_ACCOUNT_PASSWORD, or asked for.
    Recover {
        /// The directory `pds export` wrote.
        #[arg(long, value_name = "DIR")]
        backup: PathBuf,
        /// The file holding your rotation key (as `pds rotation-key generate` wrote it).
        #[arg(long, value_name = "PATH")]
        rotation_key_file: PathBuf,
        /// The host to recover onto [default: this server, at the address configured here].
        #[arg(long, value_name = "URL")]
        to: Option<String>,
        /// The did:plc directory [default: the one configured here].
        #[arg(long, value_name = "URL")]
        plc_url: Option<String>,
        /// The handle on the new host [default: the backup's].
        #[arg(long)]
        handle: Option<String>,
        /// The e-mail address on the new host [default: the backup's].
        #[arg(long)]
        email: Option<String>,
        /// An invite code, if the host asks for one.
        #[arg(long, value_name = "CODE")]
        invite_code: Option<String>,
        /// Recover even if blobs the records reference are not in the backup.
        #[arg(long)]
        allow_missing_blobs: bool,
    },
    /// A did:plc rotation key of your own: make one, or add one to an account.
    RotationKey {
        #[command(subcommand)]
        command: RotationKeyCommand,
    },
    /// Back up the whole data directory into a new or empty directory while the server runs
    /// (or not): a consistent snapshot of every SQLite database (SQLite's online backup), the
    /// blobs the snapshot references (each checked against its CID), dev mode's secrets.toml,
    /// and a manifest. Exits 1 if a referenced blob could not be copied (the backup says which).
    Backup {
        /// Where to write (created if missing; must be empty).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Restore a `pds backup` into the configured data directory (and blob directory), which
    /// must be missing or empty; stop the server first. Every database and blob is checked
    /// against the manifest or its CID on the way.
    Restore {
        /// The directory `pds backup` wrote.
        #[arg(long, value_name = "DIR")]
        from: PathBuf,
    },
    /// Check every repo in the data directory (read-only; works while the server runs): each
    /// block against its CID, the commit signature against the account's key, the MST and its
    /// records, the record index and the referenced blobs. One line per failing repo; exits 1
    /// if any fails.
    VerifyRepos {
        /// Repos checked at once [default: one per CPU core].
        #[arg(long, value_name = "N")]
        jobs: Option<usize>,
    },
    /// The operator's commands, through this server's admin API (it must be running): accounts,
    /// invite codes, crawl requests, handle checks. Uses the admin password the configuration
    /// gives the server.
    Admin {
        /// The server [default: this server, at the address configured here].
        #[arg(long, value_name = "URL", global = true)]
        url: Option<String>,
        #[command(subcommand)]
        command: AdminCommand,
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

#[derive(Debug, Subcommand)]
enum AdminCommand {
    /// Accounts: list, create, take down, restore, delete, reset a password.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Invite codes.
    Invite {
        #[command(subcommand)]
        command: InviteCommand,
    },
    /// Asks relays to crawl this server (com.atproto.sync.requestCrawl).
    RequestCrawl {
        /// The relays [default: PDS_CRAWLERS].
        relays: Vec<String>,
    },
    /// Tells why a handle does or does not resolve: its DNS TXT record, its
    /// /.well-known/atproto-did file, and whether its DID document claims it back. Exit code 1
    /// if it does not work.
    CheckHandle { handle: String },
}

#[derive(Debug, Subcommand)]
enum AccountCommand {
    /// One line per account: DID, handle, e-mail, status.
    List {
        /// Only accounts whose e-mail address contains this.
        #[arg(long)]
        email: Option<String>,
    },
    /// Creates an account (with an invite code when the server requires one). The password is
    /// read from PDS_ACCOUNT_PASSWORD, else one is generated and printed.
    Create {
        #[arg(long)]
        handle: String,
        #[arg(long)]
        email: String,
    },
    /// Takes an account down: its sessions end, its repo is no longer served or written.
    Takedown {
        /// A handle or DID.
        account: String,
        /// The operator's reference (a report number, a note).
        #[arg(long = "ref", default_value = "takedown")]
        reference: String,
    },
    /// Lifts a takedown.
    Restore { account: String },
    /// Deletes an account and everything it holds here, for good.
    Delete {
        account: String,
        /// Confirms the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// Sets a new password (PDS_ACCOUNT_PASSWORD, else a generated one, printed); the account's
    /// sessions end.
    ResetPassword { account: String },
}

#[derive(Debug, Subcommand)]
enum InviteCommand {
    /// Makes invite codes and prints them, one a line.
    Create {
        #[arg(long, default_value_t = 1)]
        count: u32,
        /// How many accounts each code may create.
        #[arg(long, default_value_t = 1)]
        uses: u32,
    },
}

#[derive(Debug, Subcommand)]
enum RotationKeyCommand {
    /// Make a new secp256k1 key; writes its private part to a new file (mode 600) and prints
    /// its did:key.
    Generate {
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Put a key first among an account's rotation keys, through its host (which e-mails a
    /// code: the first run asks for it and stops). The password is read from
    /// PDS_ACCOUNT_PASSWORD, or asked for.
    Add {
        /// The account: handle, DID or e-mail.
        account: String,
        /// The key, as a did:key.
        #[arg(long, value_name = "DID_KEY")]
        key: String,
        /// The account's host [default: this server, at the address configured here].
        #[arg(long, value_name = "URL")]
        host: Option<String>,
        /// The code the host e-mailed; also read from PDS_PLC_TOKEN.
        #[arg(
            long,
            value_name = "CODE",
            env = "PDS_PLC_TOKEN",
            hide_env_values = true
        )]
        plc_token: Option<String>,
        /// The did:plc directory [default: the one configured here].
        #[arg(long, value_name = "URL")]
        plc_url: Option<String>,
        /// Where the signed operation is kept until submitted [default: <data
        /// directory>/migrations].
        #[arg(long, value_name = "DIR")]
        state_dir: Option<PathBuf>,
    },
}

/// How a command failed, which decides the exit code.
enum Failure {
    Config(ConfigError),
    Runtime(String),
    /// An account command stopped to wait for an e-mailed code or a did:web document (said on
    /// standard output).
    WaitingForCode,
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
        Command::Migrate {
            account,
            from,
            to,
            plc_token,
            handle,
            email,
            invite_code,
            add_rotation_key,
            allow_missing_blobs,
            state_dir,
            plc_url,
        } => {
            let local = LocalDefaults::new(cli.config);
            account_command(|password| async move {
                let options = migrate::MigrateOptions {
                    to: local.url(to)?,
                    state_dir: local.state_dir(state_dir)?,
                    from,
                    account,
                    password,
                    handle,
                    email,
                    invite_code,
                    plc_token: plc_token.map(migrate::Secret::new),
                    plc_url: local.plc_url(plc_url)?,
                    add_rotation_keys: add_rotation_key,
                    allow_missing_blobs,
                };
                match migrate::migrate(&options).await.map_err(runtime)? {
                    migrate::Outcome::Migrated(_) => Ok(()),
                    migrate::Outcome::WaitingForPlcToken { .. }
                    | migrate::Outcome::WaitingForDidDocument { .. } => {
                        Err(Failure::WaitingForCode)
                    }
                }
            })
        }
        Command::Recover {
            backup,
            rotation_key_file,
            to,
            plc_url,
            handle,
            email,
            invite_code,
            allow_missing_blobs,
        } => {
            let local = LocalDefaults::new(cli.config);
            account_command(|password| async move {
                let options = migrate::recover::RecoverOptions {
                    rotation_key: migrate::rotation_key::read(&rotation_key_file)
                        .map_err(runtime)?,
                    to: local.url(to)?,
                    plc_url: local.plc_url(plc_url)?,
                    backup,
                    password,
                    handle,
                    email,
                    invite_code,
                    allow_missing_blobs,
                };
                migrate::recover::recover(&options).await.map_err(runtime)?;
                Ok(())
            })
        }
        Command::RotationKey {
            command: RotationKeyCommand::Generate { out },
        } => migrate::rotation_key::generate(&out)
            .map(|key| println!("{}", key.did_key()))
            .map_err(runtime),
        Command::RotationKey {
            command:
                RotationKeyCommand::Add {
                    account,
                    key,
                    host,
                    plc_token,
                    plc_url,
                    state_dir,
                },
        } => {
            let local = LocalDefaults::new(cli.config);
            account_command(|password| async move {
                let options = migrate::rotation_key::AddOptions {
                    state_dir: local.state_dir(state_dir)?,
                    host: local.url(host)?,
                    plc_url: local.plc_url(plc_url)?,
                    account,
                    password,
                    key,
                    plc_token: plc_token.map(migrate::Secret::new),
                };
                match migrate::rotation_key::add(&options)
                    .await
                    .map_err(runtime)?
                {
                    migrate::rotation_key::AddOutcome::Added => Ok(()),
                    migrate::rotation_key::AddOutcome::WaitingForPlcToken => {
                        Err(Failure::WaitingForCode)
                    }
                }
            })
        }
        Command::Admin { url, command } => admin(cli.config, url, command),
        Command::Backup { out } => backup(cli.config, &out),
        Command::Restore { from } => restore(cli.config, &from),
        Command::VerifyRepos { jobs } => verify_repos(cli.config, jobs),
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
        Err(Failure::WaitingForCode) => ExitCode::from(3),
    }
}

fn runtime(e: impl std::fmt::Display) -> Failure {
    Failure::Runtime(e.to_string())
}

/// What an account command takes from this server's configuration when it is not given: the
/// server's address, its data directory, its did:plc directory. Loaded only when needed, so
/// the commands also run where no server is configured, given every URL.
struct LocalDefaults {
    path: Option<PathBuf>,
}

impl LocalDefaults {
    fn new(path: Option<PathBuf>) -> LocalDefaults {
        LocalDefaults { path }
    }

    fn config(&self) -> Result<Config, Failure> {
        Ok(Config::load(self.path.as_deref(), &env_var)?)
    }

    /// `given`, or this server at its local address.
    fn url(&self, given: Option<String>) -> Result<String, Failure> {
        match given {
            Some(url) => Ok(url),
            None => Ok(format!(
                "http://{}",
                pds::healthcheck::local_addr(&self.config()?)
            )),
        }
    }

    /// `given`, or `<data directory>/migrations`.
    fn state_dir(&self, given: Option<PathBuf>) -> Result<PathBuf, Failure> {
        match given {
            Some(dir) => Ok(dir),
            None => Ok(self.config()?.storage.data_directory.join("migrations")),
        }
    }

    fn plc_url(&self, given: Option<String>) -> Result<String, Failure> {
        match given {
            Some(url) => Ok(url),
            None => Ok(self.config()?.identity.plc_url),
        }
    }
}

/// Runs an account command: reads the account password (PDS_ACCOUNT_PASSWORD, else asked for
/// on the terminal), then runs `command` with it on a single-threaded runtime.
fn account_command<F, Fut>(command: F) -> Result<(), Failure>
where
    F: FnOnce(migrate::Secret) -> Fut,
    Fut: std::future::Future<Output = Result<(), Failure>>,
{
    let password = match env_var("PDS_ACCOUNT_PASSWORD") {
        Some(password) => password,
        None => pds::migrate::password_prompt::ask("Account password: ").map_err(runtime)?,
    };
    let password = migrate::Secret::new(password);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(command(password))
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

fn serve(config_path: Option<PathBuf>) -> Result<(), Failure> {
    let telemetry = logging::init_with_telemetry(LogFormat::from_env(&env_var)?, &env_var)?;
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
    let served = runtime
        .block_on(pds::server::run(config, secrets))
        .map_err(|e| Failure::Runtime(e.to_string()));
    if let Some(telemetry) = telemetry {
        // What is still buffered goes out before the process ends.
        telemetry.shutdown();
    }
    served
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

/// `pds admin ...`: see `pds::admin_cli`.
fn admin(
    config_path: Option<PathBuf>,
    url: Option<String>,
    command: AdminCommand,
) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Runtime(format!("cannot start the async runtime: {e}")))?;
    let url = url.unwrap_or_else(|| format!("http://{}", pds::healthcheck::local_addr(&config)));
    rt.block_on(async move {
        // Only the admin password is needed: as configured, or dev mode's generated one.
        let connect = || -> Result<pds::admin_cli::Admin, Failure> {
            let password = match &config.secrets.admin_password {
                Some(password) => password.clone(),
                None => secrets::resolve(&config)?.admin_password,
            };
            pds::admin_cli::Admin::new(&url, &password).map_err(runtime)
        };
        match command {
            AdminCommand::CheckHandle { handle } => {
                let report = pds::admin_cli::check_handle::check(&config, &handle)
                    .await
                    .map_err(Failure::Runtime)?;
                for line in &report.lines {
                    say(line.clone());
                }
                if !report.works {
                    return Err(Failure::Runtime(format!(
                        "{handle} does not work as a handle"
                    )));
                }
            }
            AdminCommand::RequestCrawl { relays } => {
                let relays = if relays.is_empty() {
                    config.sync.crawlers.clone()
                } else {
                    relays
                };
                if relays.is_empty() {
                    return Err(Failure::Runtime(
                        "no relay given and none configured (PDS_CRAWLERS)".to_owned(),
                    ));
                }
                let hostname = pds::state::crawl_hostname(&config.server.public_url);
                let answers = pds::admin_cli::request_crawl(&relays, &hostname).await;
                let failed = answers.iter().filter(|(_, ok)| !ok).count();
                for (line, _) in answers {
                    say(line);
                }
                if failed > 0 {
                    return Err(Failure::Runtime(format!(
                        "{failed} relay(s) refused or failed"
                    )));
                }
            }
            AdminCommand::Invite {
                command: InviteCommand::Create { count, uses },
            } => {
                for code in connect()?
                    .create_invites(count, uses)
                    .await
                    .map_err(runtime)?
                {
                    say(code);
                }
            }
            AdminCommand::Account { command } => {
                let admin = connect()?;
                account_command_admin(&admin, command).await?;
            }
        }
        Ok(())
    })
}

async fn account_command_admin(
    admin: &pds::admin_cli::Admin,
    command: AccountCommand,
) -> Result<(), Failure> {
    let password = || {
        env_var("PDS_ACCOUNT_PASSWORD")
            .map(|p| (p, false))
            .unwrap_or_else(|| (pds::admin_cli::generate_password(), true))
    };
    match command {
        AccountCommand::List { email } => {
            for line in admin
                .list_accounts(email.as_deref())
                .await
                .map_err(runtime)?
            {
                say(line);
            }
        }
        AccountCommand::Create { handle, email } => {
            let (password, generated) = password();
            let did = admin
                .create_account(&handle, &email, &password)
                .await
                .map_err(runtime)?;
            say(format!("created {did} ({handle})"));
            if generated {
                say(format!("password: {password}"));
            }
        }
        AccountCommand::Takedown { account, reference } => {
            let did = admin.did_of(&account).await.map_err(runtime)?;
            admin
                .set_takedown(&did, Some(&reference))
                .await
                .map_err(runtime)?;
            say(format!("{did} taken down ({reference})"));
        }
        AccountCommand::Restore { account } => {
            let did = admin.did_of(&account).await.map_err(runtime)?;
            admin.set_takedown(&did, None).await.map_err(runtime)?;
            say(format!("{did} restored"));
        }
        AccountCommand::Delete { account, yes } => {
            if !yes {
                return Err(Failure::Runtime(format!(
                    "deleting {account} removes it and everything it holds here for good: run \
                     again with --yes"
                )));
            }
            let did = admin.did_of(&account).await.map_err(runtime)?;
            admin.delete_account(&did).await.map_err(runtime)?;
            say(format!("{did} deleted"));
        }
        AccountCommand::ResetPassword { account } => {
            let did = admin.did_of(&account).await.map_err(runtime)?;
            let (password, generated) = password();
            admin.set_password(&did, &password).await.map_err(runtime)?;
            say(format!("{did}: new password set; its sessions ended"));
            if generated {
                say(format!("password: {password}"));
            }
        }
    }
    Ok(())
}

/// Prints a line of an operator command's output. A closed standard output (the output piped
/// into `head`) must not stop a backup or a restore half way, so write errors are ignored.
fn say(line: String) {
    use std::io::Write;
    let _ = writeln!(std::io::stdout().lock(), "{line}");
}

fn backup(config_path: Option<PathBuf>, out: &Path) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    let summary = pds::ops::backup::backup(&config, out, &mut say).map_err(Failure::Runtime)?;
    let manifest = &summary.manifest;
    let db_bytes: u64 = manifest.databases.iter().map(|db| db.bytes).sum();
    say(format!(
        "backup written to {} in {:.1} s: {} databases ({}), {} blobs ({}){}",
        out.display(),
        summary.elapsed.as_secs_f64(),
        manifest.databases.len(),
        pds::ops::human_bytes(db_bytes),
        manifest.blobs.count,
        pds::ops::human_bytes(manifest.blobs.bytes),
        if manifest.secrets_file {
            ", secrets.toml"
        } else {
            ""
        }
    ));
    if !summary.complete() {
        return Err(Failure::Runtime(format!(
            "the backup is incomplete: {} referenced blobs could not be copied (listed above \
             and in manifest.json)",
            manifest.blobs.missing.len()
        )));
    }
    Ok(())
}

fn restore(config_path: Option<PathBuf>, from: &Path) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    // Refused before anything is created.
    pds::ops::restore::check_target(&config).map_err(Failure::Runtime)?;
    pds::ops::Manifest::read(from).map_err(Failure::Runtime)?;
    data_dir::prepare(&config)?;
    let summary = pds::ops::restore::restore(&config, from, &mut say).map_err(Failure::Runtime)?;
    say(format!(
        "restored {} databases and {} blobs ({}) into {} in {:.1} s; start the server to use them",
        summary.databases,
        summary.blobs,
        pds::ops::human_bytes(summary.blob_bytes),
        config.storage.data_directory.display(),
        summary.elapsed.as_secs_f64()
    ));
    Ok(())
}

fn verify_repos(config_path: Option<PathBuf>, jobs: Option<usize>) -> Result<(), Failure> {
    let config = Config::load(config_path.as_deref(), &env_var)?;
    let jobs = jobs.unwrap_or_else(pds::ops::verify::default_jobs);
    let summary =
        pds::ops::verify::verify_repos(&config, jobs, &mut say).map_err(Failure::Runtime)?;
    say(format!(
        "checked {} repos ({} records, {} blocks, {} blob references) in {:.1} s: {} failed",
        summary.repos,
        summary.records,
        summary.blocks,
        summary.blob_refs,
        summary.elapsed.as_secs_f64(),
        summary.failed
    ));
    if summary.failed > 0 {
        return Err(Failure::Runtime(format!(
            "{} of {} repos failed verification",
            summary.failed, summary.repos
        )));
    }
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
