//! The command line: `run`, `check`, `demo`, `explain` (in [`explain`]),
//! and `audit verify` and `audit show` (in [`audit`]).

mod audit;
mod explain;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

use crate::auth::keys::KeySet;
use crate::config::{Config, KeySource};
use crate::server::{Server, shutdown_signal};

/// cancelguard: a guard in front of Microsoft Graph's cancelAll action.
#[derive(Debug, Parser)]
#[command(name = "cancelguard", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the proxy.
    Run {
        /// Configuration file.
        #[arg(long, env = "CANCELGUARD_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
    },
    /// Check a configuration file and print what it sets up.
    Check {
        /// Configuration file.
        #[arg(long, env = "CANCELGUARD_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
    },
    /// Run a self-contained local demo: stand-in Graph, local issuer, tokens.
    Demo,
    /// Evaluate one call as the proxy would and say why; forward nothing.
    /// Exit 0 when it would be forwarded, 1 when refused, 2 on error.
    Explain {
        /// Configuration file.
        #[arg(long, env = "CANCELGUARD_CONFIG", default_value = "proxy.toml")]
        config: PathBuf,
        /// The bearer token, or - to read it from stdin.
        #[arg(long)]
        token: String,
        /// The request target, e.g. /beta/identityGovernance/....
        #[arg(long)]
        path: String,
        /// The HTTP method.
        #[arg(long, default_value = "POST")]
        method: String,
    },
    /// Work with audit files.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCommand,
    },
}

/// Parses arguments and runs the chosen command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => run(&config),
        Command::Check { config } => check(&config),
        Command::Demo => demo(),
        Command::Explain {
            config,
            token,
            path,
            method,
        } => explain::run(explain::Call {
            config: &config,
            token: &token,
            path: &path,
            method: &method,
        }),
        Command::Audit { command } => audit::run(command),
    }
}

fn run(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    let logs = init_logging(&config.log.level, config.log.json);
    for warning in &config.warnings {
        tracing::warn!("{warning}");
    }
    let result = block_on(async move {
        let server = Server::bind(config).await?;
        server.serve(shutdown_signal()).await
    });
    // Flush the logs first, so that an error stays the last line.
    drop(logs);
    exit(result)
}

fn check(path: &Path) -> ExitCode {
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(error) => return fail(&error),
    };
    if let KeySource::File(file) = &config.auth.keys {
        let parsed = std::fs::read(file)
            .map_err(|e| format!("{}: cannot read: {e}", file.display()))
            .and_then(|doc| {
                KeySet::parse(&doc)
                    .map_err(|e| format!("{}: {e}", file.display()))
            });
        if let Err(message) = parsed {
            return fail(&message);
        }
    }

    if let Some(files) = &config.server.tls
        && let Err(error) = crate::tls::acceptor(files)
    {
        return fail(&error);
    }

    let keys = match &config.auth.keys {
        KeySource::File(file) => format!("file {}", file.display()),
        KeySource::Url(url) => format!("url {url}"),
        KeySource::Discovery(url) => format!("discovery {url}"),
    };
    let tenants = if config.auth.tenants.is_empty() {
        "any".to_string()
    } else {
        config.auth.tenants.join(", ")
    };
    let mut summary = String::new();
    macro_rules! line {
        ($($arg:tt)*) => {{
            summary.push_str(&format!($($arg)*));
            summary.push('\n');
        }};
    }
    line!("{}: ok", path.display());
    let tls = if config.server.tls.is_some() {
        "TLS"
    } else {
        "plain HTTP"
    };
    line!("  listen        {} ({tls})", config.server.listen);
    line!("  admin         {}", config.server.admin_listen);
    line!("  upstream      {}", config.upstream.url);
    line!("  keys          {keys}");
    line!("  tenants       {tenants}");
    line!(
        "  policy        {} rules, {}",
        config.policy.len(),
        config.policy.mode().as_str()
    );
    let audit = &config.audit;
    let rotation = match audit.rotate_bytes {
        0 => "never rotated".to_string(),
        bytes => format!("rotated at {bytes} bytes"),
    };
    line!(
        "  audit         {} (sync {}, {}, {})",
        audit.active_path().display(),
        audit.sync.as_str(),
        crate::audit::chain::algorithm(audit.hmac_key.as_ref()),
        rotation,
    );
    for warning in &config.warnings {
        line!("warning: {warning}");
    }
    say(&summary);
    ExitCode::SUCCESS
}

fn demo() -> ExitCode {
    let logs = init_logging("info", false);
    let result = block_on(crate::demo::run());
    drop(logs);
    exit(result)
}

fn block_on(
    work: impl std::future::Future<Output = anyhow::Result<()>>,
) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .map_err(|e| anyhow::anyhow!("cannot start the runtime: {e}"))?
        .block_on(work)
}

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => fail(&format!("{error:#}")),
    }
}

/// Logs go to stderr, so stdout stays free for the audit stream. They are
/// handed to a background thread: a slow stderr must not stall the async
/// workers that serve calls. The returned guard flushes them when dropped.
fn init_logging(level: &str, json: bool) -> WorkerGuard {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = tracing_appender::non_blocking(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
    guard
}

/// Writes to stdout, ignoring a reader that went away (`check | head`):
/// a closed pipe is no reason to panic.
pub(crate) fn say(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

fn fail(error: &dyn std::fmt::Display) -> ExitCode {
    eprintln!("cancelguard: {error}");
    ExitCode::FAILURE
}
