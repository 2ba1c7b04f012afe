//! The operator: the controllers, and the machinery they share. Each reconcile decides
//! (pure), generates (`material`), writes the Secret, and reports the status.

pub mod absent_guesses;
pub mod certificate_key_pair;
pub mod context;
pub mod echoes;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod key_manager;
pub mod keyring_secret;
pub mod kms_auth_key;
pub mod leader;
pub mod names;
pub mod namespaces;
pub mod offline;
pub mod outcome;
pub mod resource;
pub mod run;
pub mod secret;
pub mod slow;
pub mod ssh_key;
pub mod status;
pub mod wakeups;
pub mod watch_merge;
