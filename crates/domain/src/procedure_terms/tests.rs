use chrono::TimeZone;
use cqrs_es::test::TestFramework;

use super::*;
use crate::ProcedureCatalogue;

type Framework = TestFramework<ProcedureTimeline>;

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}
fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 10, 1, 0, 0, 0).unwrap()
}
fn registered() -> ProcedureEvent {
    let seed = ProcedureCatalogue::seed().get("1.001612").unwrap().clone();
    ProcedureEvent::ProcedureRegistered {
        code: "1.001612".into(),
        name_vi: seed.name_vi,
        name_en: seed.name_en,
        level: seed.level,
        agency: seed.agency,
        terms: Terms {
            effective_from: day(2021, 1, 1),
            statutory_working_days: 3,
            official_fee_vnd: Some(50_000),
            legal_basis: seed.legal_basis,
        },
        registered_at: at(),
    }
}
fn reform(from: NaiveDate, days: u16) -> Terms {
    Terms {
        effective_from: from,
        statutory_working_days: days,
        official_fee_vnd: Some(0),
        legal_basis: "Decree X".into(),
    }
}

#[test]
fn the_seed_registers() {
    let seed = ProcedureCatalogue::seed().get("1.001612").unwrap().clone();
    Framework::with(())
        .given_no_previous_events()
        .when(ProcedureCommand::Register {
            procedure: seed,
            effective_from: day(2021, 1, 1),
            at: at(),
        })
        .then_expect_events(vec![registered()]);
    Framework::with(())
        .given(vec![registered()])
        .when(ProcedureCommand::Register {
            procedure: ProcedureCatalogue::seed().get("1.001612").unwrap().clone(),
            effective_from: day(2021, 1, 1),
            at: at(),
        })
        .then_expect_error(ProcedureError::AlreadyRegistered);
}

#[test]
fn the_limit_in_force_follows_reforms_and_abolition() {
    let mut t = ProcedureTimeline::default();
    t.apply(registered());
    t.apply(ProcedureEvent::StatutoryTermsChanged {
        terms: reform(day(2025, 7, 1), 2),
        changed_at: at(),
    });
    t.apply(ProcedureEvent::ProcedureAbolished {
        effective_from: day(2026, 1, 1),
        legal_basis: "Law Y".into(),
        abolished_at: at(),
    });
    assert_eq!(t.limit_on(day(2020, 12, 31)), None, "before registration");
    assert_eq!(t.limit_on(day(2021, 1, 1)), Some(3));
    assert_eq!(t.limit_on(day(2025, 6, 30)), Some(3));
    assert_eq!(
        t.limit_on(day(2025, 7, 1)),
        Some(2),
        "the reform applies from its date"
    );
    assert_eq!(t.limit_on(day(2025, 12, 31)), Some(2));
    assert_eq!(t.limit_on(day(2026, 1, 1)), None, "abolished");
    assert_eq!(t.reform_dates().collect::<Vec<_>>(), vec![day(2025, 7, 1)]);
}

#[test]
fn reforms_go_forward_in_time_with_a_legal_basis() {
    Framework::with(())
        .given(vec![registered()])
        .when(ProcedureCommand::Reform {
            terms: reform(day(2025, 7, 1), 2),
            at: at(),
        })
        .then_expect_events(vec![ProcedureEvent::StatutoryTermsChanged {
            terms: reform(day(2025, 7, 1), 2),
            changed_at: at(),
        }]);
    let result = Framework::with(())
        .given(vec![registered()])
        .when(ProcedureCommand::Reform {
            terms: Terms {
                effective_from: day(2020, 1, 1),
                statutory_working_days: 0,
                official_fee_vnd: Some(-1),
                legal_basis: " ".into(),
            },
            at: at(),
        })
        .inspect_result();
    let Err(ProcedureError::Invalid(v)) = result else {
        panic!("{result:?}")
    };
    let rules: Vec<(&str, &str)> =
        v.0.iter()
            .map(|f| (f.pointer.as_str(), f.rule.as_str()))
            .collect();
    assert_eq!(
        rules,
        vec![
            ("/statutory_working_days", "range"),
            ("/official_fee_vnd", "range"),
            ("/legal_basis", "required"),
            ("/effective_from", "after_previous_terms"),
        ]
    );
}

#[test]
fn nothing_changes_after_abolition_or_before_registration() {
    let abolished = ProcedureEvent::ProcedureAbolished {
        effective_from: day(2026, 1, 1),
        legal_basis: "Law Y".into(),
        abolished_at: at(),
    };
    Framework::with(())
        .given(vec![registered(), abolished])
        .when(ProcedureCommand::Reform {
            terms: reform(day(2026, 6, 1), 2),
            at: at(),
        })
        .then_expect_error(ProcedureError::Abolished(day(2026, 1, 1)));
    Framework::with(())
        .given_no_previous_events()
        .when(ProcedureCommand::Reform {
            terms: reform(day(2026, 6, 1), 2),
            at: at(),
        })
        .then_expect_error(ProcedureError::NotFound);
}
