use std::io::Write;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Keeps Tencent Cloud EdgeOne host certificates equal to EdgeOneCertificateBinding resources.
#[derive(Parser)]
#[command(name = "edgeone-cert-operator", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the operator: reconcile EdgeOneCertificateBindings until SIGTERM.
    Run(Box<edgeone_cert_operator::run::RunArgs>),
    /// Print the EdgeOneCertificateBinding CustomResourceDefinition as YAML (for `kubectl apply -f -`).
    Crd,
    /// Print the version.
    Version,
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Run(args) => run(*args),
        Command::Crd => print_crd(),
        Command::Version => {
            println!("edgeone-cert-operator {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn run(args: edgeone_cert_operator::run::RunArgs) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(edgeone_cert_operator::run::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn print_crd() -> ExitCode {
    let yaml = match edgeone_cert_operator::api::crd_yaml() {
        Ok(yaml) => yaml,
        Err(error) => {
            eprintln!("error: cannot render the CRD as YAML: {error}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(error) = std::io::stdout().lock().write_all(yaml.as_bytes()) {
        eprintln!("error: cannot write the CRD to standard output: {error}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
