//! Signing in, sessions, CSRF and authorization in the portal, without a browser.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::SET_COOKIE;

use super::provider::{FakeProvider, Flaw};
use super::{Browser, enable_web, spawn_portal};
use crate::support::{Files, serve_files_on};

async fn started(extra: &str) -> (FakeProvider, crate::support::TestApp) {
    let provider = FakeProvider::start().await;
    let app = spawn_portal(&provider, Files::copy_examples(), extra).await;
    (provider, app)
}

#[tokio::test]
async fn a_known_person_signs_in_with_a_strict_cookie_and_sees_their_access() {
    let (provider, app) = started("").await;
    let mut browser = Browser::new(&app.base);
    provider.sign_in_as("Alice@Example.com");
    let login = browser.get("/web/login").await;
    assert_eq!(login.status, StatusCode::SEE_OTHER);
    let to_provider = login.location().unwrap().to_owned();
    assert!(to_provider.starts_with(&provider.issuer), "{to_provider}");
    for part in [
        "code_challenge_method=S256",
        "state=",
        "nonce=",
        "code_challenge=",
    ] {
        assert!(to_provider.contains(part), "{part} in {to_provider}");
    }
    let back = browser.get(&to_provider).await;
    let callback = browser.get(back.location().unwrap()).await;
    assert_eq!(callback.status, StatusCode::SEE_OTHER, "{}", callback.body);
    assert_eq!(callback.location(), Some("/web/access"));
    let session = callback
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("gatehouse="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "served over http: {session}");

    let page = browser.get("/web/access").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Alice Ng"), "{}", page.body);
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("script-src"), "no script is allowed: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert_eq!(page.headers["x-content-type-options"], "nosniff");
    assert!(!page.body.contains("<script"), "{}", page.body);
}

#[tokio::test]
async fn an_unknown_email_gets_a_clear_page_and_no_session() {
    let (provider, app) = started("").await;
    let mut browser = Browser::new(&app.base);
    let page = browser.sign_in(&provider, "stranger@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(
        page.body.contains("Gatehouse does not know you"),
        "{}",
        page.body
    );
    assert_eq!(browser.session_cookie(), None);
    assert_eq!(
        browser.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );

    // A leaver is known, and refused all the same.
    let page = browser.sign_in(&provider, "gus@example.com").await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("no longer active"), "{}", page.body);
    assert_eq!(browser.session_cookie(), None);
}

#[tokio::test]
async fn an_id_token_with_any_flaw_opens_no_session() {
    let (provider, app) = started("").await;
    for flaw in [Flaw::Signature, Flaw::Audience, Flaw::Expired, Flaw::Nonce] {
        let mut browser = Browser::new(&app.base);
        provider.flaw_next_token(flaw);
        let page = browser.sign_in(&provider, "alice@example.com").await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{flaw:?}");
        assert!(
            page.body.contains("could not be verified"),
            "{flaw:?}: {}",
            page.body
        );
        assert_eq!(browser.session_cookie(), None, "{flaw:?}");
    }
    // The PKCE verifier and the client's secret were right every time.
    assert_eq!(provider.refused_exchanges(), 0);
}

#[tokio::test]
async fn a_callback_brought_by_another_browser_is_refused() {
    let (provider, app) = started("").await;
    let mut victim = Browser::new(&app.base);
    let mut attacker = Browser::new(&app.base);
    provider.sign_in_as("alice@example.com");
    let login = attacker.get("/web/login").await;
    let back = attacker.get(login.location().unwrap()).await;
    // The attacker hands their callback link to someone else (login CSRF).
    let page = victim.get(back.location().unwrap()).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert_eq!(victim.session_cookie(), None);
    assert_eq!(
        provider.refused_exchanges(),
        0,
        "the code was never redeemed"
    );
}

#[tokio::test]
async fn a_sign_in_started_on_one_replica_is_finished_by_another_and_only_once() {
    let (provider, first) = started("").await;
    let public = first.base.clone();
    let mut browser = Browser::new(&first.base);
    provider.sign_in_as("alice@example.com");
    let login = browser.get("/web/login").await;
    let back = browser.get(login.location().unwrap()).await;
    let callback = back.location().unwrap().to_owned();
    let path = callback
        .strip_prefix(&public)
        .unwrap_or_else(|| panic!("{callback} is under {public}"))
        .to_owned();

    // The replica that sent the browser off goes away; another one on the same store, with
    // nothing of the sign-in in its memory, serves the same public URL and takes the callback.
    let files = first.stop_keeping_files().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    enable_web(&files, &provider.issuer, &public, "");
    let second = serve_files_on(files, listener).await;
    browser.base = second.base.clone();
    let sign_in_cookie = browser.cookies.clone();
    let page = browser.get(&path).await;
    assert_eq!(page.status, StatusCode::SEE_OTHER, "{}", page.body);
    assert_eq!(page.location(), Some("/web/access"));
    assert_eq!(browser.get("/web/access").await.status, StatusCode::OK);

    // The same callback again, with its sign-in cookie put back: it was taken once already.
    let mut replay = Browser::new(&second.base);
    replay.cookies = sign_in_cookie;
    let page = replay.get(&path).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("was used already"), "{}", page.body);
    assert_eq!(replay.session_cookie(), None);
}

#[tokio::test]
async fn a_form_without_its_csrf_token_or_from_elsewhere_is_refused_and_changes_nothing() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let csrf = alice.get("/web/access").await.csrf();
    let ask = [
        ("resource", "prod-db"),
        ("role", "read"),
        ("duration", "2h"),
        ("justification", "checking replication"),
    ];
    let page = alice.post("/web/new", &ask).await;
    assert_eq!(page.status, StatusCode::FORBIDDEN, "no token");
    let mut wrong = ask.to_vec();
    wrong.push(("csrf", "not-the-token"));
    assert_eq!(
        alice.post("/web/new", &wrong).await.status,
        StatusCode::FORBIDDEN
    );
    let mut right = ask.to_vec();
    right.push(("csrf", &csrf));
    let elsewhere = alice
        .http
        .post(format!("{}/web/new", app.base))
        .header(
            "cookie",
            format!("gatehouse={}", alice.session_cookie().unwrap()),
        )
        .header("origin", "https://evil.example.com")
        .form_body(&right)
        .send()
        .await
        .unwrap();
    assert_eq!(
        elsewhere.status(),
        StatusCode::FORBIDDEN,
        "another site's form"
    );
    let (_, requests) = app.get("/api/v1/requests").await;
    assert_eq!(
        requests["requests"].as_array().unwrap().len(),
        0,
        "{requests}"
    );

    let page = alice.post("/web/new", &right).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let (_, requests) = app.get("/api/v1/requests").await;
    assert_eq!(
        requests["requests"].as_array().unwrap().len(),
        1,
        "{requests}"
    );
}

trait FormBody {
    fn form_body(self, form: &[(&str, &str)]) -> Self;
}

impl FormBody for reqwest::RequestBuilder {
    fn form_body(self, form: &[(&str, &str)]) -> Self {
        self.header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string(form).unwrap())
    }
}

#[tokio::test]
async fn a_tampered_or_made_up_session_cookie_is_refused() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let real = alice.session_cookie().unwrap().clone();
    let mut tampered = real.clone();
    let last = tampered.pop().unwrap();
    tampered.push(if last == 'A' { 'B' } else { 'A' });
    alice.cookies.insert("gatehouse".into(), tampered);
    let page = alice.get("/web/access").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(!page.body.contains("Alice Ng"));
    alice.cookies.insert("gatehouse".into(), "made-up".into());
    assert_eq!(
        alice.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );
    alice.cookies.insert("gatehouse".into(), real);
    assert_eq!(alice.get("/web/access").await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_survives_a_restart_and_logout_ends_it() {
    let provider = FakeProvider::start().await;
    let app = spawn_portal(&provider, Files::copy_examples(), "").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let cookie = alice.session_cookie().unwrap().clone();
    let files = app.stop_keeping_files().await;

    let app = spawn_portal(&provider, files, "").await;
    let mut alice = Browser::new(&app.base);
    alice.cookies.insert("gatehouse".into(), cookie.clone());
    let page = alice.get("/web/access").await;
    assert_eq!(
        page.status,
        StatusCode::OK,
        "the session outlived the restart"
    );
    let signed_out = alice.post("/web/logout", &[("csrf", &page.csrf())]).await;
    assert_eq!(signed_out.status, StatusCode::OK);
    assert!(
        signed_out.body.contains("signed out"),
        "{}",
        signed_out.body
    );
    assert_eq!(alice.session_cookie(), None, "the cookie is deleted");
    // The old cookie, sent again, finds no session.
    alice.cookies.insert("gatehouse".into(), cookie);
    assert_eq!(
        alice.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_session_left_idle_past_its_timeout_is_refused() {
    let (provider, app) = started("idle_timeout = \"1s\"\nabsolute_timeout = \"1h\"\n").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let page = alice.get("/web/access").await;
    assert_eq!(page.status, StatusCode::UNAUTHORIZED);
    assert!(page.body.contains("without use"), "{}", page.body);
}

/// Reads My access until `done` holds (the outbox provisions after the approval).
async fn until_access_shows(browser: &mut Browser, done: &str) -> String {
    for _ in 0..100 {
        let page = browser.get("/web/access").await;
        if page.body.contains(done) {
            return page.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("My access never showed {done}");
}

#[tokio::test]
async fn a_requester_asks_and_the_approvers_approve_in_the_portal_by_the_engines_rules() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;

    let form = alice.get("/web/new?resource=prod-db&role=read").await;
    assert_eq!(form.status, StatusCode::OK, "{}", form.body);
    assert!(form.body.contains("Who will approve"), "{}", form.body);
    assert!(
        form.body.contains("Bob"),
        "alice's manager approves first: {}",
        form.body
    );
    let csrf = form.csrf();
    let too_long = alice
        .post(
            "/web/new",
            &[
                ("csrf", &csrf),
                ("resource", "prod-db"),
                ("role", "read"),
                ("duration", "9h"),
                ("justification", "checking replication"),
            ],
        )
        .await;
    assert_eq!(too_long.status, StatusCode::BAD_REQUEST);
    assert!(
        too_long.body.contains("at most 8h"),
        "the chat sentence: {}",
        too_long.body
    );

    let asked = alice
        .post(
            "/web/new",
            &[
                ("csrf", &csrf),
                ("resource", "prod-db"),
                ("role", "read"),
                ("duration", "2h"),
                ("justification", "checking <replication>"),
            ],
        )
        .await;
    assert_eq!(asked.status, StatusCode::OK, "{}", asked.body);
    assert!(asked.body.contains("AR-1"), "{}", asked.body);

    // The requester cannot approve their own request, whatever they post.
    let own = alice
        .post("/web/requests/AR-1/approve", &[("csrf", &csrf)])
        .await;
    assert!(own.status.is_client_error(), "{}", own.body);

    // Nor can someone who is not an approver of the current stage.
    let mut carol = Browser::new(&app.base);
    carol.sign_in(&provider, "carol@example.com").await;
    let carol_csrf = carol.get("/web/approvals").await.csrf();
    let early = carol
        .post("/web/requests/AR-1/approve", &[("csrf", &carol_csrf)])
        .await;
    assert!(
        early.status.is_client_error(),
        "stage 1 is bob's: {}",
        early.body
    );

    let mut bob = Browser::new(&app.base);
    bob.sign_in(&provider, "bob@example.com").await;
    let waiting = bob.get("/web/approvals").await;
    assert!(waiting.body.contains("AR-1"), "{}", waiting.body);
    assert!(
        waiting.body.contains("checking &lt;replication&gt;"),
        "escaped: {}",
        waiting.body
    );
    let approved = bob
        .post("/web/requests/AR-1/approve", &[("csrf", &waiting.csrf())])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);
    let approved = carol
        .post("/web/requests/AR-1/approve", &[("csrf", &carol_csrf)])
        .await;
    assert_eq!(approved.status, StatusCode::SEE_OTHER, "{}", approved.body);

    let access = until_access_shows(&mut alice, "state-active").await;
    assert!(access.contains("G-1"), "{access}");
    let page = alice.get("/web/requests/AR-1").await;
    assert!(page.body.contains("Bob Marsh approved"), "{}", page.body);
    assert!(page.body.contains("Access given (G-1)"), "{}", page.body);
    let trail = alice.get("/web/requests/AR-1/audit").await;
    assert_eq!(trail.status, StatusCode::OK, "{}", trail.body);
    for action in ["request_submitted", "stage_approved", "request_approved"] {
        assert!(trail.body.contains(action), "{action} in {}", trail.body);
    }
}

#[tokio::test]
async fn only_admins_see_every_grant_and_nobody_opens_a_stranger_s_request() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    assert_eq!(alice.get("/web/grants").await.status, StatusCode::FORBIDDEN);
    let mut sue = Browser::new(&app.base);
    sue.sign_in(&provider, "sue@example.com").await;
    let page = sue.get("/web/grants").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);

    let csrf = alice.get("/web/access").await.csrf();
    let ask = [
        ("csrf", csrf.as_str()),
        ("resource", "prod-db"),
        ("role", "read"),
        ("duration", "2h"),
        ("justification", "checking replication"),
    ];
    assert_eq!(alice.post("/web/new", &ask).await.status, StatusCode::OK);
    let mut dan = Browser::new(&app.base);
    dan.sign_in(&provider, "dan@example.com").await;
    assert_eq!(
        dan.get("/web/requests/AR-1").await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        sue.get("/web/requests/AR-1").await.status,
        StatusCode::OK,
        "an admin"
    );
}

#[tokio::test]
async fn sign_ins_beyond_the_rate_limit_are_refused_with_429() {
    let (provider, app) = started("sign_ins_per_minute = 2\n").await;
    let mut browser = Browser::new(&app.base);
    for _ in 0..2 {
        assert_eq!(
            browser.get("/web/login").await.status,
            StatusCode::SEE_OTHER
        );
    }
    let refused = browser.get("/web/login").await;
    assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(refused.body.contains("wait a minute"), "{}", refused.body);
    drop(provider);
}

#[tokio::test]
async fn the_sign_in_count_is_kept_in_the_store_so_a_restart_or_another_replica_shares_it() {
    let minute = || chrono::Utc::now().timestamp().div_euclid(60);
    // The limit is per minute: a run that straddles a minute's turn is run again.
    for _ in 0..3 {
        let (provider, app) = started("sign_ins_per_minute = 2\n").await;
        let began = minute();
        let mut browser = Browser::new(&app.base);
        let first = browser.get("/web/login").await;
        assert_eq!(first.status, StatusCode::SEE_OTHER, "{}", first.body);
        // Another Gatehouse on the same store (here the same one restarted, with the
        // memory of the first gone) counts against the same limit.
        let files = app.stop_keeping_files().await;
        let app = spawn_portal(&provider, files, "sign_ins_per_minute = 2\n").await;
        let mut browser = Browser::new(&app.base);
        let second = browser.get("/web/login").await.status;
        let third = browser.get("/web/login").await.status;
        if minute() != began {
            continue;
        }
        assert_eq!(second, StatusCode::SEE_OTHER);
        assert_eq!(
            third,
            StatusCode::TOO_MANY_REQUESTS,
            "the first counted too"
        );
        return;
    }
    panic!("every run straddled a minute");
}

#[tokio::test]
async fn auditors_search_verify_and_export_the_audit_log_and_nobody_else_may() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let csrf = alice.get("/web/access").await.csrf();
    let ask = [
        ("csrf", csrf.as_str()),
        ("resource", "prod-db"),
        ("role", "read"),
        ("duration", "2h"),
        ("justification", "=cmd|' /C calc'!A0"),
    ];
    assert_eq!(alice.post("/web/new", &ask).await.status, StatusCode::OK);
    assert_eq!(alice.get("/web/audit").await.status, StatusCode::FORBIDDEN);
    assert_eq!(
        alice.get("/web/audit/export?format=csv").await.status,
        StatusCode::FORBIDDEN
    );

    // sam is an auditor in the example policy, and no admin.
    let mut sam = Browser::new(&app.base);
    sam.sign_in(&provider, "sam@example.com").await;
    let page = sam.get("/web/audit?person=alice&resource=prod-db").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("request_submitted"), "{}", page.body);
    assert!(page.body.contains("AR-1"), "{}", page.body);
    let nobody = sam.get("/web/audit?person=bob").await;
    assert!(nobody.body.contains("No event matches"), "{}", nobody.body);
    let later = sam.get("/web/audit?since=2099-01-01").await;
    assert!(later.body.contains("No event matches"), "{}", later.body);
    let typo = sam.get("/web/audit?since=yesterday").await;
    assert!(typo.body.contains("is not a date"), "{}", typo.body);
    assert_eq!(
        sam.get("/web/grants").await.status,
        StatusCode::FORBIDDEN,
        "no admin"
    );

    let csv = sam.get("/web/audit/export?person=alice&format=csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(
        csv.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("seq,at,actor,action"), "{}", csv.body);
    assert!(
        lines.iter().any(|l| l.contains("request_submitted")),
        "{}",
        csv.body
    );
    assert!(
        csv.body.contains("\"'=cmd"),
        "a formula is exported as text: {}",
        csv.body
    );
    let jsonl = sam.get("/web/audit/export?person=alice&format=jsonl").await;
    let first: serde_json::Value =
        serde_json::from_str(jsonl.body.lines().next().unwrap()).unwrap();
    assert_eq!(first["seq"], 1, "oldest first, with its hashes: {first}");

    let verified = sam.get("/web/audit/verify").await;
    assert!(
        verified.body.contains("The audit chain is intact"),
        "{}",
        verified.body
    );
}

#[tokio::test]
async fn the_policy_page_shows_the_policy_and_explains_for_me_or_for_anyone_if_i_audit() {
    let (provider, app) = started("").await;
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let page = alice.get("/web/policy").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Production PostgreSQL"), "{}", page.body);
    assert!(
        page.body.contains("<strong>privileged</strong>"),
        "{}",
        page.body
    );

    let explained = alice
        .get("/web/policy?person=carol&resource=prod-db&role=read&duration=2h")
        .await;
    assert!(
        explained.body.contains("alice asking for prod-db"),
        "only for herself: {}",
        explained.body
    );
    assert!(explained.body.contains("Bob Marsh"), "{}", explained.body);
    let refused = alice.get("/web/policy?resource=%3Cscript%3E&role=x").await;
    assert!(refused.body.contains("Refused"), "{}", refused.body);
    assert!(
        !refused.body.contains("<script>"),
        "escaped: {}",
        refused.body
    );

    let mut sam = Browser::new(&app.base);
    sam.sign_in(&provider, "sam@example.com").await;
    let for_carol = sam
        .get("/web/policy?person=carol&resource=prod-db&role=read")
        .await;
    assert!(
        for_carol.body.contains("carol asking for prod-db"),
        "{}",
        for_carol.body
    );
}

#[tokio::test]
async fn sessions_end_everywhere_at_their_persons_wish_or_an_admins() {
    let (provider, app) = started("").await;
    let mut laptop = Browser::new(&app.base);
    let mut phone = Browser::new(&app.base);
    laptop.sign_in(&provider, "alice@example.com").await;
    phone.sign_in(&provider, "alice@example.com").await;
    let mut bob = Browser::new(&app.base);
    bob.sign_in(&provider, "bob@example.com").await;

    let csrf = laptop.get("/web/access").await.csrf();
    let refused = laptop
        .post("/web/sessions/end", &[("csrf", &csrf), ("person", "bob")])
        .await;
    assert_eq!(
        refused.status,
        StatusCode::FORBIDDEN,
        "only admins end others' sessions"
    );
    assert_eq!(bob.get("/web/access").await.status, StatusCode::OK);

    let ended = laptop.post("/web/sessions/end", &[("csrf", &csrf)]).await;
    assert_eq!(ended.status, StatusCode::OK, "{}", ended.body);
    assert!(
        ended.body.contains("2 session(s) of alice ended"),
        "{}",
        ended.body
    );
    assert_eq!(
        phone.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        laptop.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );

    let mut sue = Browser::new(&app.base);
    sue.sign_in(&provider, "sue@example.com").await;
    let csrf = sue.get("/web/grants").await.csrf();
    let ended = sue
        .post("/web/sessions/end", &[("csrf", &csrf), ("person", "bob")])
        .await;
    assert!(
        ended.body.contains("1 session(s) of bob ended"),
        "{}",
        ended.body
    );
    assert_eq!(
        bob.get("/web/access").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        sue.get("/web/access").await.status,
        StatusCode::OK,
        "hers go on"
    );
}

#[tokio::test]
async fn the_portal_starts_while_the_provider_is_down_and_opens_sign_in_once_it_answers() {
    let provider = FakeProvider::start().await;
    provider.set_down(true);
    let app = spawn_portal(&provider, Files::copy_examples(), "").await;
    let ready = reqwest::get(format!("{}/readyz", app.base)).await.unwrap();
    assert_eq!(
        ready.status(),
        StatusCode::OK,
        "the provider is not chat's concern"
    );
    let mut browser = Browser::new(&app.base);
    for _ in 0..10 {
        let page = browser.get("/web/login").await;
        assert_eq!(
            page.status,
            StatusCode::SERVICE_UNAVAILABLE,
            "{}",
            page.body
        );
        assert!(
            page.body.contains("Sign-in is unavailable right now"),
            "{}",
            page.body
        );
        assert_eq!(page.headers["retry-after"], "60");
    }
    assert!(
        provider.discoveries() < 10,
        "tried again only after a wait, not on every sign-in: {}",
        provider.discoveries()
    );

    provider.set_down(false);
    let mut opened = None;
    for _ in 0..100 {
        let page = browser.get("/web/login").await;
        if page.status == StatusCode::SEE_OTHER {
            opened = Some(page);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let opened = opened.expect("sign-in opens once the provider answers");
    assert!(opened.location().unwrap().starts_with(&provider.issuer));
    let page = browser.sign_in(&provider, "alice@example.com").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("Alice Ng"), "signed in: {}", page.body);
}
