"""The controller with its real parts: the Service informer, the Event recorder, status patches
against the API server, and (under leader election) the write fence.

`canaryctl.controller.Controller` takes its parts from outside so its loop can be tested with
an in-memory gateway and a static informer; this module is where the running process gets
the real ones, and where the status patch's error policy lives.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from kubernetes.client import ApiException

from canaryctl.annotations import STATUS, is_canaryctl_annotation
from canaryctl.cache import ServiceStore
from canaryctl.controller import Controller, Settings
from canaryctl.events import EventRecorder
from canaryctl.gateway.base import Gateway
from canaryctl.informer import ServiceInformer
from canaryctl.kube import describe_error, write_service_annotations
from canaryctl.leadership import FencedGateway, NotLeading
from canaryctl.namespaces import NamespaceBindings
from canaryctl.objects import Service
from canaryctl.reconciler import INDEXERS

log = logging.getLogger(__name__)


def build_controller(
    api_client,
    gateway: Gateway,
    settings: Settings | None = None,
    may_write: Callable[[], bool] | None = None,
) -> Controller:
    """The controller with its real parts: Service informer, Event recorder, status patches.

    `may_write` (leader election: "do we still hold the Lease?") is asked right before every
    gateway write, status patch and Event; when it says no, nothing is sent.
    """
    settings = settings or Settings()
    if may_write is not None:
        gateway = FencedGateway(gateway, may_write)

    def patch_status(service: Service, value: str | None) -> None:
        """Write the status annotation. A Service that is gone (404) or refuses the annotation
        (422: its annotations would exceed 256 KiB) is logged, not retried: retrying the same
        write cannot succeed, and the next change of the Service brings another attempt."""
        if may_write is not None and not may_write():
            raise NotLeading(f"status of {service.key} not written")
        try:
            write_service_annotations(api_client, service.namespace, service.name, {STATUS: value})
        except ApiException as error:
            if error.status not in (404, 422):
                raise
            log.warning("cannot write the status of %s: %s", service.key, describe_error(error))

    bindings = None
    if settings.require_app_binding:  # names bound to namespaces: watch the Namespaces too
        bindings = NamespaceBindings(api_client, lambda name: controller.enqueue_namespace(name))
    controller = Controller(
        ServiceStore(INDEXERS),
        gateway,
        EventRecorder(api_client, may_send=may_write),
        patch_status,
        settings,
        bindings=bindings.bindings if bindings else None,
    )
    controller.extra_informers = [bindings.informer] if bindings else []
    controller.informer = ServiceInformer(
        api_client,
        controller.store,
        controller.enqueue_service_change,
        namespaces=settings.namespaces,
        keep_annotation=is_canaryctl_annotation,
    )
    return controller
