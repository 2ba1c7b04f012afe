//! Tests against a real control plane (etcd + kube-apiserver + kube-controller-manager,
//! started once for this binary by `tests/support`).

#[path = "../support/mod.rs"]
mod support;

mod admission;
mod bad_input;
mod bench;
mod by_hand;
mod certificate_key_pair;
mod chart;
mod cli_tools;
mod controlplane;
mod events;
mod examples;
mod faults;
mod harness;
mod keyring_secret;
mod kmip_server;
mod kms;
mod leader_election;
mod namespaces;
mod operator_binary;
mod restore;
mod secrets_stay_secret;
mod ssh_key;
mod upgrade;
mod velero;
