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
    /// Print the version.
    Version,
}

fn main() {
    match Cli::parse().command {
        Command::Version => println!("edgeone-cert-operator {}", env!("CARGO_PKG_VERSION")),
    }
}
