//! The real serenity client through the fake: HELLO, IDENTIFY, READY and heartbeats on the
//! gateway, INTERACTION_CREATE reaching an `EventHandler`, and serenity's `Http` calls
//! (interaction responses, messages, DMs, command overwrites) accepted clean. Each test shuts
//! the client down so nothing outlives it.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use serenity::all::{
    ButtonStyle, ChannelId, ClientBuilder, Command, Context, CreateActionRow,
    CreateAutocompleteResponse, CreateButton, CreateCommand, CreateCommandOption, CreateInputText,
    CreateInteractionResponse, CreateInteractionResponseFollowup, CreateInteractionResponseMessage,
    CreateMessage, CreateModal, EditInteractionResponse, EventHandler, GatewayIntents, HttpBuilder,
    InputTextStyle, Interaction as SerenityInteraction, Ready, UserId,
};
use serenity::gateway::ShardManager;
use serenity::http::Http;
use tokio::sync::mpsc;

use super::{APPLICATION_ID, BOT_TOKEN, CHANNEL_ID, FakeDiscord, Interaction};

struct Forward {
    interactions: mpsc::UnboundedSender<SerenityInteraction>,
    ready: mpsc::UnboundedSender<Ready>,
}

#[serenity::async_trait]
impl EventHandler for Forward {
    async fn ready(&self, _: Context, ready: Ready) {
        let _ = self.ready.send(ready);
    }

    async fn interaction_create(&self, _: Context, interaction: SerenityInteraction) {
        let _ = self.interactions.send(interaction);
    }
}

pub(super) struct Running {
    pub http: Arc<Http>,
    pub interactions: mpsc::UnboundedReceiver<SerenityInteraction>,
    pub ready: mpsc::UnboundedReceiver<Ready>,
    shards: Arc<ShardManager>,
    task: tokio::task::JoinHandle<()>,
}

impl Running {
    pub async fn next_interaction(&mut self) -> SerenityInteraction {
        let next = tokio::time::timeout(Duration::from_secs(10), self.interactions.recv());
        next.await.expect("no interaction within 10 s").unwrap()
    }

    pub async fn stop(self) {
        self.shards.shutdown_all().await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.task).await;
    }
}

/// A serenity client built as the adapter builds it (`ClientBuilder::new_with_http`, as
/// serenity 0.12 has no `.http(…)` on the builder), started against `fake`.
pub(super) async fn connect(fake: &FakeDiscord) -> Running {
    let http = HttpBuilder::new(BOT_TOKEN)
        .proxy(fake.api_url())
        .ratelimiter_disabled(true)
        .build();
    let (interactions_tx, interactions) = mpsc::unbounded_channel();
    let (ready_tx, ready) = mpsc::unbounded_channel();
    let handler = Forward {
        interactions: interactions_tx,
        ready: ready_tx,
    };
    let mut client = ClientBuilder::new_with_http(http, GatewayIntents::empty())
        .event_handler(handler)
        .await
        .unwrap();
    let (http, shards) = (client.http.clone(), client.shard_manager.clone());
    let task = tokio::spawn(async move {
        let _ = client.start().await;
    });
    Running {
        http,
        interactions,
        ready,
        shards,
        task,
    }
}

#[tokio::test]
async fn serenity_identifies_gets_ready_and_receives_a_slash_command() {
    let fake = FakeDiscord::start().await;
    let mut client = connect(&fake).await;
    fake.wait_identified().await;
    let ready = tokio::time::timeout(Duration::from_secs(10), client.ready.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ready.user.id.to_string(), APPLICATION_ID);
    assert_eq!(ready.application.id.to_string(), APPLICATION_ID);
    assert_eq!(fake.identifies()[0]["intents"], 0);

    let options = [
        ("resource", json!("prod-db")),
        ("role", json!("admin")),
        ("hours", json!(2)),
    ];
    let sent = fake
        .interaction(Interaction::command("111", "request", &options))
        .await;
    let SerenityInteraction::Command(command) = client.next_interaction().await else {
        panic!("not a command");
    };
    assert_eq!(command.id.to_string(), sent.id);
    assert_eq!(command.data.name, "access");
    assert_eq!(command.user.id, UserId::new(111));

    let answer = CreateInteractionResponseMessage::new()
        .content("AR-1 submitted")
        .ephemeral(true);
    command
        .create_response(&client.http, CreateInteractionResponse::Message(answer))
        .await
        .unwrap();
    let callback = fake.callback(&sent.id).await;
    assert_eq!(
        (
            callback["type"].as_u64(),
            callback["data"]["flags"].as_u64()
        ),
        (Some(4), Some(64))
    );
    let original = fake.original(&sent.token).unwrap();
    assert!(original.ephemeral() && original.content == "AR-1 submitted");

    let followup = CreateInteractionResponseFollowup::new().content("a manager will look");
    command
        .create_followup(&client.http, followup)
        .await
        .unwrap();
    assert_eq!(
        fake.followups(&sent.token)[0].content,
        "a manager will look"
    );
    client.stop().await;
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
    assert!(
        fake.gateway_violations().is_empty(),
        "{:?}",
        fake.gateway_violations()
    );
}

#[tokio::test]
async fn serenity_http_posts_cards_opens_dms_and_registers_commands() {
    let fake = FakeDiscord::start().await;
    let client = connect(&fake).await;
    fake.wait_identified().await;
    let http = &client.http;

    let buttons = vec![
        CreateButton::new("approve:AR-1")
            .label("Approve")
            .style(ButtonStyle::Success),
        CreateButton::new("reject:AR-1")
            .label("Reject")
            .style(ButtonStyle::Danger),
        CreateButton::new_link("https://example.com/AR-1").label("Details"),
    ];
    let card = CreateMessage::new()
        .content("AR-1: bob asks for prod-db admin")
        .components(vec![CreateActionRow::Buttons(buttons)]);
    let posted = ChannelId::new(CHANNEL_ID.parse().unwrap())
        .send_message(http, card)
        .await
        .unwrap();
    let stored = fake.message(CHANNEL_ID, &posted.id.to_string()).unwrap();
    assert_eq!(stored.custom_ids(), ["approve:AR-1", "reject:AR-1"]);

    let dm = UserId::new(111).create_dm_channel(http).await.unwrap();
    assert_eq!(fake.dm_channel_of("111"), Some(dm.id.to_string()));
    dm.id
        .say(http, "your request AR-1 is waiting")
        .await
        .unwrap();

    let access = CreateCommand::new("access")
        .description("Ask for access")
        .add_option(
            CreateCommandOption::new(
                serenity::all::CommandOptionType::SubCommand,
                "request",
                "Ask for a role",
            )
            .add_sub_option(
                CreateCommandOption::new(
                    serenity::all::CommandOptionType::String,
                    "resource",
                    "What",
                )
                .required(true)
                .set_autocomplete(true),
            ),
        );
    let registered = Command::set_global_commands(http, vec![access])
        .await
        .unwrap();
    assert_eq!(registered[0].name, "access");
    assert_eq!(fake.commands()[0]["id"], registered[0].id.to_string());

    let sent = fake
        .interaction(
            Interaction::button("111", CHANNEL_ID, &posted.id.to_string(), "approve:AR-1")
                .in_guild(super::GUILD_ID),
        )
        .await;
    let mut client = client;
    let SerenityInteraction::Component(click) = client.next_interaction().await else {
        panic!("not a component");
    };
    assert_eq!(click.data.custom_id, "approve:AR-1");
    assert_eq!(click.message.id, posted.id);
    click.defer(&client.http).await.unwrap();
    let done = EditInteractionResponse::new()
        .content("AR-1 approved")
        .components(vec![]);
    click.edit_response(&client.http, done).await.unwrap();
    let card = fake.message(CHANNEL_ID, &posted.id.to_string()).unwrap();
    assert_eq!(card.content, "AR-1 approved");
    assert!(card.components.is_empty());
    assert_eq!(fake.callback(&sent.id).await["type"], 6);
    client.stop().await;
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}

#[tokio::test]
async fn serenity_answers_autocomplete_and_opens_a_modal_clean() {
    let fake = FakeDiscord::start().await;
    let mut client = connect(&fake).await;
    let typed = [("resource", json!("pro"))];
    let auto = fake
        .interaction(Interaction::autocomplete(
            "111", "request", &typed, "resource",
        ))
        .await;
    let SerenityInteraction::Autocomplete(typing) = client.next_interaction().await else {
        panic!("not autocomplete");
    };
    let choices = CreateAutocompleteResponse::new()
        .add_string_choice("prod-db", "prod-db")
        .add_string_choice("prod-api", "prod-api");
    typing
        .create_response(
            &client.http,
            CreateInteractionResponse::Autocomplete(choices),
        )
        .await
        .unwrap();
    assert_eq!(
        fake.callback(&auto.id).await["data"]["choices"][1]["value"],
        "prod-api"
    );

    let sent = fake
        .interaction(Interaction::command("111", "request", &[]).in_guild(super::GUILD_ID))
        .await;
    let SerenityInteraction::Command(command) = client.next_interaction().await else {
        panic!("not a command");
    };
    let reason = CreateInputText::new(InputTextStyle::Paragraph, "Why do you need it?", "reason")
        .max_length(1000)
        .required(true);
    let modal = CreateModal::new("request_form", "Request access")
        .components(vec![CreateActionRow::InputText(reason)]);
    command
        .create_response(&client.http, CreateInteractionResponse::Modal(modal))
        .await
        .unwrap();
    assert_eq!(
        fake.callback(&sent.id).await["data"]["custom_id"],
        "request_form"
    );

    let submit = Interaction::modal_submit("111", "request_form", &[("reason", "on call")]);
    let submitted = fake.interaction(submit.in_guild(super::GUILD_ID)).await;
    let SerenityInteraction::Modal(form) = client.next_interaction().await else {
        panic!("not a modal submit");
    };
    form.defer_ephemeral(&client.http).await.unwrap();
    let done = EditInteractionResponse::new().content("AR-2 submitted");
    form.edit_response(&client.http, done).await.unwrap();
    assert_eq!(
        fake.original(&submitted.token).unwrap().content,
        "AR-2 submitted"
    );
    client.stop().await;
    assert!(fake.violations().is_empty(), "{:#?}", fake.violations());
}
