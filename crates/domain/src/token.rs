//! The `Token` aggregate: one bearer token, from its issue to its revocation. The aggregate
//! id is the token id (a UUIDv7, printed when the token is issued and used to revoke it).
//!
//! A token is recorded by its SHA-256 only (the token itself is shown once, at issue), with
//! the role it carries, the filer it speaks for (business tokens; staff tokens have none), the
//! provinces an officer token is limited to, a label for administrators and an optional
//! expiry. A revoked token stays revoked, whatever comes after, and a rebuild of the read
//! models from the events finds it so.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::submission::FilerId;
use crate::{Role, Scope};

pub const EVENT_VERSION: &str = "1.0";

/// The furthest a token may expire: ten years after it is issued (a longer-lived token should
/// be one that never expires, and revoked when no longer needed).
pub const MAX_LIFETIME_DAYS: i64 = 3653;

pub enum TokenCommand {
    Issue {
        role: Role,
        /// The filer a business or intermediary token speaks for; `None` for staff.
        filer: Option<FilerId>,
        scope: Scope,
        /// SHA-256 of the token, lower-case hex.
        hash: String,
        label: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        /// When the command is decided: recorded, and to refuse an expiry already past.
        now: DateTime<Utc>,
    },
    Revoke {
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum TokenEvent {
    TokenIssued {
        role: Role,
        filer: Option<FilerId>,
        /// The `vn-34` provinces of an officer token; `None`: every province.
        provinces: Option<Vec<String>>,
        hash: String,
        label: Option<String>,
        expires_at: Option<DateTime<Utc>>,
        /// When it was issued (the read model's `created_at`).
        at: DateTime<Utc>,
    },
    TokenRevoked {
        at: DateTime<Utc>,
    },
}

impl DomainEvent for TokenEvent {
    fn event_type(&self) -> String {
        match self {
            TokenEvent::TokenIssued { .. } => "TokenIssued",
            TokenEvent::TokenRevoked { .. } => "TokenRevoked",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TokenError {
    #[error("a token with this id was already issued")]
    AlreadyIssued,
    #[error("no such token")]
    NotFound,
    #[error("the token is already revoked")]
    AlreadyRevoked,
    #[error("the expiry {0} is not in the future")]
    ExpiryPassed(DateTime<Utc>),
    #[error("the expiry {0} is more than ten years ahead; omit it for a token that never expires")]
    ExpiryTooFar(DateTime<Utc>),
    #[error("a business or intermediary token speaks for a filer; a staff token has none")]
    FilerMismatch,
    #[error("only an officer token can be limited to provinces")]
    ScopeNotOfficer,
}

/// A token as deciding a command needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub issued: bool,
    pub revoked: bool,
}

impl Aggregate for Token {
    const TYPE: &'static str = "Token";
    type Command = TokenCommand;
    type Event = TokenEvent;
    type Error = TokenError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            TokenCommand::Issue {
                role,
                filer,
                scope,
                hash,
                label,
                expires_at,
                now,
            } => {
                if self.issued {
                    return Err(TokenError::AlreadyIssued);
                }
                if role.files() != filer.is_some() {
                    return Err(TokenError::FilerMismatch);
                }
                if role != Role::Officer && !scope.is_everywhere() {
                    return Err(TokenError::ScopeNotOfficer);
                }
                if let Some(expiry) = expires_at.filter(|e| *e <= now) {
                    return Err(TokenError::ExpiryPassed(expiry));
                }
                if let Some(expiry) =
                    expires_at.filter(|e| *e > now + chrono::Duration::days(MAX_LIFETIME_DAYS))
                {
                    return Err(TokenError::ExpiryTooFar(expiry));
                }
                TokenEvent::TokenIssued {
                    role,
                    filer,
                    provinces: match scope {
                        Scope::Everywhere => None,
                        Scope::Provinces(set) => Some(set.into_iter().collect()),
                    },
                    hash,
                    label,
                    expires_at,
                    at: now,
                }
            }
            TokenCommand::Revoke { .. } if !self.issued => return Err(TokenError::NotFound),
            TokenCommand::Revoke { .. } if self.revoked => return Err(TokenError::AlreadyRevoked),
            TokenCommand::Revoke { at } => TokenEvent::TokenRevoked { at },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            TokenEvent::TokenIssued { .. } => self.issued = true,
            TokenEvent::TokenRevoked { .. } => self.revoked = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use cqrs_es::test::TestFramework;
    use uuid::Uuid;

    use super::*;

    type Framework = TestFramework<Token>;

    const FILER: FilerId = FilerId(Uuid::from_u128(7));

    fn at(hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 1, hour, 0, 0)
            .single()
            .unwrap()
    }

    fn issue(
        role: Role,
        filer: Option<FilerId>,
        scope: Scope,
        expiry: Option<u32>,
    ) -> TokenCommand {
        TokenCommand::Issue {
            role,
            filer,
            scope,
            hash: "ab".repeat(32),
            label: Some("front desk".into()),
            expires_at: expiry.map(at),
            now: at(11),
        }
    }

    fn issued(role: Role, filer: Option<FilerId>, provinces: Option<Vec<String>>) -> TokenEvent {
        TokenEvent::TokenIssued {
            role,
            filer,
            provinces,
            hash: "ab".repeat(32),
            label: Some("front desk".into()),
            expires_at: None,
            at: at(11),
        }
    }

    #[test]
    fn a_token_is_issued_once_for_its_holder() {
        Framework::with(())
            .given_no_previous_events()
            .when(issue(Role::Business, Some(FILER), Scope::Everywhere, None))
            .then_expect_events(vec![issued(Role::Business, Some(FILER), None)]);
        let scope = Scope::provinces(&["79", "01"]).unwrap();
        Framework::with(())
            .given_no_previous_events()
            .when(issue(Role::Officer, None, scope, None))
            .then_expect_events(vec![issued(
                Role::Officer,
                None,
                Some(vec!["01".into(), "79".into()]),
            )]);
        Framework::with(())
            .given(vec![issued(Role::Admin, None, None)])
            .when(issue(Role::Admin, None, Scope::Everywhere, None))
            .then_expect_error(TokenError::AlreadyIssued);
    }

    #[test]
    fn a_token_matches_its_role() {
        for (role, filer) in [
            (Role::Business, None),
            (Role::Intermediary, None),
            (Role::Officer, Some(FILER)),
            (Role::Admin, Some(FILER)),
        ] {
            Framework::with(())
                .given_no_previous_events()
                .when(issue(role, filer, Scope::Everywhere, None))
                .then_expect_error(TokenError::FilerMismatch);
        }
        Framework::with(())
            .given_no_previous_events()
            .when(issue(
                Role::Admin,
                None,
                Scope::provinces(&["79"]).unwrap(),
                None,
            ))
            .then_expect_error(TokenError::ScopeNotOfficer);
    }

    #[test]
    fn an_expiry_must_be_in_the_future() {
        Framework::with(())
            .given_no_previous_events()
            .when(issue(Role::Admin, None, Scope::Everywhere, Some(11)))
            .then_expect_error(TokenError::ExpiryPassed(at(11)));
        let mut later = issued(Role::Admin, None, None);
        if let TokenEvent::TokenIssued { expires_at, .. } = &mut later {
            *expires_at = Some(at(12));
        }
        Framework::with(())
            .given_no_previous_events()
            .when(issue(Role::Admin, None, Scope::Everywhere, Some(12)))
            .then_expect_events(vec![later]);
    }

    #[test]
    fn an_expiry_is_at_most_ten_years_ahead() {
        let far = at(11) + chrono::Duration::days(MAX_LIFETIME_DAYS) + chrono::Duration::hours(1);
        let TokenCommand::Issue {
            role,
            filer,
            scope,
            hash,
            label,
            now,
            ..
        } = issue(Role::Admin, None, Scope::Everywhere, None)
        else {
            unreachable!()
        };
        Framework::with(())
            .given_no_previous_events()
            .when(TokenCommand::Issue {
                role,
                filer,
                scope,
                hash,
                label,
                expires_at: Some(far),
                now,
            })
            .then_expect_error(TokenError::ExpiryTooFar(far));
    }

    #[test]
    fn a_revoked_token_stays_revoked() {
        Framework::with(())
            .given(vec![issued(Role::Admin, None, None)])
            .when(TokenCommand::Revoke { at: at(13) })
            .then_expect_events(vec![TokenEvent::TokenRevoked { at: at(13) }]);
        Framework::with(())
            .given(vec![
                issued(Role::Admin, None, None),
                TokenEvent::TokenRevoked { at: at(13) },
            ])
            .when(TokenCommand::Revoke { at: at(13) })
            .then_expect_error(TokenError::AlreadyRevoked);
        Framework::with(())
            .given(vec![
                issued(Role::Admin, None, None),
                TokenEvent::TokenRevoked { at: at(13) },
            ])
            .when(issue(Role::Admin, None, Scope::Everywhere, None))
            .then_expect_error(TokenError::AlreadyIssued);
        Framework::with(())
            .given_no_previous_events()
            .when(TokenCommand::Revoke { at: at(13) })
            .then_expect_error(TokenError::NotFound);
        let revoked = TokenEvent::TokenRevoked { at: at(13) };
        assert_eq!(revoked.event_type(), "TokenRevoked");
        assert_eq!(revoked.event_version(), EVENT_VERSION);
    }
}
