//! Answering interactions, the same way in gateway and HTTP mode: a command, a click or a
//! submitted modal runs the shared chat logic as the person behind the Discord user, and
//! comes back as the interaction's callback — an ephemeral message, a modal, or
//! autocomplete choices. Discord wants the callback within 3 s: work that takes longer is
//! answered with a deferred (ephemeral) response, and its message replaces the "thinking"
//! placeholder when it is ready.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::TimeDelta;
use serde_json::{Value, json};

use super::Discord;
use super::interaction::{Incoming, Kind, read_command};
use crate::chat::actions::CardAction;
use crate::chat::command::ChatCommand;
use crate::chat::forms::{self, FormError, FormKind, Submission};
use crate::chat::render::discord_ids::ModalId;
use crate::chat::respond::{self, Answer, Clicked};
use crate::chat::say;
use crate::chat::suggest::{self, Suggestion};
use crate::chat::views::{EphemeralView, HelpView, RequestModalView};
use crate::domain::ids::{PersonId, ResourceId, RoleId};
use crate::engine::{EngineError, Facade, Overview};

/// After this, an answer still being worked on is deferred; Discord allows 3 s in all.
const DEFER_AFTER: StdDuration = StdDuration::from_millis(2000);
/// Discord shows at most 25 autocomplete choices, each name at most 100 characters.
const MAX_CHOICES: usize = 25;
const MAX_CHOICE_NAME: usize = 100;
/// How long an interaction id is remembered, to refuse a replay: well past the signature
/// window and Discord's 15-minute interaction lifetime.
const REMEMBER_INTERACTIONS: TimeDelta = TimeDelta::minutes(20);
/// Interaction callback types and the ephemeral flag, as Discord numbers them.
const PONG: u8 = 1;
const MESSAGE: u8 = 4;
const DEFERRED_MESSAGE: u8 = 5;
const AUTOCOMPLETE_RESULT: u8 = 8;
const MODAL: u8 = 9;
const EPHEMERAL: u64 = 1 << 6;

/// What an interaction comes to.
#[derive(Clone, Debug, PartialEq)]
pub enum Reply {
    Pong,
    /// A rendered message (`discord/ephemeral.j2`, `discord/help.j2`), shown only to them.
    Message(Value),
    /// A rendered modal.
    Modal(Value),
    Choices(Vec<Suggestion>),
}

/// Whether an interaction is new or one already answered.
pub enum Seen {
    /// New: the responder to answer it with, whose commits record the interaction's id.
    First(Arc<Responder>),
    Again,
}

/// Answers interactions through the engine's facade.
pub struct Responder {
    discord: Arc<Discord>,
    facade: Facade,
}

impl Responder {
    pub fn new(discord: Arc<Discord>, facade: Facade) -> Arc<Self> {
        Arc::new(Self { discord, facade })
    }

    pub fn discord(&self) -> &Arc<Discord> {
        &self.discord
    }

    pub fn facade(&self) -> &Facade {
        &self.facade
    }

    /// Claims interaction `id` (see [`Facade::first_delivery`]); `Again` when it already
    /// arrived.
    pub async fn seen(&self, id: &str) -> Result<Seen, EngineError> {
        let key = format!("discord:{id}");
        let until = self.facade.now() + REMEMBER_INTERACTIONS;
        Ok(match self.facade.first_delivery(vec![key], until).await? {
            Some(facade) => Seen::First(Arc::new(Responder {
                discord: self.discord.clone(),
                facade,
            })),
            None => Seen::Again,
        })
    }

    /// The callback body for `incoming`. Work that outlasts two seconds is answered
    /// with a deferred response now, and its message edited in when ready.
    pub async fn callback(self: &Arc<Self>, incoming: Incoming) -> Value {
        let token = incoming.token.clone();
        let this = self.clone();
        self.within(
            DEFER_AFTER,
            token,
            async move { this.reply(incoming).await },
        )
        .await
    }

    /// `work`'s reply as a callback if it comes within `deadline`; else a deferred
    /// (ephemeral) response now, and the reply edited into it when it comes.
    async fn within(
        self: &Arc<Self>,
        deadline: StdDuration,
        token: String,
        work: impl Future<Output = Reply> + Send + 'static,
    ) -> Value {
        let mut work = tokio::spawn(work);
        match tokio::time::timeout(deadline, &mut work).await {
            Ok(Ok(reply)) => self.callback_of(reply),
            Ok(Err(panicked)) => {
                tracing::error!(error = %panicked, "answering a Discord interaction panicked");
                self.callback_of(self.say(&say::apology("answering you"), Vec::new()))
            }
            Err(_late) => {
                let this = self.clone();
                tokio::spawn(async move {
                    let reply = match work.await {
                        Ok(Reply::Message(message)) => message,
                        Ok(_) | Err(_) => message_of(
                            this.say("That took too long to show here; try again.", Vec::new()),
                        ),
                    };
                    this.edit_original(&token, reply).await;
                });
                json!({"type": DEFERRED_MESSAGE, "data": {"flags": EPHEMERAL}})
            }
        }
    }

    /// What an interaction comes to, however long it takes.
    pub async fn reply(&self, incoming: Incoming) -> Reply {
        if incoming.kind == Kind::Ping {
            return Reply::Pong;
        }
        let person = match self.person(&incoming.user) {
            Ok(person) => person,
            Err(sentence) => {
                return match incoming.kind {
                    Kind::Autocomplete { .. } => Reply::Choices(Vec::new()),
                    _ => self.say(&sentence, Vec::new()),
                };
            }
        };
        match incoming.kind {
            Kind::Ping => Reply::Pong,
            Kind::Command {
                subcommand,
                options,
            } => self.command(person, &subcommand, options).await,
            Kind::Autocomplete {
                options, focused, ..
            } => Reply::Choices(self.choices(&person, &options, &focused).await),
            Kind::Click { custom_id } => self.click(person, &custom_id).await,
            Kind::Submit { custom_id, inputs } => self.submit(person, &custom_id, inputs).await,
        }
    }

    /// The person behind a Discord user, or the sentence telling them how to get mapped.
    fn person(&self, user: &str) -> Result<PersonId, String> {
        let world = self.facade.world();
        match world.directory.by_discord(user) {
            Some(person) => Ok(person.id.clone()),
            None => Err(format!(
                "Gatehouse does not know your Discord account ({user}). Ask your IAM team to add `discord = \"{user}\"` to your entry in the directory."
            )),
        }
    }

    async fn command(
        &self,
        person: PersonId,
        subcommand: &str,
        options: BTreeMap<String, String>,
    ) -> Reply {
        let command = match read_command(subcommand, &options) {
            Ok(command) => command,
            Err(error) => return self.say(&error.to_string(), Vec::new()),
        };
        let answer = match command {
            ChatCommand::Help => Answer::Help,
            ChatCommand::OpenForm => Answer::OpenForm,
            other => respond::run(&self.facade, &person, other).await,
        };
        match answer {
            Answer::Say(text, lines) => self.say(&text, lines),
            Answer::Help => self.help(),
            Answer::OpenForm => self.request_form(&options),
        }
    }

    /// The request modal, around the resource and role already chosen, if both were.
    fn request_form(&self, options: &BTreeMap<String, String>) -> Reply {
        let world = self.facade.world();
        let resource = options.get("resource").map(|r| ResourceId::new(r.trim()));
        let role = options.get("role").map(|r| RoleId::new(r.trim()));
        let modal = RequestModalView::new(&world.policy, resource.as_ref(), role.as_ref());
        match self.render("discord/request_modal.j2", json!({ "modal": modal })) {
            Some(rendered) => Reply::Modal(rendered),
            None => self.say(&say::apology("opening the form"), Vec::new()),
        }
    }

    async fn choices(
        &self,
        person: &PersonId,
        options: &BTreeMap<String, String>,
        focused: &str,
    ) -> Vec<Suggestion> {
        let typed = options.get(focused).cloned().unwrap_or_default();
        let world = self.facade.world();
        let Some(who) = world.directory.active_person(person) else {
            return Vec::new();
        };
        let mut choices = match focused {
            "resource" => suggest::resources(&world.policy, who, &typed, MAX_CHOICES),
            "role" => suggest::roles(
                &world.policy,
                options.get("resource").map(String::as_str),
                &typed,
                MAX_CHOICES,
            ),
            "request" | "grant" => match self.facade.overview(person.clone()).await {
                Ok(overview) => own_ids(&overview, focused, &typed),
                Err(error) => {
                    tracing::warn!(%error, "no autocomplete: the store could not be read");
                    Vec::new()
                }
            },
            _ => Vec::new(),
        };
        for choice in &mut choices {
            choice.label = clip(&choice.label, MAX_CHOICE_NAME);
        }
        choices
    }

    async fn click(&self, person: PersonId, custom_id: &str) -> Reply {
        let Some(card) = CardAction::from_custom_id(custom_id) else {
            return self.say("This button is no longer in use.", Vec::new());
        };
        match respond::click(&self.facade, &person, card, "Discord").await {
            Clicked::Say(sentence) => self.say(&sentence, Vec::new()),
            Clicked::Form(form) => {
                let template = format!("discord/{}.j2", form.stem());
                match self.render(&template, form.context()) {
                    Some(modal) => Reply::Modal(modal),
                    None => self.say(&say::apology("opening the form"), Vec::new()),
                }
            }
        }
    }

    async fn submit(
        &self,
        person: PersonId,
        custom_id: &str,
        inputs: BTreeMap<String, String>,
    ) -> Reply {
        let Some(modal) = ModalId::parse(custom_id) else {
            return self.say("This form is out of date; open it again.", Vec::new());
        };
        let (kind, form) = submission(modal, inputs);
        match forms::submit(&self.facade, &person, kind, &form).await {
            Ok(sentence) | Err(FormError::Refused(sentence)) => self.say(&sentence, Vec::new()),
            Err(FormError::Fix(mistakes)) => {
                let lines = mistakes
                    .iter()
                    .map(|(input, sentence)| format!("{}: {sentence}", label_of(input)))
                    .collect();
                self.say("Nothing was sent; fix this and try again:", lines)
            }
        }
    }

    /// An ephemeral message: a sentence and lines under it.
    fn say(&self, text: &str, lines: Vec<String>) -> Reply {
        let view = EphemeralView {
            text: text.to_owned(),
            lines,
            blocks: Vec::new(),
        };
        let rendered = self.render("discord/ephemeral.j2", json!({ "reply": view }));
        Reply::Message(rendered.unwrap_or_else(|| json!({ "content": clip(text, 2000) })))
    }

    fn help(&self) -> Reply {
        let help = HelpView {
            command: self.discord.slash_command(),
        };
        match self.render("discord/help.j2", json!({ "help": help })) {
            Some(message) => Reply::Message(message),
            None => {
                let text = crate::chat::command::help(&self.discord.slash_command());
                self.say(&text, Vec::new())
            }
        }
    }

    fn render(&self, name: &str, context: Value) -> Option<Value> {
        match self.discord.templates.render(name, context) {
            Ok(value) => Some(value),
            Err(error) => {
                tracing::error!(%error, template = name, "a Discord template failed to render");
                None
            }
        }
    }

    /// The callback body for a reply.
    fn callback_of(&self, reply: Reply) -> Value {
        match reply {
            Reply::Pong => json!({ "type": PONG }),
            Reply::Message(message) => json!({ "type": MESSAGE, "data": ephemeral(message) }),
            Reply::Modal(modal) => json!({ "type": MODAL, "data": modal }),
            Reply::Choices(choices) => {
                let choices: Vec<Value> = choices
                    .into_iter()
                    .map(|c| json!({ "name": c.label, "value": c.value }))
                    .collect();
                json!({ "type": AUTOCOMPLETE_RESULT, "data": { "choices": choices } })
            }
        }
    }

    /// Replaces a deferred response's placeholder with `message`.
    async fn edit_original(&self, token: &str, message: Value) {
        let path = format!(
            "/webhooks/{}/{token}/messages/@original",
            self.discord.application_id
        );
        let mut body = message;
        super::no_pings(&mut body);
        if let Err(error) = self.discord.rest.patch(&path, &body).await {
            tracing::warn!(%error, "a deferred Discord answer could not be shown");
        }
    }
}

/// A message shown only to whoever asked, pinging nobody.
fn ephemeral(mut message: Value) -> Value {
    message["flags"] = EPHEMERAL.into();
    super::no_pings(&mut message);
    message
}

fn message_of(reply: Reply) -> Value {
    match reply {
        Reply::Message(message) => message,
        _ => json!({ "content": "Done." }),
    }
}

/// The person's own pending requests (`request`) or live grants (`grant`) matching `typed`.
fn own_ids(overview: &Overview, focused: &str, typed: &str) -> Vec<Suggestion> {
    let typed = typed.trim().to_lowercase();
    let matches = |label: &str| typed.is_empty() || label.to_lowercase().contains(&typed);
    let suggestions: Vec<Suggestion> = if focused == "request" {
        overview
            .requests
            .iter()
            .filter(|r| r.is_pending())
            .map(|r| Suggestion {
                value: r.id.to_string(),
                label: format!("{} {}", r.id, say::asked(r)),
            })
            .collect()
    } else {
        overview
            .grants
            .iter()
            .filter(|g| g.is_live())
            .map(|g| Suggestion {
                value: g.id.to_string(),
                label: format!("{} {}/{}", g.id, g.resource, g.role),
            })
            .collect()
    };
    suggestions
        .into_iter()
        .filter(|s| matches(&s.label))
        .take(MAX_CHOICES)
        .collect()
}

/// A submitted modal as a form: its kind, and inputs renamed to the form's input names
/// (`request.field.ticket` → `field.ticket`, `reject.reason` → `reason`).
pub(crate) fn submission(
    modal: ModalId,
    inputs: BTreeMap<String, String>,
) -> (FormKind, Submission) {
    let inputs = inputs
        .into_iter()
        .map(|(id, value)| {
            let name = ["request.", "reject.", "changes.", "extend."]
                .iter()
                .find_map(|prefix| id.strip_prefix(prefix))
                .map_or_else(|| id.clone(), str::to_owned);
            (name, value)
        })
        .collect();
    let mut form = Submission {
        inputs,
        ..Submission::default()
    };
    let kind = match modal {
        ModalId::Request { chosen } => {
            if let Some((resource, role)) = chosen {
                form.resource = Some(resource.to_string());
                form.role = Some(role.to_string());
            }
            FormKind::Request
        }
        ModalId::Reject(request) => {
            form.about = request.to_string();
            FormKind::Reject
        }
        ModalId::Changes(request) => {
            form.about = request.to_string();
            FormKind::Changes
        }
        ModalId::Extend(grant) => {
            form.about = grant.to_string();
            FormKind::Extend
        }
    };
    (kind, form)
}

/// What an input is called in a list of mistakes.
fn label_of(input: &str) -> String {
    match input.strip_prefix("field.") {
        Some(field) => field.to_owned(),
        None => input.to_owned(),
    }
}

/// `text` cut to `max` characters, with an ellipsis when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DiscordConfig;
    use crate::domain::ids::RequestId;
    use crate::engine::testing::engine_on;
    use crate::store::SledStore;

    fn options(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn modal_inputs_are_renamed_to_the_form_s_names() {
        let (kind, form) = submission(
            ModalId::Request {
                chosen: Some(("prod-db".into(), "admin".into())),
            },
            options(&[
                ("request.duration", "1h"),
                ("request.field.ticket", "INC-4"),
                ("request.justification", "why"),
            ]),
        );
        assert_eq!(kind, FormKind::Request);
        assert_eq!(form.resource.as_deref(), Some("prod-db"));
        assert_eq!(form.inputs["field.ticket"], "INC-4");
        assert_eq!(form.inputs["duration"], "1h");
        let (kind, form) = submission(
            ModalId::Reject(RequestId(3)),
            options(&[("reject.reason", "no")]),
        );
        assert_eq!((kind, form.about.as_str()), (FormKind::Reject, "AR-3"));
        assert_eq!(form.inputs["reason"], "no");
    }

    #[test]
    fn long_labels_are_clipped_for_discord() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("abcd", 3), "ab…");
    }

    /// A responder whose REST calls go to a local server that records each PATCH body.
    async fn responder_with_recorder() -> (
        Arc<Responder>,
        tokio::sync::mpsc::UnboundedReceiver<(String, Value)>,
    ) {
        use axum::extract::{OriginalUri, State};
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let record = |State(tx): State<tokio::sync::mpsc::UnboundedSender<(String, Value)>>,
                      OriginalUri(uri): OriginalUri,
                      axum::Json(body): axum::Json<Value>| async move {
            let _ = tx.send((uri.path().to_owned(), body));
            axum::Json(json!({"id": "1"}))
        };
        let app = axum::Router::new()
            .fallback(axum::routing::patch(record))
            .with_state(tx);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let config = DiscordConfig {
            enabled: true,
            bot_token: Some(crate::config::Secret::new("token")),
            application_id: Some("42".to_owned()),
            api_url,
            ..DiscordConfig::default()
        };
        let templates = Arc::new(crate::chat::render::Templates::builtin().unwrap());
        let (engine, _clock) = engine_on(SledStore::temporary().unwrap());
        let metrics = engine.metrics().clone();
        let discord = Arc::new(Discord::from_config(&config, templates, metrics).unwrap());
        (Responder::new(discord, Facade::new(engine)), rx)
    }

    #[tokio::test]
    async fn slow_work_is_deferred_at_once_and_its_message_edited_in_when_ready() {
        let (responder, mut patches) = responder_with_recorder().await;
        let quick = responder
            .within(StdDuration::from_secs(5), "t1".into(), async {
                Reply::Message(json!({"content": "at once"}))
            })
            .await;
        assert_eq!(quick["type"], MESSAGE);
        assert_eq!(quick["data"]["flags"], EPHEMERAL);

        let slow = responder
            .within(StdDuration::from_millis(20), "t2".into(), async {
                tokio::time::sleep(StdDuration::from_millis(200)).await;
                Reply::Message(json!({"content": "later"}))
            })
            .await;
        assert_eq!(
            slow,
            json!({"type": DEFERRED_MESSAGE, "data": {"flags": EPHEMERAL}})
        );
        let (path, body) = tokio::time::timeout(StdDuration::from_secs(5), patches.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(path, "/api/v10/webhooks/42/t2/messages/@original");
        assert_eq!(body["content"], "later");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
    }
}
