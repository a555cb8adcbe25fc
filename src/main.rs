//! `m365-integration`: parses the command line and dispatches (see [`m365_integration::cli`]).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    m365_integration::cli::main().await
}
