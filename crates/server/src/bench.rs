//! `redtape bench`: placeholder replaced below.
use clap::Args;

#[derive(Debug, Args)]
pub struct BenchArgs {}

pub async fn run(_args: BenchArgs) -> Result<(), crate::BoxError> {
    Err("not yet".into())
}
