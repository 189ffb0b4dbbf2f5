//! A small OpenAPI 3 validator for the connectors' fakes: a vendor's description (the part a
//! test reads, vendored under tests/fixtures/<vendor>/ as JSON) says which requests exist
//! and what their answers look like, and every request a fake receives and every answer it
//! gives is checked against it. Shared by the okta, entra, github and google fakes.
//!
//! What it understands, enough for the operations the connectors call: paths with
//! `{templates}` (a literal segment wins over a template), 404 and 405 as the vendors answer
//! them; path, query and header parameters (required, unknown query parameters refused,
//! values against their schemas); security requirements (which scheme a request satisfies,
//! and the scopes it then needs); request and response bodies against JSON schemas: `$ref`
//! (local), `type` (3.0 `nullable` and 3.1 type lists), `enum`, `const`, `required`,
//! `properties`, `additionalProperties`, `items`, `allOf`, `anyOf`, `oneOf` (with a
//! `discriminator`), string lengths, `pattern`, `format` `date-time` and `email`, number
//! bounds, and `readOnly` / `writeOnly` by direction. What it does not understand it lets
//! pass: a violation it reports is one the description really states.
//!
//! [`fake`] is the validating HTTP server built on it.

pub mod fake;
mod tests;

use std::collections::BTreeMap;
use std::path::Path;

use axum::http::HeaderMap;
use serde_json::Value;

/// A vendor's API description, or the part of it a test reads.
pub struct Spec {
    doc: Value,
}

/// How a request the description does not have is refused: the status the vendor answers
/// with, and why.
#[derive(Debug, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub reason: String,
}

/// One operation of the description, matched by a request.
pub struct Operation<'s> {
    spec: &'s Spec,
    node: &'s Value,
    /// Path-level parameters, which the operation's own override by name and place.
    shared_parameters: &'s [Value],
    pub method: String,
    /// The path template: `/api/v1/users/{id}`.
    pub template: String,
    /// `operationId`.
    pub id: String,
    /// The values of the template's parameters, percent-decoded.
    pub path: BTreeMap<String, String>,
}

/// What a request carries besides its method and path.
pub struct Request<'a> {
    /// The query string, decoded, in order.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The security scheme a request satisfied, and the scopes the operation asks of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    /// The scheme's name in `components.securitySchemes`: `apiToken`, `oauth2`.
    pub scheme: String,
    /// The value presented: the header's (`SSWS 00abc…`, `Bearer eyJ…`) or the query
    /// parameter's.
    pub value: String,
    /// Any one of these scopes will do for an oauth2 scheme; empty for others.
    pub scopes: Vec<String>,
}

/// Which way a body travels, for `readOnly` (never in a request) and `writeOnly` (never in
/// an answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Request,
    Response,
}

const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
/// Deeper than this a schema is taken to refer to itself without end.
const MAX_DEPTH: usize = 64;

impl Spec {
    /// The description in `path` (JSON).
    pub fn load(path: &Path) -> Spec {
        let text = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        Spec::new(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
    }

    /// A description already parsed (or converted, as from Google's discovery format).
    pub fn new(doc: Value) -> Spec {
        assert!(
            doc["openapi"].as_str().is_some_and(|v| v.starts_with('3')),
            "not an OpenAPI 3 description"
        );
        Spec { doc }
    }

    /// The operation `method` on `path` (without the query), or how the vendor refuses
    /// a path it does not have (404) or a method the path does not take (405).
    pub fn operation(&self, method: &str, path: &str) -> Result<Operation<'_>, Refusal> {
        let method = method.to_ascii_lowercase();
        let segments: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, &str, &Value, BTreeMap<String, String>)> = None;
        let paths = self.doc["paths"].as_object().into_iter().flatten();
        for (template, item) in paths {
            let pattern: Vec<&str> = template.split('/').collect();
            if pattern.len() != segments.len() {
                continue;
            }
            let mut values = BTreeMap::new();
            let mut literal = 0;
            let matched = pattern.iter().zip(&segments).all(|(p, s)| {
                match p.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !s.is_empty() => {
                        values.insert(name.to_owned(), decode(s));
                        true
                    }
                    Some(_) => false,
                    None => {
                        literal += 1;
                        p == s
                    }
                }
            });
            if matched && best.as_ref().is_none_or(|(most, ..)| literal > *most) {
                best = Some((literal, template, item, values));
            }
        }
        let Some((_, template, item, path_values)) = best else {
            return Err(Refusal {
                status: 404,
                reason: format!("the description has no path {path}"),
            });
        };
        let item = self.resolve(item);
        let Some(node) = item
            .get(&method)
            .filter(|_| METHODS.contains(&method.as_str()))
        else {
            return Err(Refusal {
                status: 405,
                reason: format!("{template} does not take {}", method.to_uppercase()),
            });
        };
        Ok(Operation {
            spec: self,
            node,
            shared_parameters: item["parameters"].as_array().map_or(&[], Vec::as_slice),
            method,
            template: template.to_owned(),
            id: node["operationId"].as_str().unwrap_or_default().to_owned(),
            path: path_values,
        })
    }

    /// `node`, or what its `$ref` points at (followed until it is not a reference).
    fn resolve<'a>(&'a self, mut node: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
                return node;
            };
            let pointer = reference
                .strip_prefix('#')
                .unwrap_or_else(|| panic!("only local references are followed: {reference}"));
            node = self
                .doc
                .pointer(pointer)
                .unwrap_or_else(|| panic!("{reference} is not in the description"));
        }
        panic!("references that lead to themselves")
    }

    /// Every violation of `schema` by `value` (at `at`, for messages), travelling `direction`.
    pub fn check(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        direction: Direction,
    ) -> Vec<String> {
        let mut found = Vec::new();
        self.check_into(schema, value, at, direction, 0, &mut found);
        found
    }

    fn check_into(
        &self,
        schema: &Value,
        value: &Value,
        at: &str,
        direction: Direction,
        depth: usize,
        found: &mut Vec<String>,
    ) {
        let schema = self.resolve(schema);
        if depth > MAX_DEPTH || schema.as_bool() == Some(true) {
            return;
        }
        let check = |schema: &Value, value: &Value, at: &str, found: &mut Vec<String>| {
            self.check_into(schema, value, at, direction, depth + 1, found)
        };
        for part in schema["allOf"].as_array().into_iter().flatten() {
            check(part, value, at, found);
        }
        for (key, exactly_one) in [("anyOf", false), ("oneOf", true)] {
            let Some(choices) = schema[key].as_array() else {
                continue;
            };
            let choices: Vec<&Value> = match self.discriminated(schema, value) {
                Some(chosen) => vec![chosen],
                None => choices.iter().collect(),
            };
            let fits = choices
                .iter()
                .filter(|choice| {
                    let mut inner = Vec::new();
                    check(choice, value, at, &mut inner);
                    inner.is_empty()
                })
                .count();
            if fits == 0 || (exactly_one && fits > 1) {
                found.push(format!("{at}: fits {fits} of the {key} choices"));
            }
        }
        if value.is_null() {
            let nullable = schema["nullable"] == Value::Bool(true)
                || schema["type"]
                    .as_array()
                    .is_some_and(|t| t.contains(&"null".into()))
                || schema.get("type").is_none();
            if !nullable {
                found.push(format!(
                    "{at}: null where the description does not allow it"
                ));
            }
            return;
        }
        let types: Vec<&str> = match &schema["type"] {
            Value::String(t) => vec![t.as_str()],
            Value::Array(list) => list.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if !types.is_empty() && !types.iter().any(|t| is_type(value, t)) {
            found.push(format!(
                "{at}: {} where the description says {}",
                kind(value),
                types.join(" or ")
            ));
            return;
        }
        if let Some(allowed) = schema["enum"].as_array()
            && !allowed.contains(value)
        {
            found.push(format!(
                "{at}: {value} is not one of {}",
                Value::Array(allowed.clone())
            ));
        }
        if let Some(constant) = schema.get("const")
            && constant != value
        {
            found.push(format!("{at}: {value} is not {constant}"));
        }
        match value {
            Value::String(text) => self.check_string(schema, text, at, found),
            Value::Number(number) => {
                let n = number.as_f64().unwrap_or_default();
                if schema["minimum"].as_f64().is_some_and(|min| n < min) {
                    found.push(format!(
                        "{at}: {n} is below the minimum {}",
                        schema["minimum"]
                    ));
                }
                if schema["maximum"].as_f64().is_some_and(|max| n > max) {
                    found.push(format!(
                        "{at}: {n} is above the maximum {}",
                        schema["maximum"]
                    ));
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    if let Some(schema) = schema.get("items") {
                        check(schema, item, &format!("{at}[{i}]"), found);
                    }
                }
                if schema["minItems"]
                    .as_u64()
                    .is_some_and(|min| (items.len() as u64) < min)
                {
                    found.push(format!("{at}: fewer than {} items", schema["minItems"]));
                }
                if schema["maxItems"]
                    .as_u64()
                    .is_some_and(|max| items.len() as u64 > max)
                {
                    found.push(format!("{at}: more than {} items", schema["maxItems"]));
                }
            }
            Value::Object(fields) => {
                for name in schema["required"].as_array().into_iter().flatten() {
                    let name = name.as_str().unwrap_or_default();
                    if !fields.contains_key(name) {
                        found.push(format!("{at}: required property `{name}` is missing"));
                    }
                }
                let properties = schema["properties"].as_object();
                for (name, field) in fields {
                    let here = format!("{at}.{name}");
                    match properties.and_then(|p| p.get(name)) {
                        Some(property) => {
                            let property_schema = self.resolve(property);
                            let wrong_way = match direction {
                                Direction::Request => "readOnly",
                                Direction::Response => "writeOnly",
                            };
                            if property_schema[wrong_way] == Value::Bool(true) {
                                found.push(format!(
                                    "{here}: is {wrong_way}, so never in a {direction:?}"
                                ));
                            }
                            check(property, field, &here, found);
                        }
                        None => match schema.get("additionalProperties") {
                            Some(Value::Bool(false)) => {
                                found.push(format!("{here}: the description has no such property"))
                            }
                            Some(extra) if extra.is_object() => check(extra, field, &here, found),
                            _ => {}
                        },
                    }
                }
            }
            _ => {}
        }
    }

    fn check_string(&self, schema: &Value, text: &str, at: &str, found: &mut Vec<String>) {
        let chars = text.chars().count() as u64;
        if schema["minLength"].as_u64().is_some_and(|min| chars < min) {
            found.push(format!(
                "{at}: `{text}` is shorter than {}",
                schema["minLength"]
            ));
        }
        if schema["maxLength"].as_u64().is_some_and(|max| chars > max) {
            found.push(format!(
                "{at}: `{text}` is longer than {}",
                schema["maxLength"]
            ));
        }
        if let Some(pattern) = schema["pattern"].as_str() {
            let regex = regex::Regex::new(pattern)
                .unwrap_or_else(|e| panic!("{at}: the description's pattern {pattern}: {e}"));
            if !regex.is_match(text) {
                found.push(format!("{at}: `{text}` does not match {pattern}"));
            }
        }
        let bad_format = match schema["format"].as_str() {
            Some("date-time") => chrono::DateTime::parse_from_rfc3339(text).is_err(),
            Some("email") => !text
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty()),
            _ => false,
        };
        if bad_format {
            found.push(format!("{at}: `{text}` is not a {}", schema["format"]));
        }
    }

    /// The one choice a `discriminator` names for `value`, when it names one.
    fn discriminated<'a>(&'a self, schema: &'a Value, value: &Value) -> Option<&'a Value> {
        let property = schema["discriminator"]["propertyName"].as_str()?;
        let tag = value.get(property)?.as_str()?;
        let mapping = schema["discriminator"]["mapping"].get(tag);
        match mapping {
            Some(reference) => {
                let all = schema["oneOf"].as_array().into_iter().flatten();
                all.chain(schema["anyOf"].as_array().into_iter().flatten())
                    .find(|choice| choice.get("$ref") == Some(reference))
            }
            None => None,
        }
    }
}

impl Operation<'_> {
    /// Every way `request` breaks the description: parameters, credentials, body.
    pub fn check_request(&self, request: &Request<'_>) -> Vec<String> {
        let mut found = Vec::new();
        let parameters = self.parameters();
        let at = |place: &str, name: &str| {
            format!(
                "{} {} {place} parameter `{name}`",
                self.method.to_uppercase(),
                self.template
            )
        };
        for (name, value) in request.query {
            match parameters
                .iter()
                .find(|p| p["in"] == "query" && p["name"] == name.as_str())
            {
                None => found.push(format!(
                    "{}: the description has no such parameter",
                    at("query", name)
                )),
                Some(parameter) => {
                    found.extend(self.check_parameter(parameter, value, &at("query", name)))
                }
            }
        }
        for parameter in &parameters {
            let name = parameter["name"].as_str().unwrap_or_default();
            let given = match parameter["in"].as_str() {
                Some("query") => request
                    .query
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone()),
                Some("header") => request
                    .headers
                    .get(name)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned),
                Some("path") => self.path.get(name).cloned(),
                _ => continue,
            };
            let place = parameter["in"].as_str().unwrap_or_default();
            match given {
                None if parameter["required"] == Value::Bool(true) => {
                    found.push(format!("{}: required, missing", at(place, name)))
                }
                Some(value) if place != "query" => {
                    found.extend(self.check_parameter(parameter, &value, &at(place, name)))
                }
                _ => {}
            }
        }
        if let Err(problem) = self.credential(request.headers) {
            found.push(problem);
        }
        found.extend(self.check_request_body(request));
        found
    }

    /// The operation's parameters, its own over the path's (same name and place).
    fn parameters(&self) -> Vec<&Value> {
        let own: Vec<&Value> = self.node["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| self.spec.resolve(p))
            .collect();
        let mut all = own.clone();
        for shared in self.shared_parameters.iter().map(|p| self.spec.resolve(p)) {
            if !own
                .iter()
                .any(|p| p["name"] == shared["name"] && p["in"] == shared["in"])
            {
                all.push(shared);
            }
        }
        all
    }

    /// A parameter's text against its schema: numbers and booleans are read from the text.
    fn check_parameter(&self, parameter: &Value, text: &str, at: &str) -> Vec<String> {
        let schema = self.spec.resolve(&parameter["schema"]);
        let value = match schema["type"].as_str() {
            Some("integer" | "number") => match text.parse::<serde_json::Number>() {
                Ok(n) => Value::Number(n),
                Err(_) => return vec![format!("{at}: `{text}` is not a number")],
            },
            Some("boolean") => match text {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                _ => return vec![format!("{at}: `{text}` is not true or false")],
            },
            _ => Value::String(text.to_owned()),
        };
        self.spec.check(schema, &value, at, Direction::Request)
    }

    fn check_request_body(&self, request: &Request<'_>) -> Vec<String> {
        let what = format!("{} {}", self.method.to_uppercase(), self.template);
        let Some(body) = self.node.get("requestBody").map(|b| self.spec.resolve(b)) else {
            return if request.body.is_empty() {
                Vec::new()
            } else {
                vec![format!(
                    "{what}: the description takes no body, and one was sent"
                )]
            };
        };
        if request.body.is_empty() {
            return if body["required"] == Value::Bool(true) {
                vec![format!("{what}: the body is required, and none was sent")]
            } else {
                Vec::new()
            };
        }
        let content_type = request
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        self.check_body(
            &body["content"],
            content_type,
            request.body,
            &format!("{what} body"),
            Direction::Request,
        )
    }

    /// Every way an answer breaks the description: its status and its body.
    pub fn check_response(&self, status: u16, content_type: &str, body: &[u8]) -> Vec<String> {
        let what = format!(
            "{} {} answered {status}",
            self.method.to_uppercase(),
            self.template
        );
        let responses = &self.node["responses"];
        let Some(response) = responses
            .get(status.to_string())
            .or_else(|| responses.get(format!("{}XX", status / 100)))
            .or_else(|| responses.get("default"))
            .map(|r| self.spec.resolve(r))
        else {
            return vec![format!("{what}, a status the description does not list")];
        };
        let content = &response["content"];
        let declared = content.as_object().is_some_and(|c| !c.is_empty());
        match (declared, body.is_empty()) {
            (_, true) => Vec::new(),
            (false, false) => vec![format!(
                "{what} with a body, where the description has none"
            )],
            (true, false) => {
                self.check_body(content, content_type, body, &what, Direction::Response)
            }
        }
    }

    /// A JSON body against the schema its media type has in `content`.
    fn check_body(
        &self,
        content: &Value,
        content_type: &str,
        body: &[u8],
        what: &str,
        direction: Direction,
    ) -> Vec<String> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        let Some(schema) = content.get(media).map(|m| &m["schema"]) else {
            let listed: Vec<&String> = content
                .as_object()
                .into_iter()
                .flatten()
                .map(|(k, _)| k)
                .collect();
            return vec![format!(
                "{what}: content type `{content_type}` is not one of {listed:?}"
            )];
        };
        match serde_json::from_slice::<Value>(body) {
            Err(e) => vec![format!("{what}: not JSON: {e}")],
            Ok(_) if schema.is_null() => Vec::new(),
            Ok(value) => self.spec.check(schema, &value, what, direction),
        }
    }

    /// The scopes the operation asks of `scheme` (an oauth2 scheme), any one of which will
    /// do; `None` when it does not take that scheme.
    pub fn scopes(&self, scheme: &str) -> Option<Vec<String>> {
        let requirements = self
            .node
            .get("security")
            .or_else(|| self.spec.doc.get("security"))?;
        requirements.as_array()?.iter().find_map(|requirement| {
            let scopes = requirement.get(scheme)?.as_array()?;
            Some(
                scopes
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
            )
        })
    }

    /// The security scheme `headers` satisfy, among the alternatives the operation (or the
    /// whole description) lists; an error naming them when none is satisfied.
    pub fn credential(&self, headers: &HeaderMap) -> Result<Option<Credential>, String> {
        let requirements = self
            .node
            .get("security")
            .or_else(|| self.spec.doc.get("security"))
            .and_then(Value::as_array);
        let Some(requirements) = requirements.filter(|r| !r.is_empty()) else {
            return Ok(None);
        };
        let schemes = &self.spec.doc["components"]["securitySchemes"];
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        for requirement in requirements {
            let Some(requirement) = requirement.as_object() else {
                continue;
            };
            if requirement.is_empty() {
                return Ok(None);
            }
            for (name, scopes) in requirement {
                let scheme = self.spec.resolve(&schemes[name]);
                let value = match (scheme["type"].as_str(), scheme["in"].as_str()) {
                    (Some("apiKey"), Some("header")) => {
                        header(scheme["name"].as_str().unwrap_or_default())
                    }
                    (Some("oauth2" | "openIdConnect"), _) => {
                        header("authorization").filter(|v| v.starts_with("Bearer "))
                    }
                    (Some("http"), _) => {
                        let wanted = scheme["scheme"]
                            .as_str()
                            .unwrap_or_default()
                            .to_ascii_lowercase();
                        header("authorization")
                            .filter(|v| v.to_ascii_lowercase().starts_with(&format!("{wanted} ")))
                    }
                    _ => None,
                };
                if let Some(value) = value {
                    let scopes = scopes
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect();
                    return Ok(Some(Credential {
                        scheme: name.clone(),
                        value,
                        scopes,
                    }));
                }
            }
        }
        let names: Vec<&String> = requirements
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|r| r.keys())
            .collect();
        Err(format!(
            "{} {}: no credentials of any scheme it takes ({names:?})",
            self.method.to_uppercase(),
            self.template
        ))
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "null" => value.is_null(),
        _ => true,
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A path segment, percent-decoded.
pub fn decode(segment: &str) -> String {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
