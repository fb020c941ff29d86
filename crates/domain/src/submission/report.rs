//! What a business reports, in two shapes.
//!
//! A *draft* is the request as received, with plain types; `parse` turns it into a *report*,
//! whose fields are value types, checking every rule and collecting every violation. Reports
//! are what events carry. Drafts derive `ToSchema` under the `openapi` feature so the API
//! documents exactly the shape this crate parses: one source, no drift.
//!
//! One file (about 540 lines) on purpose: the timing and complaint drafts share most fields and
//! every parse rule, and reading the two shapes side by side is how a rule is checked against
//! the methodology; split, each rule would be read in two places.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::geography::{ProvinceRef, Provinces};
use crate::procedure::ProcedureCode;
use crate::validation::{violation, Violations};
use crate::values::{Category, Channel, Costs, Narrative, Outcome, StaffHours, Visits, Vnd};

/// Checks procedure codes against the catalogue in force. A trait, so that the store can
/// serve a catalogue that reform offices extend, while tests use the seed.
pub trait ProcedureLookup: Send + Sync {
    fn parse_procedure(
        &self,
        pointer: &str,
        code: &str,
    ) -> Result<ProcedureCode, crate::FieldViolation>;

    /// Why the procedure did not exist on `day` (before its first terms, or abolished),
    /// or `None` when it did. A lookup without timelines (the seed) knows no such dates.
    fn not_in_force(&self, _code: &ProcedureCode, _day: NaiveDate) -> Option<String> {
        None
    }
}

/// Records a violation at `pointer` (the date field) when the procedure was not in force on
/// the date of the experience: its statutory terms, and so its figures, do not exist then.
fn check_in_force(
    v: &mut Violations,
    ctx: &ParseContext<'_>,
    pointer: &str,
    procedure: Option<&ProcedureCode>,
    day: Option<NaiveDate>,
) {
    if let (Some(code), Some(day)) = (procedure, day) {
        if let Some(why) = ctx.procedures.not_in_force(code, day) {
            v.push(pointer, "procedure_not_in_force", why);
        }
    }
}

impl ProcedureLookup for crate::ProcedureCatalogue {
    fn parse_procedure(
        &self,
        pointer: &str,
        code: &str,
    ) -> Result<ProcedureCode, crate::FieldViolation> {
        self.parse(pointer, code)
    }
}

/// The earliest date redtape accepts: the first day the built-in holiday calendar and hourly
/// tariffs cover (2020). An older observation could be stored but not measured by the
/// methodology (its working days would ignore holidays, its SCM cost would have no tariff),
/// and every stored observation must be one the indices can count correctly.
pub fn earliest_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or(NaiveDate::MIN)
}

/// What `parse` needs besides the draft.
pub struct ParseContext<'a> {
    pub procedures: &'a dyn ProcedureLookup,
    /// Today in Vietnam (UTC+7): no date may be later.
    pub today: NaiveDate,
}

impl ParseContext<'_> {
    fn date(&self, v: &mut Violations, pointer: &str, date: NaiveDate) -> Option<NaiveDate> {
        if date > self.today {
            v.push(
                pointer,
                "not_in_future",
                format!("{date} is after today ({}) in Vietnam", self.today),
            );
            None
        } else if date < earliest_date() {
            v.push(
                pointer,
                "too_old",
                format!(
                    "{date} is before {}, the earliest date redtape accepts",
                    earliest_date()
                ),
            );
            None
        } else {
            Some(date)
        }
    }
}

/// Costs as received: whole VND, each optional.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CostsDraft {
    /// Fees and charges paid to the authority, VND.
    #[cfg_attr(
        feature = "openapi",
        schema(example = 50000, minimum = 0, maximum = 1_000_000_000_000i64)
    )]
    pub official_fees: Option<i64>,
    /// Payments outside the official fee schedule, VND.
    #[cfg_attr(
        feature = "openapi",
        schema(example = 0, minimum = 0, maximum = 1_000_000_000_000i64)
    )]
    pub unofficial_payments: Option<i64>,
    /// Consultants, notaries, translation and other bought-in services, VND.
    #[cfg_attr(
        feature = "openapi",
        schema(example = 1500000, minimum = 0, maximum = 1_000_000_000_000i64)
    )]
    pub external_services: Option<i64>,
}

impl CostsDraft {
    fn parse(self, v: &mut Violations) -> Costs {
        let mut amount = |name: &str, value: Option<i64>| {
            value.and_then(|a| v.collect(Vnd::parse(&format!("/costs/{name}"), a)))
        };
        Costs {
            official_fees: amount("official_fees", self.official_fees),
            unofficial_payments: amount("unofficial_payments", self.unofficial_payments),
            external_services: amount("external_services", self.external_services),
        }
    }

    fn from_costs(c: &Costs) -> Self {
        Self {
            official_fees: c.official_fees.map(Vnd::get),
            unofficial_payments: c.unofficial_payments.map(Vnd::get),
            external_services: c.external_services.map(Vnd::get),
        }
    }
}

fn staff_hours(v: &mut Violations, h: Option<f64>) -> Option<StaffHours> {
    h.and_then(|h| v.collect(StaffHours::parse("/staff_hours", h)))
}

fn visits(v: &mut Violations, n: Option<i64>) -> Option<Visits> {
    n.and_then(|n| v.collect(Visits::parse("/visits", n)))
}

/// A procedure timing as filed: how long one run of a procedure took and what it cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct TimingDraft {
    /// National procedure code, from `GET /v1/procedures`.
    #[cfg_attr(feature = "openapi", schema(example = "1.001612"))]
    pub procedure_code: String,
    /// GSO province code on the map in force on `submitted_on` (vn-63 before 2025-07-01,
    /// vn-34 from then on), from `GET /v1/provinces`.
    #[cfg_attr(feature = "openapi", schema(example = "79"))]
    pub province_code: String,
    /// The day the complete dossier was lodged.
    #[cfg_attr(feature = "openapi", schema(example = "2025-09-02"))]
    pub submitted_on: NaiveDate,
    /// The day the result was received; absent while the procedure is still pending.
    #[cfg_attr(feature = "openapi", schema(example = "2025-09-10"))]
    pub completed_on: Option<NaiveDate>,
    /// Required when `completed_on` is given; absent while pending.
    pub outcome: Option<Outcome>,
    pub channel: Channel,
    #[serde(default)]
    pub costs: CostsDraft,
    /// Staff time spent on the case, hours. Without it no SCM cost is computed.
    #[cfg_attr(
        feature = "openapi",
        schema(example = 6.5, minimum = 0, maximum = 10000)
    )]
    pub staff_hours: Option<f64>,
    /// In-person visits to an office.
    #[cfg_attr(feature = "openapi", schema(example = 2, minimum = 0, maximum = 1000))]
    pub visits: Option<i64>,
}

/// A validated procedure timing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub procedure: ProcedureCode,
    pub province: ProvinceRef,
    pub submitted_on: NaiveDate,
    pub completed_on: Option<NaiveDate>,
    pub outcome: Option<Outcome>,
    pub channel: Channel,
    pub costs: Costs,
    pub staff_hours: Option<StaffHours>,
    pub visits: Option<Visits>,
}

impl TimingDraft {
    /// Checks every rule; returns all violations at once.
    pub fn parse(self, ctx: &ParseContext<'_>) -> Result<Timing, Violations> {
        let mut v = Violations::new();
        let procedure = v.collect(
            ctx.procedures
                .parse_procedure("/procedure_code", &self.procedure_code),
        );
        let submitted_on = ctx.date(&mut v, "/submitted_on", self.submitted_on);
        check_in_force(
            &mut v,
            ctx,
            "/submitted_on",
            procedure.as_ref(),
            submitted_on,
        );
        let province = submitted_on.and_then(|d| {
            v.collect(Provinces::get().parse_on("/province_code", &self.province_code, d))
        });
        let completed_on = match self.completed_on {
            None => None,
            Some(done) if done < self.submitted_on => {
                v.push(
                    "/completed_on",
                    "not_before_submitted_on",
                    format!("{done} is before submitted_on ({})", self.submitted_on),
                );
                None
            }
            Some(done) => ctx.date(&mut v, "/completed_on", done),
        };
        match (self.completed_on.is_some(), self.outcome.is_some()) {
            (true, false) => v.push(
                "/outcome",
                "required",
                "a completed timing needs an outcome (granted, refused or abandoned)",
            ),
            (false, true) => v.push(
                "/outcome",
                "requires_completed_on",
                "a pending timing (no completed_on) has no outcome yet",
            ),
            _ => {}
        }
        let costs = self.costs.parse(&mut v);
        let staff_hours = staff_hours(&mut v, self.staff_hours);
        let visits = visits(&mut v, self.visits);
        v.into_result()?;
        match (procedure, province, submitted_on) {
            (Some(procedure), Some(province), Some(submitted_on)) => Ok(Timing {
                procedure,
                province,
                submitted_on,
                completed_on,
                outcome: self.outcome,
                channel: self.channel,
                costs,
                staff_hours,
                visits,
            }),
            // Unreachable: a None above always recorded a violation.
            _ => Err(Violations::single("", "invalid", "invalid timing")),
        }
    }

    pub fn from_timing(t: &Timing) -> Self {
        Self {
            procedure_code: t.procedure.as_str().to_string(),
            province_code: t.province.code.as_str().to_string(),
            submitted_on: t.submitted_on,
            completed_on: t.completed_on,
            outcome: t.outcome,
            channel: t.channel,
            costs: CostsDraft::from_costs(&t.costs),
            staff_hours: t.staff_hours.map(StaffHours::get),
            visits: t.visits.map(|n| i64::from(n.get())),
        }
    }
}

/// A compliance-cost complaint as filed: an experience with a procedure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ComplaintDraft {
    #[cfg_attr(feature = "openapi", schema(example = "1.009972"))]
    pub procedure_code: String,
    /// GSO province code on the map in force on `experienced_on`.
    #[cfg_attr(feature = "openapi", schema(example = "01"))]
    pub province_code: String,
    /// The day the problem happened.
    #[cfg_attr(feature = "openapi", schema(example = "2025-10-14"))]
    pub experienced_on: NaiveDate,
    /// One to seven distinct categories.
    pub categories: Vec<Category>,
    /// What happened, 1 to 4,000 characters. Never published.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "The office asked for three documents that are not on the published list.",
            max_length = 4000
        )
    )]
    pub narrative: String,
    #[serde(default)]
    pub costs: CostsDraft,
    #[cfg_attr(
        feature = "openapi",
        schema(example = 12, minimum = 0, maximum = 10000)
    )]
    pub staff_hours: Option<f64>,
    #[cfg_attr(feature = "openapi", schema(example = 3, minimum = 0, maximum = 1000))]
    pub visits: Option<i64>,
}

/// A validated complaint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Complaint {
    pub procedure: ProcedureCode,
    pub province: ProvinceRef,
    pub experienced_on: NaiveDate,
    pub categories: Vec<Category>,
    pub narrative: Narrative,
    pub costs: Costs,
    pub staff_hours: Option<StaffHours>,
    pub visits: Option<Visits>,
}

impl ComplaintDraft {
    pub fn parse(self, ctx: &ParseContext<'_>) -> Result<Complaint, Violations> {
        let mut v = Violations::new();
        let procedure = v.collect(
            ctx.procedures
                .parse_procedure("/procedure_code", &self.procedure_code),
        );
        let experienced_on = ctx.date(&mut v, "/experienced_on", self.experienced_on);
        check_in_force(
            &mut v,
            ctx,
            "/experienced_on",
            procedure.as_ref(),
            experienced_on,
        );
        let province = experienced_on.and_then(|d| {
            v.collect(Provinces::get().parse_on("/province_code", &self.province_code, d))
        });
        if self.categories.is_empty() {
            v.push("/categories", "required", "name at least one category");
        }
        let mut categories = self.categories.clone();
        categories.sort();
        categories.dedup();
        if categories.len() != self.categories.len() {
            v.push("/categories", "unique", "each category may appear once");
        }
        let narrative = v.collect(Narrative::parse("/narrative", &self.narrative));
        let costs = self.costs.parse(&mut v);
        let staff_hours = staff_hours(&mut v, self.staff_hours);
        let visits = visits(&mut v, self.visits);
        v.into_result()?;
        match (procedure, province, experienced_on, narrative) {
            (Some(procedure), Some(province), Some(experienced_on), Some(narrative)) => {
                Ok(Complaint {
                    procedure,
                    province,
                    experienced_on,
                    // Kept in the filer's order: it is their account.
                    categories: self.categories,
                    narrative,
                    costs,
                    staff_hours,
                    visits,
                })
            }
            _ => Err(Violations::single("", "invalid", "invalid complaint")),
        }
    }

    pub fn from_complaint(c: &Complaint) -> Self {
        Self {
            procedure_code: c.procedure.as_str().to_string(),
            province_code: c.province.code.as_str().to_string(),
            experienced_on: c.experienced_on,
            categories: c.categories.clone(),
            narrative: c.narrative.as_str().to_string(),
            costs: CostsDraft::from_costs(&c.costs),
            staff_hours: c.staff_hours.map(StaffHours::get),
            visits: c.visits.map(|n| i64::from(n.get())),
        }
    }
}

/// Which of the two kinds a submission is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Timing,
    Complaint,
}

/// The current content of a submission.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Report {
    Timing(Timing),
    Complaint(Complaint),
}

impl Report {
    pub fn kind(&self) -> Kind {
        match self {
            Report::Timing(_) => Kind::Timing,
            Report::Complaint(_) => Kind::Complaint,
        }
    }

    /// The report in request shape, as JSON: the base that an amendment patches.
    pub fn to_draft_json(&self) -> serde_json::Value {
        let draft = match self {
            Report::Timing(t) => serde_json::to_value(TimingDraft::from_timing(t)),
            Report::Complaint(c) => serde_json::to_value(ComplaintDraft::from_complaint(c)),
        };
        draft.unwrap_or(serde_json::Value::Null)
    }

    /// Parses a draft of the same kind as `self` from JSON, reporting shape errors (unknown
    /// fields, wrong types, missing required fields) as violations at their JSON pointer.
    pub fn parse_same_kind(
        &self,
        draft: serde_json::Value,
        ctx: &ParseContext<'_>,
    ) -> Result<Report, Violations> {
        match self {
            Report::Timing(_) => {
                let draft: TimingDraft = from_json(draft, "/changes")?;
                draft.parse(ctx).map(Report::Timing)
            }
            Report::Complaint(_) => {
                let draft: ComplaintDraft = from_json(draft, "/changes")?;
                draft.parse(ctx).map(Report::Complaint)
            }
        }
    }
}

/// Deserializes JSON, turning a serde error into a violation at the offending field.
pub fn from_json<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    prefix: &str,
) -> Result<T, Violations> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut pointer = pointer_of(prefix, e.path());
        let detail = e.inner().to_string();
        // serde names a missing field in its message and points at the object holding it;
        // point at the field itself, so a form can highlight it.
        if let Some(field) = detail
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next())
        {
            pointer = format!("{pointer}/{field}");
        }
        let rule = if detail.starts_with("missing field") {
            "required"
        } else if detail.starts_with("unknown field") {
            "unknown_field"
        } else if detail.starts_with("unknown variant") {
            "one_of"
        } else {
            "type"
        };
        Violations(vec![violation(&pointer, rule, detail)])
    })
}

/// A serde path (`costs.official_fees`, `categories[0]`) as a JSON pointer under `prefix`.
pub fn pointer_of(prefix: &str, path: &serde_path_to_error::Path) -> String {
    let mut pointer = prefix.to_string();
    for segment in path.iter() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => pointer.push_str(&format!("/{index}")),
            serde_path_to_error::Segment::Map { key } => pointer.push_str(&format!("/{key}")),
            serde_path_to_error::Segment::Enum { variant } => {
                pointer.push_str(&format!("/{variant}"))
            }
            serde_path_to_error::Segment::Unknown => {}
        }
    }
    pointer
}

/// An amendment: a JSON merge patch (RFC 7396) over the submission's fields, with a reason.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct AmendmentDraft {
    /// Why the submission is corrected (1 to 500 characters).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "The permit arrived two days later than I first wrote.")
    )]
    pub reason: String,
    /// The fields to change, in the same shape as the original submission; `null` clears an
    /// optional field. Fields not named keep their value.
    #[cfg_attr(feature = "openapi", schema(value_type = Object, example = json!({"completed_on": "2025-09-12", "outcome": "granted"})))]
    pub changes: serde_json::Map<String, serde_json::Value>,
}

/// A withdrawal, with an optional reason.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct WithdrawalDraft {
    #[cfg_attr(feature = "openapi", schema(example = "Filed for the wrong province."))]
    pub reason: Option<String>,
}

/// Applies an RFC 7396 merge patch.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    use serde_json::Value;
    match patch {
        Value::Object(patch) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::new());
            }
            if let Value::Object(map) = target {
                for (key, value) in patch {
                    if value.is_null() {
                        map.remove(key);
                    } else {
                        merge_patch(map.entry(key.clone()).or_insert(Value::Null), value);
                    }
                }
            }
        }
        other => *target = other.clone(),
    }
}
