//! The `redtape` binary; everything lives in the library (see lib.rs).

#[tokio::main]
async fn main() -> std::process::ExitCode {
    redtape::cli_main().await
}
