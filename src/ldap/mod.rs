//! LDAP: reaching a server ([`client`]), the pure mapping from entries to the directory
//! ([`people`]) and the periodic directory sync ([`sync`]). The `ldap` provisioning connector
//! lives with the other connectors and uses [`client`].

pub mod client;
pub mod people;
pub mod sync;
