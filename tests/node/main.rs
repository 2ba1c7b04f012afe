//! The operator as users run it: `helm install` of the chart with the image `hack/image.sh`
//! built, on a real node (containerd, kubelet, kube-scheduler; `tests/support/node.rs`)
//! joined to a control plane of this binary's own.
//!
//! A test binary of its own, so that its timings (rollouts, a failover) do not share the two
//! cores with the e2e suite, and so that only one node runs at a time. Needs root; without it
//! the tests say why and return.

#[path = "../support/mod.rs"]
mod support;

mod by_hand;
mod chart_on_node;
mod image;
mod network;
