//! The `command` connector keeps the contract, against a script that keeps accounts in a
//! directory: a grant for a person without an account exits 2 (refused, not retried).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use gatehouse::config::{Config, Env};
use gatehouse::connector::{Connector, Connectors, PersonRef};

use super::{Target, check};

/// accounts/<person> exists for people the target knows; held/<person> while they hold it.
const SCRIPT: &str = r#"#!/bin/sh
state="$1"
case "$GATEHOUSE_ACTION" in
grant)
  if [ ! -e "$state/accounts/$GATEHOUSE_PERSON_ID" ]; then
    echo "no account for $GATEHOUSE_PERSON_ID" >&2
    exit 2
  fi
  : > "$state/held/$GATEHOUSE_PERSON_ID"
  echo "granted" ;;
revoke)
  /bin/rm -f "$state/held/$GATEHOUSE_PERSON_ID"
  echo "revoked" ;;
esac
"#;

struct Script {
    dir: PathBuf,
}

impl Target for Script {
    fn connector(&self) -> Arc<dyn Connector> {
        let text = format!(
            "[[connectors]]\nid = \"target\"\nkind = \"command\"\ncommand = [\"/bin/sh\", \"{}\", \"{}\"]\ntimeout = \"10s\"\n",
            self.dir.join("provision.sh").display(),
            self.dir.display()
        );
        let config = Config::parse("gatehouse.toml", &text, Path::new("/"), &Env::new())
            .unwrap_or_else(|e| panic!("{e}"));
        Connectors::from_config(&config.connectors)
            .unwrap()
            .get(&"target".into())
            .unwrap()
    }

    fn known(&self) -> PersonRef {
        person("alice")
    }

    fn stranger(&self) -> PersonRef {
        person("mallory")
    }

    async fn holds(&self, person: &PersonRef) -> bool {
        self.dir.join("held").join(person.id.as_str()).exists()
    }
}

fn person(id: &str) -> PersonRef {
    PersonRef {
        id: id.into(),
        email: Some(format!("{id}@example.com")),
        slack: None,
        discord: None,
        accounts: Default::default(),
    }
}

#[tokio::test]
async fn the_command_connector_keeps_the_connector_contract() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("provision.sh"), SCRIPT).unwrap();
    for sub in ["accounts", "held"] {
        std::fs::create_dir(dir.path().join(sub)).unwrap();
    }
    std::fs::write(dir.path().join("accounts").join("alice"), "").unwrap();
    check(&Script {
        dir: dir.path().to_owned(),
    })
    .await;
}
