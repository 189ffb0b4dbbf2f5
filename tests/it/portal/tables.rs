//! The portal's long tables: read by index a page at a time, in the orders they offer,
//! with plain links to sort and to page, and a clear 400 for an order or page they lack.

use reqwest::StatusCode;
use serde_json::json;

use super::provider::FakeProvider;
use super::{Browser, Page, spawn_portal};
use crate::support::{Files, TestApp};

/// The example files with `medium` resources m0… (manager, then owner carol) and `low`
/// ones l0… (granted at once for an hour or less).
fn files_with_resources(medium: usize, low: usize) -> Files {
    let files = Files::copy_examples();
    files.edit("policy.toml", |mut policy| {
        for (prefix, risk, count) in [("m", "medium", medium), ("l", "low", low)] {
            for i in 0..count {
                policy.push_str(&format!(
                    "\n[[resources]]\nid = \"{prefix}{i}\"\nname = \"Resource {prefix}{i}\"\nkind = \"saas\"\nowners = [\"carol\"]\nrisk = \"{risk}\"\nconnector = \"log\"\n  [[resources.roles]]\n  id = \"use\"\n  max_duration = \"8h\"\n"
                ));
            }
        }
        policy
    });
    files
}

async fn started(medium: usize, low: usize) -> (FakeProvider, TestApp) {
    let provider = FakeProvider::start().await;
    let app = spawn_portal(&provider, files_with_resources(medium, low), "").await;
    (provider, app)
}

/// `person` asks for `resource` through the admin API; the request's id.
async fn ask(app: &TestApp, person: &str, resource: &str, duration: &str) -> String {
    let body = json!({
        "as": person, "resource": resource, "role": "use", "duration": duration,
        "reason": format!("table test {resource}"),
    });
    let (status, body) = app.post("/api/v1/requests", body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    body["request"]["id"].as_str().unwrap().to_owned()
}

/// The numbers after `before` on the page, in the order they appear (`id="req-AR-` gives
/// the requests on Approvals, `">G-` the grants in a table).
fn numbers_after(page: &Page, before: &str) -> Vec<u64> {
    page.body
        .split(before)
        .skip(1)
        .map(|rest| {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().unwrap()
        })
        .collect()
}

/// The page's HTML with the escapes of `/` and `&` in attribute values undone.
fn unescaped(page: &Page) -> String {
    page.body.replace("&#x2f;", "/").replace("&amp;", "&")
}

/// The link marked `rel="prev"` or `rel="next"` (the first one when there are two).
fn link(page: &Page, rel: &str) -> Option<String> {
    let body = unescaped(page);
    let end = body.find(&format!("\" rel=\"{rel}\""))?;
    let start = body[..end].rfind("href=\"")? + "href=\"".len();
    Some(body[start..end].to_owned())
}

/// Follows `rel` links from `first` to the end: the numbers each page shows.
async fn pages(browser: &mut Browser, first: &str, before: &str, rel: &str) -> Vec<Vec<u64>> {
    let mut shown = Vec::new();
    let mut next = Some(first.to_owned());
    while let Some(url) = next {
        let page = browser.get(&url).await;
        assert_eq!(page.status, StatusCode::OK, "{url}: {}", page.body);
        shown.push(numbers_after(&page, before));
        next = link(&page, rel);
        assert!(shown.len() < 20, "the pages never end");
    }
    shown
}

#[tokio::test]
async fn an_approver_pages_through_everything_waiting_and_finds_the_oldest_request_last() {
    let (provider, app) = started(111, 0).await;
    let oldest = ask(&app, "dan", "m0", "2h").await;
    assert_eq!(oldest, "AR-1");
    for i in 1..=110 {
        ask(&app, "alice", &format!("m{i}"), "2h").await;
    }
    // Carol is asked only in the second stage: nothing waits for her yet.
    let mut carol = Browser::new(&app.base);
    carol.sign_in(&provider, "carol@example.com").await;
    let nothing = carol.get("/web/approvals").await;
    assert!(
        nothing.body.contains("Nothing waits for you"),
        "{}",
        nothing.body
    );

    let mut bob = Browser::new(&app.base);
    bob.sign_in(&provider, "bob@example.com").await;
    let newest_first = pages(&mut bob, "/web/approvals", "id=\"req-AR-", "next").await;
    let sizes: Vec<usize> = newest_first.iter().map(Vec::len).collect();
    assert_eq!(sizes, [50, 50, 11]);
    let all: Vec<u64> = newest_first.concat();
    assert_eq!(
        all,
        (1..=111).rev().collect::<Vec<_>>(),
        "each once, newest first"
    );

    // Back from the second page comes the first.
    let second = bob.get("/web/approvals?after=62").await;
    assert_eq!(numbers_after(&second, "id=\"req-AR-")[0], 61);
    let back = link(&second, "prev").expect("a previous page");
    let middle = bob.get(&back).await;
    assert_eq!(
        numbers_after(&middle, "id=\"req-AR-"),
        (62..=111).rev().collect::<Vec<_>>(),
        "{back}"
    );
    assert_eq!(link(&middle, "prev"), None, "that is the first page");

    // Oldest first, the request that waited longest leads.
    let first = bob.get("/web/approvals").await;
    assert!(first.body.contains("show oldest first"), "{}", first.body);
    let oldest_first = pages(&mut bob, "/web/approvals?dir=asc", "id=\"req-AR-", "next").await;
    assert_eq!(oldest_first[0][0], 1);
    assert_eq!(oldest_first.concat(), (1..=111).collect::<Vec<_>>());

    // Alice's own 110 requests on My access, 50 a page, newest first.
    let mut alice = Browser::new(&app.base);
    alice.sign_in(&provider, "alice@example.com").await;
    let mine = pages(&mut alice, "/web/access", "\">AR-", "next").await;
    assert_eq!(mine.iter().map(Vec::len).collect::<Vec<_>>(), [50, 50, 10]);
    assert_eq!(mine.concat(), (2..=111).rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn an_admin_sorts_live_grants_by_when_they_end_either_way_across_pages() {
    let (provider, app) = started(0, 60).await;
    // G-i ends after a duration that is not in the order of the ids.
    let minutes = |i: u64| 5 + (i * 37) % 55;
    for i in 1..=60 {
        ask(
            &app,
            "alice",
            &format!("l{}", i - 1),
            &format!("{}m", minutes(i)),
        )
        .await;
    }
    let mut sue = Browser::new(&app.base);
    sue.sign_in(&provider, "sue@example.com").await;
    let newest = pages(&mut sue, "/web/grants", "\">G-", "next").await;
    assert_eq!(newest.concat(), (1..=60).rev().collect::<Vec<_>>());

    let first = sue.get("/web/grants?sort=ends").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    assert!(
        unescaped(&first)
            .contains("aria-sort=\"ascending\"><a href=\"/web/grants?dir=desc&sort=ends\""),
        "the sorted column says so, and its link turns it round: {}",
        first.body
    );
    let mut by_end: Vec<u64> = (1..=60).collect();
    by_end.sort_by_key(|&i| (minutes(i), i));
    let soonest = pages(&mut sue, "/web/grants?sort=ends", "\">G-", "next").await;
    assert_eq!(soonest.iter().map(Vec::len).collect::<Vec<_>>(), [50, 10]);
    assert_eq!(soonest.concat(), by_end);
    let latest = pages(&mut sue, "/web/grants?sort=ends&dir=desc", "\">G-", "next").await;
    by_end.reverse();
    assert_eq!(latest.concat(), by_end);
}

#[tokio::test]
async fn an_order_or_page_a_table_does_not_have_is_a_clear_400() {
    let (provider, app) = started(0, 0).await;
    let mut sue = Browser::new(&app.base);
    sue.sign_in(&provider, "sue@example.com").await;
    for (url, says) in [
        ("/web/grants?sort=person", "it sorts by created or ends"),
        ("/web/grants?dir=sideways", "use `asc` or `desc`"),
        ("/web/grants?after=G-12", "start again from its first page"),
        ("/web/grants?after=1&before=2", "not both"),
        ("/web/approvals?sort=ends", "it sorts by created"),
        (
            "/web/access?requests_after=-4",
            "start again from its first page",
        ),
        ("/web/access?grants_dir=up", "use `asc` or `desc`"),
    ] {
        let page = sue.get(url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}: {}", page.body);
        assert!(page.body.contains(says), "{url}: {}", page.body);
    }
    // A page beyond the last is an empty page, not an error.
    let beyond = sue.get("/web/grants?dir=asc&after=999999").await;
    assert_eq!(beyond.status, StatusCode::OK, "{}", beyond.body);
    assert!(beyond.body.contains("No live grants"), "{}", beyond.body);
}

#[tokio::test]
async fn an_auditor_reads_the_audit_log_either_way_a_page_at_a_time() {
    let (provider, app) = started(0, 40).await;
    for i in 0..40 {
        ask(&app, "alice", &format!("l{i}"), "30m").await;
    }
    let mut sam = Browser::new(&app.base);
    sam.sign_in(&provider, "sam@example.com").await;
    let newest = pages(&mut sam, "/web/audit", "<tr><td>", "next").await;
    let newest: Vec<u64> = newest.concat();
    assert!(newest.len() > 50, "more than a page: {}", newest.len());
    let count = newest.len() as u64;
    assert_eq!(newest, (1..=count).rev().collect::<Vec<_>>());

    let first = sam.get("/web/audit").await;
    assert!(
        unescaped(&first).contains("aria-sort=\"descending\"><a href=\"/web/audit?"),
        "{}",
        first.body
    );
    let oldest = pages(&mut sam, "/web/audit?dir=asc", "<tr><td>", "next").await;
    assert_eq!(oldest[0].len(), 50);
    let oldest = oldest.concat();
    // The log may have grown by the events of the last grants' provisioning meanwhile.
    assert_eq!(oldest[..count as usize], (1..=count).collect::<Vec<_>>());

    for (url, says) in [
        ("/web/audit?dir=up", "use `asc` or `desc`"),
        ("/web/audit?before=x", "start again from its first page"),
    ] {
        let page = sam.get(url).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{url}: {}", page.body);
        assert!(page.body.contains(says), "{url}: {}", page.body);
    }
}
