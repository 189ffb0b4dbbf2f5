use super::*;

fn entry(dn: &str, attrs: &[(&str, &[&str])]) -> Entry {
    Entry::new(
        dn,
        attrs.iter().map(|(name, values)| {
            (
                (*name).to_owned(),
                values.iter().map(|v| (*v).to_owned()).collect(),
            )
        }),
    )
}

fn alice() -> Entry {
    entry(
        "uid=alice,ou=people,dc=example,dc=com",
        &[
            ("uid", &["alice"]),
            ("cn", &["Alice Ng"]),
            ("mail", &["alice@example.com"]),
            ("manager", &["UID=bob, ou=People, dc=example, dc=com"]),
            ("departmentNumber", &["engineering"]),
            ("memberOf", &["cn=oncall,ou=groups,dc=example,dc=com"]),
        ],
    )
}

fn bob() -> Entry {
    entry(
        "uid=bob,ou=people,dc=example,dc=com",
        &[
            ("uid", &["bob"]),
            ("cn", &["Bob"]),
            ("title", &["Head of SRE"]),
        ],
    )
}

fn config() -> DirectoryConfig {
    DirectoryConfig {
        base_dn: Some("ou=people,dc=example,dc=com".to_owned()),
        ..DirectoryConfig::default()
    }
}

fn person<'d>(mapped: &'d Mapped, id: &str) -> &'d Person {
    mapped.directory.person(&id.into()).unwrap()
}

#[test]
fn a_person_is_read_with_every_field_and_their_manager_by_dn() {
    let mapped = directory_from_entries(&[alice(), bob()], None, &config()).unwrap();
    let alice = person(&mapped, "alice");
    assert_eq!(alice.name, "Alice Ng");
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert_eq!(alice.manager, Some("bob".into()));
    assert_eq!(alice.department.as_deref(), Some("engineering"));
    assert!(alice.in_group(&"oncall".into()));
    assert!(alice.active);
    assert_eq!(person(&mapped, "bob").title.as_deref(), Some("Head of SRE"));
    assert!(mapped.notes.is_empty(), "{:?}", mapped.notes);
}

#[test]
fn a_manager_who_was_not_read_is_dropped_with_a_note() {
    let mapped = directory_from_entries(&[alice()], None, &config()).unwrap();
    assert_eq!(person(&mapped, "alice").manager, None);
    assert!(
        mapped.notes[0].contains("is not among the people read"),
        "{:?}",
        mapped.notes
    );
}

#[test]
fn groups_from_a_search_are_matched_by_member_and_unique_member_dns() {
    let groups = [
        entry(
            "cn=security,ou=groups,dc=example,dc=com",
            &[
                ("cn", &["security"]),
                (
                    "member",
                    &["uid=bob,ou=people,dc=example,dc=com", "uid=ghost,dc=x"],
                ),
            ],
        ),
        entry(
            "cn=dba,ou=groups,dc=example,dc=com",
            &[(
                "uniqueMember",
                &["uid=Alice,ou=people,dc=example,dc=com#'0101'B"],
            )],
        ),
    ];
    let mapped = directory_from_entries(&[alice(), bob()], Some(&groups), &config()).unwrap();
    let security: Vec<_> = mapped
        .directory
        .members(&"security".into())
        .map(|p| p.id.as_str())
        .collect();
    assert_eq!(security, ["bob"]);
    assert!(person(&mapped, "alice").in_group(&"dba".into()));
    // With a group search, memberOf is not read.
    assert!(!person(&mapped, "alice").in_group(&"oncall".into()));
}

#[test]
fn a_person_is_inactive_by_attribute_presence_or_by_value() {
    let mut locked = bob();
    locked = Entry::new(
        locked.dn.clone(),
        [(
            "pwdAccountLockedTime".to_owned(),
            vec!["000001010000Z".to_owned()],
        )]
        .into_iter()
        .chain(locked.attrs.clone()),
    );
    let presence = DirectoryConfig {
        inactive_attribute: Some("pwdAccountLockedTime".to_owned()),
        ..config()
    };
    let mapped = directory_from_entries(&[alice(), locked], None, &presence).unwrap();
    assert!(!person(&mapped, "bob").active);
    assert!(person(&mapped, "alice").active);

    let by_value = DirectoryConfig {
        inactive_attribute: Some("employeeType".to_owned()),
        inactive_values: vec!["Terminated".to_owned()],
        ..config()
    };
    let leaver = entry(
        "uid=carol,dc=example,dc=com",
        &[("uid", &["carol"]), ("employeeType", &["terminated"])],
    );
    let staff = entry(
        "uid=dave,dc=example,dc=com",
        &[("uid", &["dave"]), ("employeeType", &["staff"])],
    );
    let mapped = directory_from_entries(&[leaver, staff], None, &by_value).unwrap();
    assert!(!person(&mapped, "carol").active);
    assert!(person(&mapped, "dave").active);
}

#[test]
fn entries_without_an_id_or_with_a_repeated_one_are_skipped_with_a_note() {
    let nameless = entry("cn=printer,dc=example,dc=com", &[("cn", &["printer"])]);
    let twin = entry("uid=bob,ou=other,dc=example,dc=com", &[("uid", &["bob"])]);
    let mapped = directory_from_entries(&[bob(), nameless, twin], None, &config()).unwrap();
    assert_eq!(mapped.directory.people().count(), 1);
    assert_eq!(mapped.notes.len(), 2, "{:?}", mapped.notes);
    assert_eq!(person(&mapped, "bob").name, "Bob");
}

#[test]
fn chat_ids_come_from_configured_attributes_and_decide_where_cards_go() {
    let mut cfg = config();
    cfg.attributes.slack = Some("slackId".to_owned());
    let with_slack = entry(
        "uid=erin,dc=example,dc=com",
        &[("uid", &["erin"]), ("SLACKID", &["U01ERIN"])],
    );
    let mapped = directory_from_entries(&[with_slack], None, &cfg).unwrap();
    let erin = person(&mapped, "erin");
    assert_eq!(erin.slack.as_deref(), Some("U01ERIN"));
    assert_eq!(erin.notify, [Platform::Slack]);
    assert_eq!(erin.name, "erin");
}

#[test]
fn accounts_come_from_their_configured_attributes_and_a_blank_one_is_no_account() {
    let mut cfg = config();
    cfg.attributes.accounts = [("github", "githubLogin"), ("okta", "oktaId")]
        .map(|(name, attribute)| (name.to_owned(), attribute.to_owned()))
        .into();
    let erin = entry(
        "uid=erin,dc=example,dc=com",
        &[
            ("uid", &["erin"]),
            ("GITHUBLOGIN", &[" erin-gh "]),
            ("oktaId", &["  "]),
        ],
    );
    let mapped = directory_from_entries(&[erin], None, &cfg).unwrap();
    let erin = person(&mapped, "erin");
    assert_eq!(
        erin.accounts.get("github").map(String::as_str),
        Some("erin-gh")
    );
    assert!(!erin.accounts.contains_key("okta"));
}

#[test]
fn a_search_that_finds_nobody_is_refused_rather_than_making_everyone_a_leaver() {
    let err = directory_from_entries(&[], None, &config()).unwrap_err();
    assert!(err.to_string().contains("the old directory stays"), "{err}");
}

#[test]
fn dns_match_whatever_their_case_and_spacing() {
    assert_eq!(
        normalize_dn("UID=bob, ou=People ,dc = example"),
        "uid=bob,ou=people,dc=example"
    );
}

#[test]
fn people_gone_from_ldap_stay_as_inactive_leavers_with_their_email() {
    let before = directory_from_entries(&[alice(), bob()], None, &config())
        .unwrap()
        .directory;
    let after = directory_from_entries(&[bob()], None, &config())
        .unwrap()
        .directory;
    let kept = keep_leavers(&before, after);
    let alice = kept.person(&"alice".into()).unwrap();
    assert!(!alice.active);
    assert_eq!(alice.email.as_deref(), Some("alice@example.com"));
    assert!(alice.groups.is_empty());
    assert!(!kept.group_exists(&"oncall".into()));
    assert!(kept.person(&"bob".into()).unwrap().active);
    let people = crate::domain::jml::compare(&before, &kept);
    assert_eq!(people.leavers, ["alice".into()] as [PersonId; 1]);
}

#[test]
fn groups_a_connector_manages_are_not_directory_groups() {
    let managed = ManagedGroups::new(["CN=vpn, ou=groups, dc=example, dc=com"]);
    let vpn = "cn=vpn,ou=groups,dc=example,dc=com";
    let oncall = "cn=oncall,ou=groups,dc=example,dc=com";

    // Groups searched: the managed group's entry is left out.
    let mut people = [alice()];
    let mut groups = vec![
        entry(vpn, &[("cn", &["vpn"]), ("member", &[&alice().dn])]),
        entry(oncall, &[("cn", &["oncall"]), ("member", &[&alice().dn])]),
    ];
    managed.leave_out(&mut people, Some(&mut groups), "memberOf");
    let mapped = directory_from_entries(&people, Some(&groups), &config()).unwrap();
    let groups_of_alice: Vec<&str> = person(&mapped, "alice")
        .groups
        .iter()
        .map(|g| g.as_str())
        .collect();
    assert_eq!(groups_of_alice, ["oncall"]);

    // Groups from memberOf: the managed group's DN is left out.
    let mut people = [entry(
        "uid=alice,ou=people,dc=example,dc=com",
        &[("uid", &["alice"]), ("memberOf", &[vpn, oncall])],
    )];
    managed.leave_out(&mut people, None, "memberOf");
    let mapped = directory_from_entries(&people, None, &config()).unwrap();
    let alice = person(&mapped, "alice");
    assert!(alice.in_group(&"oncall".into()));
    assert!(!alice.in_group(&"vpn".into()));
}
