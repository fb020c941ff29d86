//! Keys the service generates for itself (`service_secrets`, migration 0010): not facts about
//! the world, so not events, and never dropped by a rebuild.

use crate::db::Db;
use crate::StoreError;

/// The secret named `name`, 32 random bytes created on first use (by whichever process gets
/// there first: the insert does nothing if another one won, and everyone reads the same value
/// back).
pub(crate) async fn get_or_create(db: &Db, name: &str) -> Result<Vec<u8>, StoreError> {
    let mut fresh = [0u8; 32];
    getrandom::fill(&mut fresh)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    let value: String = crate::on_pool!(db, pool => {
        sqlx::query(
            "INSERT INTO service_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(name)
        .bind(hex::encode(fresh))
        .execute(pool)
        .await?;
        sqlx::query_scalar("SELECT value FROM service_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
    })?;
    hex::decode(&value).map_err(|e| StoreError::Corrupt(format!("secret {name}: {e}")))
}

/// HMAC-SHA-256 of `message` under `secret`, lower-case hex.
pub(crate) fn hmac_hex(secret: &[u8], message: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    // HMAC accepts a key of any length, so this cannot fail.
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}
