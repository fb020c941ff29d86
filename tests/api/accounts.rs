//! Filers and tokens as events (issue 13, the command side): every registration, profile
//! change, issue and revocation is an event with its rules, and the projector and a rebuild
//! take the log with them in it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use redtape_domain::filer::aggregate::{FilerCommand, FilerError, FilerKind};
use redtape_domain::filer::{EnterpriseCode, FilerProfile, SizeClass};
use redtape_domain::submission::FilerId;
use redtape_domain::token::{TokenCommand, TokenError};
use redtape_domain::{Role, Scope};
use redtape_store::accounts::{AccountError, Registration, TokenRequest};
use redtape_store::{CommandError, Filers, Tokens};
use uuid::Uuid;

use crate::helpers::TestApp;

fn metadata() -> HashMap<String, String> {
    HashMap::from([("actor".to_string(), "test".to_string())])
}

async fn filers_and_tokens_are_events_with_their_rules(app: &TestApp) {
    let wake = Arc::new(tokio::sync::Notify::new());
    let filers = Filers::new(&app.db, wake.clone());
    let tokens = Tokens::new(&app.db, wake);
    let filer = FilerId(Uuid::now_v7());
    let profile = FilerProfile {
        size_class: Some(SizeClass::Micro),
        woman_owned: Some(true),
        ..Default::default()
    };
    let register = || FilerCommand::Register {
        kind: FilerKind::Business,
        enterprise_key: None,
        registered_by: None,
        profile,
        label: None,
        at: Utc::now(),
    };
    let id = filer.to_string();
    filers.execute(&id, register(), metadata()).await.unwrap();
    assert!(matches!(
        filers.execute(&id, register(), metadata()).await,
        Err(CommandError::Rule(FilerError::AlreadyRegistered))
    ));
    let (state, events) = filers.state(&id).await.unwrap();
    assert_eq!((state.profile, events), (profile, 1));
    let (never, events) = filers.state(&Uuid::now_v7().to_string()).await.unwrap();
    assert_eq!((never.kind, events), (None, 0));

    let token = Uuid::now_v7().to_string();
    let now = Utc::now();
    let issue = |expires_at| TokenCommand::Issue {
        role: Role::Business,
        filer: Some(filer),
        scope: Scope::Everywhere,
        hash: "cd".repeat(32),
        label: Some("accountant".into()),
        expires_at,
        now,
    };
    assert!(matches!(
        tokens
            .execute(&token, issue(Some(now - Duration::hours(1))), metadata())
            .await,
        Err(CommandError::Rule(TokenError::ExpiryPassed(_)))
    ));
    tokens
        .execute(&token, issue(Some(now + Duration::days(30))), metadata())
        .await
        .unwrap();
    tokens
        .execute(&token, TokenCommand::Revoke { at: now }, metadata())
        .await
        .unwrap();
    assert!(matches!(
        tokens
            .execute(&token, TokenCommand::Revoke { at: now }, metadata())
            .await,
        Err(CommandError::Rule(TokenError::AlreadyRevoked))
    ));
    let (state, events) = tokens.state(&token).await.unwrap();
    assert!(state.issued && state.revoked && events == 2);

    // Two events of each in the log, beside the seed catalogue's.
    for (aggregate, n) in [("Filer", 1), ("Token", 2)] {
        assert_eq!(
            redtape_store::db::count_events_of(&app.db, aggregate)
                .await
                .unwrap(),
            n,
            "{aggregate}"
        );
    }
    // The projector and a rebuild take a log with them in it.
    app.project().await;
    let events = redtape_store::db::count_events(&app.db).await.unwrap();
    let replayed = redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap();
    assert_eq!(replayed as i64, events);
}

/// Everything the admin listings show of filers and tokens.
async fn accounts_read_models(
    app: &TestApp,
) -> (
    Vec<redtape_store::accounts::read::FilerRow>,
    Vec<redtape_store::accounts::read::TokenRow>,
) {
    let filers = redtape_store::accounts::read::filers(&app.db, None, 1000, None)
        .await
        .unwrap();
    let tokens = redtape_store::accounts::read::tokens(&app.db, None, 1000, None)
        .await
        .unwrap();
    (filers, tokens)
}

async fn a_rebuild_restores_filers_profiles_and_tokens(app: &TestApp) {
    let accounts = app.accounts();
    let association = accounts
        .register(
            Registration {
                kind: FilerKind::Intermediary,
                label: Some("Hiệp hội Doanh nghiệp Sóc Trăng".into()),
                ..Registration::business()
            },
            "test",
        )
        .await
        .unwrap();
    let code = EnterpriseCode::parse("2200123456").unwrap();
    let member = accounts
        .register(
            Registration {
                registered_by: Some(association),
                enterprise_code: Some(code),
                profile: FilerProfile {
                    size_class: Some(SizeClass::Micro),
                    ..Default::default()
                },
                ..Registration::business()
            },
            "test",
        )
        .await
        .unwrap();
    let changed = FilerProfile {
        size_class: Some(SizeClass::Small),
        woman_owned: Some(true),
        ethnic_minority_owned: Some(true),
        ..Default::default()
    };
    assert!(accounts
        .change_profile(member, changed, "test")
        .await
        .unwrap());
    assert!(!accounts
        .change_profile(member, changed, "test")
        .await
        .unwrap());

    // The same enterprise again, however spaced, is refused; the code is stored nowhere.
    let again = EnterpriseCode::parse(" 2200123456 ").unwrap();
    let refused = accounts
        .register(
            Registration {
                enterprise_code: Some(again),
                ..Registration::business()
            },
            "test",
        )
        .await;
    assert!(
        matches!(
            refused,
            Err(CommandError::Rule(AccountError::EnterpriseTaken))
        ),
        "{refused:?}"
    );
    let stored: Vec<String> = redtape_store::on_pool!(&app.db, pool => sqlx::query_scalar(
        "SELECT CAST(payload AS text) || CAST(metadata AS text) FROM events")
        .fetch_all(pool).await)
    .unwrap();
    assert!(!stored.is_empty());
    assert!(stored.iter().all(|e| !e.contains("2200123456")));

    let live = accounts
        .issue(TokenRequest::new(Role::Business, Some(member)), "test")
        .await
        .unwrap();
    let revoked = accounts
        .issue(TokenRequest::new(Role::Business, Some(member)), "test")
        .await
        .unwrap();
    accounts
        .revoke(revoked.principal.token_id, "test")
        .await
        .unwrap();
    let mut expiring = TokenRequest::new(Role::Admin, None);
    expiring.expires_at = Some(Utc::now() + Duration::milliseconds(1500));
    let expiring = accounts.issue(expiring, "test").await.unwrap();
    let mut scoped = TokenRequest::new(Role::Officer, None);
    scoped.scope = Scope::provinces(&["79"]).unwrap();
    scoped.label = Some("Sở Kế hoạch".into());
    let scoped = accounts.issue(scoped, "test").await.unwrap();
    // A business token names a business, an intermediary token an intermediary.
    let wrong = accounts
        .issue(TokenRequest::new(Role::Business, Some(association)), "test")
        .await;
    assert!(
        matches!(
            wrong,
            Err(CommandError::Rule(AccountError::WrongKind { .. }))
        ),
        "{wrong:?}"
    );
    let unknown = accounts
        .issue(
            TokenRequest::new(Role::Business, Some(FilerId(Uuid::now_v7()))),
            "test",
        )
        .await;
    assert!(
        matches!(
            unknown,
            Err(CommandError::Rule(AccountError::UnknownFiler(_)))
        ),
        "{unknown:?}"
    );

    app.post("/v1/timings", &live.token, &crate::helpers::timing())
        .await
        .expect(201);
    app.post("/v1/timings", &revoked.token, &crate::helpers::timing())
        .await
        .problem(401);
    app.get("/v1/moderation/queue", Some(&scoped.token))
        .await
        .expect(200);
    app.get("/v1/moderation/queue", Some(&expiring.token))
        .await
        .expect(200);

    let before = accounts_read_models(app).await;
    assert_eq!(before.0.len(), 2);
    assert_eq!(before.1.len(), 4);
    let row = before
        .0
        .iter()
        .find(|f| f.filer_id == member.to_string())
        .unwrap();
    assert_eq!(
        (
            row.kind.as_str(),
            row.registered_by.clone(),
            row.size_class.as_deref(),
            row.woman_owned,
            row.ethnic_minority_owned,
            row.sector_section.as_deref(),
        ),
        (
            "business",
            Some(association.to_string()),
            Some("small"),
            Some(true),
            Some(true),
            None
        )
    );
    let used = before
        .1
        .iter()
        .find(|t| t.token_id == live.principal.token_id.to_string())
        .unwrap();
    assert!(used.last_used_at.is_some(), "{used:?}");
    assert_eq!(
        before
            .1
            .iter()
            .find(|t| t.token_id == scoped.principal.token_id.to_string())
            .map(|t| t.provinces.as_deref()),
        Some(Some("79"))
    );

    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap();
    assert_eq!(accounts_read_models(app).await, before);
    app.post("/v1/timings", &revoked.token, &crate::helpers::timing())
        .await
        .problem(401);
    app.post("/v1/timings", &live.token, &crate::helpers::timing())
        .await
        .expect(201);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    app.get("/v1/moderation/queue", Some(&expiring.token))
        .await
        .problem(401);
}

/// Tokens and filers issued before they were events are adopted into the log once, and then
/// survive a rebuild.
async fn filers_and_tokens_from_before_are_adopted(app: &TestApp) {
    let filer = Uuid::now_v7().to_string();
    let (live, revoked) = ("rt_legacy_live", "rt_legacy_revoked");
    let (live_id, revoked_id) = (Uuid::now_v7().to_string(), Uuid::now_v7().to_string());
    let at = "2026-01-02T03:04:05.000000Z";
    redtape_store::on_pool!(&app.db, pool => {
        sqlx::query("INSERT INTO filers (filer_id, label, created_at, size_class, sector_section) \
                     VALUES ($1, 'old', $2, 'medium', 'C')")
            .bind(&filer).bind(at).execute(pool).await.unwrap();
        sqlx::query("INSERT INTO api_tokens (token_hash, token_id, role, filer_id, label, \
                     created_at, revoked_at, provinces) VALUES \
                     ($1, $2, 'business', $3, 'old', $4, NULL, NULL), \
                     ($5, $6, 'officer', NULL, NULL, $4, $4, '01,79')")
            .bind(redtape_store::tokens::hash(live)).bind(&live_id).bind(&filer).bind(at)
            .bind(redtape_store::tokens::hash(revoked)).bind(&revoked_id)
            .execute(pool).await.unwrap();
    });
    // A rebuild refuses while they are not events: it would lose them.
    let refused = redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await;
    assert!(refused.is_err());

    let accounts = app.accounts();
    assert_eq!(redtape_store::accounts::adopt(&accounts).await.unwrap(), 3);
    assert_eq!(redtape_store::accounts::adopt(&accounts).await.unwrap(), 0);
    let (state, events) = accounts
        .filer(FilerId(Uuid::parse_str(&filer).unwrap()))
        .await
        .unwrap()
        .map(|f| (f.profile, 1))
        .unwrap();
    assert_eq!(state.size_class, Some(SizeClass::Medium));
    assert_eq!(events, 1);
    redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap();
    let (filers, tokens) = accounts_read_models(app).await;
    assert_eq!(filers.len(), 1);
    assert_eq!(
        (filers[0].label.as_deref(), filers[0].created_at.as_str()),
        (Some("old"), at)
    );
    let find = |id: &str| tokens.iter().find(|t| t.token_id == id).cloned().unwrap();
    assert_eq!(find(&live_id).revoked_at, None);
    assert_eq!(find(&revoked_id).revoked_at.as_deref(), Some(at));
    assert_eq!(find(&revoked_id).provinces.as_deref(), Some("01,79"));
    app.post("/v1/timings", live, &crate::helpers::timing())
        .await
        .expect(201);
    app.get("/v1/moderation/queue", Some(revoked))
        .await
        .problem(401);

    // A replica of the previous version revokes in `api_tokens` during a rolling upgrade: the
    // next adoption records it.
    redtape_store::on_pool!(&app.db, pool =>
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE token_id = $1")
            .bind(&live_id).bind(at).execute(pool).await.map(|_| ()).unwrap());
    assert_eq!(redtape_store::accounts::adopt(&accounts).await.unwrap(), 1);
    app.post("/v1/timings", live, &crate::helpers::timing())
        .await
        .problem(401);
    assert_eq!(redtape_store::accounts::adopt(&accounts).await.unwrap(), 0);
}

crate::on_both_stores!(
    filers_and_tokens_are_events_with_their_rules,
    a_rebuild_restores_filers_profiles_and_tokens,
    filers_and_tokens_from_before_are_adopted,
);
