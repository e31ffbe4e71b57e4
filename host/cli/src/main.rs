//! `mck8s`: the operator's command line.

mod commands;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "mck8s", version, about = "Multi-cluster Kubernetes orchestration with WebAssembly policies")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Inspect, evaluate and benchmark policy components.
    #[command(subcommand)]
    Policy(commands::policy::PolicyCommand),
    /// Run the controller against a management cluster and its workload clusters.
    Run(Box<commands::run::RunArgs>),
    /// Print or write the custom resource definitions.
    #[command(subcommand)]
    Crd(commands::crd::CrdCommand),
    /// Simulate a fog/cloud fleet in virtual time and compare placement policies (the
    /// embedded paper-like scenario without a file).
    Simulate(commands::simulate::SimulateArgs),
    /// Why an MCD or MCJ is placed where it is: one row per cluster, from the running
    /// controller (as `kubectl mck8s explain` when installed as `kubectl-mck8s`).
    Explain(commands::explain::ExplainArgs),
    /// Write the live fleet and its multi-cluster objects (from the running controller) as a
    /// snapshot for `mck8s simulate SNAPSHOT --policy NEW.wasm`.
    Snapshot(commands::snapshot::SnapshotArgs),
}

#[allow(unsafe_code, reason = "resets SIGPIPE before any thread starts")]
fn main() -> std::process::ExitCode {
    // Die quietly on a closed pipe (`mck8s policy compare | head`), as command-line tools do.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    // The controller logs what it decides; one-shot commands only warnings.
    let (default_level, json) = match &cli.command {
        Command::Run(args) => ("info", args.log_json),
        _ => ("warn", false),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("MCK8S_LOG").unwrap_or_else(|_| default_level.into());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if json {
        fmt.json().init();
    } else {
        fmt.init();
    }
    let result = match cli.command {
        Command::Policy(cmd) => commands::policy::run(cmd),
        Command::Crd(cmd) => commands::crd::run(cmd),
        Command::Run(args) => commands::run::run(*args),
        Command::Simulate(args) => commands::simulate::run(args),
        Command::Explain(args) => commands::explain::run(args),
        Command::Snapshot(args) => commands::snapshot::run(args),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
