//! Discord's rules for components: in a message, at most five action rows of five buttons or
//! one select, custom ids unique and 1..=100, labels 80, link buttons with a url and no custom
//! id, the others with a custom id; in a modal, a title of 45 and one to five rows of one text
//! input each; in an autocomplete result, at most 25 choices.

use std::collections::HashSet;

use serde_json::Value;

use super::rules::{Problems, is_url};

pub fn rows(problems: &mut Problems, rows: &[Value]) {
    problems.max_items(rows, "components", 5);
    let mut seen = HashSet::new();
    for (r, row) in rows.iter().enumerate() {
        let at = format!("components.{r}");
        if row["type"] != 1 {
            let message = format!(
                "Component type {} is not an action row (the fake serves no components v2)",
                row["type"]
            );
            problems.add(&format!("{at}.type"), "UNION_TYPE_CHOICES", message);
            continue;
        }
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if items.is_empty() || items.len() > 5 {
            problems.add(
                &format!("{at}.components"),
                "BASE_TYPE_BAD_LENGTH",
                "Must be between 1 and 5 in length.",
            );
        }
        let selects = items
            .iter()
            .filter(|c| matches!(c["type"].as_u64(), Some(3 | 5..=8)))
            .count();
        if selects > 0 && items.len() > 1 {
            problems.add(
                &format!("{at}.components"),
                "COMPONENT_LAYOUT_WIDTH_EXCEEDED",
                "The specified component exceeds the maximum width",
            );
        }
        for (c, item) in items.iter().enumerate() {
            let at = format!("{at}.components.{c}");
            if let Some(id) = item["custom_id"].as_str()
                && !seen.insert(id.to_owned())
            {
                problems.add(
                    &format!("{at}.custom_id"),
                    "COMPONENT_CUSTOM_ID_DUPLICATED",
                    "Component custom id cannot be duplicated",
                );
            }
            match item["type"].as_u64() {
                Some(2) => check_button(problems, item, &at),
                Some(3 | 5..=8) => check_select(problems, item, &at),
                _ => problems.add(
                    &format!("{at}.type"),
                    "UNION_TYPE_CHOICES",
                    format!(
                        "Value of field \"type\" must be one of (2, 3, 5, 6, 7, 8), not {}.",
                        item["type"]
                    ),
                ),
            }
        }
    }
}

fn check_button(problems: &mut Problems, button: &Value, at: &str) {
    let path = |name: &str| format!("{at}.{name}");
    let style = button["style"].as_u64();
    if !matches!(style, Some(1..=5)) {
        problems.add(
            &path("style"),
            "BASE_TYPE_CHOICES",
            "Value must be one of {1, 2, 3, 4, 5}.",
        );
    }
    problems.max_len(button.get("label"), &path("label"), 80);
    let has_label = button["label"].as_str().is_some_and(|l| !l.is_empty());
    if !has_label && button["emoji"].is_null() {
        problems.add(
            at,
            "BUTTON_COMPONENT_LABEL_OR_EMOJI_REQUIRED",
            "A button needs a label or an emoji",
        );
    }
    if let Some(emoji) = button.get("emoji").filter(|e| !e.is_null()) {
        problems.required_len(emoji.get("name"), &path("emoji.name"), 1, 32);
    }
    if style == Some(5) {
        if !is_url(&button["url"]) {
            problems.add(
                &path("url"),
                "BUTTON_COMPONENT_URL_REQUIRED",
                "A link button needs a url",
            );
        }
        problems.max_len(button.get("url"), &path("url"), 512);
        if !button["custom_id"].is_null() {
            problems.add(
                &path("custom_id"),
                "BUTTON_COMPONENT_CUSTOM_ID_NOT_ALLOWED",
                "A link button cannot have a custom id",
            );
        }
    } else if style.is_some() {
        problems.required_len(button.get("custom_id"), &path("custom_id"), 1, 100);
        if !button["url"].is_null() {
            problems.add(
                &path("url"),
                "BUTTON_COMPONENT_URL_NOT_ALLOWED",
                "Only a link button may have a url",
            );
        }
    }
}

fn check_select(problems: &mut Problems, select: &Value, at: &str) {
    let path = |name: &str| format!("{at}.{name}");
    problems.required_len(select.get("custom_id"), &path("custom_id"), 1, 100);
    problems.max_len(select.get("placeholder"), &path("placeholder"), 150);
    let min = select["min_values"].as_u64().unwrap_or(1);
    let max = select["max_values"].as_u64().unwrap_or(1);
    if min > 25 || !(1..=25).contains(&max) || min > max {
        problems.add(
            &path("max_values"),
            "SELECT_COMPONENT_VALUES_INVALID",
            "min_values must be 0..=25, max_values 1..=25, and min <= max",
        );
    }
    if select["type"] != 3 {
        return;
    }
    let options = select["options"].as_array().cloned().unwrap_or_default();
    if options.is_empty() || options.len() > 25 {
        problems.add(
            &path("options"),
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 25 in length.",
        );
    }
    if max as usize > options.len() && !options.is_empty() {
        problems.add(
            &path("max_values"),
            "SELECT_COMPONENT_VALUES_INVALID",
            "max_values exceeds the number of options",
        );
    }
    for (o, option) in options.iter().enumerate() {
        let path = |name: &str| format!("{at}.options.{o}.{name}");
        problems.required_len(option.get("label"), &path("label"), 1, 100);
        problems.required_len(option.get("value"), &path("value"), 1, 100);
        problems.max_len(option.get("description"), &path("description"), 100);
    }
}

/// MODAL (type 9) data: custom_id 1..=100, title 1..=45, 1..=5 action rows of one text input.
pub fn modal(data: &Value) -> Problems {
    let mut problems = Problems::default();
    problems.required_len(data.get("custom_id"), "data.custom_id", 1, 100);
    problems.required_len(data.get("title"), "data.title", 1, 45);
    let rows = data["components"].as_array().cloned().unwrap_or_default();
    if rows.is_empty() || rows.len() > 5 {
        problems.add(
            "data.components",
            "BASE_TYPE_BAD_LENGTH",
            "Must be between 1 and 5 in length.",
        );
    }
    let mut seen = HashSet::new();
    for (r, row) in rows.iter().enumerate() {
        let at = format!("data.components.{r}");
        let items = row["components"].as_array().cloned().unwrap_or_default();
        if row["type"] != 1 || items.len() != 1 || items[0]["type"] != 4 {
            problems.add(
                &at,
                "MODAL_COMPONENT_INVALID",
                "Each row of a modal is an action row (type 1) holding one text input (type 4)",
            );
            continue;
        }
        let input = &items[0];
        let path = |name: &str| format!("{at}.components.0.{name}");
        problems.required_len(input.get("custom_id"), &path("custom_id"), 1, 100);
        if let Some(id) = input["custom_id"].as_str()
            && !seen.insert(id.to_owned())
        {
            problems.add(
                &path("custom_id"),
                "COMPONENT_CUSTOM_ID_DUPLICATED",
                "Component custom id cannot be duplicated",
            );
        }
        if !matches!(input["style"].as_u64(), Some(1 | 2)) {
            problems.add(
                &path("style"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2}.",
            );
        }
        problems.required_len(input.get("label"), &path("label"), 1, 45);
        problems.max_len(input.get("value"), &path("value"), 4000);
        problems.max_len(input.get("placeholder"), &path("placeholder"), 100);
        let min = input["min_length"].as_u64();
        let max = input["max_length"].as_u64();
        if min.is_some_and(|m| m > 4000)
            || max.is_some_and(|m| !(1..=4000).contains(&m))
            || min.zip(max).is_some_and(|(a, b)| a > b)
        {
            problems.add(
                &path("max_length"),
                "BASE_TYPE_BAD_LENGTH",
                "min_length must be 0..=4000, max_length 1..=4000, and min <= max",
            );
        }
        problems.kind(
            input.get("required"),
            &path("required"),
            Value::is_boolean,
            "boolean",
        );
    }
    problems
}

/// APPLICATION_COMMAND_AUTOCOMPLETE_RESULT (type 8) data: at most 25 choices, name 1..=100,
/// value a string of at most 100 characters or a number.
pub fn autocomplete(data: &Value) -> Problems {
    let mut problems = Problems::default();
    let Some(choices) = data["choices"].as_array() else {
        problems.add(
            "data.choices",
            "BASE_TYPE_REQUIRED",
            "This field is required",
        );
        return problems;
    };
    problems.max_items(choices, "data.choices", 25);
    for (i, choice) in choices.iter().enumerate() {
        problems.required_len(
            choice.get("name"),
            &format!("data.choices.{i}.name"),
            1,
            100,
        );
        match &choice["value"] {
            Value::String(_) => {
                problems.max_len(choice.get("value"), &format!("data.choices.{i}.value"), 100)
            }
            Value::Number(_) => {}
            _ => problems.add(
                &format!("data.choices.{i}.value"),
                "BASE_TYPE_REQUIRED",
                "This field is required",
            ),
        }
    }
    problems
}
