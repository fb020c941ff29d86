//! The `redtape` binary; everything lives in the library (see lib.rs).

/// mimalloc: under filing load glibc's malloc and its consolidation of freed chunks took 12%
/// of all CPU (docs/benchmarks.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    redtape::cli_main().await
}
