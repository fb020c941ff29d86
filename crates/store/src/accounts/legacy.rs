//! Filers and tokens from before they were events (migration 0002's `filers` and
//! `api_tokens` rows), adopted into events once, so the log alone restores them.
//!
//! Each start (and `redtape rebuild`, which would otherwise drop them) records a
//! `FilerRegistered` for every `filers` row that has no events, and `TokenIssued` (and
//! `TokenRevoked` for a revoked one) for every `api_tokens` row, with the row's own times,
//! under the actor `migration`; then it deletes the adopted `api_tokens` row. Every step can
//! be repeated: a crash half-way is finished by the next start. Once adopted, this costs one
//! scan of `filers` (an index probe per row) and one count.

use chrono::{DateTime, Utc};
use redtape_domain::filer::aggregate::{FilerCommand, FilerKind};
use redtape_domain::filer::{FilerProfile, SectorSection, SizeClass};
use redtape_domain::submission::FilerId;
use redtape_domain::token::TokenCommand;
use redtape_domain::{Role, Scope};
use uuid::Uuid;

use super::{metadata, widen, Accounts, Result};
use crate::commands::CommandError;
use crate::StoreError;

const ACTOR: &str = "migration";

type LegacyFiler = (
    String,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);
type LegacyToken = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    String,
    Option<String>,
    Option<String>,
);

fn time(text: &str) -> std::result::Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("legacy timestamp {text:?}: {e}")))
}

fn uuid(text: &str) -> std::result::Result<Uuid, StoreError> {
    Uuid::parse_str(text).map_err(|e| StoreError::Corrupt(format!("legacy id {text:?}: {e}")))
}

/// Adopts every legacy filer and token; returns how many rows it adopted.
pub async fn adopt(accounts: &Accounts) -> Result<usize> {
    let db = accounts.db();
    let filers: Vec<LegacyFiler> = crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT filer_id, label, created_at, size_class, sector_section FROM filers f \
         WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.aggregate_type = 'Filer' \
         AND e.aggregate_id = f.filer_id)")
        .fetch_all(pool).await)?;
    let tokens: Vec<LegacyToken> = crate::on_pool!(db, pool => sqlx::query_as(
        "SELECT token_id, token_hash, role, filer_id, label, created_at, revoked_at, provinces \
         FROM api_tokens ORDER BY created_at")
        .fetch_all(pool).await)?;
    let adopted = filers.len() + tokens.len();
    for (id, label, created_at, size_class, sector) in filers {
        let command = FilerCommand::Register {
            kind: FilerKind::Business,
            enterprise_key: None,
            registered_by: None,
            profile: FilerProfile {
                size_class: size_class.as_deref().and_then(SizeClass::parse),
                sector_section: sector.as_deref().and_then(SectorSection::parse),
                ..FilerProfile::default()
            },
            label,
            at: time(&created_at)?,
        };
        accounts
            .filers()
            .execute(&id, command, metadata(ACTOR))
            .await
            .map_err(widen)?;
    }
    for (id, hash, role, filer, label, created_at, revoked_at, provinces) in tokens {
        let (state, events) = accounts.tokens().state(&id).await.map_err(widen)?;
        if events == 0 {
            let role = Role::parse(&role)
                .ok_or_else(|| StoreError::Corrupt(format!("api_tokens {id}: role {role:?}")))?;
            let command = TokenCommand::Issue {
                role,
                filer: filer.as_deref().map(uuid).transpose()?.map(FilerId),
                scope: Scope::from_stored(provinces.as_deref()),
                hash,
                label,
                expires_at: None,
                now: time(&created_at)?,
            };
            accounts
                .tokens()
                .execute(&id, command, metadata(ACTOR))
                .await
                .map_err(widen)?;
        }
        if let (Some(at), false) = (revoked_at, state.revoked) {
            let command = TokenCommand::Revoke { at: time(&at)? };
            match accounts
                .tokens()
                .execute(&id, command, metadata(ACTOR))
                .await
            {
                Ok(()) | Err(CommandError::Rule(_)) => {}
                Err(e) => return Err(widen(e)),
            }
        }
        crate::on_pool!(db, pool => sqlx::query("DELETE FROM api_tokens WHERE token_id = $1")
            .bind(&id).execute(pool).await.map(|_| ()))?;
    }
    if adopted > 0 {
        accounts.project().await?;
        tracing::info!(
            adopted,
            "filers and tokens from before issue 13 recorded as events"
        );
    }
    Ok(adopted)
}
