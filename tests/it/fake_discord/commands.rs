//! Application commands as Discord checks a bulk overwrite: chat-input names match
//! `^[-_\p{L}\p{N}]{1,32}$` and are lowercase, descriptions are 1..=100 (empty for user and
//! message commands), at most 25 options, subcommand groups hold only subcommands and
//! subcommands only plain options, a command's options are all subcommands or none, required
//! options come before optional ones, choices (at most 25, of the option's type) and
//! autocomplete only on string, integer and number options and never together. Stored commands
//! get Discord's fields (id kept across overwrites, application_id, version).

use std::collections::HashSet;

use serde_json::{Value, json};

use super::APPLICATION_ID;
use super::rules::{Problems, is_snowflake};
use super::state::State;

/// Checks a bulk-overwrite body (a JSON array of commands).
pub fn check(body: &Value) -> Problems {
    let mut problems = Problems::default();
    let Some(commands) = body.as_array() else {
        problems.add("", "BASE_TYPE_CONVERT", "Must be an array of commands.");
        return problems;
    };
    let mut names = HashSet::new();
    let mut per_type = [0usize; 5];
    for (i, command) in commands.iter().enumerate() {
        let at = i.to_string();
        let path = |name: &str| format!("{at}.{name}");
        if !command.is_object() {
            problems.add(
                &at,
                "DICT_TYPE_CONVERT",
                "Only dictionaries may be used in a DictType",
            );
            continue;
        }
        let kind = match &command["type"] {
            Value::Null => 1,
            value => value.as_u64().unwrap_or(0),
        };
        if !(1..=4).contains(&kind) {
            problems.add(
                &path("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4}.",
            );
            continue;
        }
        per_type[kind as usize] += 1;
        let name = command["name"].as_str().unwrap_or("");
        if !names.insert((kind, name.to_owned())) {
            problems.add(
                &path("name"),
                "APPLICATION_COMMAND_NAME_ALREADY_EXISTS",
                "Application command names must be unique",
            );
        }
        if kind == 1 {
            check_name(&mut problems, &command["name"], &path("name"));
            problems.required_len(command.get("description"), &path("description"), 1, 100);
        } else {
            problems.required_len(command.get("name"), &path("name"), 1, 32);
            if command["description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
            {
                problems.add(
                    &path("description"),
                    "APPLICATION_COMMAND_DESCRIPTION_NOT_ALLOWED",
                    "Only chat input commands have a description",
                );
            }
        }
        check_localizations(&mut problems, command, &at, 32);
        match &command["default_member_permissions"] {
            Value::Null => {}
            value if is_snowflake(value) => {}
            _ => problems.add(
                &path("default_member_permissions"),
                "NUMBER_TYPE_COERCE",
                "Must be a permission bit set as a string of digits",
            ),
        }
        for (field, allowed) in [("contexts", 0..=2u64), ("integration_types", 0..=1)] {
            let Some(values) = command[field].as_array() else {
                continue;
            };
            let unique: HashSet<String> = values.iter().map(Value::to_string).collect();
            let valid = values
                .iter()
                .all(|v| v.as_u64().is_some_and(|v| allowed.contains(&v)));
            if values.is_empty() || !valid || unique.len() != values.len() {
                problems.add(
                    &path(field),
                    "BASE_TYPE_CHOICES",
                    format!("{field} must be distinct values in {allowed:?}"),
                );
            }
        }
        let options = command["options"].as_array().cloned().unwrap_or_default();
        if kind != 1 && !options.is_empty() {
            problems.add(
                &path("options"),
                "APPLICATION_COMMAND_OPTIONS_NOT_ALLOWED",
                "Only chat input commands have options",
            );
        }
        check_options(&mut problems, &options, &path("options"), Level::Command);
    }
    if commands.len() > 130 {
        problems.add(
            "",
            "BASE_TYPE_MAX_LENGTH",
            "Must be 130 or fewer in length.",
        );
    }
    for (kind, max) in [(1usize, 100usize), (2, 15), (3, 15), (4, 1)] {
        if per_type[kind] > max {
            problems.add(
                "",
                "APPLICATION_COMMANDS_TOO_MANY",
                format!("At most {max} commands of type {kind}"),
            );
        }
    }
    problems
}

#[derive(Clone, Copy, PartialEq)]
enum Level {
    Command,
    Group,
    Subcommand,
}

fn check_name(problems: &mut Problems, name: &Value, path: &str) {
    let Some(text) = name.as_str() else {
        return problems.add(path, "BASE_TYPE_REQUIRED", "This field is required");
    };
    let count = text.chars().count();
    let allowed = text
        .chars()
        .all(|c| c == '-' || c == '_' || c.is_alphabetic() || c.is_numeric());
    if !(1..=32).contains(&count) || !allowed {
        problems.add(
            path,
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name is invalid",
        );
    } else if text.to_lowercase() != text {
        problems.add(
            path,
            "APPLICATION_COMMAND_INVALID_NAME",
            "Command name must be lowercase",
        );
    }
}

fn check_localizations(problems: &mut Problems, item: &Value, at: &str, name_max: usize) {
    for (field, max) in [
        ("name_localizations", name_max),
        ("description_localizations", 100),
    ] {
        let Some(map) = item[field].as_object() else {
            continue;
        };
        for (locale, text) in map {
            problems.required_len(Some(text), &format!("{at}.{field}.{locale}"), 1, max);
        }
    }
}

fn check_options(problems: &mut Problems, options: &[Value], at: &str, level: Level) {
    if options.len() > 25 {
        problems.add(at, "BASE_TYPE_MAX_LENGTH", "Must be 25 or fewer in length.");
    }
    let nested = |o: &Value| matches!(o["type"].as_u64(), Some(1 | 2));
    if level == Level::Command && options.iter().any(nested) && !options.iter().all(nested) {
        problems.add(
            at,
            "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
            "Options of a command are either all subcommands (and groups) or none",
        );
    }
    let mut names = HashSet::new();
    let mut optional_seen = false;
    for (i, option) in options.iter().enumerate() {
        let here = format!("{at}.{i}");
        let path = |name: &str| format!("{here}.{name}");
        let kind = option["type"].as_u64().unwrap_or(0);
        if !(1..=11).contains(&kind) {
            problems.add(
                &path("type"),
                "BASE_TYPE_CHOICES",
                "Value must be one of {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}.",
            );
            continue;
        }
        check_name(problems, &option["name"], &path("name"));
        if !names.insert(option["name"].to_string()) {
            problems.add(
                &path("name"),
                "APPLICATION_COMMAND_OPTION_NAME_ALREADY_EXISTS",
                "Option names must be unique",
            );
        }
        problems.required_len(option.get("description"), &path("description"), 1, 100);
        check_localizations(problems, option, &here, 32);
        let allowed_here = match level {
            Level::Command => true,
            Level::Group => kind == 1,
            Level::Subcommand => kind > 2,
        };
        if !allowed_here {
            problems.add(
                &path("type"),
                "APPLICATION_COMMAND_OPTIONS_TYPE_INVALID",
                "A group holds only subcommands, a subcommand no subcommands or groups",
            );
        }
        let children = option["options"].as_array().cloned().unwrap_or_default();
        match kind {
            1 => check_options(problems, &children, &path("options"), Level::Subcommand),
            2 => check_options(problems, &children, &path("options"), Level::Group),
            _ if !children.is_empty() => problems.add(
                &path("options"),
                "APPLICATION_COMMAND_OPTIONS_NOT_ALLOWED",
                "Only subcommands and groups have options",
            ),
            _ => {}
        }
        if kind > 2 {
            let required = option["required"].as_bool().unwrap_or(false);
            if required && optional_seen {
                problems.add(
                    &path("required"),
                    "APPLICATION_COMMAND_OPTIONS_REQUIRED_INVALID",
                    "Required options must be placed before non-required options",
                );
            }
            optional_seen |= !required;
        }
        check_values(problems, option, kind, &here);
    }
}

/// Choices, autocomplete and bounds, which only some option types have.
fn check_values(problems: &mut Problems, option: &Value, kind: u64, at: &str) {
    let path = |name: &str| format!("{at}.{name}");
    let valued = matches!(kind, 3 | 4 | 10);
    let choices = option["choices"].as_array().cloned().unwrap_or_default();
    let autocomplete = option["autocomplete"].as_bool().unwrap_or(false);
    if autocomplete && !valued {
        problems.add(
            &path("autocomplete"),
            "APPLICATION_COMMAND_OPTION_AUTOCOMPLETE_INVALID",
            "Autocomplete is only for string, integer and number options",
        );
    }
    if autocomplete && !choices.is_empty() {
        problems.add(
            &path("autocomplete"),
            "APPLICATION_COMMAND_AUTOCOMPLETE_AND_CHOICES",
            "Autocomplete cannot be set with choices",
        );
    }
    if !choices.is_empty() && !valued {
        problems.add(
            &path("choices"),
            "APPLICATION_COMMAND_OPTION_CHOICES_INVALID",
            "Choices are only for string, integer and number options",
        );
    }
    if choices.len() > 25 {
        problems.add(
            &path("choices"),
            "BASE_TYPE_MAX_LENGTH",
            "Must be 25 or fewer in length.",
        );
    }
    for (c, choice) in choices.iter().enumerate() {
        let at = format!("{at}.choices.{c}");
        problems.required_len(choice.get("name"), &format!("{at}.name"), 1, 100);
        let value = &choice["value"];
        let fits = match kind {
            3 => value
                .as_str()
                .is_some_and(|s| (1..=100).contains(&s.chars().count())),
            4 => value.is_i64() || value.is_u64(),
            _ => value.is_number(),
        };
        if valued && !fits {
            problems.add(
                &format!("{at}.value"),
                "APPLICATION_COMMAND_OPTION_CHOICE_VALUE_INVALID",
                "A choice's value must be of the option's type (strings 1..=100 characters)",
            );
        }
    }
    // serenity sends `"channel_types": []` on every option, which Discord takes as absent.
    let bounded = |name: &str| match &option[name] {
        Value::Null => false,
        Value::Array(items) => !items.is_empty(),
        _ => true,
    };
    if (bounded("min_value") || bounded("max_value")) && !matches!(kind, 4 | 10) {
        problems.add(
            &path("min_value"),
            "APPLICATION_COMMAND_OPTION_BOUNDS_INVALID",
            "min_value and max_value are for integer and number options",
        );
    }
    if bounded("min_length") || bounded("max_length") {
        let min = option["min_length"].as_u64().unwrap_or(0);
        let max = option["max_length"].as_u64().unwrap_or(6000);
        if kind != 3 || min > 6000 || !(1..=6000).contains(&max) || min > max {
            problems.add(
                &path("min_length"),
                "APPLICATION_COMMAND_OPTION_LENGTH_INVALID",
                "min_length 0..=6000 and max_length 1..=6000 are for string options",
            );
        }
    }
    if bounded("channel_types") && kind != 7 {
        problems.add(
            &path("channel_types"),
            "APPLICATION_COMMAND_OPTION_CHANNEL_TYPES_INVALID",
            "channel_types is for channel options",
        );
    }
}

/// Replaces the stored commands with `body`, keeping the ids of commands that stay.
pub fn store(state: &mut State, body: &Value, guild: Option<&str>) -> Value {
    let old = match guild {
        Some(guild) => state.guild_commands.get(guild).cloned().unwrap_or_default(),
        None => state.global_commands.clone(),
    };
    let mut stored = Vec::new();
    for command in body.as_array().cloned().unwrap_or_default() {
        let kind = command["type"].as_u64().unwrap_or(1);
        let same = |c: &&Value| c["name"] == command["name"] && c["type"] == kind;
        let id = match old.iter().find(same) {
            Some(existing) => existing["id"].clone(),
            None => json!(state.snowflake()),
        };
        let mut out = json!({
            "id": id, "application_id": APPLICATION_ID, "version": state.snowflake(),
            "type": kind, "name": command["name"], "description": command["description"].as_str().unwrap_or(""),
            "default_member_permissions": command["default_member_permissions"].as_str()
                .map(str::to_owned).or_else(|| command["default_member_permissions"].as_u64().map(|p| p.to_string())),
            "dm_permission": command["dm_permission"].as_bool().unwrap_or(true),
            "nsfw": command["nsfw"].as_bool().unwrap_or(false),
            "integration_types": command.get("integration_types").filter(|v| !v.is_null()).cloned().unwrap_or(json!([0])),
            "contexts": command.get("contexts").cloned().unwrap_or(Value::Null),
        });
        for field in ["options", "name_localizations", "description_localizations"] {
            if let Some(value) = command.get(field).filter(|v| !v.is_null()) {
                out[field] = value.clone();
            }
        }
        if let Some(guild) = guild {
            out["guild_id"] = json!(guild);
        }
        stored.push(out);
    }
    match guild {
        Some(guild) => {
            state
                .guild_commands
                .insert(guild.to_owned(), stored.clone());
        }
        None => state.global_commands = stored.clone(),
    }
    Value::Array(stored)
}
