//! Deployers: bring up the topology of a step (local replicas, or a URL that is already
//! running) and tear it down on every exit path.
