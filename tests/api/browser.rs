//! The dashboard in a real browser: runs scripts/dashboard-e2e.py (headless Chromium over the
//! DevTools protocol) against this build's binary. Without Chromium the test says SKIPPED
//! loudly; under `CI=true` it fails, like the PostgreSQL tests.

#[test]
fn the_dashboard_in_headless_chromium_shows_the_apis_numbers() {
    let chromium = ["chromium", "chromium-browser"].iter().any(|name| {
        std::process::Command::new("which")
            .arg(name)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !chromium {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but chromium is not installed (apt-get install chromium)"
        );
        eprintln!("SKIPPED: chromium is not installed; the browser test did not run");
        return;
    }
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let out = std::env::temp_dir().join(format!("redtape-dashboard-{}.png", uuid::Uuid::now_v7()));
    let run = std::process::Command::new("python3")
        .arg(format!("{root}/scripts/dashboard-e2e.py"))
        .args([
            "--binary",
            env!("CARGO_BIN_EXE_redtape"),
            "--submissions",
            "5000",
        ])
        .arg("--out")
        .arg(&out)
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "dashboard e2e failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        stdout.contains("the year at a glance (") && stdout.contains("34 tiles"),
        "{stdout}"
    );
    assert!(stdout.contains("match the API"), "{stdout}");
    let overview = out.with_file_name(format!(
        "{}-overview.png",
        out.file_stem().and_then(|s| s.to_str()).unwrap_or_default()
    ));
    for shot in [&out, &overview] {
        let png = std::fs::read(shot).expect("a screenshot");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "a PNG screenshot");
        std::fs::remove_file(shot).ok();
    }
}
