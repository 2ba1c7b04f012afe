//! Leader election on a coordination Lease (kube-lease-manager): with several replicas only
//! the holder of the Lease runs the controllers; the others wait and take over within the
//! lease duration when the leader goes away. A leader that loses the Lease stops (and is
//! restarted by its Deployment as a follower) rather than risk two writers.

use std::time::Duration;

use kube::Client;
use kube_lease_manager::{LeaseManagerBuilder, LeaseManagerError};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Where and how to elect a leader.
#[derive(Clone, Debug)]
pub struct LeaderElection {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease is valid without renewal: the longest a failover takes.
    pub duration: Duration,
    /// How long before expiry the leader renews.
    pub grace: Duration,
}

/// Holding the Lease.
pub struct Leadership {
    leading: watch::Receiver<bool>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, LeaseManagerError>>,
}

impl Leadership {
    /// Resolves when the Lease is lost (another replica took it, or it could not be
    /// renewed in time).
    pub async fn lost(&mut self) {
        let _ = self.leading.wait_for(|leading| !*leading).await;
    }

    /// Gives the Lease up at once, so a follower takes over without waiting for expiry.
    pub async fn release(self) {
        drop(self.leading);
        match self.task.await {
            Ok(Ok(_)) => tracing::info!("leadership released"),
            Ok(Err(e)) => tracing::warn!(error = %e, "releasing the leadership lease failed"),
            Err(e) => tracing::warn!(error = %e, "the lease task failed"),
        }
    }
}

/// Errors of leader election.
#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    /// The Lease could not be set up.
    #[error("leader election on Lease {lease}: {source}")]
    Lease {
        /// `<namespace>/<name>`.
        lease: String,
        /// The error.
        source: LeaseManagerError,
    },
}

/// Waits until this replica holds the Lease (`Some`) or `stopped` resolves first (`None`).
pub async fn lead(
    client: &Client,
    election: &LeaderElection,
    stopped: impl std::future::Future<Output = ()>,
) -> Result<Option<Leadership>, LeaderError> {
    let lease = format!("{}/{}", election.namespace, election.lease_name);
    let manager = LeaseManagerBuilder::new(client.clone(), &election.lease_name)
        .with_namespace(&election.namespace)
        .with_identity(&election.identity)
        .with_duration(seconds(election.duration))
        .with_grace(seconds(election.grace))
        .with_field_manager("keysmith")
        .build()
        .await
        .map_err(|source| LeaderError::Lease {
            lease: lease.clone(),
            source,
        })?;
    let (mut leading, task) = manager.watch().await;
    tracing::info!(%lease, identity = %election.identity, "waiting for leadership");
    let acquired = tokio::select! {
        () = stopped => None,
        result = leading.wait_for(|leading| *leading) => Some(result.is_ok()),
    };
    match acquired {
        Some(true) => {
            tracing::info!(%lease, identity = %election.identity, "leadership acquired");
            Ok(Some(Leadership { leading, task }))
        }
        // Stopped before leading: give up the Lease.
        None => {
            drop(leading);
            let _ = task.await;
            Ok(None)
        }
        // The lease task ended on its own: report why.
        Some(false) => {
            drop(leading);
            let why = match task.await {
                Ok(Err(source)) => source,
                _ => LeaseManagerError::InconsistentState("the lease task ended".to_owned()),
            };
            Err(LeaderError::Lease { lease, source: why })
        }
    }
}

fn seconds(duration: Duration) -> u64 {
    duration.as_secs().max(1)
}
