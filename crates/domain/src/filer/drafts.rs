//! What onboarding requests carry, before validation: a filer's profile, a filer to register,
//! a token to issue. Each turns into validated values or a list of violations naming the field
//! (a JSON pointer) and the rule.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::aggregate::FilerKind;
use super::{EnterpriseCode, FilerProfile, SectorSection, SizeClass};
use crate::submission::FilerId;
use crate::validation::Violations;
use crate::{Role, Scope};

/// Longest label accepted for a filer or a token.
pub const MAX_LABEL_CHARS: usize = 200;

/// A filer's profile (METHODOLOGY.md §7): each attribute optional; absent means undeclared.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProfileDraft {
    /// micro, small, medium or large (Decree 80/2021/ND-CP).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, example = "small"))]
    pub size_class: Option<SizeClass>,
    /// VSIC 2018 section letter, A to U.
    #[cfg_attr(
        feature = "openapi",
        schema(value_type = Option<String>, example = "G", pattern = "^[A-U]$")
    )]
    pub sector_section: Option<SectorSection>,
    #[cfg_attr(feature = "openapi", schema(example = true))]
    pub woman_owned: Option<bool>,
    #[cfg_attr(feature = "openapi", schema(example = false))]
    pub ethnic_minority_owned: Option<bool>,
}

impl ProfileDraft {
    pub fn profile(&self) -> FilerProfile {
        FilerProfile {
            size_class: self.size_class,
            sector_section: self.sector_section,
            woman_owned: self.woman_owned,
            ethnic_minority_owned: self.ethnic_minority_owned,
        }
    }
}

/// A filer to register.
// Its `Debug` (below) hides the enterprise code.
#[derive(Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationDraft {
    /// business (default) or intermediary. An intermediary registers members as businesses.
    #[serde(default = "business")]
    pub kind: FilerKind,
    /// The enterprise code (mã số doanh nghiệp: 10 digits, or 10-3 for a dependent unit).
    /// Optional; when given, the same enterprise cannot register twice. It is replaced at once
    /// by a keyed hash: never stored, logged or shown.
    #[cfg_attr(feature = "openapi", schema(example = "0312345678"))]
    pub enterprise_code: Option<String>,
    #[serde(default)]
    pub profile: ProfileDraft,
    /// A name for administrators (never published), up to 200 characters.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Soc Trang SME support centre, member 17")
    )]
    pub label: Option<String>,
}

impl std::fmt::Debug for RegistrationDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistrationDraft")
            .field("kind", &self.kind)
            .field(
                "enterprise_code",
                &self.enterprise_code.as_ref().map(|_| "<hidden>"),
            )
            .field("profile", &self.profile)
            .field("label", &self.label)
            .finish()
    }
}

fn business() -> FilerKind {
    FilerKind::Business
}

/// A validated registration.
#[derive(Debug, Clone)]
pub struct ValidRegistration {
    pub kind: FilerKind,
    pub enterprise_code: Option<EnterpriseCode>,
    pub profile: FilerProfile,
    pub label: Option<String>,
}

fn label(v: &mut Violations, pointer: &str, text: Option<&str>) -> Option<String> {
    let text = text.map(str::trim).filter(|t| !t.is_empty())?;
    if text.chars().count() > MAX_LABEL_CHARS {
        v.push(
            pointer,
            "max_length",
            format!("at most {MAX_LABEL_CHARS} characters"),
        );
    }
    Some(text.to_string())
}

impl RegistrationDraft {
    pub fn validate(self) -> Result<ValidRegistration, Violations> {
        let mut v = Violations::new();
        let enterprise_code = match self.enterprise_code.as_deref().map(EnterpriseCode::parse) {
            Some(Ok(code)) => Some(code),
            Some(Err(rule)) => {
                v.push("/enterprise_code", "format", rule);
                None
            }
            None => None,
        };
        let label = label(&mut v, "/label", self.label.as_deref());
        v.into_result().map(|()| ValidRegistration {
            kind: self.kind,
            enterprise_code,
            profile: self.profile.profile(),
            label,
        })
    }
}

/// A token to issue.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TokenDraft {
    pub role: Role,
    /// Required for a business or intermediary token: the registered filer it speaks for.
    /// Absent for staff.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "01932c4e-7d1a-7c3e-9a51-3f1f0c2b9d11")
    )]
    pub filer_id: Option<Uuid>,
    /// Officer tokens only: the vn-34 provinces it may act on (default: every province).
    #[cfg_attr(feature = "openapi", schema(example = json!(["79", "94"])))]
    pub provinces: Option<Vec<String>>,
    /// Who holds it, for administrators (up to 200 characters).
    #[cfg_attr(feature = "openapi", schema(example = "HCMC DPI, reform desk"))]
    pub label: Option<String>,
    /// When it stops working: in the future, at most ten years ahead. Default: never.
    #[cfg_attr(feature = "openapi", schema(example = "2027-06-30T00:00:00Z"))]
    pub expires_at: Option<DateTime<Utc>>,
}

/// A validated token request (the aggregate checks it again against its own rules).
#[derive(Debug, Clone)]
pub struct TokenRequest {
    pub role: Role,
    /// The filer of a business or intermediary token.
    pub filer: Option<FilerId>,
    pub scope: Scope,
    pub label: Option<String>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl TokenRequest {
    /// A token of `role` for `filer`, everywhere, unlabelled, never expiring.
    pub fn new(role: Role, filer: Option<FilerId>) -> Self {
        TokenRequest {
            role,
            filer,
            scope: Scope::Everywhere,
            label: None,
            expires_at: None,
        }
    }
}

impl TokenDraft {
    pub fn validate(self, now: DateTime<Utc>) -> Result<TokenRequest, Violations> {
        let mut v = Violations::new();
        match (self.role.files(), self.filer_id) {
            (true, None) => v.push(
                "/filer_id",
                "required",
                format!(
                    "a {} token speaks for a registered filer",
                    self.role.as_str()
                ),
            ),
            (false, Some(_)) => v.push(
                "/filer_id",
                "not_allowed",
                format!("a {} token speaks for no filer", self.role.as_str()),
            ),
            _ => {}
        }
        let scope = match &self.provinces {
            None => Scope::Everywhere,
            Some(_) if self.role != Role::Officer => {
                v.push(
                    "/provinces",
                    "not_allowed",
                    "only an officer token is limited to provinces",
                );
                Scope::Everywhere
            }
            Some(codes) => match Scope::provinces(codes) {
                Ok(scope) => scope,
                Err(violations) => {
                    v.0.extend(violations.0);
                    Scope::Everywhere
                }
            },
        };
        if let Some(expiry) = self.expires_at.filter(|e| *e <= now) {
            v.push(
                "/expires_at",
                "future",
                format!("{} is not in the future", expiry.to_rfc3339()),
            );
        }
        let furthest = now + chrono::Duration::days(crate::token::MAX_LIFETIME_DAYS);
        if self.expires_at.is_some_and(|e| e > furthest) {
            v.push(
                "/expires_at",
                "range",
                "at most ten years ahead; omit it for a token that never expires",
            );
        }
        let label = label(&mut v, "/label", self.label.as_deref());
        v.into_result().map(|()| TokenRequest {
            role: self.role,
            filer: self.filer_id.map(FilerId),
            scope,
            label,
            expires_at: self.expires_at,
        })
    }
}
