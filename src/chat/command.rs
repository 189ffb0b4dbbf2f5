//! What people type after `/access` (Slack's text, or what Discord's subcommands amount to),
//! read into a [`ChatCommand`] before anything else looks at it. Parsing knows no platform or
//! prefix; the configured command (`slack.command`) is given only to show help or an error.
//! One table of forms feeds help and errors, and a test parses every example it shows.

use std::fmt;
use std::str::FromStr;

use crate::domain::diagnostic::did_you_mean;
use crate::domain::duration::Duration;
use crate::domain::ids::{GrantId, RequestId};

/// The command `Display` of [`CommandError`] names; [`CommandError::render`] takes another.
pub const DEFAULT_COMMAND: &str = "/access";

/// One command typed after `/access`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatCommand {
    /// Nothing typed: open the request form.
    OpenForm,
    /// Ask for access. `words` still holds template values and the justification together;
    /// [`crate::domain::fields::fill_fields`] sorts them once the role's template is known.
    Request {
        resource: String,
        role: String,
        duration: Option<Duration>,
        words: String,
    },
    /// Break-glass access at once, reviewed afterwards.
    Emergency {
        resource: String,
        role: String,
        duration: Option<Duration>,
        words: String,
    },
    /// My requests and grants.
    List,
    /// Approvals waiting for me.
    Pending,
    Cancel(RequestId),
    /// More time on a grant; `reason` is empty when none was typed.
    Extend {
        grant: GrantId,
        by: Duration,
        reason: String,
    },
    /// End a grant early.
    Done(GrantId),
    Approve(RequestId),
    Reject {
        request: RequestId,
        reason: String,
    },
    Help,
}

/// Why a text could not be read. Shown to the person who typed it, so its text is one
/// sentence saying what was wrong and the form that works.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommandError(Problem);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Problem {
    UnknownVerb(String),
    /// A known command typed wrong; `what` follows the verb's name, before the form that works.
    BadForm(Verb, String),
}

impl CommandError {
    /// The sentence for the person, naming the command they use (`/access`, `/gate`, …).
    pub fn render(&self, command: &str) -> String {
        match &self.0 {
            Problem::UnknownVerb(given) => {
                let hint = did_you_mean(given, Verb::ALL.map(Verb::name));
                let hint = hint.map_or(String::new(), |hint| hint + " ");
                format!("`{command} {given}` is not a command; {hint}`{command} help` lists them")
            }
            Problem::BadForm(v, what) => format!("`{}` {what}: {}", v.name(), v.usage(command)),
        }
    }
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(DEFAULT_COMMAND))
    }
}

impl std::error::Error for CommandError {}

/// The help text: one line per form, each an example that works, under `command`.
pub fn help(command: &str) -> String {
    let mut lines = vec![format!("`{command}` — open the request form")];
    lines.extend(Verb::ALL.map(|v| format!("`{}` — {}", v.usage(command), v.form().1)));
    lines.join("\n")
}

/// Reads the text typed after the command. Verbs ignore case; any whitespace separates words.
pub fn parse(text: &str) -> Result<ChatCommand, CommandError> {
    let mut words = text.split_whitespace();
    let Some(first) = words.next() else {
        return Ok(ChatCommand::OpenForm);
    };
    let verb = Verb::ALL
        .into_iter()
        .find(|v| v.name().eq_ignore_ascii_case(first) || (*v == Verb::Help && first == "?"))
        .ok_or_else(|| CommandError(Problem::UnknownVerb(first.to_owned())))?;
    let args: Vec<&str> = words.collect();
    if matches!(verb, Verb::List | Verb::Pending) && !args.is_empty() {
        return Err(bad(verb, "takes nothing after it"));
    }
    Ok(match verb {
        Verb::Request | Verb::Emergency => ask(verb, &args)?,
        Verb::List => ChatCommand::List,
        Verb::Pending => ChatCommand::Pending,
        Verb::Cancel => ChatCommand::Cancel(only_id(verb, &args, "a request id")?),
        Verb::Approve => ChatCommand::Approve(only_id(verb, &args, "a request id")?),
        Verb::Done => ChatCommand::Done(only_id(verb, &args, "a grant id")?),
        Verb::Extend => extend(&args)?,
        Verb::Reject => match args.split_first() {
            None => return Err(bad(verb, "needs a request id and a reason")),
            Some((_, [])) => return Err(bad(verb, "needs a reason, so the requester knows why")),
            Some((id, reason)) => ChatCommand::Reject {
                request: id_of(verb, id, "a request id")?,
                reason: reason.join(" "),
            },
        },
        Verb::Help => ChatCommand::Help,
    })
}

/// The forms, in the order help shows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verb {
    Request,
    Emergency,
    List,
    Pending,
    Cancel,
    Extend,
    Done,
    Approve,
    Reject,
    Help,
}

impl Verb {
    const ALL: [Verb; 10] = {
        use Verb::*;
        [
            Request, Emergency, List, Pending, Cancel, Extend, Done, Approve, Reject, Help,
        ]
    };

    /// An example that works (its first word is the verb), and what the form is for.
    fn form(self) -> (&'static str, &'static str) {
        let form = FORMS[self as usize];
        form.split_once(" — ").unwrap_or((form, ""))
    }

    fn name(self) -> &'static str {
        let example = self.form().0;
        example.split_once(' ').map_or(example, |(name, _)| name)
    }

    fn usage(self, command: &str) -> String {
        format!("{command} {}", self.form().0)
    }
}

/// Every form in [`Verb`] order (a test holds them to it): an example, and what it is for.
const FORMS: [&str; 10] = [
    "request prod-db read for 2h INC-4211 why you need it — ask for access",
    "emergency prod-db admin INC-4300 primary down — access at once, reviewed after",
    "list — your requests and grants",
    "pending — approvals waiting for you",
    "cancel AR-12 — cancel a request you made",
    "extend G-7 1h why you need more time — more time on a grant",
    "done G-7 — end a grant early",
    "approve AR-12 — approve a request waiting for you",
    "reject AR-12 why you say no — reject a request, with the reason",
    "help — this list",
];

fn bad(verb: Verb, what: impl Into<String>) -> CommandError {
    CommandError(Problem::BadForm(verb, what.into()))
}

fn is_for(word: &str) -> bool {
    word.eq_ignore_ascii_case("for")
}

/// `<resource> <role> [for <duration>] <words…>` or `<resource>/<role> …`, the duration anywhere.
fn ask(verb: Verb, args: &[&str]) -> Result<ChatCommand, CommandError> {
    let missing = || bad(verb, "needs a resource and a role");
    let (resource, role, rest) = match args {
        [both, rest @ ..] if both.contains('/') => {
            let (resource, role) = both.split_once('/').ok_or_else(missing)?;
            (resource, role, rest)
        }
        [resource, role, rest @ ..] => (*resource, *role, rest),
        _ => return Err(missing()),
    };
    let unusable = |w: &str| w.is_empty() || w.contains('/') || is_for(w);
    if unusable(resource) || unusable(role) {
        return Err(missing());
    }
    // The first `for` followed by a digit is the duration; any other `for` is part of the reason.
    let mut words = rest.to_vec();
    let mut duration = None;
    if let Some(at) = words.windows(2).position(|pair| match pair {
        [first, then] => is_for(first) && then.starts_with(|c: char| c.is_ascii_digit()),
        _ => false,
    }) {
        let given = words.drain(at..at + 2).next_back().unwrap_or_default();
        duration = Some(duration_of(verb, given)?);
    }
    let (resource, role, words) = (resource.to_owned(), role.to_owned(), words.join(" "));
    Ok(match verb {
        Verb::Emergency => ChatCommand::Emergency {
            resource,
            role,
            duration,
            words,
        },
        _ => ChatCommand::Request {
            resource,
            role,
            duration,
            words,
        },
    })
}

/// `extend <grant> [for] <duration> [reason…]`.
fn extend(args: &[&str]) -> Result<ChatCommand, CommandError> {
    let verb = Verb::Extend;
    let Some((id, rest)) = args.split_first() else {
        return Err(bad(verb, "needs a grant id and how much longer"));
    };
    let grant = id_of(verb, id, "a grant id")?;
    let skip_for = usize::from(rest.first().is_some_and(|word| is_for(word)));
    let Some((by, reason)) = rest.get(skip_for..).and_then(|rest| rest.split_first()) else {
        return Err(bad(verb, "needs how much longer, after the grant id"));
    };
    let by = duration_of(verb, by)?;
    let reason = reason.join(" ");
    Ok(ChatCommand::Extend { grant, by, reason })
}

/// Durations start with a digit, so `for 2 hours` is a mistyped duration that gets the right
/// form back, while `for the migration` is part of the reason.
fn duration_of(verb: Verb, given: &str) -> Result<Duration, CommandError> {
    let what = format!("needs a duration like 2h, 30m or 1h30m, not `{given}`");
    given.parse().map_err(|_| bad(verb, what))
}

/// The one id a command takes, and nothing after it.
fn only_id<T: FromStr>(verb: Verb, args: &[&str], kind: &str) -> Result<T, CommandError> {
    match args {
        [id] => id_of(verb, id, kind),
        [] => Err(bad(verb, format!("needs {kind}"))),
        _ => Err(bad(verb, format!("takes {kind} and nothing else"))),
    }
}

fn id_of<T: FromStr>(verb: Verb, given: &str, kind: &str) -> Result<T, CommandError> {
    let what = format!("needs {kind}, not `{given}`");
    given.parse().map_err(|_| bad(verb, what))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::ChatCommand::*;
    use super::*;

    fn ok(text: &str) -> ChatCommand {
        parse(text).unwrap()
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    /// The request of `[resource, role, duration or "", words]`.
    fn request([resource, role, duration, words]: [&str; 4]) -> ChatCommand {
        let duration = (!duration.is_empty()).then(|| duration.parse().unwrap());
        let (resource, role, words) = (resource.into(), role.into(), words.into());
        Request {
            resource,
            role,
            duration,
            words,
        }
    }

    #[test]
    fn a_request_reads_resource_role_duration_and_reason_in_any_order() {
        let typed = ok("request prod-db admin for 2h INC-4211 fixing replica lag");
        let want = request(["prod-db", "admin", "2h", "INC-4211 fixing replica lag"]);
        assert_eq!(typed, want);
        let want = request(["prod-db", "read", "", ""]);
        assert_eq!(ok("request prod-db read"), want);
        // Anywhere, once; the slash form too.
        let typed = ok("request db/admin INC-1 lag For 1h30m for the SREs for 3h");
        let want = request(["db", "admin", "1h30m", "INC-1 lag for the SREs for 3h"]);
        assert_eq!(typed, want);
    }

    #[test]
    fn verbs_ignore_case_and_extra_whitespace_and_an_emergency_reads_like_a_request() {
        let typed = ok("  REQUEST\tprod-db   admin INC-4300 \n down ");
        assert_eq!(typed, request(["prod-db", "admin", "", "INC-4300 down"]));
        let emergency = format!("{:?}", ok("Emergency prod-db admin INC-4300 down"));
        assert_eq!(
            emergency.replacen("Emergency", "Request", 1),
            format!("{typed:?}")
        );
        assert_eq!(ok(" \n "), OpenForm);
        assert_eq!(ok("LIST"), List);
        assert_eq!(ok("Pending "), Pending);
        assert_eq!(ok("?"), Help);
    }

    #[test]
    fn ids_without_prefix_are_accepted() {
        assert_eq!(ok("cancel 12"), Cancel(RequestId(12)));
        assert_eq!(ok("approve ar-12"), Approve(RequestId(12)));
        assert_eq!(ok("done 7"), Done(GrantId(7)));
        let (request, reason) = (RequestId(12), "not on call".to_owned());
        assert_eq!(ok("reject 12 not  on call"), Reject { request, reason });
        // extend: a grant, how much longer (`for` optional), and a reason if given.
        let (grant, by, reason) = (GrantId(7), Duration::from_hours(1), "overran".to_owned());
        assert_eq!(ok("extend G-7 1h overran"), Extend { grant, by, reason });
        let reason = String::new();
        assert_eq!(ok("extend g-7 for 1h"), Extend { grant, by, reason });
    }

    #[test]
    fn a_request_without_a_role_is_shown_the_right_form() {
        let right = "`request` needs a resource and a role: \
                     /access request prod-db read for 2h INC-4211 why you need it";
        assert_eq!(error("request prod-db"), right);
        assert_eq!(error("request prod-db/"), right);
        assert_eq!(error("request prod-db for 2h"), right);
        assert!(error("request db read for 2hours x").contains("not `2hours`: /access request"));
    }

    #[test]
    fn wrong_ids_and_missing_parts_say_what_to_type() {
        let said = "`cancel` needs a request id, not `G-7`: /access cancel AR-12";
        assert_eq!(error("cancel G-7"), said);
        assert_eq!(error("done"), "`done` needs a grant id: /access done G-7");
        assert!(error("approve AR-1 AR-2").contains("takes a request id and nothing else"));
        assert!(error("reject AR-12").starts_with("`reject` needs a reason"));
        assert!(error("extend G-7 soon").contains("like 2h, 30m or 1h30m, not `soon`: /access"));
        assert!(error("list mine").starts_with("`list` takes nothing after it"));
    }

    #[test]
    fn an_unknown_verb_suggests_the_closest_one() {
        let said =
            "`/access cancle` is not a command; did you mean `cancel`? `/access help` lists them";
        assert_eq!(error("cancle AR-12"), said);
        assert!(error("reqest db read").contains("did you mean `request` or `reject`?"));
        let said = "`/access frobnicate` is not a command; `/access help` lists them";
        assert_eq!(error("frobnicate"), said);
    }

    #[test]
    fn errors_and_help_name_the_configured_command() {
        let gate = |text: &str| parse(text).unwrap_err().render("/gate");
        assert!(gate("cancle 1").ends_with("`/gate help` lists them"));
        assert!(gate("done").ends_with(": /gate done G-7"));
        let help = help("/gate");
        assert_eq!(help.lines().count(), 11);
        assert!(help.lines().all(|line| line.starts_with("`/gate")));
    }

    #[test]
    fn every_example_in_the_help_parses() {
        for verb in Verb::ALL {
            let (example, purpose) = verb.form();
            assert_eq!(format!("{verb:?}").to_lowercase(), verb.name());
            assert!(!purpose.is_empty() && parse(example).is_ok(), "{example}");
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC*", verb in prop::sample::select(&Verb::ALL[..])) {
            let _ = parse(&text).map_err(|e| e.to_string());
            let _ = parse(&format!("{} {text}", verb.name())).map_err(|e| e.render("/x"));
        }
    }
}
