"""Plumbing shared by the project's HTTP emulators (API7 Cloud, Apache APISIX, demo backends).

Each emulator answers in its own service's words; what they have in common lives here, one
idea per module: `server` (a background HTTP server that really stops), `faults` (injected
failures), `requestlog` (the calls an emulator received), `resolve` (a static `host:port`
map in front of DNS, because cluster Service names do not resolve on a test machine),
`proxy` (forwarding one request to an upstream), `control` (the `/_emulator/` control API)
and `signals` (serving in the foreground until Ctrl-C or SIGTERM).
"""
