"""Release automation: a canary Service's step schedule, judged from Prometheus, decided purely.

- `config`: the `api7.cloud/canary-*` annotations -> `ReleaseConfig` (or problems).
- `state`: `ReleaseState`, persisted in the status annotation so a restart resumes exactly.
- `decide`: pure decisions (start, checks, actions, hand-set weights) -> `Decision`.
- `prometheus` / `analysis`: the only I/O: query Prometheus and classify a check.
"""
