//! The portal in a real browser (Debian's chromium, through chromedriver) against a real
//! OpenID provider (node's oidc-provider, tests/oidc/provider.mjs), with Slack played by
//! the fake: a requester signs in and asks, two approvers sign in and approve, the grant
//! shows active in the browser and the approver's Slack card is updated; a form without
//! its CSRF token, a tampered cookie, a signed-out session's cookie, an expired session's
//! cookie (after a restart with a short idle timeout) and an unknown email are refused. Ignored under a plain `cargo test`; `.ci/run` installs what they need and
//! runs them, and then a missing program fails them rather than skipping.
//!
//! With `GATEHOUSE_SCREENSHOTS=DIR` the main pages are saved there as PNG (docs/ holds the
//! ones taken so).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::enable_web_for;
use super::webdriver::{Browser, Driver};
use crate::fake_slack::FakeSlack;
use crate::support::{Files, serve_files_on};

const CLIENT_ID: &str = "gatehouse-browser";
const CLIENT_SECRET: &str = "browser-test-client-secret";
const NEEDS: &str = "needs chromium, chromedriver and node's oidc-provider; .ci/run installs them";

/// node-oidc-provider on a free port, for `redirect_uri`; killed when dropped.
struct NodeProvider {
    issuer: String,
    child: Child,
}

impl NodeProvider {
    fn start(redirect_uri: &str) -> NodeProvider {
        let modules = std::env::var("GATEHOUSE_OIDC_PROVIDER_DIR")
            .unwrap_or_else(|_| panic!("GATEHOUSE_OIDC_PROVIDER_DIR is not set: {NEEDS}"));
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/provider.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(port.to_string())
            .arg(redirect_uri)
            .arg(CLIENT_ID)
            .arg(CLIENT_SECRET)
            .env("GATEHOUSE_OIDC_PROVIDER_DIR", modules)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("node could not start: {e}; {NEEDS}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.next().and_then(Result::ok).unwrap_or_default();
        let issuer = ready
            .strip_prefix("ready ")
            .unwrap_or_else(|| panic!("oidc-provider did not start (said {ready:?}); {NEEDS}"))
            .to_owned();
        // Keep reading what it prints: a closed pipe would end it at its next line.
        std::thread::spawn(move || lines.for_each(drop));
        NodeProvider { issuer, child }
    }
}

impl Drop for NodeProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Signs in at the provider's development pages, where the login is taken as the email.
async fn sign_in(browser: &Browser, base: &str, email: &str) {
    browser.go(&format!("{base}/web/login")).await;
    browser.type_into("input[name=login]", email).await;
    browser.type_into("input[name=password]", "any").await;
    browser.click("button[type=submit]").await;
    // The consent page, the first time this person signs in at this provider; the click's
    // navigation may still be under way when it returns.
    for _ in 0..50 {
        if browser.url().await.starts_with(&format!("{base}/")) {
            return;
        }
        if browser
            .source()
            .await
            .contains("name=\"prompt\" value=\"consent\"")
        {
            browser.click("button[type=submit]").await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "signing in never came back to the portal: {}",
        browser.source().await
    )
}

async fn screenshot(browser: &Browser, name: &str) {
    if let Ok(dir) = std::env::var("GATEHOUSE_SCREENSHOTS") {
        let path = PathBuf::from(dir).join(format!("portal-{name}.png"));
        std::fs::write(&path, browser.screenshot().await).unwrap();
    }
}

async fn until_page_shows(browser: &Browser, url: &str, text: &str) -> String {
    for _ in 0..100 {
        browser.go(url).await;
        let page = browser.source().await;
        if page.contains(text) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} never showed {text}");
}

#[tokio::test]
#[ignore = "needs chromium, chromedriver and node's oidc-provider; .ci/run installs them"]
async fn in_a_browser_people_ask_approve_and_see_their_access_and_forgeries_are_refused() {
    let driver = Driver::start().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let provider = NodeProvider::start(&format!("{base}/web/callback"));
    let slack = FakeSlack::start().await;
    let files = Files::copy_examples();
    files.enable_slack(&slack.api_url(), "browser-test-signing-secret");
    enable_web_for(
        &files,
        &provider.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
        &base,
        "",
    );
    let app = serve_files_on(files, listener).await;

    // The requester signs in and asks.
    let alice = driver.browser().await;
    sign_in(&alice, &base, "alice@example.com").await;
    alice.wait_for("Alice Ng").await;
    alice
        .go(&format!("{base}/web/new?resource=prod-db&role=read"))
        .await;
    alice.wait_for("Who will approve").await;
    screenshot(&alice, "new-request").await;
    alice.type_into("#duration", "2h").await;
    alice
        .type_into("#justification", "replication is stuck")
        .await;
    alice.click("form.ask button[type=submit]").await;
    alice.wait_for("Request sent").await;
    alice.wait_for("AR-1").await;

    // The approvers sign in, each in their own browser, and approve.
    for (email, name) in [("bob@example.com", "bob"), ("carol@example.com", "carol")] {
        let approver = driver.browser().await;
        sign_in(&approver, &base, email).await;
        approver.go(&format!("{base}/web/approvals")).await;
        approver.wait_for("AR-1").await;
        if name == "bob" {
            screenshot(&approver, "approvals").await;
        }
        approver
            .click("form[action='/web/requests/AR-1/approve'] button")
            .await;
        approver.wait_for("Request AR-1").await;
        approver.close().await;
    }

    // The grant shows active in the requester's browser; bob's Slack card was updated.
    until_page_shows(&alice, &format!("{base}/web/access"), "state-active").await;
    screenshot(&alice, "my-access").await;
    alice.go(&format!("{base}/web/requests/AR-1")).await;
    alice.wait_for("Timeline").await;
    screenshot(&alice, "request").await;
    let bob_dm = FakeSlack::dm_channel("U0BOB");
    let updated = slack.calls_to("chat.update").into_iter().any(|call| {
        call.args["channel"] == bob_dm.as_str() && call.args.to_string().contains("AR-1")
    });
    assert!(
        updated,
        "bob's card for AR-1 was updated: {:#?}",
        slack.calls_to("chat.update")
    );

    // A form post without its CSRF token, with the browser's own session, is refused.
    alice.go(&format!("{base}/web/access")).await;
    let session = alice.cookie("gatehouse").await.expect("a session cookie");
    let forged = reqwest::Client::new()
        .post(format!("{base}/web/grants/G-1/end"))
        .header("cookie", format!("gatehouse={session}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), reqwest::StatusCode::FORBIDDEN);

    // A tampered cookie is refused; the real one still works.
    alice.set_cookie("gatehouse", &format!("{session}x")).await;
    alice.go(&format!("{base}/web/access")).await;
    assert!(!alice.wait_for("Sign in").await.contains("Alice Ng"));
    alice.set_cookie("gatehouse", &session).await;
    alice.go(&format!("{base}/web/access")).await;
    alice.wait_for("Alice Ng").await;

    // Signing out ends the session: its cookie, put back, lets nobody in.
    alice.click("form.signout button").await;
    alice.wait_for("You are signed out").await;
    alice.set_cookie("gatehouse", &session).await;
    alice.go(&format!("{base}/web/access")).await;
    assert!(!alice.wait_for("Sign in").await.contains("Alice Ng"));
    alice.close().await;

    // Someone the directory does not know is refused with a clear page.
    let stranger = driver.browser().await;
    sign_in(&stranger, &base, "stranger@example.com").await;
    stranger.wait_for("Gatehouse does not know you").await;
    stranger.close().await;

    // Restarted with a two-second idle timeout: a session left alone that long has expired,
    // and its cookie, still in the browser, sends the next page to sign-in.
    let address = base.trim_start_matches("http://").to_owned();
    let files = app.stop_keeping_files().await;
    enable_web_for(
        &files,
        &provider.issuer,
        CLIENT_ID,
        CLIENT_SECRET,
        &base,
        "idle_timeout = \"2s\"\n",
    );
    let listener = tokio::net::TcpListener::bind(&address).await.unwrap();
    let app = serve_files_on(files, listener).await;
    let dan = driver.browser().await;
    sign_in(&dan, &base, "dan@example.com").await;
    dan.wait_for("Dan Ruiz").await;
    let kept = dan.cookie("gatehouse").await.expect("a session cookie");
    tokio::time::sleep(Duration::from_secs(3)).await;
    dan.go(&format!("{base}/web/access")).await;
    let expired = dan.wait_for("without use").await;
    assert!(!expired.contains("Dan Ruiz"), "{expired}");
    assert_eq!(
        dan.cookie("gatehouse").await.as_ref(),
        Some(&kept),
        "the browser still holds the cookie: the server refused it"
    );
    // Its link signs in again (the provider remembers dan): a new session, a new cookie.
    dan.click("a[href='/web/login']").await;
    dan.wait_for("Dan Ruiz").await;
    let fresh = dan.cookie("gatehouse").await.expect("a new session cookie");
    assert_ne!(fresh, kept);
    dan.close().await;
    app.stop().await;
}
