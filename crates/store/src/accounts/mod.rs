//! Filers and tokens (issue 13): the commands that register filers, change their profiles,
//! issue and revoke tokens, and the `filers` and `tokens` read models, projected from those
//! events alone ([`projection`]), so a backup of the events restores who may file.
//!
//! Every way in (HTTP onboarding, `redtape token`, the tests) goes through [`Accounts`], which
//! catches the projection up before it answers: a token works as soon as it is shown.
//!
//! - An enterprise registers once: its code is replaced by an HMAC-SHA-256 under a server key
//!   (`service_secrets`), and the filer id is derived from that HMAC, so a second registration
//!   of the same code is the same aggregate and fails on the "registered once" rule, atomically,
//!   with no separate uniqueness table. The code itself is never stored or logged, and the id
//!   does not reveal the HMAC (it is a hash of it).
//! - [`legacy`]: rows of the tables from before, adopted into events once.
//! - [`read`]: the read models as administrators list them.

mod legacy;
pub mod projection;
pub mod read;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use redtape_domain::filer::aggregate::{FilerCommand, FilerError, FilerKind};
pub use redtape_domain::filer::drafts::TokenRequest;
use redtape_domain::filer::{EnterpriseCode, FilerProfile};
use redtape_domain::submission::FilerId;
use redtape_domain::token::{TokenCommand, TokenError};
use redtape_domain::Role;
use sha2::{Digest, Sha256};
use tokio::sync::Notify;
use uuid::Uuid;

use crate::commands::{CommandError, Filers, Tokens};
use crate::db::Db;
use crate::tokens::{IssuedToken, Principal};
use crate::StoreError;

pub use legacy::adopt;

/// The name of the enterprise-code key in `service_secrets`.
const ENTERPRISE_KEY_SECRET: &str = "enterprise-code-key";

/// Why an account command was refused (4xx), beside the aggregates' own rules.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AccountError {
    #[error(transparent)]
    Filer(#[from] FilerError),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error("an enterprise with this code is already registered")]
    EnterpriseTaken,
    #[error("no filer {0} is registered")]
    UnknownFiler(FilerId),
    #[error("a {role} token is for a filer of kind {role}; filer {filer} is a {kind}")]
    WrongKind {
        role: &'static str,
        filer: FilerId,
        kind: &'static str,
    },
    #[error("only an intermediary registers member businesses")]
    NotAnIntermediary,
}

type Result<T> = std::result::Result<T, CommandError<AccountError>>;

/// Widens an aggregate's command error to the accounts' rule error.
fn widen<E: std::error::Error + Into<AccountError>>(
    e: CommandError<E>,
) -> CommandError<AccountError> {
    match e {
        CommandError::Rule(rule) => CommandError::Rule(rule.into()),
        CommandError::Conflict => CommandError::Conflict,
        CommandError::KeyTaken => CommandError::KeyTaken,
        CommandError::CapReached { cap } => CommandError::CapReached { cap },
        CommandError::Unavailable(c) => CommandError::Unavailable(c),
        CommandError::Internal(c) => CommandError::Internal(c),
    }
}

impl From<StoreError> for CommandError<AccountError> {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Sql(e) => e.into(),
            other => CommandError::Internal(Arc::new(other)),
        }
    }
}

/// A filer to register.
#[derive(Debug, Clone)]
pub struct Registration {
    pub kind: FilerKind,
    /// The intermediary registering a member business.
    pub registered_by: Option<FilerId>,
    pub enterprise_code: Option<EnterpriseCode>,
    pub profile: FilerProfile,
    pub label: Option<String>,
}

impl Registration {
    /// A business registering itself with no code, profile or label.
    pub fn business() -> Self {
        Registration {
            kind: FilerKind::Business,
            registered_by: None,
            enterprise_code: None,
            profile: FilerProfile::default(),
            label: None,
        }
    }
}

/// The command side of filers and tokens, projecting its own events before it answers.
pub struct Accounts {
    db: Db,
    filers: Filers,
    tokens: Tokens,
}

fn metadata(actor: &str) -> HashMap<String, String> {
    HashMap::from([("actor".to_string(), actor.to_string())])
}

/// 32 random bytes, shown once as `rt_<64 hex>`.
fn new_secret() -> std::result::Result<String, StoreError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| StoreError::Io(std::io::Error::other(e.to_string())))?;
    Ok(format!("rt_{}", hex::encode(bytes)))
}

impl Accounts {
    pub fn new(db: &Db, wake: Arc<Notify>) -> Self {
        Accounts {
            db: db.clone(),
            filers: Filers::new(db, wake.clone()),
            tokens: Tokens::new(db, wake),
        }
    }

    /// Applies the account events committed so far to `filers` and `tokens`.
    pub async fn project(&self) -> std::result::Result<usize, StoreError> {
        projection::catch_up(&self.db).await
    }

    /// A filer as its events leave it; `None` if it was never registered.
    pub async fn filer(
        &self,
        id: FilerId,
    ) -> Result<Option<redtape_domain::filer::aggregate::Filer>> {
        let (filer, events) = self.filers.state(&id.to_string()).await.map_err(widen)?;
        Ok((events > 0).then_some(filer))
    }

    /// Registers a filer; returns its id.
    pub async fn register(&self, registration: Registration, actor: &str) -> Result<FilerId> {
        if let Some(intermediary) = registration.registered_by {
            match self.filer(intermediary).await? {
                Some(f) if f.kind == Some(FilerKind::Intermediary) => {}
                Some(_) => return Err(CommandError::Rule(AccountError::NotAnIntermediary)),
                None => return Err(CommandError::Rule(AccountError::UnknownFiler(intermediary))),
            }
        }
        let (id, enterprise_key) = match &registration.enterprise_code {
            Some(code) => {
                let secret = crate::secrets::get_or_create(&self.db, ENTERPRISE_KEY_SECRET).await?;
                let key = crate::secrets::hmac_hex(&secret, code.expose());
                (filer_id_of(&key), Some(key))
            }
            None => (FilerId(Uuid::now_v7()), None),
        };
        let command = FilerCommand::Register {
            kind: registration.kind,
            enterprise_key: enterprise_key.clone(),
            registered_by: registration.registered_by,
            profile: registration.profile,
            label: registration.label,
            at: Utc::now(),
        };
        match self
            .filers
            .execute(&id.to_string(), command, metadata(actor))
            .await
        {
            Ok(()) => {}
            // The id is the code's: a second registration of one enterprise.
            Err(CommandError::Rule(FilerError::AlreadyRegistered) | CommandError::Conflict)
                if enterprise_key.is_some() =>
            {
                return Err(CommandError::Rule(AccountError::EnterpriseTaken))
            }
            Err(e) => return Err(widen(e)),
        }
        self.project().await?;
        Ok(id)
    }

    /// Records a filer's new profile; returns whether it changed.
    pub async fn change_profile(
        &self,
        filer: FilerId,
        profile: FilerProfile,
        actor: &str,
    ) -> Result<bool> {
        let (before, _) = self.filers.state(&filer.to_string()).await.map_err(widen)?;
        let command = FilerCommand::ChangeProfile {
            profile,
            at: Utc::now(),
        };
        self.filers
            .execute(&filer.to_string(), command, metadata(actor))
            .await
            .map_err(widen)?;
        self.project().await?;
        Ok(before.profile != profile)
    }

    /// Issues a token: the only moment its plain text exists. A business or intermediary token
    /// names a registered filer of that kind.
    pub async fn issue(&self, request: TokenRequest, actor: &str) -> Result<IssuedToken> {
        if let Some(id) = request.filer {
            let kind = self
                .filer(id)
                .await?
                .and_then(|f| f.kind)
                .ok_or(CommandError::Rule(AccountError::UnknownFiler(id)))?;
            let wanted = match request.role {
                Role::Intermediary => FilerKind::Intermediary,
                _ => FilerKind::Business,
            };
            if request.role.files() && kind != wanted {
                return Err(CommandError::Rule(AccountError::WrongKind {
                    role: request.role.as_str(),
                    filer: id,
                    kind: kind.as_str(),
                }));
            }
        }
        let token = new_secret()?;
        let token_id = Uuid::now_v7();
        let command = TokenCommand::Issue {
            role: request.role,
            filer: request.filer,
            scope: request.scope.clone(),
            hash: crate::tokens::hash(&token),
            label: request.label,
            expires_at: request.expires_at,
            now: Utc::now(),
        };
        self.tokens
            .execute(&token_id.to_string(), command, metadata(actor))
            .await
            .map_err(widen)?;
        self.project().await?;
        Ok(IssuedToken {
            token,
            principal: Principal {
                token_id,
                role: request.role,
                filer: request.filer,
                scope: request.scope,
                expires_at: request.expires_at,
            },
        })
    }

    /// Registers a business (with `profile`) and issues its first token: what onboarding one
    /// firm takes.
    pub async fn onboard_business(
        &self,
        profile: FilerProfile,
        label: Option<&str>,
        actor: &str,
    ) -> Result<IssuedToken> {
        let filer = self
            .register(
                Registration {
                    profile,
                    label: label.map(str::to_string),
                    ..Registration::business()
                },
                actor,
            )
            .await?;
        let mut request = TokenRequest::new(Role::Business, Some(filer));
        request.label = label.map(str::to_string);
        self.issue(request, actor).await
    }

    /// Revokes a token; a revoked token stays revoked. The projection is caught up whatever
    /// the answer: a retry of a revocation whose own catch-up did not finish (it is refused as
    /// already revoked) still makes it take effect at once.
    pub async fn revoke(&self, token_id: Uuid, actor: &str) -> Result<()> {
        let revoked = self
            .tokens
            .execute(
                &token_id.to_string(),
                TokenCommand::Revoke { at: Utc::now() },
                metadata(actor),
            )
            .await
            .map_err(widen);
        self.project().await?;
        revoked
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    pub(crate) fn filers(&self) -> &Filers {
        &self.filers
    }

    pub(crate) fn tokens(&self) -> &Tokens {
        &self.tokens
    }
}

/// The filer id of an enterprise: a UUID (version 8, custom) made of the first bytes of a hash
/// of its key, so it is fixed by the code yet reveals neither the code nor the key.
fn filer_id_of(enterprise_key: &str) -> FilerId {
    let digest = Sha256::digest(format!("redtape filer id\0{enterprise_key}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    FilerId(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}
