//! The `Filer` aggregate (DESIGN.md "Filer"): an organisation that files, and its declared
//! profile over time. The aggregate id is the filer id, a UUIDv7 that names nobody. The tokens
//! a filer holds are [`crate::token`] aggregates of their own (so are staff tokens, which
//! have no filer), each naming its filer.
//!
//! - A *business* files about itself. An *intermediary* (a business association, an SME
//!   support centre) registers member businesses and files on their behalf: a member records
//!   the intermediary that registered it (`registered_by`), which alone may act for it.
//! - An enterprise registers once. The store derives its `enterprise_key` (an HMAC-SHA-256 of
//!   the enterprise code under a server key) and claims the key before the registration
//!   commits; the code itself never reaches an event, an answer or a log.
//!
//! Events carry their schema version ([`EVENT_VERSION`]); a later version that adds a field
//! reads older events with the field absent.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use super::FilerProfile;
use crate::submission::FilerId;

pub const EVENT_VERSION: &str = "1.0";

/// What kind of organisation files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum FilerKind {
    /// Files about itself.
    Business,
    /// Registers member businesses and files on their behalf.
    Intermediary,
}

impl FilerKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FilerKind::Business => "business",
            FilerKind::Intermediary => "intermediary",
        }
    }

    pub fn parse(text: &str) -> Option<FilerKind> {
        [FilerKind::Business, FilerKind::Intermediary]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

pub enum FilerCommand {
    Register {
        kind: FilerKind,
        enterprise_key: Option<String>,
        /// The intermediary registering a member business.
        registered_by: Option<FilerId>,
        profile: FilerProfile,
        /// A name for administrators (never published).
        label: Option<String>,
        at: DateTime<Utc>,
    },
    ChangeProfile {
        profile: FilerProfile,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum FilerEvent {
    FilerRegistered {
        kind: FilerKind,
        enterprise_key: Option<String>,
        registered_by: Option<FilerId>,
        profile: FilerProfile,
        /// A name for administrators (never published).
        #[serde(default)]
        label: Option<String>,
        /// When it was decided (the read models' `created_at`).
        at: DateTime<Utc>,
    },
    FilerProfileChanged {
        profile: FilerProfile,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for FilerEvent {
    fn event_type(&self) -> String {
        match self {
            FilerEvent::FilerRegistered { .. } => "FilerRegistered",
            FilerEvent::FilerProfileChanged { .. } => "FilerProfileChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        EVENT_VERSION.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FilerError {
    #[error("this filer is already registered")]
    AlreadyRegistered,
    #[error("no such filer")]
    NotFound,
    #[error("only a business is registered by an intermediary")]
    MemberMustBeBusiness,
}

/// A filer as deciding a command needs it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Filer {
    /// `None` until registered.
    pub kind: Option<FilerKind>,
    pub registered_by: Option<FilerId>,
    pub profile: FilerProfile,
}

impl Aggregate for Filer {
    const TYPE: &'static str = "Filer";
    type Command = FilerCommand;
    type Event = FilerEvent;
    type Error = FilerError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let registered = self.kind.is_some();
        let event = match command {
            FilerCommand::Register {
                kind,
                enterprise_key,
                registered_by,
                profile,
                label,
                at,
            } => {
                if registered {
                    return Err(FilerError::AlreadyRegistered);
                }
                if registered_by.is_some() && kind != FilerKind::Business {
                    return Err(FilerError::MemberMustBeBusiness);
                }
                FilerEvent::FilerRegistered {
                    kind,
                    enterprise_key,
                    registered_by,
                    profile,
                    label,
                    at,
                }
            }
            _ if !registered => return Err(FilerError::NotFound),
            FilerCommand::ChangeProfile { profile, at } => {
                if profile == self.profile {
                    // Nothing changes: nothing to record.
                    return Ok(());
                }
                FilerEvent::FilerProfileChanged { profile, at }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            FilerEvent::FilerRegistered {
                kind,
                registered_by,
                profile,
                ..
            } => {
                self.kind = Some(kind);
                self.registered_by = registered_by;
                self.profile = profile;
            }
            FilerEvent::FilerProfileChanged { profile, .. } => self.profile = profile,
        }
    }
}

#[cfg(test)]
mod tests;
