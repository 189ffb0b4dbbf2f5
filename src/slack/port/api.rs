//! The Web API calls the outbound half makes (conversations.open, chat.postMessage,
//! conversations.history, chat.update, views.publish), and how each of slack-morphism's
//! errors is classified for the outbox. Rendered templates are JSON; they become
//! slack-morphism's typed content here.
//!
//! Slack has no idempotency key, so every message posted carries its effect key as the
//! `block_id` of its first block (`gatehouse:<key>`). When a post reached Slack but its
//! answer was lost, the outbox retries; a retry first reads the channel's recent history
//! and, finding the key there, takes that message as posted instead of posting it again.
//! (Slack's message `metadata` would be the documented place, but Slack's published method
//! descriptions, which our conformance kit checks every call against, know neither
//! `metadata` nor `include_all_metadata`; a `block_id` is plain Block Kit.)

use slack_morphism::errors::SlackClientError;
use slack_morphism::prelude::*;

use super::SlackTransport;
use crate::chat::deliver::Delivery;
use crate::metrics::CallOutcome;
use crate::outbox::ChatError;

/// API errors that mean "Slack is having trouble; the same call may work later".
const TRANSIENT_CODES: &[&str] = &[
    "ratelimited",
    "internal_error",
    "fatal_error",
    "service_unavailable",
    "request_timeout",
    "team_added_to_org",
];

/// API errors that mean we sent something Slack will never take: a bug in a template or here.
const OUR_BUGS: &[&str] = &[
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_arguments",
    "invalid_arg_name",
    "invalid_json",
    "json_not_object",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
    "invalid_form_data",
    "invalid_post_type",
    "missing_post_type",
];

/// How a failed call counts in `gatehouse_platform_calls_total`, and whether the outbox
/// may retry it: rate limits, 5xx, 408, Slack's own trouble and the network are worth
/// another attempt; any other refusal is not.
pub fn call_outcome(error: &SlackClientError) -> CallOutcome {
    match error {
        SlackClientError::RateLimitError(_) => CallOutcome::RateLimited,
        SlackClientError::ApiError(e) if e.code == "ratelimited" => CallOutcome::RateLimited,
        SlackClientError::HttpError(e)
            if e.status_code.is_server_error() || e.status_code.as_u16() == 408 =>
        {
            CallOutcome::TransientError
        }
        SlackClientError::HttpError(_) => CallOutcome::PermanentError,
        SlackClientError::ApiError(e) if TRANSIENT_CODES.contains(&e.code.as_str()) => {
            CallOutcome::TransientError
        }
        SlackClientError::ApiError(_) => CallOutcome::PermanentError,
        // The network, the connection or an answer that was not Slack's: try again later.
        SlackClientError::HttpProtocolError(_)
        | SlackClientError::EndOfStream(_)
        | SlackClientError::SystemError(_)
        | SlackClientError::ProtocolError(_)
        | SlackClientError::SocketModeProtocolError(_) => CallOutcome::TransientError,
    }
}

/// What a failed call to `method` means for the outbox.
pub fn classify(method: &str, error: SlackClientError) -> ChatError {
    let message = format!("Slack {method}: {}", first_line(&error.to_string()));
    match (call_outcome(&error), error) {
        (_, SlackClientError::RateLimitError(limit)) => {
            ChatError::rate_limited(message, limit.retry_after)
        }
        (CallOutcome::PermanentError, SlackClientError::ApiError(e)) => {
            if OUR_BUGS.contains(&e.code.as_str()) {
                tracing::error!(method, code = %e.code, errors = ?e.errors, "Slack refused a message Gatehouse built: a bug in a template or in Gatehouse");
            }
            ChatError::Permanent(message)
        }
        (CallOutcome::PermanentError, _) => ChatError::Permanent(message),
        _ => ChatError::transient(message),
    }
}

/// Slack's error texts carry the whole response body after the first line.
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

/// The body of `conversations.open` for a 1:1 DM: `users` as Slack documents it, a string.
#[derive(serde::Serialize)]
struct OpenDm<'a> {
    users: &'a str,
}

/// How many of a channel's latest messages a retry looks through for its earlier post.
const HISTORY_LIMIT: &str = "20";
/// What marks a block as carrying an effect key.
const MARK: &str = "gatehouse:";
/// Slack's limit on a `block_id`.
const BLOCK_ID_MAX: usize = 255;

/// The `block_id` that marks a message as posted for effect `key`, when the key fits.
fn mark_of(key: &str) -> Option<String> {
    let mark = format!("{MARK}{key}");
    (mark.len() <= BLOCK_ID_MAX).then_some(mark)
}

/// Marks `message` as posted for `mark`: its first block without a `block_id` gets it. A
/// message whose blocks all have ids already (or that has none) stays unmarked.
fn mark(message: &mut serde_json::Value, mark: &str) -> bool {
    let blocks = message.get_mut("blocks").and_then(|b| b.as_array_mut());
    let free = blocks
        .into_iter()
        .flatten()
        .find(|b| b.is_object() && b.get("block_id").is_none());
    match free {
        Some(block) => {
            block["block_id"] = serde_json::Value::String(mark.to_owned());
            true
        }
        None => false,
    }
}

/// What a retry reads of `conversations.history`: just enough to find its earlier post.
/// (slack-morphism's typed messages would refuse a channel holding a block it does not know.)
#[derive(serde::Deserialize)]
struct History {
    #[serde(default)]
    messages: Vec<HistoryMessage>,
}

#[derive(serde::Deserialize)]
struct HistoryMessage {
    ts: String,
    #[serde(default)]
    blocks: Vec<serde_json::Value>,
}

impl History {
    /// The `ts` of the message marked `mark`, if one is here.
    fn find(&self, mark: &str) -> Option<&str> {
        let marked = |m: &&HistoryMessage| m.blocks.iter().any(|b| b["block_id"] == mark);
        self.messages.iter().find(marked).map(|m| m.ts.as_str())
    }
}

/// A rendered message as slack-morphism content; failing here is a template bug.
fn content(template: &str, message: serde_json::Value) -> Result<SlackMessageContent, ChatError> {
    serde_json::from_value(message).map_err(|e| {
        tracing::error!(template, error = %e, "a rendered Slack message is not Block Kit");
        ChatError::Permanent(format!("{template} is not a Slack message: {e}"))
    })
}

impl SlackTransport {
    /// Counts the call to `method` and sorts its failure for the outbox.
    fn counted<T>(
        &self,
        method: &str,
        result: Result<T, SlackClientError>,
    ) -> Result<T, ChatError> {
        let metrics = &self.metrics;
        match result {
            Ok(answer) => {
                metrics.platform_call("slack", method, CallOutcome::Ok);
                Ok(answer)
            }
            Err(error) => {
                let outcome = call_outcome(&error);
                let sorted = classify(method, error);
                metrics.platform_call("slack", method, outcome);
                Err(sorted)
            }
        }
    }

    /// The DM channel with `user`, opened if need be (once per user: Slack gives the same
    /// channel every time).
    ///
    /// Slack documents `users` as a comma-separated string (Slack's own SDKs join lists so);
    /// slack-morphism's typed request would send a JSON array, so the body is written here.
    pub(super) async fn open_dm(&self, user: &str) -> Result<String, ChatError> {
        let open = async {
            let session = self.slack.client.open_session(&self.slack.token);
            let request = OpenDm { users: user };
            let opened: SlackApiConversationsOpenResponse<SlackBasicChannelInfo> = self.counted(
                "conversations.open",
                session
                    .http_session_api
                    .http_post(
                        "conversations.open",
                        &request,
                        Some(&SLACK_TIER3_METHOD_CONFIG),
                    )
                    .await,
            )?;
            Ok(opened.channel.id.to_string())
        };
        self.dm_channels.get_or_open(user, open).await
    }

    /// Posts `message` (rendered from `template`) in `channel`, marked with the delivery's
    /// key; its `ts`. A retry first looks for the message an earlier attempt may have posted
    /// without hearing back, and returns that one's `ts` instead of posting again.
    pub(super) async fn post_marked(
        &self,
        channel: &str,
        template: &str,
        mut message: serde_json::Value,
        delivery: Delivery<'_>,
    ) -> Result<String, ChatError> {
        let marked = mark_of(delivery.key).filter(|m| mark(&mut message, m));
        if let Some(marked) = marked.as_deref()
            && delivery.is_retry()
        {
            match self.posted_before(channel, marked).await {
                Ok(Some(ts)) => {
                    tracing::info!(key = %delivery.key, channel, %ts, "an earlier attempt did post this message; not posting it again");
                    return Ok(ts);
                }
                Ok(None) => {}
                // Slack is having trouble: look again on the next attempt rather than post
                // what may be there already (the outbox retries messages until delivered).
                Err(error @ ChatError::Transient { .. }) => return Err(error),
                // The history can never be read here (a channel the bot may post in but not
                // read): rather a message twice than none, post anyway.
                Err(error) => {
                    tracing::warn!(key = %delivery.key, channel, %error, "cannot tell whether an earlier attempt posted this message; posting it");
                }
            }
        }
        let session = self.slack.client.open_session(&self.slack.token);
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content(template, message)?,
        );
        let posted = self.counted(
            "chat.postMessage",
            session.chat_post_message(&request).await,
        )?;
        Ok(posted.ts.to_string())
    }

    /// The `ts` of a recent message in `channel` marked `mark`, if there is one.
    async fn posted_before(&self, channel: &str, mark: &str) -> Result<Option<String>, ChatError> {
        let session = self.slack.client.open_session(&self.slack.token);
        let history: History = self.counted(
            "conversations.history",
            session
                .http_session_api
                .http_get(
                    "conversations.history",
                    &[("channel", Some(channel)), ("limit", Some(HISTORY_LIMIT))],
                    Some(&SLACK_TIER3_METHOD_CONFIG),
                )
                .await,
        )?;
        Ok(history.find(mark).map(str::to_owned))
    }

    /// Replaces message `ts` in `channel` with `message`, still marked with `key`: the same
    /// call twice leaves the same message, so a retried refresh is harmless, and a retry of
    /// the post that an update overtook still finds it.
    pub(super) async fn update_message(
        &self,
        channel: &str,
        ts: &str,
        key: &str,
        template: &str,
        mut message: serde_json::Value,
    ) -> Result<(), ChatError> {
        if let Some(marked) = mark_of(key) {
            mark(&mut message, &marked);
        }
        let session = self.slack.client.open_session(&self.slack.token);
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId::new(channel.to_owned()),
            content(template, message)?,
            SlackTs::new(ts.to_owned()),
        );
        self.counted("chat.update", session.chat_update(&request).await)?;
        Ok(())
    }

    /// Publishes `view` (rendered from `template`) as `user`'s App Home.
    pub(super) async fn publish(
        &self,
        user: &str,
        template: &str,
        view: serde_json::Value,
    ) -> Result<(), ChatError> {
        let view: SlackView = serde_json::from_value(view).map_err(|e| {
            tracing::error!(template, error = %e, "a rendered Slack view is not a view");
            ChatError::Permanent(format!("{template} is not a Slack view: {e}"))
        })?;
        let session = self.slack.client.open_session(&self.slack.token);
        let request = SlackApiViewsPublishRequest::new(SlackUserId::new(user.to_owned()), view);
        self.counted("views.publish", session.views_publish(&request).await)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::render::{Templates, sample_contexts};
    use slack_morphism::errors::{SlackClientApiError, SlackClientHttpError, SlackRateLimitError};

    #[test]
    fn every_rendered_template_survives_slack_morphism_types_unchanged() {
        let templates = Templates::builtin().unwrap_or_else(|e| panic!("{e}"));
        for (name, context) in sample_contexts() {
            let rendered = templates
                .render(name, context)
                .unwrap_or_else(|e| panic!("{e}"));
            let typed = if rendered.get("type").is_some() {
                let view: SlackView = serde_json::from_value(rendered.clone())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
                serde_json::to_value(view)
            } else {
                serde_json::to_value(
                    content(name, rendered.clone()).unwrap_or_else(|e| panic!("{e}")),
                )
            };
            let typed = typed.unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(typed["blocks"], rendered["blocks"], "{name}");
        }
    }

    #[test]
    fn a_message_is_marked_with_its_key_and_found_again_in_history_by_it() {
        let mut message = serde_json::json!({"text": "t", "blocks": [
            {"type": "section", "block_id": "taken", "text": {"type": "mrkdwn", "text": "a"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": "b"}},
        ]});
        let marked = mark_of("card:AR-1:0:bob").unwrap();
        assert!(mark(&mut message, &marked));
        assert_eq!(message["blocks"][0]["block_id"], "taken");
        assert_eq!(
            message["blocks"][1]["block_id"],
            "gatehouse:card:AR-1:0:bob"
        );
        assert!(content("t", message.clone()).is_ok());
        assert!(!mark(
            &mut serde_json::json!({"text": "no blocks"}),
            &marked
        ));
        assert_eq!(mark_of(&"k".repeat(300)), None);

        let history: History = serde_json::from_value(serde_json::json!({"ok": true, "messages": [
            {"type": "message", "ts": "2.0", "text": "other"},
            {"type": "message", "ts": "1.0", "blocks": message["blocks"]},
        ]}))
        .unwrap();
        assert_eq!(history.find(&marked), Some("1.0"));
        assert_eq!(history.find("gatehouse:card:AR-1:0:carol"), None);
    }

    #[test]
    fn a_dm_is_opened_with_users_as_the_comma_separated_string_slack_documents() {
        let body = serde_json::to_value(OpenDm { users: "U0BOB" }).unwrap();
        assert_eq!(body, serde_json::json!({"users": "U0BOB"}));
    }

    #[test]
    fn a_failure_counts_as_rate_limited_transient_or_permanent_as_the_outbox_treats_it() {
        let limited = SlackClientError::RateLimitError(SlackRateLimitError::new());
        assert_eq!(call_outcome(&limited), CallOutcome::RateLimited);
        let api = |code: &str| SlackClientError::ApiError(SlackClientApiError::new(code.into()));
        assert_eq!(call_outcome(&api("ratelimited")), CallOutcome::RateLimited);
        assert_eq!(
            call_outcome(&api("internal_error")),
            CallOutcome::TransientError
        );
        assert_eq!(
            call_outcome(&api("channel_not_found")),
            CallOutcome::PermanentError
        );
        let http = |code: u16| {
            SlackClientError::HttpError(SlackClientHttpError::new(
                axum::http::StatusCode::from_u16(code)
                    .unwrap_or(axum::http::StatusCode::IM_A_TEAPOT),
            ))
        };
        assert_eq!(call_outcome(&http(502)), CallOutcome::TransientError);
        assert_eq!(call_outcome(&http(403)), CallOutcome::PermanentError);
    }

    #[test]
    fn rate_limits_carry_their_retry_after_and_refusals_are_permanent() {
        let limited = SlackClientError::RateLimitError(
            SlackRateLimitError::new().with_retry_after(std::time::Duration::from_secs(2)),
        );
        assert!(matches!(
            classify("chat.postMessage", limited),
            ChatError::Transient { retry_after: Some(d), .. } if d.as_secs() == 2
        ));
        let api = |code: &str| SlackClientError::ApiError(SlackClientApiError::new(code.into()));
        assert!(matches!(
            classify("chat.postMessage", api("channel_not_found")),
            ChatError::Permanent(_)
        ));
        assert!(matches!(
            classify("chat.postMessage", api("invalid_blocks")),
            ChatError::Permanent(_)
        ));
        assert!(matches!(
            classify("chat.postMessage", api("internal_error")),
            ChatError::Transient { .. }
        ));
        let http = |code: u16| {
            SlackClientError::HttpError(SlackClientHttpError::new(
                axum::http::StatusCode::from_u16(code)
                    .unwrap_or(axum::http::StatusCode::IM_A_TEAPOT),
            ))
        };
        assert!(matches!(
            classify("chat.update", http(503)),
            ChatError::Transient { .. }
        ));
        assert!(matches!(
            classify("chat.update", http(404)),
            ChatError::Permanent(_)
        ));
    }
}
