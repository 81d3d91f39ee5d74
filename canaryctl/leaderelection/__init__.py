"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

canaryctl runs several replicas; only the leader may write (gateway, Events, status) while
the others keep their caches warm. The Python client's `kubernetes.leaderelection` is not
safe enough for that: it judges expiry by the wall clock, ignores the Lease's own
leaseDurationSeconds, never counts leaseTransitions, has no way to stop or release, lets a
hung request outlive the renew deadline, and exits the process on a bad setting. This
package does what client-go's `tools/leaderelection` does, by hand:

    elector = LeaderElector(
        api_client,
        ElectionConfig(lease_name="canaryctl", namespace="canaryctl"),
        on_started_leading=lambda stop: controller.run_until(stop),
        on_stopped_leading=lambda: os._exit(1),
        on_new_leader=lambda identity: log.info("leader is %s", identity),
    ).start()
    ...
    elector.stop()  # on SIGTERM: the work finishes, then the Lease is handed back

Modules: `config` (timings, identity), `state` (pure expiry and record arithmetic),
`leaselock` (the Lease's GET/POST/PUT), `elector` (threads and callbacks).
"""

from canaryctl.leaderelection.config import (
    JITTER_FACTOR,
    ElectionConfig,
    jittered,
    new_identity,
    user_agent,
)
from canaryctl.leaderelection.elector import LeaderElector
from canaryctl.leaderelection.leaselock import LeaseConflict, LeaseLock
from canaryctl.leaderelection.state import ElectionState, LeaseRecord

__all__ = [
    "JITTER_FACTOR",
    "ElectionConfig",
    "ElectionState",
    "LeaderElector",
    "LeaseConflict",
    "LeaseLock",
    "LeaseRecord",
    "jittered",
    "new_identity",
    "user_agent",
]
