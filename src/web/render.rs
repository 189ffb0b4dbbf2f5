//! The portal's pages from templates/web/*.html (compiled in). Every `{{ value }}` is
//! HTML-escaped (minijinja's auto-escaping for `.html` names); a page's body is rendered
//! first and placed into `layout.html`, which is the one value marked safe.

use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use minijinja::value::Serde;
use minijinja::{Environment, Value};
use serde::Serialize;

macro_rules! page {
    ($name:literal) => {
        ($name, include_str!(concat!("../../templates/web/", $name)))
    };
}

/// The built-in page templates.
pub const TEMPLATES: &[(&str, &str)] = &[
    page!("layout.html"),
    page!("message.html"),
    page!("access.html"),
    page!("new.html"),
    page!("approvals.html"),
    page!("request.html"),
    page!("request_audit.html"),
    page!("grants.html"),
    page!("audit.html"),
    page!("policy.html"),
    page!("reviews.html"),
];

const STYLESHEET: &str = include_str!("../../templates/web/portal.css");

/// The frame around every page: who is signed in, what they may open, and the sign-out
/// form (with its CSRF token).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Frame {
    pub title: String,
    /// The signed-in person's name; none on the sign-in and error pages.
    pub person: Option<String>,
    pub admin: bool,
    /// May open the audit log (an auditor or an admin).
    pub auditor: bool,
    pub csrf: String,
    /// Which navigation entry is this page: `access`, `new`, `approvals`, `grants`, `audit`.
    pub current: &'static str,
}

pub struct Pages {
    env: Environment<'static>,
}

impl Default for Pages {
    fn default() -> Self {
        Self::new()
    }
}

impl Pages {
    pub fn new() -> Self {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // A built-in template that does not parse is a bug the tests catch.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "a portal template does not parse");
            }
        }
        Self { env }
    }

    /// `template` with `context`, inside the layout with `frame`.
    pub fn render(
        &self,
        frame: &Frame,
        template: &str,
        context: impl Serialize,
    ) -> Result<String, minijinja::Error> {
        let body = self
            .env
            .get_template(template)?
            .render(Value::from(Serde(&context)))?;
        self.env
            .get_template("layout.html")?
            .render(minijinja::context! {
                frame => Value::from(Serde(frame)),
                body => Value::from_safe_string(body),
            })
    }
}

pub async fn stylesheet() -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_template_parses() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_value_that_looks_like_markup_is_escaped() {
        let pages = Pages::new();
        let frame = Frame {
            title: "<b>t</b>".into(),
            person: Some("<script>alert(1)</script>".into()),
            ..Frame::default()
        };
        let html = pages
            .render(
                &frame,
                "message.html",
                minijinja::context! { heading => "\"quoted\" & <i>", message => "<img src=x>" },
            )
            .unwrap();
        assert!(!html.contains("<script>alert"), "{html}");
        assert!(!html.contains("<img src=x>"), "{html}");
        assert!(html.contains("&lt;script&gt;"), "{html}");
        assert!(html.contains("&lt;img src=x&gt;"), "{html}");
        assert!(!html.contains("<script"), "no script at all: {html}");
    }
}
