//! Filers and tokens from before they were events (migration 0002's `filers` and
//! `api_tokens` rows), adopted into events once, so the log alone restores them.
//!
//! Each start (and `redtape rebuild`, which would otherwise drop them) records a
//! `FilerRegistered` for every `filers` row that has no events, and `TokenIssued` (and
//! `TokenRevoked` for a revoked one) for every `api_tokens` row that has none, with the row's
//! own times, under the actor `migration`. Every step can be repeated, and two processes
//! adopting at once (replicas starting together, the CLI) both succeed: a crash half-way is
//! finished by the next start. Once adopted, this costs one scan of each table (an index probe
//! per row).
//!
//! `api_tokens` keeps its rows: during a rolling upgrade the replicas of the previous version
//! still authenticate against it. A later version drops the table.

use chrono::{DateTime, Utc};
use redtape_domain::filer::aggregate::{FilerCommand, FilerError, FilerKind};
use redtape_domain::filer::{FilerProfile, SectorSection, SizeClass};
use redtape_domain::submission::FilerId;
use redtape_domain::token::{TokenCommand, TokenError};
use redtape_domain::{Role, Scope};
use uuid::Uuid;

use super::{metadata, widen, Accounts, Result};
use crate::commands::CommandError;
use crate::StoreError;

const ACTOR: &str = "migration";

/// The `filers` rows that are not events yet.
pub(super) const UNADOPTED_FILERS: &str = "FROM filers f WHERE NOT EXISTS (SELECT 1 FROM events e \
    WHERE e.aggregate_type = 'Filer' AND e.aggregate_id = f.filer_id)";

/// The `api_tokens` rows that are not events yet, or whose revocation is not.
pub(super) const UNADOPTED_TOKENS: &str = "FROM api_tokens t WHERE NOT EXISTS (SELECT 1 FROM \
    events e WHERE e.aggregate_type = 'Token' AND e.aggregate_id = t.token_id) \
    OR (t.revoked_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM events e \
    WHERE e.aggregate_type = 'Token' AND e.aggregate_id = t.token_id \
    AND e.event_type = 'TokenRevoked'))";

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
    let filers_sql = format!(
        "SELECT filer_id, label, created_at, size_class, sector_section {UNADOPTED_FILERS}"
    );
    let filers: Vec<LegacyFiler> = crate::on_pool!(db, pool =>
        sqlx::query_as(&filers_sql).fetch_all(pool).await)?;
    let tokens_sql = format!(
        "SELECT token_id, token_hash, role, filer_id, label, created_at, revoked_at, provinces \
         {UNADOPTED_TOKENS} ORDER BY created_at"
    );
    let tokens: Vec<LegacyToken> = crate::on_pool!(db, pool =>
        sqlx::query_as(&tokens_sql).fetch_all(pool).await)?;
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
        match accounts
            .filers()
            .execute(&id, command, metadata(ACTOR))
            .await
        {
            // Another process adopted it first.
            Ok(())
            | Err(CommandError::Rule(FilerError::AlreadyRegistered) | CommandError::Conflict) => {}
            Err(e) => return Err(widen(e)),
        }
    }
    for (id, hash, role, filer, label, created_at, revoked_at, provinces) in tokens {
        let role = Role::parse(&role)
            .ok_or_else(|| StoreError::Corrupt(format!("api_tokens {id}: role {role:?}")))?;
        let issue = TokenCommand::Issue {
            role,
            filer: filer.as_deref().map(uuid).transpose()?.map(FilerId),
            scope: Scope::from_stored(provinces.as_deref()),
            hash,
            label,
            expires_at: None,
            now: time(&created_at)?,
        };
        match accounts.tokens().execute(&id, issue, metadata(ACTOR)).await {
            // Adopted before (its revocation is what is left), or by another process first.
            Ok(())
            | Err(CommandError::Rule(TokenError::AlreadyIssued) | CommandError::Conflict) => {}
            Err(e) => return Err(widen(e)),
        }
        // Also a revocation recorded in `api_tokens` after the token was adopted (by a replica
        // of the previous version during a rolling upgrade).
        if let Some(at) = revoked_at {
            let command = TokenCommand::Revoke { at: time(&at)? };
            match accounts
                .tokens()
                .execute(&id, command, metadata(ACTOR))
                .await
            {
                Ok(())
                | Err(CommandError::Rule(TokenError::AlreadyRevoked) | CommandError::Conflict) => {}
                Err(e) => return Err(widen(e)),
            }
        }
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
