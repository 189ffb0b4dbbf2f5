//! Discord's form-body rules for message bodies: content 2000, ten embeds and their limits with
//! the 6000-character total, allowed flags, nonce, allowed mentions; components are checked in
//! [`super::components`]. A problem is reported where Discord reports it, as a path
//! into the body with Discord's error code, and answered as 400 code 50035 with Discord's nested
//! `errors` object (see [`Problems::body`]).

use serde_json::{Map, Value, json};

use super::components;

/// One broken rule: where, Discord's code for it, and its sentence.
pub struct Problem {
    pub path: String,
    pub code: &'static str,
    pub message: String,
}

#[derive(Default)]
pub struct Problems(pub Vec<Problem>);

impl Problems {
    pub fn add(&mut self, path: &str, code: &'static str, message: impl Into<String>) {
        let message = message.into();
        let path = path.to_owned();
        self.0.push(Problem {
            path,
            code,
            message,
        });
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The recorded lines: `embeds.0.title: Must be 256 or fewer in length. (BASE_TYPE_MAX_LENGTH)`.
    pub fn lines(&self) -> Vec<String> {
        let line = |p: &Problem| match p.path.as_str() {
            "" => format!("{} ({})", p.message, p.code),
            path => format!("{path}: {} ({})", p.message, p.code),
        };
        self.0.iter().map(line).collect()
    }

    /// `{"code": 50035, "message": "Invalid Form Body", "errors": {"embeds": {"0": {"title":
    /// {"_errors": [{"code": …, "message": …}]}}}}}`.
    pub fn body(&self) -> Value {
        let mut errors = Map::new();
        for problem in &self.0 {
            let mut node = &mut errors;
            for key in problem.path.split('.').filter(|k| !k.is_empty()) {
                let next = node.entry(key).or_insert_with(|| json!({}));
                node = next.as_object_mut().expect("error nodes are objects");
            }
            let list = node.entry("_errors").or_insert_with(|| json!([]));
            if let Some(list) = list.as_array_mut() {
                list.push(json!({"code": problem.code, "message": problem.message}));
            }
        }
        json!({"code": 50035, "message": "Invalid Form Body", "errors": errors})
    }

    pub fn max_len(&mut self, value: Option<&Value>, path: &str, max: usize) {
        match value {
            None | Some(Value::Null) => {}
            Some(Value::String(s)) if s.chars().count() > max => self.add(
                path,
                "BASE_TYPE_MAX_LENGTH",
                format!("Must be {max} or fewer in length."),
            ),
            Some(Value::String(_)) => {}
            Some(_) => self.add(
                path,
                "STRING_TYPE_CONVERT",
                "Could not interpret as string.",
            ),
        }
    }

    /// A string of `min..=max` characters that must be there.
    pub fn required_len(&mut self, value: Option<&Value>, path: &str, min: usize, max: usize) {
        match value.and_then(Value::as_str) {
            None => self.add(path, "BASE_TYPE_REQUIRED", "This field is required"),
            Some(s) if s.chars().count() < min || s.chars().count() > max => self.add(
                path,
                "BASE_TYPE_BAD_LENGTH",
                format!("Must be between {min} and {max} in length."),
            ),
            Some(_) => {}
        }
    }

    pub fn kind(&mut self, value: Option<&Value>, path: &str, ok: fn(&Value) -> bool, what: &str) {
        if let Some(value) = value.filter(|v| !v.is_null() && !ok(v)) {
            let message = format!("Could not interpret {value} as {what}.");
            self.add(path, "BASE_TYPE_CONVERT", message);
        }
    }

    pub fn max_items(&mut self, items: &[Value], path: &str, max: usize) {
        if items.len() > max {
            let message = format!("Must be {max} or fewer in length.");
            self.add(path, "BASE_TYPE_MAX_LENGTH", message);
        }
    }
}

/// Where a message body comes from, which decides what it must have and what it may say.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Body {
    /// POST /channels/{c}/messages.
    ChannelPost,
    /// PATCH /channels/{c}/messages/{m}.
    ChannelEdit,
    /// CHANNEL_MESSAGE_WITH_SOURCE data, or a follow-up: content, embeds or components needed.
    InteractionPost,
    /// UPDATE_MESSAGE data, DEFERRED data, or an `@original` edit.
    InteractionEdit,
}

/// Checks a message body; `Err` with 50006 for an empty message, else the form-body problems.
pub fn message(body: &Value, kind: Body) -> Result<Problems, Value> {
    let mut problems = Problems::default();
    let Some(fields) = body.as_object() else {
        problems.add(
            "",
            "DICT_TYPE_CONVERT",
            "Only dictionaries may be used in a DictType",
        );
        return Ok(problems);
    };
    let has = |name: &str| match fields.get(name) {
        None | Some(Value::Null) => false,
        Some(Value::String(s)) => !s.is_empty(),
        Some(Value::Array(items)) => !items.is_empty(),
        Some(_) => true,
    };
    let posts = matches!(kind, Body::ChannelPost | Body::InteractionPost);
    let content = [
        "content",
        "embeds",
        "components",
        "sticker_ids",
        "attachments",
        "poll",
    ];
    if posts && !content.iter().any(|name| has(name)) {
        return Err(json!({"code": 50006, "message": "Cannot send an empty message"}));
    }
    problems.max_len(fields.get("content"), "content", 2000);
    problems.kind(fields.get("tts"), "tts", Value::is_boolean, "boolean");
    let mut allowed_flags = 4 | 4096;
    if matches!(kind, Body::InteractionPost | Body::InteractionEdit) {
        allowed_flags |= 64;
    }
    match fields.get("flags") {
        None | Some(Value::Null) => {}
        Some(Value::Number(n)) if n.as_u64().is_some_and(|f| f & !allowed_flags == 0) => {}
        Some(flags) => problems.add(
            "flags",
            "MESSAGE_FLAGS_INVALID",
            format!("Invalid flags {flags}: only {allowed_flags} may be set here (the fake serves no components v2)"),
        ),
    }
    if kind == Body::ChannelPost {
        match fields.get("nonce") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.is_i64() => {}
            Some(Value::String(s)) if s.chars().count() <= 25 => {}
            Some(_) => problems.add(
                "nonce",
                "BASE_TYPE_MAX_LENGTH",
                "Must be 25 or fewer in length.",
            ),
        }
        problems.kind(
            fields.get("enforce_nonce"),
            "enforce_nonce",
            Value::is_boolean,
            "boolean",
        );
    }
    match fields.get("embeds") {
        None | Some(Value::Null) => {}
        Some(Value::Array(embeds)) => check_embeds(&mut problems, embeds),
        Some(_) => problems.add("embeds", "BASE_TYPE_CONVERT", "Must be an array."),
    }
    match fields.get("components") {
        None | Some(Value::Null) => {}
        Some(Value::Array(rows)) => components::rows(&mut problems, rows),
        Some(_) => problems.add("components", "BASE_TYPE_CONVERT", "Must be an array."),
    }
    if let Some(mentions) = fields.get("allowed_mentions").filter(|v| !v.is_null()) {
        check_mentions(&mut problems, mentions);
    }
    for unsupported in ["sticker_ids", "poll", "message_reference"] {
        if has(unsupported) {
            let message = format!("{unsupported} is valid on Discord but not served by the fake");
            problems.add(unsupported, "FAKE_UNSUPPORTED", message);
        }
    }
    if has("attachments") {
        problems.add(
            "attachments",
            "FAKE_UNSUPPORTED",
            "attachments are not served by the fake",
        );
    }
    Ok(problems)
}

fn check_mentions(problems: &mut Problems, mentions: &Value) {
    let parse = mentions["parse"].as_array().cloned().unwrap_or_default();
    for (i, kind) in parse.iter().enumerate() {
        if !matches!(kind.as_str(), Some("users" | "roles" | "everyone")) {
            let message =
                format!("Value must be one of ('roles', 'users', 'everyone'), not {kind}.");
            problems.add(
                &format!("allowed_mentions.parse.{i}"),
                "BASE_TYPE_CHOICES",
                message,
            );
        }
    }
    for (name, also) in [("users", "users"), ("roles", "roles")] {
        let Some(ids) = mentions[name].as_array() else {
            continue;
        };
        problems.max_items(ids, &format!("allowed_mentions.{name}"), 100);
        for (i, id) in ids.iter().enumerate() {
            if !is_snowflake(id) {
                let path = format!("allowed_mentions.{name}.{i}");
                problems.add(
                    &path,
                    "NUMBER_TYPE_COERCE",
                    format!("Value \"{id}\" is not snowflake."),
                );
            }
        }
        if parse.iter().any(|p| p == also) {
            let message = format!("parse:[\"{also}\"] and {name}: [ids] are mutually exclusive.");
            problems.add(
                "allowed_mentions",
                "MESSAGE_ALLOWED_MENTIONS_PARSE_EXCLUSIVE",
                message,
            );
        }
    }
}

/// A snowflake: digits in a string, or a non-negative integer.
pub fn is_snowflake(value: &Value) -> bool {
    match value {
        Value::String(s) => !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()),
        Value::Number(n) => n.is_u64(),
        _ => false,
    }
}

pub fn is_url(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        let rest = s
            .strip_prefix("https://")
            .or_else(|| s.strip_prefix("http://"));
        rest.is_some_and(|r| !r.is_empty() && !r.contains(' '))
    })
}

fn check_embeds(problems: &mut Problems, embeds: &[Value]) {
    problems.max_items(embeds, "embeds", 10);
    let mut total = 0;
    let count = |v: &Value| v.as_str().map_or(0, |s| s.chars().count());
    for (i, embed) in embeds.iter().enumerate() {
        let at = |name: &str| format!("embeds.{i}.{name}");
        if !embed.is_object() {
            problems.add(
                &format!("embeds.{i}"),
                "DICT_TYPE_CONVERT",
                "Must be an object.",
            );
            continue;
        }
        problems.max_len(embed.get("title"), &at("title"), 256);
        problems.max_len(embed.get("description"), &at("description"), 4096);
        for link in ["url"] {
            if let Some(url) = embed.get(link).filter(|v| !v.is_null()) {
                problems.max_len(Some(url), &at(link), 2048);
                if !is_url(url) {
                    problems.add(&at(link), "URL_TYPE_INVALID_URL", "Not a well formed URL.");
                }
            }
        }
        match embed.get("color") {
            None | Some(Value::Null) => {}
            Some(Value::Number(n)) if n.as_u64().is_some_and(|c| c <= 0xFF_FFFF) => {}
            Some(_) => problems.add(
                &at("color"),
                "NUMBER_TYPE_MAX",
                "int value should be <= 16777215 and >= 0.",
            ),
        }
        if let Some(stamp) = embed.get("timestamp").filter(|v| !v.is_null()) {
            let parsed = stamp.as_str().map(chrono::DateTime::parse_from_rfc3339);
            if !matches!(parsed, Some(Ok(_))) {
                problems.add(
                    &at("timestamp"),
                    "DATE_TIME_TYPE_PARSE",
                    format!("Could not parse {stamp}. Should be ISO8601."),
                );
            }
        }
        problems.max_len(embed["footer"].get("text"), &at("footer.text"), 2048);
        problems.max_len(embed["author"].get("name"), &at("author.name"), 256);
        for link in ["author.url", "author.icon_url", "footer.icon_url"] {
            let (part, field) = link.split_once('.').unwrap_or_default();
            if let Some(url) = embed[part].get(field).filter(|v| !v.is_null()) {
                problems.max_len(Some(url), &at(link), 2048);
                if !is_url(url) {
                    problems.add(&at(link), "URL_TYPE_INVALID_URL", "Not a well formed URL.");
                }
            }
        }
        for image in ["image", "thumbnail"] {
            if let Some(picture) = embed.get(image).filter(|v| !v.is_null())
                && !is_url(&picture["url"])
            {
                problems.add(
                    &at(&format!("{image}.url")),
                    "URL_TYPE_INVALID_URL",
                    "Not a well formed URL.",
                );
            }
        }
        let fields = embed["fields"].as_array().cloned().unwrap_or_default();
        problems.max_items(&fields, &at("fields"), 25);
        for (f, field) in fields.iter().enumerate() {
            let path = |name: &str| format!("embeds.{i}.fields.{f}.{name}");
            problems.required_len(field.get("name"), &path("name"), 1, 256);
            problems.required_len(field.get("value"), &path("value"), 1, 1024);
            problems.kind(
                field.get("inline"),
                &path("inline"),
                Value::is_boolean,
                "boolean",
            );
            total += count(&field["name"]) + count(&field["value"]);
        }
        total += count(&embed["title"]) + count(&embed["description"]);
        total += count(&embed["footer"]["text"]) + count(&embed["author"]["name"]);
    }
    if total > 6000 {
        problems.add(
            "embeds",
            "MAX_EMBED_SIZE_EXCEEDED",
            "Embed size exceeds maximum size of 6000",
        );
    }
}
