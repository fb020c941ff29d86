//! Filers and tokens as events (issue 13, the command side): every registration, profile
//! change, issue and revocation is an event with its rules, and the projector and a rebuild
//! take the log with them in it.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use redtape_domain::filer::aggregate::{FilerCommand, FilerError, FilerKind};
use redtape_domain::filer::{FilerProfile, SizeClass};
use redtape_domain::submission::FilerId;
use redtape_domain::token::{TokenCommand, TokenError};
use redtape_domain::{Role, Scope};
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
    // The projector and a rebuild take a log with them in it (they do not project them yet).
    app.project().await;
    let events = redtape_store::db::count_events(&app.db).await.unwrap();
    let replayed = redtape_store::Projector::new(app.db.clone())
        .rebuild()
        .await
        .unwrap();
    assert_eq!(replayed as i64, events);
}

crate::on_both_stores!(filers_and_tokens_are_events_with_their_rules);
