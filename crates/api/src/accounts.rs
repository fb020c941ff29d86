//! Filers and tokens as the API shows them (to admins, to a business about itself, to an
//! intermediary about its members), and the accounts' rule errors mapped to problems.
//! A token view never carries the token or its hash.

use chrono::{DateTime, Utc};
use redtape_domain::filer::aggregate::{FilerError, FilerKind};
use redtape_domain::token::TokenError;
use redtape_domain::Role;
use redtape_store::accounts::read::{FilerRow, TokenRow};
use redtape_store::accounts::AccountError;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::problem::{ApiError, Conflict};

/// A filer's declared profile (METHODOLOGY.md §7); `null` where undeclared.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileView {
    #[schema(example = "small")]
    pub size_class: Option<String>,
    #[schema(example = "G")]
    pub sector_section: Option<String>,
    #[schema(example = true)]
    pub woman_owned: Option<bool>,
    #[schema(example = false)]
    pub ethnic_minority_owned: Option<bool>,
}

/// A registered filer.
#[derive(Debug, Serialize, ToSchema)]
pub struct FilerView {
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub id: Uuid,
    pub kind: FilerKind,
    /// The intermediary that registered this member business, if any.
    #[schema(example = json!(null))]
    pub registered_by: Option<Uuid>,
    #[schema(example = "Soc Trang SME support centre, member 17")]
    pub label: Option<String>,
    pub profile: ProfileView,
    #[schema(example = "2026-12-02T03:00:00.000000Z")]
    pub created_at: String,
    /// When the profile last changed (the registration, if never).
    #[schema(example = "2026-12-02T03:00:00.000000Z")]
    pub updated_at: String,
}

impl FilerView {
    pub(crate) fn of(row: FilerRow) -> Result<FilerView, ApiError> {
        let uuid = |text: &str| {
            Uuid::parse_str(text)
                .map_err(|e| ApiError::internal(format!("filers row: bad id {text:?}: {e}")))
        };
        Ok(FilerView {
            id: uuid(&row.filer_id)?,
            kind: FilerKind::parse(&row.kind)
                .ok_or_else(|| ApiError::internal(format!("filers row: kind {:?}", row.kind)))?,
            registered_by: row.registered_by.as_deref().map(uuid).transpose()?,
            label: row.label,
            profile: ProfileView {
                size_class: row.size_class,
                sector_section: row.sector_section,
                woman_owned: row.woman_owned,
                ethnic_minority_owned: row.ethnic_minority_owned,
            },
            updated_at: row.updated_at.unwrap_or_else(|| row.created_at.clone()),
            created_at: row.created_at,
        })
    }
}

/// Whether a token works now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TokenStatus {
    Active,
    Expired,
    Revoked,
}

/// A token as administrators see it: never the token itself, nor its hash.
#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    #[schema(example = "01932c4e-8a00-7b11-8c3e-0a9d6f1e2b33")]
    pub id: Uuid,
    pub role: Role,
    #[schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")]
    pub filer_id: Option<Uuid>,
    /// The vn-34 provinces of an officer token; `null`: every province.
    #[schema(example = json!(["79"]))]
    pub provinces: Option<Vec<String>>,
    #[schema(example = "HCMC DPI, reform desk")]
    pub label: Option<String>,
    pub status: TokenStatus,
    #[schema(example = "2026-12-02T03:00:00.000000Z")]
    pub created_at: String,
    #[schema(example = "2027-06-30T00:00:00.000000Z")]
    pub expires_at: Option<String>,
    #[schema(example = json!(null))]
    pub revoked_at: Option<String>,
    /// When the token was last used, to within a minute; `null` if never.
    #[schema(example = "2026-12-02T03:05:00.000000Z")]
    pub last_used_at: Option<String>,
}

impl TokenView {
    pub(crate) fn of(row: TokenRow, now: DateTime<Utc>) -> Result<TokenView, ApiError> {
        let bad =
            |what: &str| ApiError::internal(format!("tokens row {}: bad {what}", row.token_id));
        let expired = match &row.expires_at {
            Some(at) => DateTime::parse_from_rfc3339(at).map_err(|_| bad("expires_at"))? <= now,
            None => false,
        };
        Ok(TokenView {
            id: Uuid::parse_str(&row.token_id).map_err(|_| bad("token_id"))?,
            role: Role::parse(&row.role).ok_or_else(|| bad("role"))?,
            filer_id: row
                .filer_id
                .as_deref()
                .map(Uuid::parse_str)
                .transpose()
                .map_err(|_| bad("filer_id"))?,
            provinces: row
                .provinces
                .as_deref()
                .map(|p| p.split(',').map(str::to_string).collect()),
            label: row.label,
            status: match (&row.revoked_at, expired) {
                (Some(_), _) => TokenStatus::Revoked,
                (None, true) => TokenStatus::Expired,
                (None, false) => TokenStatus::Active,
            },
            created_at: row.created_at,
            expires_at: row.expires_at,
            revoked_at: row.revoked_at,
            last_used_at: row.last_used_at,
        })
    }
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> Self {
        let field = |pointer: &str, rule: &str, detail: String| {
            ApiError::from(redtape_domain::Violations::single(pointer, rule, detail))
        };
        let detail = e.to_string();
        match e {
            AccountError::EnterpriseTaken => ApiError::Conflict {
                kind: Conflict::EnterpriseRegistered,
                detail,
            },
            AccountError::UnknownFiler(_) => field("/filer_id", "registered", detail),
            AccountError::WrongKind { .. } => field("/filer_id", "kind", detail),
            AccountError::NotAnIntermediary => {
                ApiError::Forbidden("only an intermediary registers member businesses")
            }
            AccountError::Filer(FilerError::NotFound) => ApiError::NotFound("no such filer".into()),
            AccountError::Filer(FilerError::AlreadyRegistered) => ApiError::Conflict {
                kind: Conflict::AlreadyExists,
                detail,
            },
            AccountError::Filer(FilerError::MemberMustBeBusiness) => {
                field("/kind", "one_of", detail)
            }
            AccountError::Token(TokenError::NotFound) => ApiError::NotFound("no such token".into()),
            AccountError::Token(TokenError::AlreadyRevoked) => ApiError::Conflict {
                kind: Conflict::TokenRevoked,
                detail,
            },
            AccountError::Token(TokenError::AlreadyIssued) => ApiError::Conflict {
                kind: Conflict::AlreadyExists,
                detail,
            },
            AccountError::Token(TokenError::ExpiryPassed(_)) => {
                field("/expires_at", "future", detail)
            }
            AccountError::Token(TokenError::ExpiryTooFar(_)) => {
                field("/expires_at", "range", detail)
            }
            AccountError::Token(TokenError::FilerMismatch) => {
                field("/filer_id", "required", detail)
            }
            AccountError::Token(TokenError::ScopeNotOfficer) => {
                field("/provinces", "not_allowed", detail)
            }
        }
    }
}

/// A filer as the read model shows it; `404` if there is none (account commands catch the
/// read model up before they answer, so a filer just registered is found). Shared by the
/// admin, business and intermediary handlers.
pub(crate) async fn filer_view(
    state: &crate::AppState,
    id: redtape_domain::submission::FilerId,
) -> Result<FilerView, ApiError> {
    let row = redtape_store::accounts::read::filer(&state.db, id)
        .await?
        .ok_or_else(|| ApiError::NotFound("no such filer".into()))?;
    FilerView::of(row)
}
