//! The `Procedure` aggregate: a procedure's statutory terms over time.
//!
//! The methodology compares each timing with "the statutory limit in force on submitted_on"
//! (§2), and reforms change limits from an effective date, so a procedure is a timeline, not a
//! row: `ProcedureRegistered` opens it, `StatutoryTermsChanged` (a reform) adds a period from
//! its effective date, `ProcedureAbolished` closes it. The aggregate id is the procedure code.
//! Periods are appended in date order, so "in force on d" is the last period starting on or
//! before d.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::procedure::{Procedure, ProcedureCode, ProcedureLevel};
use crate::submission::report::earliest_date;
use crate::validation::Violations;

pub const EVENT_VERSION: &str = "1.0";

/// The terms in force from a date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub effective_from: NaiveDate,
    pub statutory_working_days: u16,
    pub official_fee_vnd: Option<i64>,
    /// The law or decision that set these terms.
    pub legal_basis: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ProcedureEvent {
    ProcedureRegistered {
        code: String,
        name_vi: String,
        name_en: String,
        level: ProcedureLevel,
        agency: String,
        terms: Terms,
        registered_at: DateTime<Utc>,
    },
    /// A reform: new terms from `terms.effective_from`.
    StatutoryTermsChanged {
        terms: Terms,
        changed_at: DateTime<Utc>,
    },
    ProcedureAbolished {
        effective_from: NaiveDate,
        legal_basis: String,
        abolished_at: DateTime<Utc>,
    },
}

impl DomainEvent for ProcedureEvent {
    fn event_type(&self) -> String {
        match self {
            ProcedureEvent::ProcedureRegistered { .. } => "ProcedureRegistered",
            ProcedureEvent::StatutoryTermsChanged { .. } => "StatutoryTermsChanged",
            ProcedureEvent::ProcedureAbolished { .. } => "ProcedureAbolished",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        EVENT_VERSION.to_string()
    }
}

pub enum ProcedureCommand {
    /// Registers a procedure whose first terms start at `terms.effective_from`.
    Register {
        procedure: Procedure,
        effective_from: NaiveDate,
        at: DateTime<Utc>,
    },
    Reform {
        terms: Terms,
        at: DateTime<Utc>,
    },
    Abolish {
        effective_from: NaiveDate,
        legal_basis: String,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProcedureError {
    #[error("the procedure is invalid: {0}")]
    Invalid(Violations),
    #[error("a procedure with this code is already registered")]
    AlreadyRegistered,
    #[error("no such procedure")]
    NotFound,
    #[error("the procedure was abolished from {0}")]
    Abolished(NaiveDate),
}

/// A procedure's timeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProcedureTimeline {
    pub code: Option<String>,
    pub name_vi: String,
    pub name_en: String,
    pub level: Option<ProcedureLevel>,
    pub agency: String,
    /// In effective-date order.
    pub periods: Vec<Terms>,
    pub abolished_from: Option<NaiveDate>,
}

impl ProcedureTimeline {
    /// The terms in force on `day`: none before the first period or from abolition on.
    pub fn terms_on(&self, day: NaiveDate) -> Option<&Terms> {
        if self.abolished_from.is_some_and(|a| day >= a) {
            return None;
        }
        self.periods.iter().rev().find(|t| t.effective_from <= day)
    }

    /// The statutory limit in working days in force on `day`.
    pub fn limit_on(&self, day: NaiveDate) -> Option<u16> {
        self.terms_on(day).map(|t| t.statutory_working_days)
    }

    /// Dates on which terms changed after registration (reform years are marked on trends).
    pub fn reform_dates(&self) -> impl Iterator<Item = NaiveDate> + '_ {
        self.periods.iter().skip(1).map(|t| t.effective_from)
    }

    /// The reforms (terms after the first) that took effect in `year`.
    pub fn reforms_in(&self, year: i32) -> impl Iterator<Item = &Terms> + '_ {
        self.periods
            .iter()
            .skip(1)
            .filter(move |t| chrono::Datelike::year(&t.effective_from) == year)
    }

    fn check_terms(&self, terms: &Terms) -> Result<(), ProcedureError> {
        let mut v = Violations::new();
        if !(1..=3650).contains(&terms.statutory_working_days) {
            v.push(
                "/statutory_working_days",
                "range",
                "must be between 1 and 3650 working days",
            );
        }
        if terms
            .official_fee_vnd
            .is_some_and(|f| !(0..=crate::values::MAX_VND).contains(&f))
        {
            v.push(
                "/official_fee_vnd",
                "range",
                "must be between 0 and 10^12 VND",
            );
        }
        if terms.legal_basis.trim().is_empty() {
            v.push(
                "/legal_basis",
                "required",
                "name the law or decision that sets these terms",
            );
        }
        if terms.effective_from < earliest_date() {
            v.push(
                "/effective_from",
                "too_old",
                format!("must be on or after {}", earliest_date()),
            );
        }
        if let Some(last) = self.periods.last() {
            if terms.effective_from <= last.effective_from {
                v.push(
                    "/effective_from",
                    "after_previous_terms",
                    format!(
                        "must be after {}, when the current terms took effect",
                        last.effective_from
                    ),
                );
            }
        }
        v.into_result().map_err(ProcedureError::Invalid)
    }
}

impl Aggregate for ProcedureTimeline {
    const TYPE: &'static str = "Procedure";
    type Command = ProcedureCommand;
    type Event = ProcedureEvent;
    type Error = ProcedureError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let event = match command {
            ProcedureCommand::Register {
                procedure,
                effective_from,
                at,
            } => {
                if self.code.is_some() {
                    return Err(ProcedureError::AlreadyRegistered);
                }
                let terms = Terms {
                    effective_from,
                    statutory_working_days: procedure.statutory_working_days,
                    official_fee_vnd: procedure.official_fee_vnd,
                    legal_basis: procedure.legal_basis.clone(),
                };
                let mut v = Violations::new();
                for (pointer, text) in [
                    ("/name_vi", &procedure.name_vi),
                    ("/name_en", &procedure.name_en),
                    ("/agency", &procedure.agency),
                ] {
                    if text.trim().is_empty() {
                        v.push(pointer, "required", "must not be blank");
                    }
                }
                v.into_result().map_err(ProcedureError::Invalid)?;
                self.check_terms(&terms)?;
                ProcedureEvent::ProcedureRegistered {
                    code: procedure.code.as_str().to_string(),
                    name_vi: procedure.name_vi,
                    name_en: procedure.name_en,
                    level: procedure.level,
                    agency: procedure.agency,
                    terms,
                    registered_at: at,
                }
            }
            ProcedureCommand::Reform { terms, at } => {
                self.check_open()?;
                self.check_terms(&terms)?;
                ProcedureEvent::StatutoryTermsChanged {
                    terms,
                    changed_at: at,
                }
            }
            ProcedureCommand::Abolish {
                effective_from,
                legal_basis,
                at,
            } => {
                self.check_open()?;
                let mut v = Violations::new();
                if legal_basis.trim().is_empty() {
                    v.push(
                        "/legal_basis",
                        "required",
                        "name the law or decision that abolishes it",
                    );
                }
                if self
                    .periods
                    .first()
                    .is_some_and(|t| effective_from <= t.effective_from)
                {
                    v.push(
                        "/effective_from",
                        "after_registration",
                        "must be after the procedure took effect",
                    );
                }
                v.into_result().map_err(ProcedureError::Invalid)?;
                ProcedureEvent::ProcedureAbolished {
                    effective_from,
                    legal_basis,
                    abolished_at: at,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ProcedureEvent::ProcedureRegistered {
                code,
                name_vi,
                name_en,
                level,
                agency,
                terms,
                ..
            } => {
                self.code = Some(code);
                self.name_vi = name_vi;
                self.name_en = name_en;
                self.level = Some(level);
                self.agency = agency;
                self.periods = vec![terms];
            }
            ProcedureEvent::StatutoryTermsChanged { terms, .. } => self.periods.push(terms),
            ProcedureEvent::ProcedureAbolished { effective_from, .. } => {
                self.abolished_from = Some(effective_from)
            }
        }
    }
}

/// Longest procedure name accepted (either language).
pub const MAX_NAME_CHARS: usize = 300;
/// Longest legal basis accepted.
pub const MAX_LEGAL_BASIS_CHARS: usize = 300;

/// A registration as an officer sends it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RegistrationDraft {
    /// The national procedure code.
    #[cfg_attr(feature = "openapi", schema(example = "1.004227"))]
    pub code: String,
    #[cfg_attr(feature = "openapi", schema(example = "Cấp Giấy phép xây dựng mới"))]
    pub name_vi: String,
    #[cfg_attr(
        feature = "openapi",
        schema(example = "Construction permit (new building)")
    )]
    pub name_en: String,
    pub level: ProcedureLevel,
    #[cfg_attr(feature = "openapi", schema(example = "Sở Xây dựng"))]
    pub agency: String,
    /// The statutory time limit in working days (1 to 3650).
    #[cfg_attr(feature = "openapi", schema(example = 20))]
    pub statutory_working_days: u16,
    /// The official fee where it is set nationally; omit where provinces set it.
    #[cfg_attr(feature = "openapi", schema(example = 150000))]
    pub official_fee_vnd: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(example = "Luật Xây dựng 2014, Điều 102"))]
    pub legal_basis: String,
    /// The first day these terms apply (on or after 2020-01-01).
    #[cfg_attr(feature = "openapi", schema(example = "2020-01-01"))]
    pub effective_from: NaiveDate,
}

/// A reform as an officer sends it: the new terms and the day they take effect.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReformDraft {
    /// After the day the current terms took effect.
    #[cfg_attr(feature = "openapi", schema(example = "2026-01-01"))]
    pub effective_from: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(example = 2))]
    pub statutory_working_days: u16,
    #[cfg_attr(feature = "openapi", schema(example = 0))]
    pub official_fee_vnd: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(example = "Nghị định 168/2025/NĐ-CP"))]
    pub legal_basis: String,
}

/// An abolition as an officer sends it.
#[derive(Debug, Clone, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AbolitionDraft {
    /// The first day the procedure no longer exists.
    #[cfg_attr(feature = "openapi", schema(example = "2026-07-01"))]
    pub effective_from: NaiveDate,
    #[cfg_attr(feature = "openapi", schema(example = "Nghị quyết 66/NQ-CP"))]
    pub legal_basis: String,
}

impl RegistrationDraft {
    /// The command this draft asks for; format and length rules are checked here, the rest
    /// by the aggregate.
    pub fn into_command(self, at: DateTime<Utc>) -> Result<(String, ProcedureCommand), Violations> {
        use crate::submission::moderation::bounded;
        let mut v = Violations::new();
        let code = v.collect(ProcedureCode::parse_format("/code", &self.code));
        let name_vi = bounded(&mut v, "/name_vi", &self.name_vi, MAX_NAME_CHARS);
        let name_en = bounded(&mut v, "/name_en", &self.name_en, MAX_NAME_CHARS);
        let agency = bounded(&mut v, "/agency", &self.agency, MAX_NAME_CHARS);
        let legal_basis = bounded(
            &mut v,
            "/legal_basis",
            &self.legal_basis,
            MAX_LEGAL_BASIS_CHARS,
        );
        v.into_result()?;
        let Some(code) = code else {
            return Err(Violations::single("/code", "format", "invalid code"));
        };
        Ok((
            code.as_str().to_string(),
            ProcedureCommand::Register {
                procedure: Procedure {
                    code,
                    name_vi,
                    name_en,
                    level: self.level,
                    agency,
                    statutory_working_days: self.statutory_working_days,
                    official_fee_vnd: self.official_fee_vnd,
                    legal_basis,
                },
                effective_from: self.effective_from,
                at,
            },
        ))
    }
}

/// A draft of a change to a registered procedure (a reform, an abolition).
pub trait ChangeDraft {
    /// The command this draft asks for; format and length rules are checked here, the rest
    /// by the aggregate.
    fn into_command(self, at: DateTime<Utc>) -> Result<ProcedureCommand, Violations>;
}

/// A legal basis, trimmed, present and within its length.
fn legal_basis(text: &str) -> Result<String, Violations> {
    let mut v = Violations::new();
    let text =
        crate::submission::moderation::bounded(&mut v, "/legal_basis", text, MAX_LEGAL_BASIS_CHARS);
    v.into_result().map(|()| text)
}

impl ChangeDraft for ReformDraft {
    fn into_command(self, at: DateTime<Utc>) -> Result<ProcedureCommand, Violations> {
        let legal_basis = legal_basis(&self.legal_basis)?;
        Ok(ProcedureCommand::Reform {
            terms: Terms {
                effective_from: self.effective_from,
                statutory_working_days: self.statutory_working_days,
                official_fee_vnd: self.official_fee_vnd,
                legal_basis,
            },
            at,
        })
    }
}

impl ChangeDraft for AbolitionDraft {
    fn into_command(self, at: DateTime<Utc>) -> Result<ProcedureCommand, Violations> {
        let legal_basis = legal_basis(&self.legal_basis)?;
        Ok(ProcedureCommand::Abolish {
            effective_from: self.effective_from,
            legal_basis,
            at,
        })
    }
}

impl ProcedureTimeline {
    fn check_open(&self) -> Result<(), ProcedureError> {
        if self.code.is_none() {
            return Err(ProcedureError::NotFound);
        }
        match self.abolished_from {
            Some(day) => Err(ProcedureError::Abolished(day)),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
