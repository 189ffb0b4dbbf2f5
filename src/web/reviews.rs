//! The Reviews page: the access-review items that wait for me, each to keep or revoke, as
//! the review cards in chat offer; the engine decides whether I may.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::Portal;
use super::pages::Link;
use super::table::{Order, Table};
use crate::chat::views::CampaignItemView;
use crate::domain::audit::Actor;
use crate::domain::ids::{CampaignId, GrantId};
use crate::engine::EngineError;
use crate::store::Mark;

/// Reviews: the items waiting for me, by campaign and then grant.
const REVIEWS: Table = Table {
    path: "/web/reviews",
    prefix: "",
    orders: &[Order {
        key: "campaign",
        label: "Campaign",
        ascending_first: true,
    }],
};

pub async fn reviews(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Query(query): Query<BTreeMap<String, String>>,
) -> Response {
    let visitor = match portal.visitor(&headers).await {
        Ok(visitor) => visitor,
        Err(not) => return portal.not_signed_in(not),
    };
    let chosen = match REVIEWS.choose(&query) {
        Ok(chosen) => chosen,
        Err(sentence) => return portal.bad_table(&visitor, &sentence, REVIEWS.path),
    };
    let me = visitor.person.id.clone();
    let facade = &portal.facade;
    let waiting = REVIEWS
        .page(
            &query,
            chosen,
            |window| facade.reviews_for(me.clone(), window),
            |(campaign, item, _)| Mark {
                at_ms: campaign.id.0,
                id: item.grant.0,
            },
        )
        .await;
    let waiting = match waiting {
        Ok(waiting) => waiting,
        Err(e) => return portal.apology(&e),
    };
    let world = portal.facade.world();
    let now = portal.facade.now();
    let items: Vec<CampaignItemView> = waiting
        .rows
        .iter()
        .map(|(campaign, item, grant)| {
            CampaignItemView::new(campaign, item, grant, &world.directory, &world.policy, now)
        })
        .collect();
    let headers = REVIEWS.headers(&query, chosen);
    let context = minijinja::context! {
        csrf => &visitor.session.csrf,
        items => minijinja::Value::from(minijinja::value::Serde(&items)),
        previous => waiting.previous, next => waiting.next,
        sort => minijinja::Value::from(minijinja::value::Serde(&headers)),
    };
    portal.page(&visitor, "Reviews", "reviews", "reviews.html", context)
}

pub async fn decide(
    State(portal): State<Arc<Portal>>,
    headers: HeaderMap,
    Path((campaign, grant, decision)): Path<(String, String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Response {
    let (visitor, _) = match portal.form(&headers, pairs).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let back = || Link::new("/web/reviews", "Back to Reviews");
    let parsed = (
        campaign.parse::<CampaignId>(),
        grant.parse::<GrantId>(),
        decision.as_str(),
    );
    let (Ok(campaign), Ok(grant), "keep" | "revoke") = parsed else {
        let e = EngineError::NotFound("there is no such review item".to_owned());
        return portal.refused(&visitor, &e, back());
    };
    let keep = decision == "keep";
    let actor = Actor::person(&visitor.person.id);
    match portal
        .facade
        .decide_review(actor, campaign, grant, keep)
        .await
    {
        Ok(_) => (
            axum::http::StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, "/web/reviews")],
        )
            .into_response(),
        Err(e) => portal.refused(&visitor, &e, back()),
    }
}
