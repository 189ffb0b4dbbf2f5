//! Block Kit's limits, enforced on rendered JSON by truncating rather than refusing, so that
//! whatever a template produces, Slack accepts the message.

/// Fits a rendered message or view into Block Kit's limits by truncating, so that Slack
/// never refuses it: at most 50 blocks in a message and 100 in a view (the overflow becomes
/// "…and N more", keeping a card's final buttons), and every text, list and id within its
/// documented length. Cut text ends in "…", on a character boundary and never inside an
/// `&amp;` escape or a `<…>` token. The one limit it cannot honour by cutting is
/// `private_metadata` (3000): cutting state would corrupt it, so its length is the error.
pub fn enforce_limits(root: &mut serde_json::Value) -> Result<(), usize> {
    let Some(obj) = root.as_object_mut() else {
        return Ok(());
    };
    let is_view = matches!(
        obj.get("type").and_then(serde_json::Value::as_str),
        Some("modal" | "home")
    );
    if is_view {
        for key in ["title", "submit", "close"] {
            text(obj.get_mut(key), 24);
        }
        for key in ["callback_id", "external_id"] {
            string(obj.get_mut(key), 255);
        }
        if let Some(meta) = obj
            .get("private_metadata")
            .and_then(serde_json::Value::as_str)
        {
            let len = meta.chars().count();
            if len > 3000 {
                return Err(len);
            }
        }
    } else {
        string(obj.get_mut("text"), 40_000);
    }
    if let Some(serde_json::Value::Array(blocks)) = obj.get_mut("blocks") {
        blocks.iter_mut().for_each(block);
        cap_blocks(blocks, if is_view { 100 } else { 50 });
    }
    Ok(())
}

fn more(n: usize) -> serde_json::Value {
    serde_json::json!({ "type": "mrkdwn", "text": format!("…and {n} more") })
}

fn cap_blocks(blocks: &mut Vec<serde_json::Value>, max: usize) {
    if blocks.len() <= max {
        return;
    }
    // A card's buttons are what its reader needs most: a trailing actions block stays.
    let tail = match blocks.last() {
        Some(last) if last["type"] == "actions" => blocks.pop(),
        _ => None,
    };
    let room = max - 1 - usize::from(tail.is_some());
    let dropped = blocks.len() - room;
    blocks.truncate(room);
    blocks.push(serde_json::json!({ "type": "context", "elements": [more(dropped)] }));
    blocks.extend(tail);
}

/// Keeps at most `max` items, the last one saying how many were left out.
fn cap_list(list: &mut Vec<serde_json::Value>, max: usize) {
    if list.len() > max {
        let dropped = list.len() - (max - 1);
        list.truncate(max - 1);
        list.push(more(dropped));
    }
}

fn block(b: &mut serde_json::Value) {
    let Some(obj) = b.as_object_mut() else {
        return;
    };
    string(obj.get_mut("block_id"), 255);
    let kind = obj
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    match kind {
        "section" => {
            text(obj.get_mut("text"), 3000);
            if let Some(serde_json::Value::Array(fields)) = obj.get_mut("fields") {
                cap_list(fields, 10);
                fields.iter_mut().for_each(|f| text(Some(f), 2000));
            }
            if let Some(accessory) = obj.get_mut("accessory") {
                element(accessory);
            }
        }
        "header" => text(obj.get_mut("text"), 150),
        "context" => {
            if let Some(serde_json::Value::Array(elements)) = obj.get_mut("elements") {
                cap_list(elements, 10);
                for e in elements {
                    if e["type"] == "image" {
                        element(e);
                    } else {
                        text(Some(e), 3000);
                    }
                }
            }
        }
        "actions" => {
            if let Some(serde_json::Value::Array(elements)) = obj.get_mut("elements") {
                elements.truncate(25);
                elements.iter_mut().for_each(element);
            }
        }
        "input" => {
            text(obj.get_mut("label"), 2000);
            text(obj.get_mut("hint"), 2000);
            if let Some(e) = obj.get_mut("element") {
                element(e);
            }
        }
        "image" => {
            string(obj.get_mut("alt_text"), 2000);
            string(obj.get_mut("image_url"), 3000);
            text(obj.get_mut("title"), 2000);
        }
        "markdown" => string(obj.get_mut("text"), 12_000),
        _ => {}
    }
}

fn element(e: &mut serde_json::Value) {
    let Some(obj) = e.as_object_mut() else {
        return;
    };
    string(obj.get_mut("action_id"), 255);
    text(obj.get_mut("placeholder"), 150);
    if let Some(serde_json::Value::Object(confirm)) = obj.get_mut("confirm") {
        text(confirm.get_mut("title"), 100);
        text(confirm.get_mut("text"), 300);
        text(confirm.get_mut("confirm"), 30);
        text(confirm.get_mut("deny"), 30);
    }
    let kind = obj
        .get("type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let max_options = match kind {
        "button" => {
            text(obj.get_mut("text"), 75);
            string(obj.get_mut("value"), 2000);
            string(obj.get_mut("url"), 3000);
            string(obj.get_mut("accessibility_label"), 75);
            0
        }
        "plain_text_input" => {
            for key in ["min_length", "max_length"] {
                if obj
                    .get(key)
                    .and_then(serde_json::Value::as_u64)
                    .is_some_and(|n| n > 3000)
                {
                    obj.insert(key.to_owned(), 3000.into());
                }
            }
            let max = obj
                .get("max_length")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or(3000);
            string(
                obj.get_mut("initial_value"),
                usize::try_from(max).unwrap_or(3000).max(1),
            );
            0
        }
        "image" => {
            string(obj.get_mut("alt_text"), 2000);
            string(obj.get_mut("image_url"), 3000);
            0
        }
        "overflow" => 5,
        "radio_buttons" | "checkboxes" => 10,
        _ => 100,
    };
    if let Some(option) = obj.get_mut("initial_option") {
        option_object(option);
    }
    for key in ["options", "initial_options"] {
        if let Some(serde_json::Value::Array(options)) = obj.get_mut(key) {
            options.truncate(max_options.max(1));
            options.iter_mut().for_each(option_object);
        }
    }
    if let Some(serde_json::Value::Array(groups)) = obj.get_mut("option_groups") {
        groups.truncate(100);
        for group in groups
            .iter_mut()
            .filter_map(serde_json::Value::as_object_mut)
        {
            text(group.get_mut("label"), 75);
            if let Some(serde_json::Value::Array(options)) = group.get_mut("options") {
                options.truncate(100);
                options.iter_mut().for_each(option_object);
            }
        }
    }
}

fn option_object(o: &mut serde_json::Value) {
    let Some(obj) = o.as_object_mut() else {
        return;
    };
    text(obj.get_mut("text"), 75);
    string(obj.get_mut("value"), 150);
    text(obj.get_mut("description"), 75);
    string(obj.get_mut("url"), 3000);
}

/// A text object (`{"type": "mrkdwn", "text": …}`): never empty, at most `max` characters.
fn text(t: Option<&mut serde_json::Value>, max: usize) {
    let Some(serde_json::Value::Object(t)) = t else {
        return;
    };
    let mrkdwn = t.get("type").is_some_and(|k| k == "mrkdwn");
    if let Some(serde_json::Value::String(s)) = t.get_mut("text") {
        if s.trim().is_empty() {
            // Slack refuses empty text; a dash says "nothing" without an API error.
            *s = "—".to_owned();
        }
        cut(s, max, mrkdwn);
    }
}

fn string(s: Option<&mut serde_json::Value>, max: usize) {
    if let Some(serde_json::Value::String(s)) = s {
        cut(s, max, false);
    }
}

/// Cuts `s` to at most `max` characters, the last being "…".
fn cut(s: &mut String, max: usize, mrkdwn: bool) {
    if s.chars().count() <= max {
        return;
    }
    let mut kept: String = s.chars().take(max.saturating_sub(1)).collect();
    if mrkdwn {
        // Half of `&amp;` or of `<!date^…|…>` would show as raw characters.
        let escape = kept
            .rfind('&')
            .filter(|&i| kept.len() - i < 5 && !kept[i..].contains(';'));
        if let Some(amp) = escape {
            kept.truncate(amp);
        }
        if let Some(lt) = kept.rfind('<').filter(|&i| !kept[i..].contains('>')) {
            kept.truncate(lt);
        }
    }
    kept.push('…');
    *s = kept;
}
