//! What the fake refuses, as Slack would: missing required arguments, a message without
//! content, and Block Kit that breaks the published limits (a subset of what slack_sdk's models
//! check: 50 blocks in a message, 100 in a view, 25 elements in an actions block, 10 in a
//! context block, text lengths, the fields each block and element type requires). Each problem
//! is a Slack-style line: `[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text]`.

use std::fmt::Display;

use serde_json::{Map, Value};

/// Why a call is refused: the `error` Slack answers with, and the lines it explains it with.
pub struct Refusal {
    pub error: &'static str,
    pub messages: Vec<String>,
}

const REQUIRED: &[(&str, &[&str])] = &[
    ("chat.postMessage", &["channel"]),
    ("chat.update", &["channel", "ts"]),
    ("chat.postEphemeral", &["channel", "user"]),
    ("views.open", &["trigger_id", "view"]),
    ("views.update", &["view"]),
    ("views.publish", &["user_id", "view"]),
    ("users.info", &["user"]),
    ("conversations.history", &["channel"]),
];

/// Checks a call's arguments; `Ok` means Slack would act on it.
pub fn check(method: &str, args: &Map<String, Value>) -> Result<(), Refusal> {
    let present = |name: &str| match args.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    };
    let required = REQUIRED.iter().filter(|(m, _)| *m == method);
    let mut missing: Vec<String> = required
        .flat_map(|(_, names)| names.iter())
        .filter(|name| !present(name))
        .map(|name| format!("[ERROR] missing required field: {name}"))
        .collect();
    if method == "conversations.open" && !present("users") && !present("channel") {
        missing.push("[ERROR] must provide either users or channel".to_owned());
    }
    if method == "views.update" && !present("view_id") && !present("external_id") {
        missing.push("[ERROR] must provide either view_id or external_id".to_owned());
    }
    if !missing.is_empty() {
        return Err(refuse("invalid_arguments", missing));
    }
    let posts = matches!(method, "chat.postMessage" | "chat.postEphemeral");
    let content = ["text", "blocks", "attachments", "markdown_text"];
    if posts && !content.iter().any(|name| present(name)) {
        let line = "[ERROR] one of text, blocks or attachments is required".to_owned();
        return Err(refuse("no_text", vec![line]));
    }
    if let Some(text) = args.get("text").and_then(Value::as_str)
        && text.chars().count() > 40_000
    {
        let line = "[ERROR] must be less than 40001 characters [json-pointer:/text]";
        return Err(refuse("msg_too_long", vec![line.to_owned()]));
    }
    if let Some(view) = args.get("view") {
        let mut checker = Checker::default();
        checker.view(view, method);
        if !checker.messages.is_empty() {
            return Err(refuse("invalid_arguments", checker.messages));
        }
    }
    if let Some(blocks) = args.get("blocks") {
        let mut checker = Checker::default();
        checker.blocks(blocks, "/blocks", 50);
        if !checker.messages.is_empty() {
            return Err(refuse("invalid_blocks", checker.messages));
        }
    }
    Ok(())
}

fn refuse(error: &'static str, messages: Vec<String>) -> Refusal {
    Refusal { error, messages }
}

#[derive(Clone, Copy, PartialEq)]
enum Text {
    PlainOnly,
    Any,
}

#[derive(Default)]
struct Checker {
    messages: Vec<String>,
}

impl Checker {
    fn fail(&mut self, at: &str, what: impl Display) {
        self.messages
            .push(format!("[ERROR] {what} [json-pointer:{at}]"));
    }

    fn max_len(&mut self, value: Option<&Value>, at: &str, max: usize) {
        if let Some(text) = value.and_then(Value::as_str)
            && text.chars().count() > max
        {
            self.fail(at, format!("must be less than {} characters", max + 1));
        }
    }

    fn text(&mut self, value: Option<&Value>, at: &str, max: usize, kind: Text, required: bool) {
        let Some(value) = value else {
            if required {
                self.fail(at, "missing required field: text object");
            }
            return;
        };
        match value.get("type").and_then(Value::as_str) {
            Some("plain_text") => {}
            Some("mrkdwn") if kind == Text::Any => {}
            Some("mrkdwn") => self.fail(&format!("{at}/type"), "must be plain_text"),
            _ => self.fail(&format!("{at}/type"), "must be plain_text or mrkdwn"),
        }
        let at = format!("{at}/text");
        match value.get("text").and_then(Value::as_str) {
            None => self.fail(&at, "missing required field: text"),
            Some("") => self.fail(&at, "must be more than 0 characters"),
            Some(_) => self.max_len(value.get("text"), &at, max),
        }
    }

    fn each(
        &mut self,
        list: Option<&Value>,
        at: &str,
        max: usize,
        check: fn(&mut Self, &Value, &str),
    ) {
        let Some(items) = list.and_then(Value::as_array) else {
            return self.fail(at, "missing required field: array");
        };
        if items.is_empty() {
            self.fail(at, "must provide at least 1 item");
        }
        if items.len() > max {
            self.fail(at, format!("no more than {max} items allowed"));
        }
        for (i, item) in items.iter().enumerate() {
            check(self, item, &format!("{at}/{i}"));
        }
    }

    fn blocks(&mut self, blocks: &Value, at: &str, max: usize) {
        if blocks.as_array().is_some_and(Vec::is_empty) {
            return; // `"blocks": []` clears a message's blocks in chat.update
        }
        self.each(Some(blocks), at, max, Self::block);
    }

    fn block(&mut self, block: &Value, at: &str) {
        let at_of = |name: &str| format!("{at}/{name}");
        self.max_len(block.get("block_id"), &at_of("block_id"), 255);
        match block.get("type").and_then(Value::as_str) {
            Some("section") => {
                if block.get("text").is_none() && block.get("fields").is_none() {
                    self.fail(at, "must provide either text or fields");
                }
                self.text(block.get("text"), &at_of("text"), 3000, Text::Any, false);
                if block.get("fields").is_some() {
                    self.each(block.get("fields"), &at_of("fields"), 10, |c, field, at| {
                        c.text(Some(field), at, 2000, Text::Any, true)
                    });
                }
                if let Some(accessory) = block.get("accessory") {
                    self.element(accessory, &at_of("accessory"));
                }
            }
            Some("header") => self.text(
                block.get("text"),
                &at_of("text"),
                150,
                Text::PlainOnly,
                true,
            ),
            Some("divider") => {}
            Some("context") => {
                self.each(block.get("elements"), &at_of("elements"), 10, |c, e, at| {
                    if e.get("type").and_then(Value::as_str) == Some("image") {
                        c.element(e, at)
                    } else {
                        c.text(Some(e), at, 3000, Text::Any, true)
                    }
                })
            }
            Some("actions") => {
                self.each(block.get("elements"), &at_of("elements"), 25, Self::element)
            }
            Some("input") => {
                self.text(
                    block.get("label"),
                    &at_of("label"),
                    2000,
                    Text::PlainOnly,
                    true,
                );
                self.text(
                    block.get("hint"),
                    &at_of("hint"),
                    2000,
                    Text::PlainOnly,
                    false,
                );
                match block.get("element") {
                    Some(element) => self.element(element, &at_of("element")),
                    None => self.fail(at, "missing required field: element"),
                }
            }
            Some("image") => self.image(block, at),
            Some("rich_text") if block.get("elements").is_some_and(Value::is_array) => {}
            Some("markdown") => match block.get("text") {
                Some(Value::String(_)) => self.max_len(block.get("text"), &at_of("text"), 12_000),
                _ => self.fail(&at_of("text"), "missing required field: text"),
            },
            Some(other) => self.fail(&at_of("type"), format!("unsupported block type: {other}")),
            None => self.fail(&at_of("type"), "missing required field: type"),
        }
    }

    fn image(&mut self, image: &Value, at: &str) {
        if image.get("image_url").is_none() && image.get("slack_file").is_none() {
            self.fail(at, "must provide either image_url or slack_file");
        }
        self.max_len(image.get("image_url"), &format!("{at}/image_url"), 3000);
        match image.get("alt_text") {
            Some(Value::String(_)) => {
                self.max_len(image.get("alt_text"), &format!("{at}/alt_text"), 2000)
            }
            _ => self.fail(
                &format!("{at}/alt_text"),
                "missing required field: alt_text",
            ),
        }
        let title = image.get("title");
        self.text(title, &format!("{at}/title"), 2000, Text::PlainOnly, false);
    }

    fn element(&mut self, element: &Value, at: &str) {
        let at_of = |name: &str| format!("{at}/{name}");
        self.max_len(element.get("action_id"), &at_of("action_id"), 255);
        let placeholder = element.get("placeholder");
        self.text(
            placeholder,
            &at_of("placeholder"),
            150,
            Text::PlainOnly,
            false,
        );
        match element.get("type").and_then(Value::as_str).unwrap_or("") {
            "button" => {
                self.text(
                    element.get("text"),
                    &at_of("text"),
                    75,
                    Text::PlainOnly,
                    true,
                );
                self.max_len(element.get("value"), &at_of("value"), 2000);
                self.max_len(element.get("url"), &at_of("url"), 3000);
                let style = element.get("style").and_then(Value::as_str);
                if style.is_some_and(|s| s != "primary" && s != "danger") {
                    self.fail(&at_of("style"), "must be primary or danger");
                }
            }
            "static_select" | "multi_static_select" => match element.get("option_groups") {
                Some(groups) => {
                    self.each(Some(groups), &at_of("option_groups"), 100, |c, g, at| {
                        c.text(
                            g.get("label"),
                            &format!("{at}/label"),
                            75,
                            Text::PlainOnly,
                            true,
                        );
                        c.each(
                            g.get("options"),
                            &format!("{at}/options"),
                            100,
                            Self::option,
                        );
                    })
                }
                None => self.each(element.get("options"), &at_of("options"), 100, Self::option),
            },
            "overflow" => self.each(element.get("options"), &at_of("options"), 5, Self::option),
            "checkboxes" | "radio_buttons" => {
                self.each(element.get("options"), &at_of("options"), 10, Self::option)
            }
            "plain_text_input" => {
                let max_length = element.get("max_length").and_then(Value::as_u64);
                if max_length.is_some_and(|n| n > 3000) {
                    self.fail(&at_of("max_length"), "must be at most 3000");
                }
            }
            "image" => self.image(element, at),
            "external_select"
            | "multi_external_select"
            | "users_select"
            | "multi_users_select"
            | "conversations_select"
            | "multi_conversations_select"
            | "channels_select"
            | "multi_channels_select"
            | "datepicker"
            | "timepicker"
            | "datetimepicker"
            | "number_input"
            | "email_text_input"
            | "url_text_input"
            | "rich_text_input" => {}
            other => self.fail(
                &at_of("type"),
                format!("unsupported element type: {other:?}"),
            ),
        }
    }

    fn option(&mut self, option: &Value, at: &str) {
        self.text(
            option.get("text"),
            &format!("{at}/text"),
            75,
            Text::Any,
            true,
        );
        match option.get("value") {
            Some(Value::String(_)) => {
                self.max_len(option.get("value"), &format!("{at}/value"), 150)
            }
            _ => self.fail(&format!("{at}/value"), "missing required field: value"),
        }
    }

    fn view(&mut self, view: &Value, method: &str) {
        let wanted = if method == "views.publish" {
            "home"
        } else {
            "modal"
        };
        if view.get("type").and_then(Value::as_str) != Some(wanted) {
            self.fail("/view/type", format!("must be {wanted}"));
        }
        if wanted == "modal" {
            self.text(view.get("title"), "/view/title", 24, Text::PlainOnly, true);
            self.text(
                view.get("submit"),
                "/view/submit",
                24,
                Text::PlainOnly,
                false,
            );
            self.text(view.get("close"), "/view/close", 24, Text::PlainOnly, false);
            let blocks = view.get("blocks").and_then(Value::as_array);
            let has_input = blocks.is_some_and(|b| b.iter().any(|b| b["type"] == "input"));
            if has_input && view.get("submit").is_none() {
                self.fail(
                    "/view/submit",
                    "submit is required when an input block is within the blocks",
                );
            }
        }
        self.max_len(view.get("callback_id"), "/view/callback_id", 255);
        self.max_len(view.get("external_id"), "/view/external_id", 255);
        self.max_len(view.get("private_metadata"), "/view/private_metadata", 3000);
        match view.get("blocks") {
            Some(blocks) => self.blocks(blocks, "/view/blocks", 100),
            None => self.fail("/view/blocks", "missing required field: blocks"),
        }
    }
}
