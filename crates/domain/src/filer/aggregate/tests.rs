//! The Filer's rules as given(events) / when(command) / then(events or error).

use cqrs_es::test::TestFramework;

use chrono::{DateTime, TimeZone, Utc};
use uuid::Uuid;

use super::*;
use crate::filer::SizeClass;

type Framework = TestFramework<Filer>;

const ASSOCIATION: FilerId = FilerId(Uuid::from_u128(7));

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 1, 3, 0, 0).single().unwrap()
}

fn small_woman_owned() -> FilerProfile {
    FilerProfile {
        size_class: Some(SizeClass::Small),
        woman_owned: Some(true),
        ..Default::default()
    }
}

fn registered(kind: FilerKind) -> FilerEvent {
    FilerEvent::FilerRegistered {
        kind,
        enterprise_key: Some("k1".into()),
        registered_by: None,
        profile: FilerProfile::default(),
        label: None,
        at: at(),
    }
}

#[test]
fn a_business_registers_once_with_its_profile() {
    let register = || FilerCommand::Register {
        kind: FilerKind::Business,
        enterprise_key: Some("k1".into()),
        registered_by: None,
        profile: small_woman_owned(),
        label: None,
        at: at(),
    };
    Framework::with(())
        .given_no_previous_events()
        .when(register())
        .then_expect_events(vec![FilerEvent::FilerRegistered {
            kind: FilerKind::Business,
            enterprise_key: Some("k1".into()),
            registered_by: None,
            profile: small_woman_owned(),
            label: None,
            at: at(),
        }]);
    Framework::with(())
        .given(vec![registered(FilerKind::Business)])
        .when(register())
        .then_expect_error(FilerError::AlreadyRegistered);
}

#[test]
fn an_intermediary_registers_businesses_only() {
    let member = |kind| FilerCommand::Register {
        kind,
        enterprise_key: None,
        registered_by: Some(ASSOCIATION),
        profile: FilerProfile::default(),
        label: None,
        at: at(),
    };
    Framework::with(())
        .given_no_previous_events()
        .when(member(FilerKind::Business))
        .then_expect_events(vec![FilerEvent::FilerRegistered {
            kind: FilerKind::Business,
            enterprise_key: None,
            registered_by: Some(ASSOCIATION),
            profile: FilerProfile::default(),
            label: None,
            at: at(),
        }]);
    Framework::with(())
        .given_no_previous_events()
        .when(member(FilerKind::Intermediary))
        .then_expect_error(FilerError::MemberMustBeBusiness);
}

#[test]
fn nothing_happens_to_a_filer_never_registered() {
    Framework::with(())
        .given_no_previous_events()
        .when(FilerCommand::ChangeProfile {
            profile: small_woman_owned(),
            at: at(),
        })
        .then_expect_error(FilerError::NotFound);
}

#[test]
fn a_profile_change_is_recorded_only_when_something_changes() {
    Framework::with(())
        .given(vec![registered(FilerKind::Business)])
        .when(FilerCommand::ChangeProfile {
            profile: small_woman_owned(),
            at: at(),
        })
        .then_expect_events(vec![FilerEvent::FilerProfileChanged {
            profile: small_woman_owned(),
            at: at(),
        }]);
    Framework::with(())
        .given(vec![
            registered(FilerKind::Business),
            FilerEvent::FilerProfileChanged {
                profile: small_woman_owned(),
                at: at(),
            },
        ])
        .when(FilerCommand::ChangeProfile {
            profile: small_woman_owned(),
            at: at(),
        })
        .then_expect_events(vec![]);
}

#[test]
fn events_name_their_type_and_version_and_an_old_profile_reads_as_undeclared() {
    assert_eq!(
        registered(FilerKind::Business).event_type(),
        "FilerRegistered"
    );
    assert_eq!(
        registered(FilerKind::Business).event_version(),
        EVENT_VERSION
    );
    // A profile stored before woman_owned and ethnic_minority_owned existed.
    let old: FilerProfile =
        serde_json::from_str(r#"{"size_class":"small","sector_section":"G"}"#).unwrap();
    assert_eq!(old.woman_owned, None);
    assert_eq!(old.ethnic_minority_owned, None);
    assert_eq!(old.sector_section.map(|s| s.as_char()), Some('G'));
    assert!(serde_json::from_str::<FilerProfile>(r#"{"sector_section":"Z"}"#).is_err());
}
