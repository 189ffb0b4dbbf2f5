//! Typeahead, for every platform: the resources a person may ask for and the roles of a
//! resource, matching what they typed so far (Slack's external select, Discord's
//! autocomplete). Only eligible resources are offered, so the list never tempts anyone into
//! a request that validation would refuse for eligibility.

use crate::domain::directory::Person;
use crate::domain::ids::ResourceId;
use crate::domain::policy::Policy;

/// One choice: the value sent back, and what the person reads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Suggestion {
    pub value: String,
    pub label: String,
}

/// Resources `person` may ask for whose id or name contains `typed` (any case), as
/// `Name (id)`, in policy order, at most `limit`.
pub fn resources(policy: &Policy, person: &Person, typed: &str, limit: usize) -> Vec<Suggestion> {
    policy
        .resources
        .iter()
        .filter(|r| matches(typed, r.id.as_str(), &r.name) && r.is_eligible(person))
        .take(limit)
        .map(|r| Suggestion {
            value: r.id.to_string(),
            label: format!("{} ({})", r.name, r.id),
        })
        .collect()
}

/// The roles of `resource` whose id or name contains `typed`; none for an unknown resource.
pub fn roles(
    policy: &Policy,
    resource: Option<&str>,
    typed: &str,
    limit: usize,
) -> Vec<Suggestion> {
    let Some(resource) = resource.and_then(|id| policy.resource(&ResourceId::new(id.trim())))
    else {
        return Vec::new();
    };
    resource
        .roles
        .iter()
        .filter(|r| matches(typed, r.id.as_str(), &r.name))
        .take(limit)
        .map(|r| Suggestion {
            value: r.id.to_string(),
            label: r.name.clone(),
        })
        .collect()
}

fn matches(typed: &str, id: &str, name: &str) -> bool {
    let typed = typed.trim().to_lowercase();
    typed.is_empty() || id.to_lowercase().contains(&typed) || name.to_lowercase().contains(&typed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::tests::{example_directory, example_policy};

    #[test]
    fn only_eligible_resources_matching_the_typed_text_are_offered() {
        let (policy, directory) = (example_policy(), example_directory());
        let alice = directory.person(&"alice".into()).unwrap();
        let all = resources(&policy, alice, "", 100);
        assert!(!all.is_empty());
        assert!(all.iter().all(|s| {
            policy
                .resource(&ResourceId::new(s.value.as_str()))
                .unwrap()
                .is_eligible(alice)
        }));
        let first = &all[0];
        let typed = first.value.to_uppercase();
        assert!(resources(&policy, alice, &typed, 100).contains(first));
        assert!(resources(&policy, alice, "no-such-thing-at-all", 100).is_empty());
        assert_eq!(resources(&policy, alice, "", 1).len(), 1);
    }

    #[test]
    fn roles_come_from_the_chosen_resource_only() {
        let policy = example_policy();
        let resource = &policy.resources[0];
        let offered = roles(&policy, Some(resource.id.as_str()), "", 100);
        assert_eq!(offered.len(), resource.roles.len());
        assert!(roles(&policy, Some("nope"), "", 100).is_empty());
        assert!(roles(&policy, None, "", 100).is_empty());
    }
}
