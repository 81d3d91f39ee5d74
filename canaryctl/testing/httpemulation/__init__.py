"""Plumbing shared by the project's HTTP emulators (API7 Cloud, Apache APISIX).

Each emulator answers in its own service's words; what they have in common lives here, one
idea per module: `faults` (injected failures), `requestlog` (the calls an emulator received),
`resolve` (a static `host:port` map in front of DNS, because cluster Service names do not
resolve on a test machine), `proxy` (forwarding one request to an upstream) and `control` (the
`/_emulator/` control API). The HTTP server itself (one that really stops) is
`canaryctl.backgroundhttp`, shared with the example backend.
"""
