"""beadwire's benchmark tool: `python3 -m bench [--peer] [--quick] ...` from the repository root.

Run from the repository root (or through `python3 bench/bench.py`, which goes there), `tests.servers`,
the process helpers the tests use too, imports as a normal package: no `sys.path` edits.

Modules: `load` (HTTP client, load loops, statistics, CPU sampler), `memory` (process tree, RSS,
py-spy), `workloads` (each measured workload), `ours` (the run against our own stack), `peer` (the
run against the peer, found in ../shared/peer beside the repository), `report` (the table and notes),
`targets` (issue 19's targets, met or missed) and `run` (the command line).
"""
